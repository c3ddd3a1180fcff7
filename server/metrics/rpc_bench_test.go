package metrics

import (
	"context"
	"testing"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// BenchmarkUnaryInterceptor is the per-call cost of the RPC metrics alone,
// next to the grpc-ecosystem middleware they replace (same series): the
// handler does nothing, so ns/op and allocs/op are the interceptor's.
func BenchmarkUnaryInterceptor(b *testing.B) {
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, health.NewServer())
	info := &grpc.UnaryServerInfo{FullMethod: "/grpc.health.v1.Health/Check"}
	handler := func(context.Context, any) (any, error) { return nil, nil }

	mw := grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(grpcprom.WithHistogramBuckets(latencyBuckets)))
	mw.InitializeMetrics(srv)
	own := newRPCMetrics()
	own.initialize(srv)
	for _, v := range []struct {
		name string
		icpt grpc.UnaryServerInterceptor
	}{{"middleware", mw.UnaryServerInterceptor()}, {"handles", own.unary}} {
		b.Run(v.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					_, _ = v.icpt(ctx, nil, info, handler)
				}
			})
		})
	}
}
