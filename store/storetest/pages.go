package storetest

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/store"
)

// walkPages pages through a list with page(after, limit) until the cursor
// is the zero value, checking each page's size, and returns the keys seen
// in order. between (if not nil) runs after each page with its cursor.
func walkPages[C comparable, T any](t *testing.T, what string, limit int, key func(T) string,
	page func(after C, limit int) ([]T, C, error), between func(next C)) []string {
	t.Helper()
	var (
		zero, after C
		seen        []string
	)
	for pages := 0; ; pages++ {
		if pages > 10000 {
			t.Fatalf("%s: paging never ends", what)
		}
		items, next, err := page(after, limit)
		must(t, err, what)
		if len(items) > limit {
			t.Fatalf("%s: page of %d, limit %d", what, len(items), limit)
		}
		for _, it := range items {
			seen = append(seen, key(it))
		}
		if next == zero {
			return seen
		}
		if len(items) == 0 {
			t.Fatalf("%s: empty page with a cursor", what)
		}
		if between != nil {
			between(next)
		}
		after = next
	}
}

func joined(keys []string) string { return strings.Join(keys, ",") }

// wantPages walks a list with each limit and checks that the pages hold
// want, in order.
func wantPages[C comparable, T any](t *testing.T, what string, want []string, limits []int, key func(T) string,
	page func(after C, limit int) ([]T, C, error)) {
	t.Helper()
	for _, limit := range limits {
		if got := walkPages(t, what, limit, key, page, nil); joined(got) != joined(want) {
			t.Fatalf("%s, limit %d: paged %v\nwant %v", what, limit, got, want)
		}
	}
}

// checkKeyedPages checks a list paged by its records' own keys, holding
// the records want names, in order: walks with limits that do and do not
// divide the count visit each once; the default limit (100) returns them
// all as whole records (stored reports whether one is as stored); and
// deleting the record a cursor names (del) does not lose the place.
func checkKeyedPages[T any](t *testing.T, what string, want []string, key func(T) string,
	page func(after string, limit int) ([]T, string, error), stored func(T) bool, del func(key string) error) {
	t.Helper()
	wantPages(t, "list "+what+" page", want, []int{1, 4, len(want), 100}, key, page)
	all, next, err := page("", 0)
	must(t, err, "list "+what+" page with the default limit")
	if len(all) != len(want) || next != "" {
		t.Fatalf("%s, default limit: %d, next %q; want %d", what, len(all), next, len(want))
	}
	for _, rec := range all {
		if !stored(rec) {
			t.Fatalf("%s: listed %+v, not as stored", what, rec)
		}
	}
	deleted := false
	got := walkPages(t, "list "+what+" page under delete", 3, key, page, func(next string) {
		if !deleted {
			deleted = true
			must(t, del(next), "delete the cursor's record")
		}
	})
	if joined(got) != joined(want) { // the cursor's record was already listed
		t.Fatalf("%s: paging across a deleted cursor: %v\nwant %v", what, got, want)
	}
}

// testListUsersPage: pages in username order (not ID order) visit every
// user once, for limits that do and do not divide the count; a deleted
// cursor user still resumes after its name; the default limit is 100.
func testListUsersPage(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustCreateRoles(t, s, RoleID(1))
	const n = 23
	for _, i := range rand.Perm(n) {
		must(t, s.CreateUser(ctx, NewUser(UserID(n-i), Username(i), RoleID(1))), "create user")
	}
	all, err := s.ListUsers(ctx)
	must(t, err, "list users")
	want := make([]string, len(all))
	for i, u := range all {
		want[i] = u.Username
	}
	name := func(u store.User) string { return u.Username }
	page := func(after string, limit int) ([]store.User, string, error) { return s.ListUsersPage(ctx, after, limit) }
	for _, limit := range []int{1, 5, 23, 100} {
		if got := walkPages(t, "list users page", limit, name, page, nil); joined(got) != joined(want) {
			t.Fatalf("limit %d: paged %v\nwant %v", limit, got, want)
		}
	}
	first, _, err := s.ListUsersPage(ctx, "", 1)
	must(t, err, "first user page")
	if len(first) != 1 || !sameUser(first[0], all[0]) {
		t.Fatalf("first page %+v, want the whole record %+v", first, all[0])
	}
	// Deleting the user a cursor names does not lose the place.
	deleted := false
	got := walkPages(t, "list users page under delete", 4, name, page, func(next string) {
		if !deleted {
			deleted = true
			u, err := s.GetUserByName(ctx, next)
			must(t, err, "get cursor user")
			must(t, s.DeleteUser(ctx, u.ID), "delete cursor user")
		}
	})
	if joined(got) != joined(want) { // the cursor user was already listed
		t.Fatalf("paging across a deleted cursor user: %v\nwant %v", got, want)
	}
}

