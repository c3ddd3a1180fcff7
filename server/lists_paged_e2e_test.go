package server_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	gproto "google.golang.org/protobuf/proto"

	tbv1 "github.com/tokenbroker/tokenbroker/gen/tokenbroker/v1"
	"github.com/tokenbroker/tokenbroker/server"
	"github.com/tokenbroker/tokenbroker/server/policy"
	"github.com/tokenbroker/tokenbroker/server/servertest"
	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/bolt"
	"github.com/tokenbroker/tokenbroker/store/etcd"
)

// Lists that span several internal pages (1000 items) are seeded straight
// into the stopped server's store (its bbolt file, or its etcd prefix),
// since creating a thousand users through the API costs a thousand argon2id
// hashes; the server then starts again on the same data.

const seeded = 1150 // more than one internal page

// seedTokens stores one application token per ID, each a copy of the
// admin token's record with that client ID and roles (seedStore's fn).
func seedTokens(t *testing.T, env *servertest.Env, ctx context.Context, s store.Store, ids, roles []string) {
	t.Helper()
	proto, err := s.GetToken(ctx, env.AdminClientID)
	if err != nil {
		t.Fatal(err)
	}
	parallel(t, len(ids), func(i int) error {
		tk := proto
		tk.ClientID, tk.Roles = ids[i], roles
		return s.CreateToken(ctx, tk)
	})
}

// seededIDs returns n distinct client IDs of prefix then six letters.
func seededIDs(prefix string, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = prefix + letters(i, 6)
	}
	return ids
}

// seedStore stops env, runs fn on its store, and starts env again.
func seedStore(t testing.TB, env *servertest.Env, fn func(ctx context.Context, s store.Store)) {
	t.Helper()
	env.Shutdown()
	var s store.Store
	var err error
	if env.Store == server.StoreEtcd {
		s, err = etcd.Open(t.Context(), etcd.Options{Endpoints: []string{env.EtcdEndpoint}, Prefix: env.EtcdPrefix,
			StaleAfter: servertest.EtcdStaleAfter, Logger: slog.New(slog.DiscardHandler)})
	} else {
		s, err = bolt.Open(env.DataPath, bolt.Options{})
	}
	if err != nil {
		t.Fatalf("open the store: %v", err)
	}
	fn(t.Context(), s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	env.Restart(t)
}

// parallel runs fn(i) for i in [0, n) on a few goroutines (so that the
// store's committer batches the writes) and fails on the first error.
func parallel(t *testing.T, n int, fn func(i int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	jobs := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range jobs {
				if err := fn(i); err != nil {
					errs <- err
				}
			}
		})
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// restList describes a REST list route for the checks below.
type restList struct {
	path  string // with any query string the caller needs ("" none)
	field string // the array's member in a paged answer
	bare  bool   // an unpaged answer is a bare array (or object, keyed)
	key   string // the item member that identifies it
	// keyed: the collection is an object of the items by their key (a
	// map field), not an array.
	keyed bool
	// errBody is the member of the path's error body ("errors", the /v2
	// body, when empty).
	errBody string
	// members: the exact members of an unpaged object answer.
	members []string
}

func (l restList) url(query string) string {
	if query == "" {
		return l.path
	}
	return l.path + "?" + query
}

// keysOf returns the identifying member of each item.
func keysOf(t *testing.T, l restList, items []json.RawMessage) []string {
	t.Helper()
	out := make([]string, 0, len(items))
	for _, raw := range items {
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("item is not an object: %.200s", raw)
		}
		s, ok := m[l.key].(string)
		if !ok {
			t.Fatalf("item lacks %q: %.200s", l.key, raw)
		}
		out = append(out, s)
	}
	return out
}

// itemKeys returns the keys of a list's collection, in the order sent: an
// array of items, or (keyed) an object of items by key, each item's key
// member equal to its key.
func itemKeys(t *testing.T, l restList, what string, raw json.RawMessage) []string {
	t.Helper()
	if !l.keyed {
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			t.Fatalf("%s: not a JSON array (%v): %.200s", what, err, raw)
		}
		return keysOf(t, l, items)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("%s: not a JSON object (%v): %.200s", what, err, raw)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		var item json.RawMessage
		if err := dec.Decode(&item); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if got := keysOf(t, l, []json.RawMessage{item}); got[0] != tok {
			t.Fatalf("%s: item %q under key %q", what, got[0], tok)
		}
		keys = append(keys, tok.(string))
	}
	return keys
}

