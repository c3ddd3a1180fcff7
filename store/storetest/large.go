package storetest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/store"
)

// Cascades larger than one etcd transaction holds (128 operations by
// default): a backend may split them into a crash-safe sequence, but the
// outcome must be the same as for small ones, and the audit event is
// recorded once, with the delete.

const manyDependents = 150

func testDeleteTokenCascadeMany(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustCreateRoles(t, s, RoleID(1))
	a, b := NewToken(ClientID(1), RoleID(1)), NewToken(ClientID(2), RoleID(1))
	createTokens(t, s, []store.Token{a, b})
	var ofA []store.AuthToken
	for i := range manyDependents {
		ofA = append(ofA, NewAuthToken(i, store.PrincipalApplicationToken, a.ClientID))
	}
	other := NewAuthToken(manyDependents, store.PrincipalApplicationToken, b.ClientID)
	createAuthTokens(t, s, append(ofA, other))

	ev := NewAuditEvent("TokenService.DeleteToken", "token", a.ClientID)
	must(t, s.DeleteToken(store.WithAudit(ctx, &ev), a.ClientID), "delete token")
	if _, err := s.GetToken(ctx, a.ClientID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetToken after delete: %v, want ErrNotFound", err)
	}
	for _, at := range ofA {
		wantNoAuthToken(t, s, at.MAC)
	}
	wantAuthToken(t, s, other)
	wantAuditEvents(t, s, []store.AuditEvent{ev})
	n, err := s.DeleteIdleAuthTokens(ctx, Base)
	must(t, err, "delete idle auth tokens")
	if n != 1 {
		t.Fatalf("DeleteIdleAuthTokens removed %d, want 1 (the survivor)", n)
	}
}

func testDeleteUserCascadeMany(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustCreateRoles(t, s, RoleID(1))
	u := NewUser(UserID(1), Username(1), RoleID(1))
	must(t, s.CreateUser(ctx, u), "create user")
	var toks []store.AuthToken
	for i := range manyDependents {
		toks = append(toks, NewAuthToken(i, store.PrincipalUser, u.ID))
	}
	createAuthTokens(t, s, toks)
	must(t, s.DeleteUser(ctx, u.ID), "delete user")
	if _, err := s.GetUser(ctx, u.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetUser after delete: %v, want ErrNotFound", err)
	}
	for _, at := range toks {
		wantNoAuthToken(t, s, at.MAC)
	}
}

func testDeleteTenantCascadeMany(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := TenantName(1)
	mustCreateTenants(t, s, a)
	var toks []store.PulsarToken
	for i := range manyDependents {
		tk := NewPulsarToken(i, a)
		tk.IssuedAt = Base.Add(time.Duration(i) * time.Second)
		toks = append(toks, tk)
	}
	createPulsarTokens(t, s, toks)
	must(t, s.DeleteTenant(ctx, a), "delete tenant")
	wantNoTenant(t, s, a)
	for _, tk := range toks {
		wantNoPulsarToken(t, s, tk.ID, tk.MAC)
	}
	if list, err := s.ListPulsarTokens(ctx, a); err != nil || len(list) != 0 {
		t.Fatalf("ListPulsarTokens after delete: %d tokens, %v", len(list), err)
	}
}

// testRecordUseMany records use times for more records than one etcd
// transaction holds.
func testRecordUseMany(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustCreateRoles(t, s, RoleID(1))
	var toks []store.Token
	used := map[string]time.Time{}
	for i := range manyDependents {
		tk := NewToken(ClientID(i), RoleID(1))
		toks = append(toks, tk)
		used[tk.ClientID] = Base.Add(time.Duration(i+1) * time.Minute)
	}
	createTokens(t, s, toks)
	must(t, s.RecordTokenUse(ctx, used), "record token use")
	for id, when := range used {
		got, err := s.GetToken(ctx, id)
		must(t, err, "get token")
		if !got.LastUsed.Equal(when) {
			t.Fatalf("token %s LastUsed = %v, want %v", id, got.LastUsed, when)
		}
	}
}

// maxStatsReport is the largest namespace-statistics report the API
// accepts (docs/pulsar.md), stored by one PutNamespaceStats call.
const maxStatsReport = 1000