// testListPulsarTokensPage: paging a tenant's tokens follows the order of
// ListPulsarTokens (IssuedAt then ID, times before 1970 and equal times
// included), never strays into a tenant whose name extends this one's, and
// resumes after a deleted cursor token.
func testListPulsarTokensPage(t *testing.T, s store.Store) {
	ctx := t.Context()
	t1, t10 := TenantName(1), TenantName(1)+"0"
	if toks, next, err := s.ListPulsarTokensPage(ctx, t1, store.PulsarTokenPosition{}, 10); err != nil || len(toks) != 0 || !next.IsZero() {
		t.Fatalf("unknown tenant: %d tokens, next %+v, %v", len(toks), next, err)
	}
	mustCreateTenants(t, s, t1, t10)
	issued := []time.Time{
		Base.Add(time.Hour), Base, Base.Add(-time.Hour), Base, Base.Add(time.Microsecond),
		time.Date(1969, time.July, 20, 20, 17, 0, 0, time.UTC), Base.Add(time.Hour),
		time.Date(2100, time.January, 1, 0, 0, 0, 0, time.UTC), Base, Base, Base.Add(time.Nanosecond * 1000),
	}
	var all []store.PulsarToken
	for i, at := range issued {
		tk := NewPulsarToken(len(issued)-i, t1)
		tk.IssuedAt = at
		other := NewPulsarToken(100+i, t10)
		other.IssuedAt = at
		all = append(all, tk, other)
	}
	createPulsarTokens(t, s, all)
	want := func(tenant string) []string {
		list, err := s.ListPulsarTokens(ctx, tenant)
		must(t, err, "list Pulsar tokens")
		if !slices.IsSortedFunc(list, func(a, b store.PulsarToken) int {
			return cmp.Or(a.IssuedAt.Compare(b.IssuedAt), cmp.Compare(a.ID, b.ID))
		}) {
			t.Fatal("ListPulsarTokens is not in (IssuedAt, ID) order")
		}
		out := make([]string, len(list))
		for i, tk := range list {
			out[i] = tk.ID
		}
		return out
	}
	id := func(tk store.PulsarToken) string { return tk.ID }
	for _, tenant := range []string{t1, t10} {
		page := func(after store.PulsarTokenPosition, limit int) ([]store.PulsarToken, store.PulsarTokenPosition, error) {
			return s.ListPulsarTokensPage(ctx, tenant, after, limit)
		}
		w := want(tenant)
		if len(w) != len(issued) {
			t.Fatalf("tenant %s lists %d tokens, want %d", tenant, len(w), len(issued))
		}
		for _, limit := range []int{1, 3, len(issued), 100} {
			if got := walkPages(t, "list Pulsar tokens page", limit, id, page, nil); joined(got) != joined(w) {
				t.Fatalf("tenant %s limit %d: paged %v\nwant %v", tenant, limit, got, w)
			}
		}
	}
	w := want(t1)
	page := func(after store.PulsarTokenPosition, limit int) ([]store.PulsarToken, store.PulsarTokenPosition, error) {
		return s.ListPulsarTokensPage(ctx, t1, after, limit)
	}
	deleted := false
	got := walkPages(t, "list Pulsar tokens page under delete", 2, id, page, func(next store.PulsarTokenPosition) {
		if !deleted {
			deleted = true
			must(t, s.DeletePulsarToken(ctx, next.ID), "delete cursor token")
		}
	})
	if joined(got) != joined(w) {
		t.Fatalf("paging across a deleted cursor token: %v\nwant %v", got, w)
	}
}

// testListDatabasesPage: pages in ID order (whatever the creation times)
// visit every database once and carry whole records.
func testListDatabasesPage(t *testing.T, s store.Store) {
	ctx := t.Context()
	const n = 13
	byID := map[string]store.Database{}
	var want []string
	for _, i := range rand.Perm(n) {
		db := NewDatabase(i + 1)
		db.CreatedAt = Base.Add(time.Duration(-i) * time.Minute) // creation order is not ID order
		must(t, s.CreateDatabase(ctx, db, NewDatabaseRole(i+1), NewDatabaseToken(i+1)), "create database")
		byID[db.ID] = db
		want = append(want, db.ID)
	}
	slices.Sort(want)
	id := func(db store.Database) string { return db.ID }
	page := func(after string, limit int) ([]store.Database, string, error) {
		return s.ListDatabasesPage(ctx, after, limit)
	}
	wantPages(t, "list databases page", want, []int{1, 4, n, 100}, id, page)
	first, next, err := s.ListDatabasesPage(ctx, "", 0)
	must(t, err, "list databases page with the default limit")
	if len(first) != n || next != "" {
		t.Fatalf("default limit: %d databases, next %q", len(first), next)
	}
	for _, db := range first {
		if !sameDatabase(db, byID[db.ID]) {
			t.Fatalf("listed %+v, stored %+v", db, byID[db.ID])
		}
	}
	if got, next, err := s.ListDatabasesPage(ctx, want[n-1], 5); err != nil || len(got) != 0 || next != "" {
		t.Fatalf("after the last ID: %d databases, next %q, %v", len(got), next, err)
	}
}

