package inproc_test

import (
	"context"
	"errors"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/tokenbroker/tokenbroker/server/callctx"
	"github.com/tokenbroker/tokenbroker/server/inproc"
)

// TestNetworkNameMatchesCallctx: callctx trusts the gateway's client
// address only on calls whose peer has the channel's network.
func TestNetworkNameMatchesCallctx(t *testing.T) {
	if callctx.GatewayNetwork != inproc.Network {
		t.Fatalf("callctx.GatewayNetwork = %q, inproc.Network = %q", callctx.GatewayNetwork, inproc.Network)
	}
}

type ctxKey struct{}

type healthImpl struct {
	healthpb.UnimplementedHealthServer
	seen func(ctx context.Context)
	err  error
}

func (h *healthImpl) Check(ctx context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	h.seen(ctx)
	_ = grpc.SetHeader(ctx, metadata.Pairs("x-http-code", "201"))
	_ = grpc.SetTrailer(ctx, metadata.Pairs("x-t", "1"))
	if h.err != nil {
		return nil, h.err
	}
	req.Service = "changed by the handler" // must not reach the caller's request
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

// TestInvokeRunsTheChainWithTransportFacts proves a call runs through every
// interceptor in order and that the handler sees what a network call
// carries: incoming metadata, the in-process peer, the method name, and
// none of the caller's context values.
func TestInvokeRunsTheChainWithTransportFacts(t *testing.T) {
	var order []string
	icpt := func(name string) grpc.UnaryServerInterceptor {
		return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			order = append(order, name+":"+info.FullMethod)
			return h(ctx, req)
		}
	}
	impl := &healthImpl{}
	impl.seen = func(ctx context.Context) {
		md, _ := metadata.FromIncomingContext(ctx)
		if got := md.Get("authorization"); len(got) != 1 || got[0] != "Bearer x" {
			t.Errorf("incoming authorization = %v", got)
		}
		p, ok := peer.FromContext(ctx)
		if !ok || p.Addr.Network() != inproc.Network {
			t.Errorf("peer = %v, %v", p, ok)
		}
		if m, _ := grpc.Method(ctx); m != healthpb.Health_Check_FullMethodName {
			t.Errorf("grpc.Method = %q", m)
		}
		if ctx.Value(ctxKey{}) != nil {
			t.Error("a caller's context value reached the handler")
		}
	}
	ch := inproc.New(inproc.Chain(icpt("a"), icpt("b")))
	healthpb.RegisterHealthServer(ch, impl)

	ctx := context.WithValue(context.Background(), ctxKey{}, "client-only")
	ctx = metadata.AppendToOutgoingContext(ctx, "Authorization", "Bearer x")
	req := &healthpb.HealthCheckRequest{Service: "svc"}
	var hdr, trl metadata.MD
	resp, err := healthpb.NewHealthClient(ch).Check(ctx, req, grpc.Header(&hdr), grpc.Trailer(&trl))
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("status = %v", resp.GetStatus())
	}
	if req.Service != "svc" {
		t.Errorf("the handler changed the caller's request: %q", req.Service)
	}
	if len(order) != 2 || order[0] != "a:"+healthpb.Health_Check_FullMethodName || order[1] != "b:"+healthpb.Health_Check_FullMethodName {
		t.Errorf("interceptor order = %v", order)
	}
	if hdr.Get("x-http-code")[0] != "201" || trl.Get("x-t")[0] != "1" {
		t.Errorf("header %v trailer %v", hdr, trl)
	}
}

// TestErrorsArriveAsStatuses: a status passes unchanged, a plain error
// becomes Unknown (as over the network), unknown methods are Unimplemented.
func TestErrorsArriveAsStatuses(t *testing.T) {
	impl := &healthImpl{seen: func(context.Context) {}}
	ch := inproc.New(nil)
	healthpb.RegisterHealthServer(ch, impl)
	c := healthpb.NewHealthClient(ch)

	impl.err = status.Error(codes.PermissionDenied, "no")
	if _, err := c.Check(context.Background(), &healthpb.HealthCheckRequest{}); status.Code(err) != codes.PermissionDenied || status.Convert(err).Message() != "no" {
		t.Errorf("status error = %v", err)
	}
	impl.err = errors.New("plain")
	if _, err := c.Check(context.Background(), &healthpb.HealthCheckRequest{}); status.Code(err) != codes.Unknown {
		t.Errorf("plain error = %v", err)
	}
	if err := ch.Invoke(context.Background(), "/no.Such/Method", &healthpb.HealthCheckRequest{}, &healthpb.HealthCheckResponse{}); status.Code(err) != codes.Unimplemented {
		t.Errorf("unknown method = %v", err)
	}
}