// getUnpaged reads the list in one response, as Astra's clients do, and
// checks its shape.
func getUnpaged(t *testing.T, env *servertest.Env, l restList, query string) []string {
	t.Helper()
	code, raw, _ := env.REST(t, http.MethodGet, l.url(query), env.AdminToken, nil)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %.300s", l.url(query), code, raw)
	}
	if l.bare {
		return itemKeys(t, l, "GET "+l.url(query), raw)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		t.Fatalf("GET %s: not a JSON object (%v): %.200s", l.url(query), err, raw)
	}
	var got []string
	for k := range obj {
		got = append(got, k)
	}
	slices.Sort(got)
	if want := slices.Sorted(slices.Values(l.members)); !slices.Equal(got, want) {
		t.Fatalf("GET %s: members %v, want %v (Astra's shape)", l.url(query), got, want)
	}
	return itemKeys(t, l, "GET "+l.url(query)+" "+l.field, obj[l.field])
}

// walkREST pages with pageSize until nextPageToken is "".
func walkREST(t *testing.T, env *servertest.Env, l restList, query string, size int) []string {
	t.Helper()
	var all []string
	tok := ""
	for pages := 0; ; pages++ {
		if pages > 10000 {
			t.Fatal("paging does not end")
		}
		q := fmt.Sprintf("pageSize=%d", size)
		if query != "" {
			q = query + "&" + q
		}
		if tok != "" {
			q += "&pageToken=" + url.QueryEscape(tok)
		}
		code, raw, _ := env.REST(t, http.MethodGet, l.url(q), env.AdminToken, nil)
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d %.300s", l.url(q), code, raw)
		}
		var body map[string]json.RawMessage
		if err := json.Unmarshal(raw, &body); err != nil {
			t.Fatalf("GET %s: paged answer is not an object: %.200s", l.url(q), raw)
		}
		items, ok := body[l.field]
		if !ok {
			t.Fatalf("GET %s: no %s: %.200s", l.url(q), l.field, raw)
		}
		keys := itemKeys(t, l, "GET "+l.url(q)+" "+l.field, items)
		if len(keys) > size {
			t.Fatalf("page of %d > pageSize %d", len(keys), size)
		}
		nt, ok := body["nextPageToken"]
		if !ok {
			t.Fatalf("GET %s: a paged answer lacks nextPageToken", l.url(q))
		}
		all = append(all, keys...)
		if err := json.Unmarshal(nt, &tok); err != nil {
			t.Fatal(err)
		}
		if tok == "" {
			return all
		}
	}
}

// wantBadPaging: bad paging input is a 400 in the /v2 error body naming
// the field, as on the token list.
func wantBadPaging(t *testing.T, env *servertest.Env, l restList, extra map[string]string) {
	t.Helper()
	cases := map[string]string{
		"pageSize=-1": "pageSize", "pageSize=x": "pageSize", "pageToken=nonsense": "pageToken",
		// another list's token is not this list's
		"pageToken=c1.QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB": "pageToken",
	}
	for q, f := range extra {
		cases[q] = f
	}
	body := cmp.Or(l.errBody, "errors")
	for q, field := range cases {
		code, raw, _ := env.REST(t, http.MethodGet, l.url(q), env.AdminToken, nil)
		if code != http.StatusBadRequest || !strings.Contains(string(raw), field) || !strings.Contains(string(raw), `"`+body+`"`) {
			t.Errorf("GET %s = %d %s, want 400 naming %s in a {%q} body", l.url(q), code, raw, field, body)
		}
	}
}

// grpcWalk pages a gRPC list from an unpaged first call: the first answer
// must be a bounded page carrying next_page_token (never the whole list):
// the default of 1000 items, or fewer when cutBySize (large items).
func grpcWalk(t *testing.T, total int, cutBySize bool, page func(token string) (keys []string, next string, err error)) []string {
	t.Helper()
	first, next, err := page("")
	if err != nil {
		t.Fatal(err)
	}
	if total > 1000 && (len(first) > 1000 || next == "") {
		t.Fatalf("unpaged gRPC list: %d items, next %q; want at most the default page of 1000 and a token", len(first), next)
	}
	if total > 1000 && len(first) < 1000 && !cutBySize {
		t.Fatalf("unpaged gRPC list: %d items; want the default page of 1000", len(first))
	}
	all := first
	for pages := 0; next != ""; pages++ {
		if pages > 10000 {
			t.Fatal("gRPC paging does not end")
		}
		var keys []string
		keys, next, err = page(next)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, keys...)
	}
	if len(all) != total {
		t.Fatalf("gRPC pages hold %d items, want %d", len(all), total)
	}
	return all
}

