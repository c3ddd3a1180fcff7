package bolt

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/storetest"
)

// White-box tests of the group committer. Batches are formed
// deterministically: a blocker occupies the committer while requests queue
// up behind it, and only then is it released.

var testBucket = []byte("committer_test")

func openTest(t *testing.T, opts Options) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokenbroker.db")
	s, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, path
}

// blockCommitter makes the committer run a function that waits for
// release, and returns once it is running.
func blockCommitter(t *testing.T, s *Store) (release func(), done <-chan error) {
	t.Helper()
	started, unblock := make(chan struct{}), make(chan struct{})
	var once sync.Once
	errc := make(chan error, 1)
	go func() {
		errc <- s.w.do(context.Background(), func(tx *bbolt.Tx) error {
			once.Do(func() { close(started) })
			<-unblock
			_, err := tx.CreateBucketIfNotExists(testBucket)
			return err
		})
	}()
	<-started
	return func() { close(unblock) }, errc
}

// waitQueued waits until n requests wait in the committer's queue. The
// deadline is a safety net against a broken test, not a timing assertion.
func waitQueued(t *testing.T, s *Store, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for len(s.w.reqs) < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d requests queued", len(s.w.reqs), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestBatchIsolatesFailures queues successful, failing and panicking
// functions into one batch. Each failure must reach only its own caller,
// leave no trace in the file, and the rest must commit together.
func TestBatchIsolatesFailures(t *testing.T) {
	s, _ := openTest(t, Options{})
	release, blocked := blockCommitter(t, s)

	const n = 12
	type result struct {
		err  error
		txID int // of the last run, i.e. the committed one for successes
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			var txID int
			key := fmt.Appendf(nil, "key-%02d", i)
			err := s.w.do(context.Background(), func(tx *bbolt.Tx) error {
				txID = tx.ID()
				if err := tx.Bucket(testBucket).Put(key, []byte("v")); err != nil {
					return err
				}
				switch i % 4 {
				case 1:
					return fmt.Errorf("request %d fails after writing", i)
				case 3:
					if i == 3 {
						panic("request 3 panics")
					}
				}
				return nil
			})
			results[i] = result{err, txID}
		})
	}
	waitQueued(t, s, n)
	release()
	if err := <-blocked; err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	commitTx := -1
	for i, r := range results {
		failing := i%4 == 1 || i == 3
		switch {
		case failing && r.err == nil:
			t.Errorf("request %d: want its own error, got nil", i)
		case !failing && r.err != nil:
			t.Errorf("request %d: got another request's failure: %v", i, r.err)
		case !failing:
			if commitTx == -1 {
				commitTx = r.txID
			}
			if r.txID != commitTx {
				t.Errorf("request %d committed in tx %d, others in tx %d: not one batch", i, r.txID, commitTx)
			}
		}
	}
	_ = s.db.View(func(tx *bbolt.Tx) error {
		for i := range n {
			failing := i%4 == 1 || i == 3
			if got := tx.Bucket(testBucket).Get(fmt.Appendf(nil, "key-%02d", i)); (got != nil) == failing {
				t.Errorf("key of request %d present=%v, want %v", i, got != nil, !failing)
			}
		}
		return nil
	})

	// The committer survived the panic.
	if err := s.CreateRole(context.Background(), storetest.NewRole(storetest.RoleID(1))); err != nil {
		t.Fatalf("write after a panicking function: %v", err)
	}
}

func TestMaxBatchBoundsTransactions(t *testing.T) {
	s, _ := openTest(t, Options{MaxBatch: 4})
	release, blocked := blockCommitter(t, s)
	const n = 10
	txIDs := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if err := s.w.do(context.Background(), func(tx *bbolt.Tx) error {
				txIDs[i] = tx.ID()
				return nil
			}); err != nil {
				t.Error(err)
			}
		})
	}
	waitQueued(t, s, 4) // the queue holds MaxBatch; the rest wait to send
	release()
	<-blocked
	wg.Wait()
	perTx := map[int]int{}
	for _, id := range txIDs {
		perTx[id]++
	}
	for id, k := range perTx {
		if k > 4 {
			t.Errorf("tx %d ran %d functions, MaxBatch is 4", id, k)
		}
	}
}

func TestCancelledWriteIsNotWritten(t *testing.T) {
	s, _ := openTest(t, Options{})
	ctx := context.Background()
	if err := s.CreateRole(ctx, storetest.NewRole(storetest.RoleID(1))); err != nil {
		t.Fatal(err)
	}
	tok := storetest.NewToken(storetest.ClientID(1), storetest.RoleID(1))

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.CreateToken(cancelled, tok); !errors.Is(err, context.Canceled) {
		t.Fatalf("create with a cancelled context: got %v", err)
	}

	// Cancelled while queued behind another batch: skipped, not written.
	release, blocked := blockCommitter(t, s)
	queuedCtx, cancelQueued := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- s.CreateToken(queuedCtx, tok) }()
	waitQueued(t, s, 1)
	cancelQueued()
	release()
	<-blocked
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("create cancelled while queued: got %v", err)
	}
	if _, err := s.GetToken(ctx, tok.ClientID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("cancelled create was written: %v", err)
	}
}

