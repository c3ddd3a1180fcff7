package storetest

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/store"
)

// wantNamespaceStats checks that tenant lists exactly want, in that order,
// as whole records.
func wantNamespaceStats(t *testing.T, s store.Store, tenant string, want []store.NamespaceStats) {
	t.Helper()
	got, err := s.ListNamespaceStats(t.Context(), tenant)
	must(t, err, "list namespace stats of "+tenant)
	names := func(stats []store.NamespaceStats) (out []string) {
		for _, n := range stats {
			out = append(out, n.Namespace)
		}
		return out
	}
	if !slices.Equal(names(got), names(want)) {
		t.Fatalf("ListNamespaceStats(%s) namespaces:\n got %q\nwant %q", tenant, names(got), names(want))
	}
	for i := range got {
		if !sameNamespaceStats(got[i], want[i]) {
			t.Fatalf("ListNamespaceStats(%s)[%d]:\n got %+v\nwant %+v", tenant, i, got[i], want[i])
		}
	}
}

// byNamespace is the order of ListNamespaceStats: by namespace, bytewise.
func byNamespace(a, b store.NamespaceStats) int {
	return cmp.Compare(a.Namespace, b.Namespace)
}

// changedNamespaceStats returns n with every field but the tenant and the
// namespace changed, and UpdatedAt an hour later.
func changedNamespaceStats(n store.NamespaceStats) store.NamespaceStats {
	n.MessagesIn, n.MessagesOut, n.BytesIn, n.BytesOut = 2001, 2002, 2003, 2004
	n.MsgRateIn, n.MsgRateOut, n.ThroughputIn, n.ThroughputOut = 1.5, 2.5, 3.5, 4.5
	n.Subscriptions, n.Producers, n.Consumers, n.SubscriptionDelayed = 15, 16, 17, 18
	n.StorageSize, n.BacklogBytes, n.BacklogMessages = 2009, 2010, 2011
	n.UpdatedAt = n.UpdatedAt.Add(time.Hour)
	return n
}

// testNamespaceStatsPutAndList: a tenant's snapshots come ordered by
// namespace (bytewise) whatever the order they were put in; tenants whose
// names prefix one another never mix; an unknown tenant, and a tenant
// without snapshots, list none; a later call adds to the earlier ones.
func testNamespaceStatsPutAndList(t *testing.T, s store.Store) {
	ctx := t.Context()
	wantNamespaceStats(t, s, TenantName(1), nil)
	must(t, s.PutNamespaceStats(ctx, nil), "put no namespace stats")

	// "tenant-0001" is a prefix of "tenant-00010": the lists must not mix.
	t1, t10, t2 := TenantName(1), TenantName(1)+"0", TenantName(2)
	mustCreateTenants(t, s, t1, t10, t2)
	names := []string{"default", "Default", "alpha-1", "alpha.1", "alpha_1", "alpha", "0", "zz", "b"}
	var mine, theirs []store.NamespaceStats
	for i, ns := range names {
		n := NewNamespaceStats(t1, ns)
		n.MessagesIn, n.UpdatedAt = int64(i), Base.Add(time.Duration(i)*time.Second)
		mine = append(mine, n)
		o := NewNamespaceStats(t10, ns)
		o.MessagesIn = int64(100 + i)
		theirs = append(theirs, o)
	}
	all := append(slices.Clone(mine), theirs...)
	rand.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	must(t, s.PutNamespaceStats(ctx, all), "put namespace stats")

	slices.SortFunc(mine, byNamespace)
	slices.SortFunc(theirs, byNamespace)
	wantNamespaceStats(t, s, t1, mine)
	wantNamespaceStats(t, s, t10, theirs)
	wantNamespaceStats(t, s, t2, nil)

	// Namespaces a later call does not name stay as they were.
	extra := NewNamespaceStats(t1, "beta")
	must(t, s.PutNamespaceStats(ctx, []store.NamespaceStats{extra}), "put one more namespace")
	mine = append(mine, extra)
	slices.SortFunc(mine, byNamespace)
	wantNamespaceStats(t, s, t1, mine)
	wantNamespaceStats(t, s, t10, theirs)
}

// testNamespaceStatsReplace: a second snapshot of a namespace replaces the
// first whole (every field, zero values included: nothing is merged), and
// leaves the tenant's other namespaces alone.
func testNamespaceStatsReplace(t *testing.T, s store.Store) {
	ctx := t.Context()
	t1 := TenantName(1)
	mustCreateTenants(t, s, t1)
	first, other := NewNamespaceStats(t1, "ns"), NewNamespaceStats(t1, "other")
	must(t, s.PutNamespaceStats(ctx, []store.NamespaceStats{first, other}), "put namespace stats")
	wantNamespaceStats(t, s, t1, []store.NamespaceStats{first, other})

	second := changedNamespaceStats(first)
	must(t, s.PutNamespaceStats(ctx, []store.NamespaceStats{second}), "replace namespace stats")
	wantNamespaceStats(t, s, t1, []store.NamespaceStats{second, other})

	// An all-zero snapshot (a restarted data plane) replaces it too.
	zero := store.NamespaceStats{Tenant: t1, Namespace: "ns", UpdatedAt: second.UpdatedAt.Add(time.Hour)}
	must(t, s.PutNamespaceStats(ctx, []store.NamespaceStats{zero}), "replace namespace stats with zeros")
	wantNamespaceStats(t, s, t1, []store.NamespaceStats{zero, other})
}