func TestListUsersStreamsAndPages(t *testing.T) {
	env := servertest.Start(t)
	first := env.CreateUser(t, env.AdminToken, "seed-user", "seed-password-123", policy.RWUserID)
	seedStore(t, env, func(ctx context.Context, s store.Store) {
		proto, err := s.GetUser(ctx, first.GetUserId())
		if err != nil {
			t.Fatal(err)
		}
		parallel(t, seeded, func(i int) error {
			u := proto
			u.ID, u.Username = uuid.NewString(), fmt.Sprintf("user-%05d", i)
			return s.CreateUser(ctx, u)
		})
	})
	l := restList{path: "/v2/organizations/users", field: "Users", key: "Username", members: []string{"OrgID", "OrgName", "Users"}}

	grpcAll := grpcWalk(t, seeded+1, false, func(token string) ([]string, string, error) {
		resp, err := env.Auth.ListUsers(env.GRPCCtx(env.AdminToken), &tbv1.ListUsersRequest{PageToken: token})
		var keys []string
		for _, u := range resp.GetUsers() {
			keys = append(keys, u.GetUsername())
		}
		return keys, resp.GetNextPageToken(), err
	})
	if !slices.IsSorted(grpcAll) {
		t.Error("gRPC pages are not in username order")
	}
	if got := getUnpaged(t, env, l, ""); !slices.Equal(got, grpcAll) {
		t.Errorf("REST list (%d) differs from the gRPC pages (%d)", len(got), len(grpcAll))
	}
	if got := walkREST(t, env, l, "", 400); !slices.Equal(got, grpcAll) {
		t.Errorf("REST pages (%d) differ from the list (%d)", len(got), len(grpcAll))
	}
	wantBadPaging(t, env, l, nil)
}

func TestListPulsarTokensStreamsAndPages(t *testing.T) {
	env := servertest.Start(t)
	const tenant = "paged-tenant"
	peCreateTenant(t, env, tenant, "")
	seedStore(t, env, func(ctx context.Context, s store.Store) {
		list, err := s.ListPulsarTokens(ctx, tenant)
		if err != nil || len(list) != 1 {
			t.Fatalf("the tenant's first token: %d, %v", len(list), err)
		}
		proto := list[0]
		parallel(t, seeded, func(i int) error {
			tk := proto
			tk.ID = uuid.NewString()
			tk.MAC = []byte(fmt.Sprintf("%032d", i))                                 // 32 bytes, unique
			tk.IssuedAt = proto.IssuedAt.Add(-time.Duration(i%7) * time.Millisecond) // many share an instant
			return s.CreatePulsarToken(ctx, tk, 0)
		})
	})
	l := restList{path: peTenantsPath + "/" + tenant + "/tokens", field: "tokens", bare: true, key: "tokenid"}

	grpcAll := grpcWalk(t, seeded+1, false, func(token string) ([]string, string, error) {
		resp, err := env.Pulsar.ListPulsarTokens(env.GRPCCtx(env.AdminToken), &tbv1.ListPulsarTokensRequest{Tenant: tenant, PageToken: token})
		var keys []string
		for _, c := range resp.GetTokens() {
			keys = append(keys, c.GetFields()["tokenid"].GetStringValue())
		}
		return keys, resp.GetNextPageToken(), err
	})
	if got := getUnpaged(t, env, l, ""); !slices.Equal(got, grpcAll) {
		t.Errorf("REST list (%d) differs from the gRPC pages (%d)", len(got), len(grpcAll))
	}
	if got := walkREST(t, env, l, "", 300); !slices.Equal(got, grpcAll) {
		t.Errorf("REST pages (%d) differ from the list (%d)", len(got), len(grpcAll))
	}
	wantBadPaging(t, env, l, nil)
	if code, _, _ := env.REST(t, http.MethodGet, peTenantsPath+"/no-such-tenant/tokens?pageSize=5", env.AdminToken, nil); code != http.StatusNotFound {
		t.Errorf("paged list of an unknown tenant: %d, want 404", code)
	}
}

