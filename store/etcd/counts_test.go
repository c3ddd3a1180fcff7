package etcd_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/store/etcd"
	"github.com/tokenbroker/tokenbroker/store/storetest"
)

// TestRecordCountsAndCommitObserver: the counts follow the records of this
// prefix only (a neighbouring prefix is not counted), and every group
// commit reaches the observer.
func TestRecordCountsAndCommitObserver(t *testing.T) {
	var mu sync.Mutex
	var batches, writes int
	s := openTemp(t, etcd.Options{OnCommit: func(batch int, took time.Duration) {
		mu.Lock()
		batches++
		writes += batch
		mu.Unlock()
	}})
	neighbour := openTemp(t, etcd.Options{})
	ctx := context.Background()
	counts, err := s.RecordCounts()
	if err != nil {
		t.Fatal(err)
	}
	if counts[etcd.CountApplicationTokens] != 0 || counts[etcd.CountUsers] != 0 {
		t.Fatalf("fresh store counts %v", counts)
	}
	for _, st := range []*etcd.Store{s, neighbour} {
		if err := st.CreateRole(ctx, storetest.NewRole(storetest.RoleID(1))); err != nil {
			t.Fatal(err)
		}
		if err := st.Bootstrap(ctx, storetest.NewOrganization(), storetest.NewToken(storetest.ClientID(1), storetest.RoleID(1))); err != nil {
			t.Fatal(err)
		}
	}
	for i := 2; i <= 3; i++ {
		if err := s.CreateToken(ctx, storetest.NewToken(storetest.ClientID(i), storetest.RoleID(1))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateUser(ctx, storetest.NewUser(storetest.UserID(1), "ann", storetest.RoleID(1))); err != nil {
		t.Fatal(err)
	}
	counts, err = s.RecordCounts()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{etcd.CountApplicationTokens: 3, etcd.CountAuthTokens: 0, etcd.CountPulsarTokens: 0, etcd.CountUsers: 1}
	for kind, n := range want {
		if counts[kind] != n {
			t.Errorf("%s: %d, want %d (all: %v)", kind, counts[kind], n, counts)
		}
	}
	// The observer runs after a batch is answered; Close waits for the
	// committer, so the totals are complete after it.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if batches == 0 || writes < 5 {
		t.Errorf("observer saw %d batches of %d writes, want at least 5 writes", batches, writes)
	}
}
