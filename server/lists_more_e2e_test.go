package server_test

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	gproto "google.golang.org/protobuf/proto"

	tbv1 "github.com/tokenbroker/tokenbroker/gen/tokenbroker/v1"
	"github.com/tokenbroker/tokenbroker/server/policy"
	"github.com/tokenbroker/tokenbroker/server/servertest"
	"github.com/tokenbroker/tokenbroker/store"
)

// Roles, tenants and a tenant's namespace statistics page like every other
// list: more than one internal page (1000 items) is answered whole over
// REST and in bounded pages over gRPC.

// wantGRPCBadPaging: a negative page_size and a page token this list did
// not return are InvalidArgument naming the field.
func wantGRPCBadPaging(t *testing.T, what string, call func(size int32, token string) error) {
	t.Helper()
	for _, c := range []struct {
		size  int32
		token string
		field string
	}{{-1, "", "pageSize"}, {0, "nonsense", "pageToken"}, {0, "c1.QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB", "pageToken"}} {
		err := call(c.size, c.token)
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), c.field) {
			t.Errorf("%s (page_size %d, page_token %q) = %v, want InvalidArgument naming %s", what, c.size, c.token, err, c.field)
		}
	}
}

// wantAtMost: a page holds at most the page_size asked for (0: the
// default of 1000).
func wantAtMost(t *testing.T, n int, size int32) {
	t.Helper()
	if limit := cmp.Or(int(size), 1000); n > limit {
		t.Errorf("a page of %d items, page_size %d", n, size)
	}
}

