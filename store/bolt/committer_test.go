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
