package bolt

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/storetest"
)

func countNamespaceStats(t *testing.T, s *Store) int {
	t.Helper()
	var n int
	if err := s.db.View(func(tx *bbolt.Tx) error {
		n = tx.Bucket(bucketNamespaceStats).Stats().KeyN
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRejectsInvalidNamespaceStats: snapshots that cannot be stored
// faithfully, or would break the key layout, are refused with a plain
// error (no sentinel), and nothing of the call is written, not even its
// valid snapshots.
func TestRejectsInvalidNamespaceStats(t *testing.T) {
	s, _ := openTest(t, Options{})
	ctx := context.Background()
	tenant := storetest.TenantName(1)
	if err := s.CreateTenant(ctx, storetest.NewTenant(tenant)); err != nil {
		t.Fatal(err)
	}
	put := func(edit func(*store.NamespaceStats)) error {
		n := storetest.NewNamespaceStats(tenant, "bad")
		edit(&n)
		return s.PutNamespaceStats(ctx, []store.NamespaceStats{storetest.NewNamespaceStats(tenant, "good"), n})
	}
	cases := map[string]error{
		"empty namespace":              put(func(n *store.NamespaceStats) { n.Namespace = "" }),
		"namespace of 129 bytes":       put(func(n *store.NamespaceStats) { n.Namespace = strings.Repeat("n", 129) }),
		"tenant/namespace form":        put(func(n *store.NamespaceStats) { n.Namespace = tenant + "/ns" }),
		"space in namespace":           put(func(n *store.NamespaceStats) { n.Namespace = "a b" }),
		"NUL in namespace":             put(func(n *store.NamespaceStats) { n.Namespace = "a\x00b" }),
		"non-ASCII namespace":          put(func(n *store.NamespaceStats) { n.Namespace = "nämespace" }),
		"empty tenant":                 put(func(n *store.NamespaceStats) { n.Tenant = "" }),
		"NUL in tenant":                put(func(n *store.NamespaceStats) { n.Tenant = tenant + "\x00x" }),
		"zero UpdatedAt":               put(func(n *store.NamespaceStats) { n.UpdatedAt = time.Time{} }),
		"UpdatedAt beyond 9999":        put(func(n *store.NamespaceStats) { n.UpdatedAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }),
		"NaN MsgRateIn":                put(func(n *store.NamespaceStats) { n.MsgRateIn = math.NaN() }),
		"infinite MsgRateOut":          put(func(n *store.NamespaceStats) { n.MsgRateOut = math.Inf(1) }),
		"negative ThroughputIn":        put(func(n *store.NamespaceStats) { n.ThroughputIn = -0.5 }),
		"-infinite ThroughputOut":      put(func(n *store.NamespaceStats) { n.ThroughputOut = math.Inf(-1) }),
		"negative MessagesIn":          put(func(n *store.NamespaceStats) { n.MessagesIn = -1 }),
		"negative MessagesOut":         put(func(n *store.NamespaceStats) { n.MessagesOut = -1 }),
		"negative BytesIn":             put(func(n *store.NamespaceStats) { n.BytesIn = -1 }),
		"negative BytesOut":            put(func(n *store.NamespaceStats) { n.BytesOut = -1 }),
		"negative Subscriptions":       put(func(n *store.NamespaceStats) { n.Subscriptions = -1 }),
		"negative Producers":           put(func(n *store.NamespaceStats) { n.Producers = -1 }),
		"negative Consumers":           put(func(n *store.NamespaceStats) { n.Consumers = -1 }),
		"negative SubscriptionDelayed": put(func(n *store.NamespaceStats) { n.SubscriptionDelayed = -1 }),
		"negative StorageSize":         put(func(n *store.NamespaceStats) { n.StorageSize = math.MinInt64 }),
		"negative BacklogBytes":        put(func(n *store.NamespaceStats) { n.BacklogBytes = -1 }),
		"negative BacklogMessages":     put(func(n *store.NamespaceStats) { n.BacklogMessages = -1 }),
	}
	for name, err := range cases {
		switch {
		case err == nil:
			t.Errorf("%s: accepted", name)
		case errors.Is(err, store.ErrNotFound):
			t.Errorf("%s: got %v, want a plain error", name, err)
		}
	}
	if n := countNamespaceStats(t, s); n != 0 {
		t.Fatalf("refused calls left %d namespace stats, want 0", n)
	}

	// Everything Pulsar allows (within this backend's character set) is
	// fine, and so are zero counters and the largest values.
	var ok []store.NamespaceStats
	for _, ns := range []string{strings.Repeat("n", maxNamespaceLen), "Public_NS.v2-x", "0"} {
		ok = append(ok, storetest.NewNamespaceStats(tenant, ns))
	}
	ok = append(ok, store.NamespaceStats{Tenant: tenant, Namespace: "zero", UpdatedAt: storetest.Base})
	big := storetest.NewNamespaceStats(tenant, "big")
	big.MessagesIn, big.MsgRateIn = math.MaxInt64, math.MaxFloat64
	ok = append(ok, big)
	if err := s.PutNamespaceStats(ctx, ok); err != nil {
		t.Fatal(err)
	}
	got, err := s.ListNamespaceStats(ctx, tenant)
	if err != nil || len(got) != len(ok) {
		t.Fatalf("ListNamespaceStats = %d stats, %v; want %d", len(got), err, len(ok))
	}
	for _, n := range got {
		if n.Namespace == "big" && (n.MessagesIn != math.MaxInt64 || n.MsgRateIn != math.MaxFloat64) {
			t.Errorf("largest values came back as %d, %v", n.MessagesIn, n.MsgRateIn)
		}
	}

	// A name that is no tenant name lists nothing, even where its bytes
	// would prefix this tenant's keys.
	for _, name := range []string{"", tenant + "\x00", "\x00", tenant + "\x00" + "0"} {
		if got, err := s.ListNamespaceStats(ctx, name); err != nil || len(got) != 0 {
			t.Errorf("ListNamespaceStats(%q) = %v, %v; want none", name, got, err)
		}
	}
	if err := VerifyIndexes(s); err != nil {
		t.Fatal(err)
	}
}

// TestPutNamespaceStatsLastWins documents the choice: several snapshots of
// the same namespace in one call are not an error; the last one is stored,
// as if they had been put one after the other.
func TestPutNamespaceStatsLastWins(t *testing.T) {
	s, _ := openTest(t, Options{})
	ctx := context.Background()
	tenant := storetest.TenantName(1)
	if err := s.CreateTenant(ctx, storetest.NewTenant(tenant)); err != nil {
		t.Fatal(err)
	}
	first := storetest.NewNamespaceStats(tenant, "ns")
	last := first
	last.MessagesIn, last.UpdatedAt = 7, first.UpdatedAt.Add(-time.Hour) // last, not latest
	other := storetest.NewNamespaceStats(tenant, "other")
	if err := s.PutNamespaceStats(ctx, []store.NamespaceStats{first, other, last}); err != nil {
		t.Fatal(err)
	}
	got, err := s.ListNamespaceStats(ctx, tenant)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].MessagesIn != 7 || !got[0].UpdatedAt.Equal(last.UpdatedAt) || got[1].Namespace != "other" {
		t.Fatalf("ListNamespaceStats = %+v, want the last snapshot of ns, then other", got)
	}
	if err := VerifyIndexes(s); err != nil {
		t.Fatal(err)
	}
}

// TestCreateTenantDropsLeftoverNamespaceStats: snapshots left under a
// tenant's name without the tenant (a DeleteTenant run by a binary from
// before namespace_stats) are dropped when a tenant of that name is
// created, so it does not inherit them; other tenants' stay.
func TestCreateTenantDropsLeftoverNamespaceStats(t *testing.T) {
	s, _ := openTest(t, Options{})
	ctx := context.Background()
	a, a0 := storetest.TenantName(1), storetest.TenantName(1)+"0"
	if err := s.CreateTenant(ctx, storetest.NewTenant(a0)); err != nil {
		t.Fatal(err)
	}
	kept := storetest.NewNamespaceStats(a0, "ns")
	if err := s.PutNamespaceStats(ctx, []store.NamespaceStats{kept}); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Update(func(tx *bbolt.Tx) error {
		val, err := encodeNamespaceStats(storetest.NewNamespaceStats(a, "leftover"))
		if err != nil {
			return err
		}
		return tx.Bucket(bucketNamespaceStats).Put(namespaceStatsKey(a, "leftover"), val)
	}); err != nil {
		t.Fatal(err)
	}
	if err := VerifyIndexes(s); err == nil {
		t.Fatal("VerifyIndexes accepted namespace stats of a missing tenant")
	}
	if err := s.CreateTenant(ctx, storetest.NewTenant(a)); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ListNamespaceStats(ctx, a); err != nil || len(got) != 0 {
		t.Fatalf("re-created tenant lists %+v, %v; want none", got, err)
	}
	if got, err := s.ListNamespaceStats(ctx, a0); err != nil || len(got) != 1 || got[0].Namespace != kept.Namespace {
		t.Fatalf("other tenant lists %+v, %v; want its one snapshot", got, err)
	}
	if err := VerifyIndexes(s); err != nil {
		t.Fatal(err)
	}
}