// TestListRolesStreamsAndPages: roles with large policies (about 5 KB
// each), enough that one message holding them all would pass grpc's 4 MiB
// receive limit: an unpaged gRPC ListRoles answers a page cut near 1 MiB
// with a token; the pages hold every role in ID order; REST without paging
// answers the bare array of them all, and with paging the same roles.
func TestListRolesStreamsAndPages(t *testing.T) {
	env := servertest.Start(t)
	org := policy.OrgDRN(env.OrgID)
	var resources []string
	for i := range 30 {
		resources = append(resources, fmt.Sprintf("%s:db:%s:keyspace:keyspace_%03d", org, uuid.NewString(), i))
	}
	big, err := env.Tokens.CreateRole(env.GRPCCtx(env.AdminToken), &tbv1.CreateRoleRequest{Name: "big-role",
		Policy: &tbv1.Policy{Description: strings.Repeat("d", 1024), Resources: resources, Actions: policy.Actions()[:40], Effect: "allow"}})
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	seedStore(t, env, func(ctx context.Context, s store.Store) {
		proto, err := s.GetRole(ctx, big.GetRole().GetId())
		if err != nil {
			t.Fatal(err)
		}
		parallel(t, seeded, func(i int) error {
			r := proto
			r.ID, r.Name = uuid.NewString(), fmt.Sprintf("big-role-%05d", i)
			return s.CreateRole(ctx, r)
		})
		all, err := s.ListRoles(ctx)
		if err != nil {
			t.Fatal(err)
		}
		total = len(all)
	})
	if size := gproto.Size(&tbv1.ListRolesResponse{Roles: slices.Repeat([]*tbv1.Role{big.GetRole()}, total)}); size <= 4<<20 {
		t.Fatalf("the whole list encodes to %d bytes; the test needs more than grpc's 4 MiB", size)
	}

	resp, err := env.Tokens.ListRoles(env.GRPCCtx(env.AdminToken), &tbv1.ListRolesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if size := gproto.Size(resp); resp.GetNextPageToken() == "" || size > 1<<20+4096 {
		t.Fatalf("unpaged ListRoles: %d roles, %d bytes, next %q; want a page cut near 1 MiB", len(resp.GetRoles()), size, resp.GetNextPageToken())
	}
	page := func(size int32) func(token string) ([]string, string, error) {
		return func(token string) ([]string, string, error) {
			resp, err := env.Tokens.ListRoles(env.GRPCCtx(env.AdminToken), &tbv1.ListRolesRequest{PageSize: size, PageToken: token})
			var ids []string
			for _, r := range resp.GetRoles() {
				ids = append(ids, r.GetId())
			}
			wantAtMost(t, len(ids), size)
			return ids, resp.GetNextPageToken(), err
		}
	}
	all := grpcWalk(t, total, true, page(0))
	if !slices.IsSorted(all) {
		t.Error("gRPC pages are not in role ID order")
	}
	if got := grpcWalk(t, total, true, page(150)); !slices.Equal(got, all) {
		t.Errorf("gRPC pages of 150 (%d) differ from the default pages (%d)", len(got), len(all))
	}
	l := restList{path: "/v2/organizations/roles", field: "roles", bare: true, key: "ID"}
	if got := getUnpaged(t, env, l, ""); !slices.Equal(got, all) {
		t.Errorf("REST list (%d) differs from the gRPC pages (%d)", len(got), len(all))
	}
	if got := walkREST(t, env, l, "", 300); !slices.Equal(got, all) {
		t.Errorf("REST pages (%d) differ from the list (%d)", len(got), len(all))
	}
	wantBadPaging(t, env, l, nil)
	wantGRPCBadPaging(t, "ListRoles", func(size int32, token string) error {
		_, err := env.Tokens.ListRoles(env.GRPCCtx(env.AdminToken), &tbv1.ListRolesRequest{PageSize: size, PageToken: token})
		return err
	})
}

// TestListTenantsStreamsAndPages: more tenants than one internal page are
// listed whole over REST (Astra's bare array) and in pages over gRPC, in
// name order; names that extend one another keep their bytewise order.
func TestListTenantsStreamsAndPages(t *testing.T) {
	env := servertest.Start(t)
	peCreateTenant(t, env, "paged", "")
	seedStore(t, env, func(ctx context.Context, s store.Store) {
		proto, err := s.GetTenant(ctx, "paged")
		if err != nil {
			t.Fatal(err)
		}
		parallel(t, seeded, func(i int) error {
			tn := proto
			tn.Name = fmt.Sprintf("paged%d", i) // "paged1" < "paged10" < "paged100" < "paged11"
			return s.CreateTenant(ctx, tn)
		})
	})
	page := func(size int32) func(token string) ([]string, string, error) {
		return func(token string) ([]string, string, error) {
			resp, err := env.Pulsar.ListTenants(env.GRPCCtx(env.AdminToken), &tbv1.ListTenantsRequest{PageSize: size, PageToken: token})
			var names []string
			for _, tn := range resp.GetTenants() {
				names = append(names, tn.GetTenantName())
			}
			wantAtMost(t, len(names), size)
			return names, resp.GetNextPageToken(), err
		}
	}
	all := grpcWalk(t, seeded+1, false, page(0))
	if !slices.IsSorted(all) {
		t.Error("gRPC pages are not in name order")
	}
	if got := grpcWalk(t, seeded+1, true, page(200)); !slices.Equal(got, all) {
		t.Errorf("gRPC pages of 200 (%d) differ from the default pages (%d)", len(got), len(all))
	}
	l := restList{path: peTenantsPath, field: "tenants", bare: true, key: "tenantName"}
	if got := getUnpaged(t, env, l, ""); !slices.Equal(got, all) {
		t.Errorf("REST list (%d) differs from the gRPC pages (%d)", len(got), len(all))
	}
	if got := walkREST(t, env, l, "", 400); !slices.Equal(got, all) {
		t.Errorf("REST pages (%d) differ from the list (%d)", len(got), len(all))
	}
	wantBadPaging(t, env, l, nil)
	wantGRPCBadPaging(t, "ListTenants", func(size int32, token string) error {
		_, err := env.Pulsar.ListTenants(env.GRPCCtx(env.AdminToken), &tbv1.ListTenantsRequest{PageSize: size, PageToken: token})
		return err
	})
}

// TestNamespaceStatsStreamsAndPages: a tenant with more namespaces than
// one internal page: both REST paths answer Astra's object of every
// namespace, keyed "tenant/namespace" in namespace order, to the admin and
// to the tenant's own Pulsar token (each page authenticates it again);
// gRPC answers pages; one namespace is found among names that sort right
// next to it, and a name between two reported ones is 404.
func TestNamespaceStatsStreamsAndPages(t *testing.T) {
	env := servertest.Start(t)
	const tenant = "billing"
	_, jwt := peCreateTenant(t, env, tenant, "")
	neighbours := []string{"a", "a-", "a.", "a0", "aA", "a_", "b", "A", "Z", "ns-0"}
	var stats []*tbv1.NamespaceStats
	for i := range seeded {
		stats = append(stats, &tbv1.NamespaceStats{Tenant: tenant, Namespace: fmt.Sprintf("ns-%05d", i), MessagesIn: int64(i)})
	}
	for _, ns := range neighbours {
		stats = append(stats, &tbv1.NamespaceStats{Tenant: tenant, Namespace: ns})
	}
	// Reports of 100: one report is one store transaction, and etcd's
	// default bounds one to 128 operations.
	for len(stats) > 0 {
		n := min(len(stats), 100)
		if _, err := env.Pulsar.ReportNamespaceStats(env.GRPCCtx(env.AdminToken), &tbv1.ReportNamespaceStatsRequest{Stats: stats[:n]}); err != nil {
			t.Fatal(err)
		}
		stats = stats[n:]
	}
	total := seeded + len(neighbours)

	page := func(size int32) func(token string) ([]string, string, error) {
		return func(token string) ([]string, string, error) {
			resp, err := env.Pulsar.GetNamespaceStats(env.GRPCCtx(jwt), &tbv1.GetNamespaceStatsRequest{Tenant: tenant, PageSize: size, PageToken: token})
			var names []string
			for name, u := range resp.GetNamespaces() {
				if u.GetName() != name {
					t.Fatalf("usage %q under key %q", u.GetName(), name)
				}
				names = append(names, name)
			}
			slices.Sort(names) // a map: the page's order is the key order
			wantAtMost(t, len(names), size)
			return names, resp.GetNextPageToken(), err
		}
	}
	all := grpcWalk(t, total, false, page(0))
	if !slices.IsSorted(all) {
		t.Error("gRPC pages are not in namespace order")
	}
	if got := grpcWalk(t, total, true, page(250)); !slices.Equal(got, all) {
		t.Errorf("gRPC pages of 250 (%d) differ from the default pages (%d)", len(got), len(all))
	}
	for _, path := range []string{"/v2/stats/namespaces/" + tenant, "/admin/v2/stats/namespaces/" + tenant} {
		l := restList{path: path, field: "namespaces", bare: true, keyed: true, key: "name", errBody: "reason"}
		if got := getUnpaged(t, env, l, ""); !slices.Equal(got, all) {
			t.Errorf("GET %s (%d) differs from the gRPC pages (%d)", path, len(got), len(all))
		}
		code, raw := auBilling(t, env, path, jwt)
		if got := itemKeys(t, l, "GET "+path+" with the tenant's Pulsar token", raw); code != http.StatusOK || !slices.Equal(got, all) {
			t.Errorf("GET %s with the tenant's Pulsar token: %d, %d namespaces; want %d", path, code, len(got), len(all))
		}
		if got := walkREST(t, env, l, "", 500); !slices.Equal(got, all) {
			t.Errorf("REST pages of %s (%d) differ from the list (%d)", path, len(got), len(all))
		}
		wantBadPaging(t, env, l, nil)
	}
	wantGRPCBadPaging(t, "GetNamespaceStats", func(size int32, token string) error {
		_, err := env.Pulsar.GetNamespaceStats(env.GRPCCtx(env.AdminToken), &tbv1.GetNamespaceStatsRequest{Tenant: tenant, PageSize: size, PageToken: token})
		return err
	})

	for _, ns := range neighbours {
		resp, err := env.Pulsar.GetNamespaceStats(env.GRPCCtx(env.AdminToken), &tbv1.GetNamespaceStatsRequest{Tenant: tenant, Namespace: ns})
		if _, ok := resp.GetNamespaces()[tenant+"/"+ns]; err != nil || len(resp.GetNamespaces()) != 1 || !ok || resp.GetNextPageToken() != "" {
			t.Errorf("namespace %q: %v, %v; want it alone", ns, resp, err)
		}
	}
	for _, ns := range []string{"a1", "a-0", "ns-", "ns-0000", "B"} { // between reported names
		_, err := env.Pulsar.GetNamespaceStats(env.GRPCCtx(env.AdminToken), &tbv1.GetNamespaceStatsRequest{Tenant: tenant, Namespace: ns})
		if status.Code(err) != codes.NotFound {
			t.Errorf("namespace %q (not reported): %v, want NotFound", ns, err)
		}
	}
}