func TestListDatabasesPagesBeyondAstra(t *testing.T) {
	env := servertest.Start(t)
	const n = 40
	parallel(t, n, func(i int) error {
		_, err := env.Databases.CreateDatabase(env.GRPCCtx(env.AdminToken), &tbv1.CreateDatabaseRequest{Name: fmt.Sprintf("db-%02d", i)})
		return err
	})
	l := restList{path: "/v2/databases", field: "databases", bare: true, key: "id"}

	all := getUnpaged(t, env, l, "limit=100")
	if len(all) != n || !slices.IsSorted(all) {
		t.Fatalf("?limit=100: %d databases (sorted %v), want %d in ID order", len(all), slices.IsSorted(all), n)
	}
	if got := getUnpaged(t, env, l, ""); !slices.Equal(got, all[:25]) {
		t.Errorf("Astra's default page: %d databases, want the first 25", len(got))
	}
	if got := getUnpaged(t, env, l, "limit=10&starting_after="+all[9]); !slices.Equal(got, all[10:20]) {
		t.Errorf("Astra's limit/starting_after: %v, want %v", got, all[10:20])
	}
	if got := walkREST(t, env, l, "", 7); !slices.Equal(got, all) {
		t.Errorf("REST pages (%d) differ from the list (%d)", len(got), len(all))
	}
	if got := walkREST(t, env, l, "starting_after="+all[29], 4); !slices.Equal(got, all[30:]) {
		t.Errorf("REST pages from starting_after: %v, want %v", got, all[30:])
	}
	wantBadPaging(t, env, l, map[string]string{
		"limit=5&pageSize=5":        "limit",
		"pageToken=d1.bm90LWFuLWlk": "pageToken", // a d1 token that holds no database ID
	})

	// gRPC without paging fields: Astra's default page, with a token to go on.
	resp, err := env.Databases.ListDatabases(env.GRPCCtx(env.AdminToken), &tbv1.ListDatabasesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetDatabases()) != 25 || resp.GetNextPageToken() == "" {
		t.Fatalf("gRPC unpaged: %d databases, next %q; want 25 and a token", len(resp.GetDatabases()), resp.GetNextPageToken())
	}
	rest, err := env.Databases.ListDatabases(env.GRPCCtx(env.AdminToken), &tbv1.ListDatabasesRequest{PageToken: resp.GetNextPageToken()})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range append(resp.GetDatabases(), rest.GetDatabases()...) {
		got = append(got, d.GetId())
	}
	if !slices.Equal(got, all) || rest.GetNextPageToken() != "" {
		t.Errorf("gRPC default page then the rest: %d databases (next %q), want %d", len(got), rest.GetNextPageToken(), n)
	}
}

// TestGRPCListPageStaysFarBelowTheReceiveLimit: tokens holding 50 roles
// each encode to about 2 KB, so 1,000 of them would be about 2 MB; an
// unpaged gRPC ListTokens answers a page cut at 1 MiB with a token to go
// on (a default grpc client never meets its 4 MiB limit however many or
// large the tokens), and the pages still hold every token.
func TestGRPCListPageStaysFarBelowTheReceiveLimit(t *testing.T) {
	env := servertest.Start(t)
	org := "drn:astra:org:" + env.OrgID
	var roles []string
	for i := range 50 {
		r, err := env.Tokens.CreateRole(env.GRPCCtx(env.AdminToken), &tbv1.CreateRoleRequest{Name: fmt.Sprintf("reader-%02d", i),
			Policy: &tbv1.Policy{Resources: []string{org}, Actions: []string{"org-read"}, Effect: "allow"}})
		if err != nil {
			t.Fatal(err)
		}
		roles = append(roles, r.GetRole().GetId())
	}
	const n = 1100
	seedStore(t, env, func(ctx context.Context, s store.Store) {
		seedTokens(t, env, ctx, s, seededIDs("Seeded"+strings.Repeat("a", 12), n), roles)
	})
	resp, err := env.Tokens.ListTokens(env.GRPCCtx(env.AdminToken), &tbv1.ListTokensRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if size := gproto.Size(resp); len(resp.GetClients()) >= 1000 || resp.GetNextPageToken() == "" || size > 1<<20+4096 {
		t.Fatalf("unpaged ListTokens: %d tokens, %d bytes, next %q; want a page cut near 1 MiB", len(resp.GetClients()), size, resp.GetNextPageToken())
	}
	all := grpcWalk(t, n+1, true, func(token string) ([]string, string, error) {
		resp, err := env.Tokens.ListTokens(env.GRPCCtx(env.AdminToken), &tbv1.ListTokensRequest{PageToken: token, PageSize: 1000})
		var keys []string
		for _, c := range resp.GetClients() {
			keys = append(keys, c.GetClientId())
		}
		return keys, resp.GetNextPageToken(), err
	})
	l := restList{path: "/v2/clientIdSecrets", field: "clients", key: "clientId", members: []string{"clients"}}
	if got := getUnpaged(t, env, l, ""); !slices.Equal(got, all) {
		t.Errorf("REST list (%d) differs from the gRPC pages (%d)", len(got), len(all))
	}
}

// letters spells i in base 26 with n letters.
func letters(i, n int) string {
	b := make([]byte, n)
	for j := n - 1; j >= 0; j-- {
		b[j] = byte('a' + i%26)
		i /= 26
	}
	return string(b)
}