// testListTenantsPage: pages in name order visit every tenant once, as
// whole records, including tenants whose names extend one another's; a
// deleted cursor tenant still resumes after its name.
func testListTenantsPage(t *testing.T, s store.Store) {
	ctx := t.Context()
	if got, next, err := s.ListTenantsPage(ctx, "", 10); err != nil || len(got) != 0 || next != "" {
		t.Fatalf("no tenants: %d, next %q, %v", len(got), next, err)
	}
	const n = 11
	var want []string
	for _, i := range rand.Perm(n) {
		name := TenantName(i)
		if i%3 == 0 {
			name += "0" // "tenant-0003" < "tenant-00030" < "tenant-0004"
		}
		mustCreateTenants(t, s, name)
		want = append(want, name)
	}
	slices.Sort(want)
	checkKeyedPages(t, "tenants", want, func(tn store.Tenant) string { return tn.Name },
		func(after string, limit int) ([]store.Tenant, string, error) {
			return s.ListTenantsPage(ctx, after, limit)
		},
		func(tn store.Tenant) bool { return sameTenant(tn, NewTenant(tn.Name)) },
		func(name string) error { return s.DeleteTenant(ctx, name) })
}

// testListNamespaceStatsPage: paging a tenant's statistics follows the
// order of ListNamespaceStats, never strays into a tenant whose name
// extends this one's, carries whole records, and resumes after a cursor
// namespace that is no longer there.
func testListNamespaceStatsPage(t *testing.T, s store.Store) {
	ctx := t.Context()
	t1, t10 := TenantName(1), TenantName(1)+"0"
	if got, next, err := s.ListNamespaceStatsPage(ctx, t1, "", 10); err != nil || len(got) != 0 || next != "" {
		t.Fatalf("unknown tenant: %d, next %q, %v", len(got), next, err)
	}
	mustCreateTenants(t, s, t1, t10)
	names := []string{"default", "Default", "alpha-1", "alpha.1", "alpha_1", "alpha", "0", "zz", "b"}
	var put []store.NamespaceStats
	for i, ns := range names {
		n := NewNamespaceStats(t1, ns)
		n.MessagesIn = int64(i)
		put = append(put, n, NewNamespaceStats(t10, ns+"-other"))
	}
	must(t, s.PutNamespaceStats(ctx, put), "put namespace stats")
	for _, tenant := range []string{t1, t10} {
		all, err := s.ListNamespaceStats(ctx, tenant)
		must(t, err, "list namespace stats")
		want := make([]string, len(all))
		for i, n := range all {
			want[i] = n.Namespace
		}
		ns := func(n store.NamespaceStats) string { return n.Namespace }
		page := func(after string, limit int) ([]store.NamespaceStats, string, error) {
			return s.ListNamespaceStatsPage(ctx, tenant, after, limit)
		}
		wantPages(t, "list namespace stats page of "+tenant, want, []int{1, 4, len(names), 100}, ns, page)
		first, _, err := s.ListNamespaceStatsPage(ctx, tenant, "", 0)
		must(t, err, "list namespace stats page with the default limit")
		for i := range first {
			if !sameNamespaceStats(first[i], all[i]) {
				t.Fatalf("page[%d] %+v, listed %+v", i, first[i], all[i])
			}
		}
	}
	// A cursor namespace need not exist (statistics of a deleted and
	// recreated tenant, or a name between two stored ones).
	got, next, err := s.ListNamespaceStatsPage(ctx, t1, "alpha-0", 2)
	must(t, err, "list after a namespace that is not there")
	if len(got) != 2 || got[0].Namespace != "alpha-1" || got[1].Namespace != "alpha.1" || next != "alpha.1" {
		t.Fatalf("after %q: %v, next %q; want alpha-1, alpha.1", "alpha-0", got, next)
	}
}

// testListRolesPage: pages in ID order visit every role once, as whole
// records, whatever the creation order; a deleted cursor role still
// resumes after its ID.
func testListRolesPage(t *testing.T, s store.Store) {
	ctx := t.Context()
	if got, next, err := s.ListRolesPage(ctx, "", 10); err != nil || len(got) != 0 || next != "" {
		t.Fatalf("no roles: %d, next %q, %v", len(got), next, err)
	}
	const n = 17
	var want []string
	for _, i := range rand.Perm(n) {
		mustCreateRoles(t, s, RoleID(i+1))
		want = append(want, RoleID(i+1))
	}
	slices.Sort(want)
	checkKeyedPages(t, "roles", want, func(r store.Role) string { return r.ID },
		func(after string, limit int) ([]store.Role, string, error) { return s.ListRolesPage(ctx, after, limit) },
		func(r store.Role) bool { return sameRole(r, NewRole(r.ID)) },
		func(id string) error { return s.DeleteRole(ctx, id, Base) })
}
