package bolt

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/internal/kvrecords"
	"github.com/tokenbroker/tokenbroker/store/storetest"
)

// Buckets that only grow at their right edge are packed to their
// fillPercent by the committer's transactions (the path every write takes),
// not split half empty at bbolt's default 50%.
func TestAppendedBucketsArePacked(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "fill.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	role := storetest.RoleID(1)
	if err := s.CreateRole(ctx, storetest.NewRole(role)); err != nil {
		t.Fatal(err)
	}
	// Ascending client IDs and expiries, created in rounds of concurrent
	// writers so that commits carry many creates each, as they do when
	// served, and every round's keys follow the previous round's. Then
	// auth tokens of those principals, logged in at ascending times (their
	// MACs, the other buckets' keys, are random).
	const tokens, writers = 2000, 16
	inRounds(t, tokens, writers, func(i int) error {
		tok := storetest.NewToken(storetest.ClientID(i), role)
		tok.Expiry = storetest.Base.Add(time.Duration(i) * time.Second)
		ev := &store.AuditEvent{Action: "TokenService.CreateToken", TargetKind: "token", TargetID: tok.ClientID, Outcome: "success"}
		return s.CreateToken(store.WithAudit(ctx, ev), tok)
	})
	inRounds(t, tokens, writers, func(i int) error {
		at := storetest.NewAuthToken(i, store.PrincipalApplicationToken, storetest.ClientID(i))
		at.CreatedAt = storetest.Base.Add(time.Duration(i) * time.Second)
		at.LastUsed = at.CreatedAt
		return s.CreateAuthToken(ctx, at)
	})
	// The buckets this test fills, named here rather than taken from
	// fillPercent so that dropping one from fillPercent fails the test.
	packed := map[string]float64{
		string(kvrecords.BucketAudit):          1.0,
		string(kvrecords.BucketTokens):         0.9,
		string(kvrecords.BucketTokensByRole):   0.9,
		string(kvrecords.BucketTokensByExpiry): 0.9,
		string(kvrecords.BucketAuthByUse):      0.9,
	}
	err = s.db.View(func(tx *bbolt.Tx) error {
		for name, want := range packed {
			st := tx.Bucket([]byte(name)).Stats()
			if st.LeafPageN < 10 {
				t.Errorf("%s: %d leaf pages; the test needs more records", name, st.LeafPageN)
				continue
			}
			// The last page of each bucket is partly filled, and a round
			// split over two commits lands a little left of the edge: allow
			// 15 points below the target (the default split gives ~50%).
			if got := float64(st.LeafInuse) / float64(st.LeafAlloc); got < want-0.15 {
				t.Errorf("%s: leaf pages %.0f%% full (%d pages), want about %.0f%%", name, 100*got, st.LeafPageN, 100*want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// inRounds runs write(i) for i in [0, n), in rounds of `writers`
// concurrent calls, each round after the previous one has returned.
func inRounds(t *testing.T, n, writers int, write func(i int) error) {
	t.Helper()
	for round := 0; round < n; round += writers {
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for i := round; i < min(round+writers, n); i++ {
			wg.Go(func() { errs <- write(i) })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
}
