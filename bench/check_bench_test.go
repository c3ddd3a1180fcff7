package bench

import (
	"context"
	"testing"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	tbv1 "github.com/tokenbroker/tokenbroker/gen/tokenbroker/v1"
	"github.com/tokenbroker/tokenbroker/server/policy"
)

// checkCredentials creates what a Check needs: an application token with
// the R/W service-account role, an authorization token from logging in with
// it, and a table resource that role may read.
func (e *env) checkCredentials(b *testing.B) (appToken, authToken, resource string) {
	b.Helper()
	app, err := tbv1.NewTokenServiceClient(e.conns[0]).CreateToken(e.ctx, &tbv1.CreateTokenRequest{Roles: []string{policy.RWSvcAcctID}})
	if err != nil {
		b.Fatal(err)
	}
	login, err := tbv1.NewAuthServiceClient(e.conns[0]).CreateAuthToken(context.Background(),
		&tbv1.CreateAuthTokenRequest{Username: app.ClientId, Password: app.Secret})
	if err != nil {
		b.Fatal(err)
	}
	return app.Token, login.AuthToken, policy.DatabaseDRN(e.srv.Broker().Org().ID, "db1") + ":keyspace:ks:table:t"
}

// BenchmarkCheck measures the credential-check hot path: in process (the
// broker alone, no gRPC) and over loopback gRPC at 64 concurrent callers,
// next to the same server's empty handler as the baseline.
func BenchmarkCheck(b *testing.B) {
	e := start(b)
	app, authToken, resource := e.checkCredentials(b)
	creds := map[string]string{"AppToken": app, "AuthToken": authToken}

	for name, cred := range creds {
		b.Run("InProcess/"+name, func(b *testing.B) {
			br := e.srv.Broker()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					res, err := br.Check(ctx, cred, "db-table-select", resource, "127.0.0.1")
					if err != nil || !res.Allowed {
						b.Errorf("check: %+v, %v", res, err)
						return
					}
				}
			})
		})
	}
	b.Run("GRPC/EmptyHandler", func(b *testing.B) {
		e.run(b, func(ctx context.Context, conn *grpc.ClientConn) error {
			_, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
			return err
		})
	})
	for name, cred := range creds {
		b.Run("GRPC/"+name, func(b *testing.B) {
			req := &tbv1.CheckRequest{Credential: cred, Action: "db-table-select", Resource: resource}
			e.run(b, func(ctx context.Context, conn *grpc.ClientConn) error {
				res, err := tbv1.NewAuthServiceClient(conn).Check(ctx, req)
				if err == nil && !res.Allowed {
					b.Errorf("denied: %v", res)
				}
				return err
			})
		})
	}
}