// testPutNamespaceStatsMany: a report of maxStatsReport namespaces over
// many tenants (so that both its puts and its tenant checks outnumber one
// etcd transaction's operations) is stored whole. A report as large with
// one unknown tenant, placed last in key order, writes nothing: tenants
// are checked before anything is put.
func testPutNamespaceStatsMany(t *testing.T, s store.Store) {
	ctx := t.Context()
	const tenants = 500
	names := make([]string, tenants)
	for i := range names {
		names[i] = TenantName(i)
	}
	createTenants(t, s, names)
	var report []store.NamespaceStats
	of := map[string][]store.NamespaceStats{}
	for i := range maxStatsReport {
		n := NewNamespaceStats(names[i%tenants], fmt.Sprintf("ns-%04d", i))
		n.MessagesIn = int64(i)
		report = append(report, n)
		of[n.Tenant] = append(of[n.Tenant], n)
	}
	rand.Shuffle(len(report), func(i, j int) { report[i], report[j] = report[j], report[i] })
	ev := NewAuditEvent("PulsarTokenService.ReportNamespaceStats", "tenant", "*")
	must(t, s.PutNamespaceStats(store.WithAudit(ctx, &ev), report), "put a report of 1,000 namespaces")
	wantAuditEvents(t, s, []store.AuditEvent{ev}) // once, however many transactions
	for _, tenant := range names {
		slices.SortFunc(of[tenant], byNamespace)
		wantNamespaceStats(t, s, tenant, of[tenant])
	}

	// The same report with every snapshot changed and one entry of an
	// unknown tenant ("zz…" sorts after every TenantName).
	changed := make([]store.NamespaceStats, 0, len(report))
	for _, n := range report[1:] {
		changed = append(changed, changedNamespaceStats(n))
	}
	changed = append(changed, NewNamespaceStats("zz-unknown", "ns"))
	wantErr(t, s.PutNamespaceStats(ctx, changed), store.ErrNotFound, "put a report of 1,000 namespaces with an unknown tenant")
	for _, tenant := range names {
		wantNamespaceStats(t, s, tenant, of[tenant])
	}
}

// createTenants creates NewTenant(name) for each name, concurrently
// (createConcurrently).
func createTenants(t *testing.T, s store.Store, names []string) {
	t.Helper()
	createConcurrently(t, names, func(name string) string { return "tenant " + name },
		func(name string) error { return s.CreateTenant(t.Context(), NewTenant(name)) })
}

// testRecordAuthTokenUseMany records use times for more auth tokens than
// one etcd transaction holds (each is a record and the two keys of its
// auth_tokens_by_use entry), then collects the idle ones by those times.
func testRecordAuthTokenUseMany(t *testing.T, s store.Store) {
	ctx := t.Context()
	client, _ := principals(t, s)
	var toks []store.AuthToken
	used := map[string]time.Time{}
	for i := range manyDependents {
		at := NewAuthToken(i, store.PrincipalApplicationToken, client)
		toks = append(toks, at)
		used[string(at.MAC)] = Base.Add(time.Duration(i+1) * time.Minute)
	}
	createAuthTokens(t, s, toks)
	must(t, s.RecordAuthTokenUse(ctx, used), "record auth token use")
	for i := range toks {
		toks[i].LastUsed = used[string(toks[i].MAC)]
		wantAuthToken(t, s, toks[i])
	}
	half := Base.Add(time.Duration(manyDependents/2) * time.Minute)
	n, err := s.DeleteIdleAuthTokens(ctx, half)
	must(t, err, "delete idle auth tokens")
	if n != manyDependents/2 {
		t.Fatalf("DeleteIdleAuthTokens removed %d, want %d", n, manyDependents/2)
	}
}

// testRecordDatabaseUsageMany records usage of more databases and months
// than one etcd transaction holds, twice: every count lands once, and the
// totals stay the sums of the months.
func testRecordDatabaseUsageMany(t *testing.T, s store.Store) {
	ctx := t.Context()
	const dbs = 100
	months := []string{"2030-01", "2030-02"}
	var deltas []store.UsageDelta
	for i := range dbs {
		id := mustCreateDatabase(t, s, i).ID
		for j, m := range months {
			deltas = append(deltas, store.UsageDelta{DatabaseID: id, Month: m,
				Usage: store.Usage{Reads: int64(i + 1), Writes: int64(j + 1), LastUsage: Base}})
		}
	}
	must(t, s.RecordDatabaseUsage(ctx, deltas), "record database usage")
	must(t, s.RecordDatabaseUsage(ctx, deltas), "record database usage again")
	for i := range dbs {
		id := DatabaseID(i)
		for j, m := range months {
			wantUsage(t, s, id, m, store.Usage{Reads: 2 * int64(i+1), Writes: 2 * int64(j+1), LastUsage: Base})
		}
		wantTotals(t, s, id, store.Usage{Reads: 4 * int64(i+1), Writes: 6, LastUsage: Base})
	}
}

