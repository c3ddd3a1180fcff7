package server_test

import (
	"context"
	"testing"

	tbv1 "github.com/tokenbroker/tokenbroker/gen/tokenbroker/v1"
	"github.com/tokenbroker/tokenbroker/server/policy"
	"github.com/tokenbroker/tokenbroker/server/servertest"
)

// BenchmarkCheckBackends measures the in-process credential check (the
// broker, no gRPC) on a broker over bbolt and on one over etcd, in one run:
// on etcd the check reads the local mirror, so the two should be close.
func BenchmarkCheckBackends(b *testing.B) {
	for _, backend := range []string{"bolt", "etcd"} {
		b.Run(backend, func(b *testing.B) {
			var opts []servertest.Option
			if backend == "etcd" {
				opts = append(opts, onEtcd(startEtcd(b), freshEtcdPrefix()))
			}
			env := servertest.Start(b, opts...)
			app := env.CreateToken(b, env.AdminToken, policy.RWSvcAcctID)
			login, err := env.Auth.CreateAuthToken(context.Background(),
				&tbv1.CreateAuthTokenRequest{Username: app.ClientId, Password: app.Secret})
			if err != nil {
				b.Fatal(err)
			}
			resource := policy.DatabaseDRN(env.OrgID, "db1") + ":keyspace:ks:table:t"
			for _, c := range []struct{ name, cred string }{{"AppToken", app.Token}, {"AuthToken", login.AuthToken}} {
				b.Run(c.name, func(b *testing.B) {
					br := env.Server.Broker()
					b.ReportAllocs()
					b.RunParallel(func(pb *testing.PB) {
						ctx := context.Background()
						for pb.Next() {
							res, err := br.Check(ctx, c.cred, "db-table-select", resource, "127.0.0.1")
							if err != nil || !res.Allowed {
								b.Errorf("check: %+v, %v", res, err)
								return
							}
						}
					})
				})
			}
		})
	}
}