// testPutNamespaceStatsUnknownTenant: one snapshot of an unknown tenant
// fails the whole call with ErrNotFound, and none of it is written, neither
// the new namespaces nor the replacements of the valid entries.
func testPutNamespaceStatsUnknownTenant(t *testing.T, s store.Store) {
	ctx := t.Context()
	t1, t2 := TenantName(1), TenantName(2)
	mustCreateTenants(t, s, t1)
	kept := NewNamespaceStats(t1, "kept")
	must(t, s.PutNamespaceStats(ctx, []store.NamespaceStats{kept}), "put namespace stats")

	replacement := changedNamespaceStats(kept)
	batch := []store.NamespaceStats{
		NewNamespaceStats(t1, "a"), replacement, NewNamespaceStats(t2, "b"), NewNamespaceStats(t1, "z"),
	}
	wantErr(t, s.PutNamespaceStats(ctx, batch), store.ErrNotFound, "put namespace stats with an unknown tenant")
	wantNamespaceStats(t, s, t1, []store.NamespaceStats{kept})
	wantNamespaceStats(t, s, t2, nil)
	wantErr(t, s.PutNamespaceStats(ctx, batch[2:3]), store.ErrNotFound, "put namespace stats of an unknown tenant only")
	wantNamespaceStats(t, s, t2, nil)

	// Nothing half-written blocks a correct retry once the tenant exists.
	mustCreateTenants(t, s, t2)
	must(t, s.PutNamespaceStats(ctx, batch), "put namespace stats once the tenant exists")
	wantNamespaceStats(t, s, t1, []store.NamespaceStats{batch[0], replacement, batch[3]})
	wantNamespaceStats(t, s, t2, batch[2:3])
}

// testDeleteTenantRemovesNamespaceStats: deleting a tenant removes exactly
// its snapshots, not those of a tenant whose name it prefixes nor of any
// other. A deleted tenant takes no new snapshots, and a re-created one
// starts without any.
func testDeleteTenantRemovesNamespaceStats(t *testing.T, s store.Store) {
	ctx := t.Context()
	a, a0, b := TenantName(1), TenantName(1)+"0", TenantName(2)
	mustCreateTenants(t, s, a, a0, b)
	of := map[string][]store.NamespaceStats{}
	var all []store.NamespaceStats
	for _, tenant := range []string{a, a0, b} {
		for _, ns := range []string{"ns-1", "ns-2"} {
			n := NewNamespaceStats(tenant, ns)
			of[tenant] = append(of[tenant], n)
			all = append(all, n)
		}
	}
	must(t, s.PutNamespaceStats(ctx, all), "put namespace stats")
	wantNamespaceStats(t, s, a, of[a])

	must(t, s.DeleteTenant(ctx, a), "delete tenant")
	wantNoTenant(t, s, a)
	wantNamespaceStats(t, s, a, nil)
	wantNamespaceStats(t, s, a0, of[a0])
	wantNamespaceStats(t, s, b, of[b])

	again := NewNamespaceStats(a, "ns-3")
	wantErr(t, s.PutNamespaceStats(ctx, []store.NamespaceStats{again}), store.ErrNotFound,
		"put namespace stats of a deleted tenant")
	mustCreateTenants(t, s, a)
	wantNamespaceStats(t, s, a, nil)
	must(t, s.PutNamespaceStats(ctx, []store.NamespaceStats{again}), "put namespace stats of the re-created tenant")
	wantNamespaceStats(t, s, a, []store.NamespaceStats{again})
	wantNamespaceStats(t, s, a0, of[a0])
}

func testNamespaceStatsTimesUTC(t *testing.T, s store.Store) {
	ctx := t.Context()
	zone := time.FixedZone("UTC-03:30", -(3*3600 + 30*60))
	at := time.Date(2031, time.March, 4, 5, 6, 7, 123456000, zone)
	mustCreateTenants(t, s, TenantName(1))
	n := NewNamespaceStats(TenantName(1), "ns")
	n.UpdatedAt = at
	local := NewNamespaceStats(TenantName(1), "ns-local")
	local.UpdatedAt = at.Add(time.Minute).In(time.Local)
	must(t, s.PutNamespaceStats(ctx, []store.NamespaceStats{n, local}), "put namespace stats")
	got, err := s.ListNamespaceStats(ctx, TenantName(1))
	must(t, err, "list namespace stats")
	if len(got) != 2 {
		t.Fatalf("%d namespace stats, want 2", len(got))
	}
	for i, want := range []time.Time{at, at.Add(time.Minute)} {
		if u := got[i].UpdatedAt; !u.Equal(want) || u.Location() != time.UTC {
			t.Errorf("namespace %s UpdatedAt = %v (location %v), want %v in UTC", got[i].Namespace, u, u.Location(), want)
		}
	}
}

// testNamespaceStatsCopies: the store keeps neither the caller's slice nor
// the one it returns.
func testNamespaceStatsCopies(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustCreateTenants(t, s, TenantName(1))
	want := []store.NamespaceStats{NewNamespaceStats(TenantName(1), "a"), NewNamespaceStats(TenantName(1), "b")}
	in := slices.Clone(want)
	must(t, s.PutNamespaceStats(ctx, in), "put namespace stats")
	in[0].MessagesIn, in[1].Namespace = 1, "mutated"
	wantNamespaceStats(t, s, TenantName(1), want)

	got, err := s.ListNamespaceStats(ctx, TenantName(1))
	must(t, err, "list namespace stats")
	got[0].MessagesIn, got[1].Namespace = 1, "mutated"
	wantNamespaceStats(t, s, TenantName(1), want)
}
