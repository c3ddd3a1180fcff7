package metrics

import (
	"context"
	"fmt"
	"sort"
	"testing"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// The RPC metrics publish exactly the series of the grpc-ecosystem
// middleware they replace (names, help, labels, values), so dashboards and
// alerts built on it keep working: the same calls through both, gathered
// side by side.
func TestRPCMetricsMatchTheMiddleware(t *testing.T) {
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, health.NewServer())

	mw := grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(grpcprom.WithHistogramBuckets(latencyBuckets)))
	mw.InitializeMetrics(srv)
	mwReg := prometheus.NewRegistry()
	mwReg.MustRegister(mw)
	own := newRPCMetrics()
	own.initialize(srv)
	ownReg := prometheus.NewRegistry()
	ownReg.MustRegister(own.collectors()...)

	ok := func(context.Context, any) (any, error) { return "resp", nil }
	denied := func(context.Context, any) (any, error) { return nil, status.Error(codes.PermissionDenied, "no") }
	odd := func(context.Context, any) (any, error) { return nil, status.Error(codes.Code(42), "odd") }
	stream := func(_ any, ss grpc.ServerStream) error {
		_ = ss.RecvMsg(nil)
		_ = ss.SendMsg(nil)
		return ss.SendMsg(nil)
	}
	for _, icpt := range []struct {
		unary  grpc.UnaryServerInterceptor
		stream grpc.StreamServerInterceptor
	}{{mw.UnaryServerInterceptor(), mw.StreamServerInterceptor()}, {own.unary, own.stream}} {
		check := &grpc.UnaryServerInfo{FullMethod: "/grpc.health.v1.Health/Check"}
		for range 3 {
			_, _ = icpt.unary(context.Background(), nil, check, ok)
		}
		_, _ = icpt.unary(context.Background(), nil, check, denied)
		_, _ = icpt.unary(context.Background(), nil, check, odd)
		_, _ = icpt.unary(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: "/not.Registered/Call"}, ok)
		_ = icpt.stream(nil, fakeStream{}, &grpc.StreamServerInfo{FullMethod: "/grpc.health.v1.Health/Watch", IsServerStream: true}, stream)
	}
	want, got := series(t, mwReg), series(t, ownReg)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q (as the middleware)", k, got[k], v)
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("extra series %s = %q", k, v)
		}
	}
}

// series maps "name{labels}" to its help text and value (a histogram's
// sample count: durations differ between runs).
func series(t *testing.T, reg *prometheus.Registry) map[string]string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			sort.Strings(labels)
			v := fmt.Sprint(m.GetCounter().GetValue())
			if h := m.GetHistogram(); h != nil {
				v = fmt.Sprintf("count %d, %d buckets", h.GetSampleCount(), len(h.GetBucket()))
			}
			out[fmt.Sprintf("%s%v", mf.GetName(), labels)] = mf.GetType().String() + " " + mf.GetHelp() + ": " + v
		}
	}
	return out
}

type fakeStream struct{ grpc.ServerStream }

func (fakeStream) Context() context.Context { return context.Background() }
func (fakeStream) RecvMsg(any) error        { return nil }
func (fakeStream) SendMsg(any) error        { return nil }
