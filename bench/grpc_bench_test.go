// Package bench holds load benchmarks that drive a real broker (gRPC server,
// interceptors, bbolt on disk) over loopback, each next to a baseline
// measured in the same run, because absolute figures on a shared 2-core
// machine are noise. bench/run.sh runs them and prints ratios.
//
// Nothing here passes or fails on time: these are benchmarks, not tests.
package bench

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	tbv1 "github.com/tokenbroker/tokenbroker/gen/tokenbroker/v1"
	"github.com/tokenbroker/tokenbroker/server"
	"github.com/tokenbroker/tokenbroker/server/policy"
)

// callers is the number of concurrent gRPC callers: GOMAXPROCS (2 here) ×
// this parallelism factor ≈ 64.
const parallelism = 32

type env struct {
	srv   *server.Server
	conns []*grpc.ClientConn
	ctx   context.Context // carries the admin bearer token
}

func start(b *testing.B) *env {
	b.Helper()
	dir := b.TempDir() // a real disk here: fsync costs are real
	srv, err := server.Start(context.Background(), server.Config{
		GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		DataPath:     filepath.Join(dir, "tb.db"),
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		BootstrapOut: io.Discard,
		// Off only to measure what metrics cost (bench/metrics-cost.sh).
		NoMetrics: os.Getenv("TOKENBROKER_BENCH_NO_METRICS") != "",
	})
	if err != nil {
		b.Fatal(err)
	}
	e := &env{srv: srv}
	// A few connections, as a pool of real clients would have; one HTTP/2
	// connection would serialize every caller on one socket.
	for range 4 {
		c, err := grpc.NewClient(srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		e.conns = append(e.conns, c)
	}
	e.ctx = metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+srv.Bootstrap().Token)
	b.Cleanup(func() {
		for _, c := range e.conns {
			c.Close()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return e
}

// run drives op from parallelism×GOMAXPROCS goroutines and reports calls/s
// and the process's CPU time per call (client and server together, since
// both are in this process): on a shared machine the rate depends on what
// CPU the process got, the CPU per call much less.
func (e *env) run(b *testing.B, op func(ctx context.Context, conn *grpc.ClientConn) error) {
	var next atomic.Uint32
	b.SetParallelism(parallelism)
	b.ResetTimer()
	cpu0 := processCPU()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		conn := e.conns[int(next.Add(1))%len(e.conns)]
		for pb.Next() {
			if err := op(e.ctx, conn); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N)/1e3, "cpu-us/call")
}

// processCPU is the user and system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkGRPC compares, on one server and at the same concurrency:
//   - EmptyHandler: grpc.health.v1 Check, a handler that does nothing, behind
//     the same interceptor chain (public rule, so no authentication);
//   - AuthenticatedRead: GetCurrentOrg with an application token: the full
//     authentication + authorization hot path, no disk write;
//   - CreateToken: a durable token creation (group-committed fsync).
func BenchmarkGRPC(b *testing.B) {
	e := start(b)
	b.Run("EmptyHandler", func(b *testing.B) {
		e.run(b, func(ctx context.Context, conn *grpc.ClientConn) error {
			_, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
			return err
		})
	})
	b.Run("AuthenticatedRead", func(b *testing.B) {
		e.run(b, func(ctx context.Context, conn *grpc.ClientConn) error {
			_, err := tbv1.NewTokenServiceClient(conn).GetCurrentOrg(ctx, &tbv1.GetCurrentOrgRequest{})
			return err
		})
	})
	b.Run("CreateToken", func(b *testing.B) {
		before := e.commits(b)
		e.run(b, func(ctx context.Context, conn *grpc.ClientConn) error {
			_, err := tbv1.NewTokenServiceClient(conn).CreateToken(ctx, &tbv1.CreateTokenRequest{
				Roles: []string{policy.RWSvcAcctID}, Description: "bench",
			})
			return err
		})
		// How the group commit behaved: writes per commit and the time of
		// one commit (write functions, page writes, both fsyncs).
		after := e.commits(b)
		if n := after.count - before.count; n > 0 {
			b.ReportMetric(float64(after.writes-before.writes)/n, "writes/commit")
			b.ReportMetric((after.seconds-before.seconds)/n*1e3, "ms/commit")
		}
	})
}

// BenchmarkGRPCCheck is the hot path next to its baseline on the same server:
// EmptyHandler (grpc.health.v1, public rule) and Check with an application
// token and with an authorization token, each at 64 concurrent callers and
// with one caller (Serial). Run with -count N to interleave the variants.
func BenchmarkGRPCCheck(b *testing.B) {
	e := start(b)
	boot := e.srv.Bootstrap()
	login, err := tbv1.NewAuthServiceClient(e.conns[0]).CreateAuthToken(context.Background(),
		&tbv1.CreateAuthTokenRequest{Username: boot.ClientID, Password: boot.Secret})
	if err != nil {
		b.Fatal(err)
	}
	resource := "drn:astra:org:" + e.srv.Broker().Org().ID + ":db:db1:keyspace:ks:table:t"
	empty := func(ctx context.Context, conn *grpc.ClientConn) error {
		_, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		return err
	}
	check := func(cred string) func(ctx context.Context, conn *grpc.ClientConn) error {
		req := &tbv1.CheckRequest{Credential: cred, Action: "db-table-select", Resource: resource}
		return func(ctx context.Context, conn *grpc.ClientConn) error {
			resp, err := tbv1.NewAuthServiceClient(conn).Check(ctx, req)
			if err == nil && !resp.GetAllowed() {
				return errors.New("check refused: " + resp.GetReason())
			}
			return err
		}
	}
	ops := []struct {
		name string
		op   func(ctx context.Context, conn *grpc.ClientConn) error
	}{{"EmptyHandler", empty}, {"AppToken", check(boot.Token)}, {"AuthToken", check(login.GetAuthToken())}}
	for _, o := range ops {
		b.Run(o.name, func(b *testing.B) { e.run(b, o.op) })
	}
	for _, o := range ops {
		b.Run("Serial/"+o.name, func(b *testing.B) {
			ctx := context.Background()
			b.ResetTimer()
			for b.Loop() {
				if err := o.op(ctx, e.conns[0]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

type commitTotals struct{ count, writes, seconds float64 }

// commits reads the store's group-commit histograms (nothing without
// metrics).
func (e *env) commits(b *testing.B) commitTotals {
	var t commitTotals
	m := e.srv.Metrics()
	if m == nil {
		return t
	}
	mfs, err := m.Registry().Gather()
	if err != nil {
		b.Fatal(err)
	}
	for _, mf := range mfs {
		if len(mf.GetMetric()) == 0 || mf.GetMetric()[0].GetHistogram() == nil {
			continue
		}
		h := mf.GetMetric()[0].GetHistogram()
		switch mf.GetName() {
		case "tokenbroker_store_commit_batch_size":
			t.count, t.writes = float64(h.GetSampleCount()), h.GetSampleSum()
		case "tokenbroker_store_commit_duration_seconds":
			t.seconds = h.GetSampleSum()
		}
	}
	return t
}