// TestCloseCommitsQueuedWrites: requests handed over before Close are
// committed, and writes after Close fail with ErrClosed.
func TestCloseCommitsQueuedWrites(t *testing.T) {
	s, path := openTest(t, Options{})
	ctx := context.Background()
	if err := s.CreateRole(ctx, storetest.NewRole(storetest.RoleID(1))); err != nil {
		t.Fatal(err)
	}
	release, blocked := blockCommitter(t, s)
	const n = 5
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = s.CreateToken(ctx, storetest.NewToken(storetest.ClientID(i), storetest.RoleID(1))) })
	}
	waitQueued(t, s, n)

	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	for !committerClosed(s) {
		time.Sleep(time.Millisecond)
	}
	if err := s.CreateToken(ctx, storetest.NewToken(storetest.ClientID(99), storetest.RoleID(1))); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("create after Close started: got %v, want ErrClosed", err)
	}
	release()
	<-blocked
	wg.Wait()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	for i, err := range errs {
		if err != nil {
			t.Errorf("queued create %d: %v", i, err)
		}
	}

	s2, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	for i := range n {
		if _, err := s2.GetToken(ctx, storetest.ClientID(i)); err != nil {
			t.Errorf("queued token %d after reopen: %v", i, err)
		}
	}
}

func committerClosed(s *Store) bool {
	s.w.mu.RLock()
	defer s.w.mu.RUnlock()
	return s.w.closed
}

// answerLog records, for every answer the committer sends, its error and
// whether the token is present in the committed state at that moment. A
// read transaction sees only committed data, and bbolt commits with an
// fsync, so "committed" here means durable.
type answerLog struct {
	mu      sync.Mutex
	answers []loggedAnswer
}

type loggedAnswer struct {
	err     error
	present bool
}

func logAnswers(t *testing.T, s *Store, clientID string) *answerLog {
	t.Helper()
	l := &answerLog{}
	s.w.onAnswer = func(err error) {
		present := false
		if verr := s.db.View(func(tx *bbolt.Tx) error {
			present = tx.Bucket(bucketTokens).Get([]byte(clientID)) != nil
			return nil
		}); verr != nil {
			t.Errorf("read committed state: %v", verr)
		}
		l.mu.Lock()
		l.answers = append(l.answers, loggedAnswer{err, present})
		l.mu.Unlock()
	}
	return l
}

func (l *answerLog) with(target error) []loggedAnswer {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []loggedAnswer
	for _, a := range l.answers {
		if errors.Is(a.err, target) {
			out = append(out, a)
		}
	}
	return out
}

// inOneBatch runs op twice concurrently, both queued behind a blocker so
// the committer drains them into one batch, and returns both results.
func inOneBatch(t *testing.T, s *Store, op func() error) [2]error {
	t.Helper()
	release, blocked := blockCommitter(t, s)
	var errs [2]error
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() { errs[i] = op() })
	}
	waitQueued(t, s, 2)
	release()
	if err := <-blocked; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	return errs
}

// oneNilOneErr checks that one result is nil and the other is target.
func oneNilOneErr(t *testing.T, errs [2]error, target error) {
	t.Helper()
	if !(errs[0] == nil && errors.Is(errs[1], target) || errs[1] == nil && errors.Is(errs[0], target)) {
		t.Fatalf("want one nil and one %v, got %v and %v", target, errs[0], errs[1])
	}
}

// TestRefusedDeleteAnsweredAfterCommit: two deletes of one token in one
// batch. The second fails only because of the first's effect in the same
// transaction, so its "not found" must leave only once that deletion is
// committed: answered earlier, a Check could still find the token live
// after the 404, and a crash could keep it live for good.
func TestRefusedDeleteAnsweredAfterCommit(t *testing.T) {
	s, _ := openTest(t, Options{})
	ctx := context.Background()
	if err := s.CreateRole(ctx, storetest.NewRole(storetest.RoleID(1))); err != nil {
		t.Fatal(err)
	}
	tok := storetest.NewToken(storetest.ClientID(1), storetest.RoleID(1))
	if err := s.CreateToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	log := logAnswers(t, s, tok.ClientID)
	errs := inOneBatch(t, s, func() error { return s.DeleteToken(ctx, tok.ClientID) })
	oneNilOneErr(t, errs, store.ErrNotFound)

	refusals := log.with(store.ErrNotFound)
	if len(refusals) != 1 {
		t.Fatalf("%d not-found answers, want 1", len(refusals))
	}
	if refusals[0].present {
		t.Fatal("not found answered while the committed state still holds the token")
	}
}

