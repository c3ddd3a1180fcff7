package bolt_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/store/bolt"
	"github.com/tokenbroker/tokenbroker/store/storetest"
)

func TestRecordCountsAndCommitObserver(t *testing.T) {
	var batches, writes int
	s, err := bolt.Open(filepath.Join(t.TempDir(), "tb.db"), bolt.Options{OnCommit: func(batch int, took time.Duration) {
		// Called on the committer goroutine only; Close waits for it, so
		// reading the totals after Close is ordered after every call.
		batches++
		writes += batch
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	counts, err := s.RecordCounts()
	if err != nil {
		t.Fatal(err)
	}
	if counts[bolt.CountApplicationTokens] != 0 {
		t.Fatalf("fresh store counts %v", counts)
	}
	if err := s.CreateRole(ctx, storetest.NewRole(storetest.RoleID(1))); err != nil {
		t.Fatal(err)
	}
	org, first := storetest.NewOrganization(), storetest.NewToken(storetest.ClientID(1), storetest.RoleID(1))
	if err := s.Bootstrap(ctx, org, first); err != nil {
		t.Fatal(err)
	}
	counts, err = s.RecordCounts()
	if err != nil {
		t.Fatal(err)
	}
	if counts[bolt.CountApplicationTokens] != 1 || counts[bolt.CountAuthTokens] != 0 || counts[bolt.CountPulsarTokens] != 0 {
		t.Fatalf("after bootstrap counts %v, want one application token", counts)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if batches == 0 || writes < batches {
		t.Fatalf("observer saw %d batches of %d writes", batches, writes)
	}
}
