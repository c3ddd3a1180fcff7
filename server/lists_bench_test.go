package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/google/uuid"

	tbv1 "github.com/tokenbroker/tokenbroker/gen/tokenbroker/v1"
	"github.com/tokenbroker/tokenbroker/server/servertest"
	"github.com/tokenbroker/tokenbroker/store"
)

// BenchmarkSmallLists reads the role list, the tenant list and a tenant's
// namespace statistics at a small and a large count: the whole list over
// REST (Astra's answer), and an unpaged gRPC call. It uses only calls that
// also existed before these lists were paged, so the same file measures
// both versions (docs/performance.md).
func BenchmarkSmallLists(b *testing.B) {
	for _, n := range []int{10, 2500} {
		env := servertest.Start(b)
		const tenant = "bench"
		code, raw, _ := env.REST(b, http.MethodPost, "/v2/streaming/tenants", env.AdminToken, map[string]any{"tenantName": tenant, "clusterName": "c"})
		if code != http.StatusOK {
			b.Fatalf("create tenant: %d %s", code, raw)
		}
		role, err := env.Tokens.CreateRole(env.GRPCCtx(env.AdminToken), &tbv1.CreateRoleRequest{Name: "bench-role",
			Policy: &tbv1.Policy{Resources: []string{"drn:astra:org:" + env.OrgID}, Actions: []string{"org-read"}, Effect: "allow"}})
		if err != nil {
			b.Fatal(err)
		}
		seedStore(b, env, func(ctx context.Context, s store.Store) {
			r, err := s.GetRole(ctx, role.GetRole().GetId())
			if err != nil {
				b.Fatal(err)
			}
			tn, err := s.GetTenant(ctx, tenant)
			if err != nil {
				b.Fatal(err)
			}
			for i := range n - 1 {
				r.ID, r.Name = uuid.NewString(), fmt.Sprintf("bench-role-%05d", i)
				tn.Name = fmt.Sprintf("bench-%05d", i)
				if err := s.CreateRole(ctx, r); err != nil {
					b.Fatal(err)
				}
				if err := s.CreateTenant(ctx, tn); err != nil {
					b.Fatal(err)
				}
			}
		})
		var stats []*tbv1.NamespaceStats
		for i := range n {
			stats = append(stats, &tbv1.NamespaceStats{Tenant: tenant, Namespace: fmt.Sprintf("ns-%05d", i), MessagesIn: int64(i)})
		}
		for len(stats) > 0 {
			k := min(len(stats), 100)
			if _, err := env.Pulsar.ReportNamespaceStats(env.GRPCCtx(env.AdminToken), &tbv1.ReportNamespaceStatsRequest{Stats: stats[:k]}); err != nil {
				b.Fatal(err)
			}
			stats = stats[k:]
		}
		ctx := env.GRPCCtx(env.AdminToken)
		for _, c := range []struct {
			name string
			rest string
			grpc func() error
		}{
			{"roles", "/v2/organizations/roles", func() error { _, err := env.Tokens.ListRoles(ctx, &tbv1.ListRolesRequest{}); return err }},
			{"tenants", "/v2/streaming/tenants", func() error { _, err := env.Pulsar.ListTenants(ctx, &tbv1.ListTenantsRequest{}); return err }},
			{"stats", "/v2/stats/namespaces/" + tenant, func() error {
				_, err := env.Pulsar.GetNamespaceStats(ctx, &tbv1.GetNamespaceStatsRequest{Tenant: tenant})
				return err
			}},
		} {
			b.Run(fmt.Sprintf("%s/n=%d/REST", c.name, n), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					req := env.NewRequest(b, http.MethodGet, c.rest, env.AdminToken, nil)
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					nb, _ := io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Fatalf("GET %s: %d", c.rest, resp.StatusCode)
					}
					b.SetBytes(nb)
				}
			})
			b.Run(fmt.Sprintf("%s/n=%d/gRPC", c.name, n), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if err := c.grpc(); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