// testConcurrentPutNamespaceStatsAndDeleteTenant: reports as large as the
// API allows race deletes of some of their tenants. Whatever the order, no
// snapshot outlives its tenant; a report either succeeds or fails with
// ErrNotFound (a tenant it names was deleted); and every namespace of a
// tenant that stays holds one of the snapshots put for it, whole.
func testConcurrentPutNamespaceStatsAndDeleteTenant(t *testing.T, s store.Store) {
	ctx := t.Context()
	const tenants, reports = 40, 4
	names := make([]string, tenants)
	for i := range names {
		names[i] = TenantName(i)
	}
	createTenants(t, s, names)
	deleted := map[string]bool{}
	for i := 0; i < tenants; i += 8 {
		deleted[names[i]] = true
	}
	report := func(r int) []store.NamespaceStats {
		out := make([]store.NamespaceStats, maxStatsReport)
		for i := range out {
			n := NewNamespaceStats(names[i%tenants], fmt.Sprintf("ns-%04d", i))
			n.MessagesIn, n.MessagesOut = int64(r), int64(r) // one report's values, whole
			out[i] = n
		}
		return out
	}
	var wg sync.WaitGroup
	for r := range reports {
		wg.Go(func() {
			if err := s.PutNamespaceStats(ctx, report(r)); err != nil && !errors.Is(err, store.ErrNotFound) {
				t.Errorf("report %d: %v", r, err)
			}
		})
	}
	for name := range deleted {
		wg.Go(func() {
			if err := s.DeleteTenant(ctx, name); err != nil {
				t.Errorf("delete tenant %s: %v", name, err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for _, name := range names {
		got, err := s.ListNamespaceStats(ctx, name)
		must(t, err, "list namespace stats of "+name)
		if deleted[name] {
			if len(got) != 0 {
				t.Fatalf("deleted tenant %s still has %d namespace snapshots", name, len(got))
			}
			continue
		}
		for _, n := range got {
			want := NewNamespaceStats(name, n.Namespace)
			want.MessagesIn, want.MessagesOut = n.MessagesIn, n.MessagesIn
			if n.MessagesIn < 0 || n.MessagesIn >= reports || !sameNamespaceStats(n, want) {
				t.Fatalf("tenant %s namespace %s holds %+v, not one report's snapshot", name, n.Namespace, n)
			}
		}
	}
	// Reporting again, without the deleted tenants, stores every namespace.
	var rest []store.NamespaceStats
	for _, n := range report(0) {
		if !deleted[n.Tenant] {
			rest = append(rest, n)
		}
	}
	must(t, s.PutNamespaceStats(ctx, rest), "report again")
	for _, name := range names {
		if deleted[name] {
			continue
		}
		got, err := s.ListNamespaceStats(ctx, name)
		must(t, err, "list namespace stats of "+name)
		if len(got) != maxStatsReport/tenants {
			t.Fatalf("tenant %s has %d namespaces after the full report, want %d", name, len(got), maxStatsReport/tenants)
		}
	}
}

// testAppendLargeAuditEvents appends more events, each with every string
// field at its largest, than one etcd request's bytes hold: all are
// recorded, in order.
func testAppendLargeAuditEvents(t *testing.T, s store.Store) {
	ctx := t.Context()
	events := auditEvents(0, 300)
	fill := strings.Repeat("x", 1024-len("target-0000"))
	for i := range events {
		e := &events[i]
		e.RequestID, e.ActorKind, e.ActorID = strings.Repeat("r", 1024), strings.Repeat("k", 1024), strings.Repeat("a", 1024)
		e.Action, e.TargetKind, e.TargetID = strings.Repeat("c", 1024), strings.Repeat("t", 1024), e.TargetID+fill
		e.Outcome, e.Detail = strings.Repeat("o", 1024), strings.Repeat("d", 1024)
	}
	must(t, s.AppendAuditEvents(ctx, events), "append 300 audit events of 8 KiB")
	wantAuditEvents(t, s, events)
}