// TestRefusedCreateAnsweredAfterCommit: the same for two creates of one
// client ID: "already exists" leaves only once the other create is durable.
func TestRefusedCreateAnsweredAfterCommit(t *testing.T) {
	s, _ := openTest(t, Options{})
	ctx := context.Background()
	if err := s.CreateRole(ctx, storetest.NewRole(storetest.RoleID(1))); err != nil {
		t.Fatal(err)
	}
	tok := storetest.NewToken(storetest.ClientID(1), storetest.RoleID(1))
	log := logAnswers(t, s, tok.ClientID)
	errs := inOneBatch(t, s, func() error { return s.CreateToken(ctx, tok) })
	oneNilOneErr(t, errs, store.ErrAlreadyExists)

	refusals := log.with(store.ErrAlreadyExists)
	if len(refusals) != 1 {
		t.Fatalf("%d already-exists answers, want 1", len(refusals))
	}
	if !refusals[0].present {
		t.Fatal("already exists answered before the other create was committed")
	}
}

// TestCommitFailureReevaluatesRefusals: when the final commit of a batch
// fails, its refusals saw a state that never became durable, so they are
// evaluated again against the one that did; if that commit fails as well,
// they get the commit error.
func TestCommitFailureReevaluatesRefusals(t *testing.T) {
	errDisk := errors.New("injected commit failure")
	for _, failures := range []int{1, 2} {
		t.Run(fmt.Sprintf("failures=%d", failures), func(t *testing.T) {
			s, _ := openTest(t, Options{})
			ctx := context.Background()
			if err := s.CreateRole(ctx, storetest.NewRole(storetest.RoleID(1))); err != nil {
				t.Fatal(err)
			}
			tok := storetest.NewToken(storetest.ClientID(1), storetest.RoleID(1))
			if err := s.CreateToken(ctx, tok); err != nil {
				t.Fatal(err)
			}
			log := logAnswers(t, s, tok.ClientID)

			release, blocked := blockCommitter(t, s)
			// Fail the next commits as a disk would: the transaction's
			// functions all succeeded, and nothing is written.
			left := failures
			update := s.w.update
			s.w.update = func(fn func(*bbolt.Tx) error) error {
				return update(func(tx *bbolt.Tx) error {
					if err := fn(tx); err != nil {
						return err
					}
					if left > 0 { // only the committer goroutine runs this
						left--
						return errDisk
					}
					return nil
				})
			}
			var errs [2]error
			var wg sync.WaitGroup
			for i := range errs {
				wg.Go(func() { errs[i] = s.DeleteToken(ctx, tok.ClientID) })
			}
			waitQueued(t, s, 2)
			release()
			if err := <-blocked; err != nil {
				t.Fatal(err)
			}
			wg.Wait()

			_, getErr := s.GetToken(ctx, tok.ClientID)
			switch failures {
			case 1:
				// First delete: commit failed. Second: refused against the
				// failed state, re-run against the committed one, deleted.
				oneNilOneErr(t, errs, errDisk)
				if !errors.Is(getErr, store.ErrNotFound) {
					t.Fatalf("token after the re-run delete: %v", getErr)
				}
			case 2:
				if !errors.Is(errs[0], errDisk) || !errors.Is(errs[1], errDisk) {
					t.Fatalf("want the commit error for both, got %v and %v", errs[0], errs[1])
				}
				if getErr != nil {
					t.Fatalf("token after two failed commits: %v", getErr)
				}
			}
			if n := len(log.with(store.ErrNotFound)); n != 0 {
				t.Fatalf("%d not-found answers, want none: no refusal saw a committed state", n)
			}
		})
	}
}

// TestNondeterministicFailureReevaluates: a function that breaks the rule
// and fails on a re-run at an earlier position than a refusal removes the
// prefix that refusal was evaluated against, so the refusal is evaluated
// again after the commit instead of being answered from a state that never
// committed.
func TestNondeterministicFailureReevaluates(t *testing.T) {
	s, _ := openTest(t, Options{})
	release, blocked := blockCommitter(t, s)
	errFlaky, errLast := errors.New("flaky on re-run"), errors.New("always fails")
	var flakyRuns, lastRuns int
	fns := []func(*bbolt.Tx) error{
		func(*bbolt.Tx) error { // succeeds once, then fails
			flakyRuns++
			if flakyRuns > 1 {
				return errFlaky
			}
			return nil
		},
		func(*bbolt.Tx) error { return nil },
		func(*bbolt.Tx) error { lastRuns++; return errLast },
	}
	errs := make([]error, len(fns))
	var wg sync.WaitGroup
	for i, fn := range fns {
		// Queue in order, so the batch is [flaky, ok, last].
		wg.Go(func() { errs[i] = s.w.do(context.Background(), fn) })
		waitQueued(t, s, i+1)
	}
	release()
	if err := <-blocked; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if !errors.Is(errs[0], errFlaky) || errs[1] != nil || !errors.Is(errs[2], errLast) {
		t.Fatalf("got %v, %v, %v", errs[0], errs[1], errs[2])
	}
	if lastRuns != 2 {
		t.Fatalf("the refused function ran %d times, want 2 (once more after the commit)", lastRuns)
	}
}
