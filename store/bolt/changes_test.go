package bolt

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/storetest"
)

// feedLog records, in order, the committer's commits (after db.Update
// returned: committed and fsynced), the feed's calls and the answers to
// callers. Every hook runs on the committer goroutine; the mutex is for the
// test goroutine reading the log.
type feedLog struct {
	mu     sync.Mutex
	events []string
	got    []store.Change
}

func (l *feedLog) add(ev string) {
	l.mu.Lock()
	l.events = append(l.events, ev)
	l.mu.Unlock()
}

func watchFeed(t *testing.T, s *Store, failCommits *int) *feedLog {
	t.Helper()
	l := &feedLog{}
	update := s.w.update
	s.w.update = func(fn func(*bbolt.Tx) error) error {
		err := update(func(tx *bbolt.Tx) error {
			if err := fn(tx); err != nil {
				return err
			}
			if failCommits != nil && *failCommits > 0 {
				*failCommits--
				return errors.New("disk failed")
			}
			return nil
		})
		if err == nil {
			l.add("commit")
		}
		return err
	}
	s.w.onAnswer = func(error) { l.add("answer") }
	t.Cleanup(s.Subscribe(func(changes []store.Change) {
		l.mu.Lock()
		l.events = append(l.events, "feed")
		l.got = append(l.got, changes...)
		l.mu.Unlock()
	}))
	return l
}

// TestChangeFeedFiresOnCommit queues a batch in which one write is refused
// (so the transaction rolls back and re-runs without it): the feed must
// report the committed writes exactly once, nothing of the refused one or
// of the rolled-back run, after the commit and before any answer.
func TestChangeFeedFiresOnCommit(t *testing.T) {
	s, _ := openTest(t, Options{})
	ctx := context.Background()
	l := watchFeed(t, s, nil)

	release, blocked := blockCommitter(t, s)
	errs := make([]error, 3)
	roles := []store.Role{storetest.NewRole(storetest.RoleID(1)), storetest.NewRole(storetest.RoleID(1)), storetest.NewRole(storetest.RoleID(2))}
	var wg sync.WaitGroup
	for i, r := range roles {
		waitQueued(t, s, i)
		wg.Go(func() { errs[i] = s.CreateRole(ctx, r) })
	}
	waitQueued(t, s, len(roles))
	release()
	if err := <-blocked; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if errs[0] != nil || errs[2] != nil || !errors.Is(errs[1], store.ErrAlreadyExists) {
		t.Fatalf("answers %v: want nil, ErrAlreadyExists, nil", errs)
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	want := []store.Change{{Kind: store.ChangeRole, Key: storetest.RoleID(1)}, {Kind: store.ChangeRole, Key: storetest.RoleID(2)}}
	if len(l.got) != len(want) || l.got[0] != want[0] || l.got[1] != want[1] {
		t.Fatalf("feed reported %v, want %v", l.got, want)
	}
	// The blocking function's batch commits and is answered first (it
	// writes no record bucket, so no feed call); then the roles' batch.
	wantEvents := []string{"commit", "answer", "commit", "feed", "answer", "answer", "answer"}
	if !slices.Equal(l.events, wantEvents) {
		t.Fatalf("order %v, want %v (the feed after the commit, before every answer)", l.events, wantEvents)
	}
}

// TestChangeFeedSilentOnFailedCommit fails a batch's commit as a disk
// would: the writes did not happen, so the feed must report nothing.
func TestChangeFeedSilentOnFailedCommit(t *testing.T) {
	s, _ := openTest(t, Options{})
	fail := 2 // the first run and the re-evaluation
	l := watchFeed(t, s, &fail)
	if err := s.CreateRole(context.Background(), storetest.NewRole(storetest.RoleID(1))); err == nil {
		t.Fatal("create role: no error from a failed commit")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.got) != 0 {
		t.Fatalf("feed reported %v for a write that did not commit", l.got)
	}
}
