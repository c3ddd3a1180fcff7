package bolt_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/bolt"
	"github.com/tokenbroker/tokenbroker/store/storetest"
)

// TestSnapshotIsConsistentUnderWrites takes a snapshot while writers
// commit, opens it as a store of its own, and finds every token whose
// write was acknowledged before the snapshot began, with indexes that
// agree with the records (a torn copy would break them).
func TestSnapshotIsConsistentUnderWrites(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTemp(t, filepath.Join(dir, "live.db"))
	if err := s.CreateRole(ctx, storetest.NewRole(storetest.RoleID(1))); err != nil {
		t.Fatal(err)
	}
	var (
		next  atomic.Int64
		acked sync.Map // client ID → struct{}
		stop  = make(chan struct{})
		wg    sync.WaitGroup
	)
	write := func() error {
		id := storetest.ClientID(int(next.Add(1)))
		if err := s.CreateToken(ctx, storetest.NewToken(id, storetest.RoleID(1))); err != nil {
			return err
		}
		acked.Store(id, struct{}{})
		return nil
	}
	for range 20 { // some data before the snapshot
		if err := write(); err != nil {
			t.Fatal(err)
		}
	}
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := write(); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	var before []string
	acked.Range(func(k, _ any) bool { before = append(before, k.(string)); return true })

	var buf bytes.Buffer
	n, err := s.Snapshot(ctx, &buf)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	if n != int64(buf.Len()) {
		t.Fatalf("Snapshot returned %d, wrote %d bytes", n, buf.Len())
	}

	path := filepath.Join(dir, "copy.db")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	cp := openTemp(t, path)
	for _, id := range before {
		if _, err := cp.GetToken(ctx, id); err != nil {
			t.Errorf("token %s acknowledged before the snapshot: %v", id, err)
		}
	}
	if err := bolt.VerifyIndexes(cp); err != nil {
		t.Errorf("indexes of the snapshot disagree with its records:\n%v", err)
	}
}

func TestSnapshotStopsWhenContextEnds(t *testing.T) {
	s := openTemp(t, filepath.Join(t.TempDir(), "live.db"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Snapshot(ctx, &bytes.Buffer{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Snapshot with a cancelled context: %v, want context.Canceled", err)
	}
	// The read transaction was released: a write still commits.
	if err := s.CreateRole(context.Background(), storetest.NewRole(storetest.RoleID(1))); err != nil {
		t.Fatal(err)
	}
}

func TestSnapshotAfterClose(t *testing.T) {
	s := openTemp(t, filepath.Join(t.TempDir(), "live.db"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Snapshot(context.Background(), &bytes.Buffer{}); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Snapshot after Close: %v, want store.ErrClosed", err)
	}
}
