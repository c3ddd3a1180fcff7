package etcd_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/etcd"
	"github.com/tokenbroker/tokenbroker/store/storetest"
)

// TestReadsWaitForOwnWrites: once a write of this process is committed at
// a revision the mirror has not applied (its wait for the mirror timed
// out), reads fail closed with ErrUnavailable instead of answering from the
// older view, and succeed once the mirror reaches that revision.
func TestReadsWaitForOwnWrites(t *testing.T) {
	s := openTemp(t, etcd.Options{CallTimeout: 300 * time.Millisecond})
	ctx := context.Background()
	if err := s.CreateRole(ctx, storetest.NewRole(storetest.RoleID(1))); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateToken(ctx, storetest.NewToken(storetest.ClientID(1), storetest.RoleID(1))); err != nil {
		t.Fatal(err)
	}
	cli := rawClient(t)
	head, err := cli.Get(ctx, "/no-such-key")
	if err != nil {
		t.Fatal(err)
	}
	// A revision etcd has not reached yet: the mirror cannot have it.
	etcd.NoteWritten(s, head.Header.Revision+1)
	if _, err := s.GetToken(ctx, storetest.ClientID(1)); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("read while the mirror lacks an own write: %v, want ErrUnavailable", err)
	}
	if _, err := s.ListRoles(ctx); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("list while the mirror lacks an own write: %v, want ErrUnavailable", err)
	}
	// Another prefix's write takes etcd to that revision; the mirror
	// learns it from a progress notification and reads work again.
	if _, err := cli.Put(ctx, freshPrefix()+"x", "y"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetToken(ctx, storetest.ClientID(1)); err != nil {
		t.Fatalf("read once the mirror caught up: %v", err)
	}
}
