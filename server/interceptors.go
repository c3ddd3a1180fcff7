package server

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/tokenbroker/tokenbroker/server/broker"
	"github.com/tokenbroker/tokenbroker/server/rpcerr"
)

// slowCall is the duration above which a call is logged at Info rather
// than Debug.
const slowCall = 250 * time.Millisecond

// guard runs, for every RPC and in this order: panic recovery, request ID
// and logging, authentication, and authorization from the rules table. One
// implementation serves unary and streaming calls.
type guard struct {
	b     *broker.Broker
	log   *slog.Logger
	rules map[string]rule
}

// admit authenticates and authorizes one call and returns the context the
// handler runs with. req is nil for streaming calls.
func (g *guard) admit(ctx context.Context, method string, req any) (context.Context, error) {
	r, ok := g.rules[method]
	if !ok {
		g.log.ErrorContext(ctx, "method has no authorization rule; denied", "method", method)
		return ctx, status.Error(codes.PermissionDenied, "method has no authorization rule")
	}
	if r.public {
		return ctx, nil
	}
	p, err := g.b.Authenticate(ctx, bearer(ctx))
	if err != nil {
		return ctx, rpcerr.ToStatus(ctx, g.log, err)
	}
	resource := r.resourceFor(g.b.Org().ID, req)
	if !p.Allows(r.action, resource) {
		return ctx, rpcerr.ToStatus(ctx, g.log,
			broker.Denied("token lacks permission %q on %q", r.action, resource))
	}
	return broker.WithPrincipal(ctx, p), nil
}

// bearer extracts the credential from the "authorization" metadata (which
// the REST gateway fills from the Authorization header). The scheme is
// matched case-insensitively, as RFC 9110 requires.
func bearer(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) == 0 {
		return ""
	}
	v := strings.TrimSpace(vals[0])
	if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
		return strings.TrimSpace(v[7:])
	}
	return v // a bare token: Parse will reject anything that is not one
}

// requestLogger returns a logger carrying the call's request ID, taken from
// x-request-id metadata (or X-Request-Id over REST) or generated.
func (g *guard) requestLogger(ctx context.Context, method string) (*slog.Logger, string) {
	md, _ := metadata.FromIncomingContext(ctx)
	id := ""
	for _, k := range []string{"x-request-id", "x-cassandra-request-id"} {
		if v := md.Get(k); len(v) > 0 && len(v[0]) <= 128 {
			id = v[0]
			break
		}
	}
	if id == "" {
		id = uuid.NewString()
	}
	return g.log.With("request_id", id, "method", method), id
}

func (g *guard) finish(ctx context.Context, log *slog.Logger, start time.Time, err error) {
	d := time.Since(start)
	code := status.Code(err)
	level := slog.LevelDebug
	if d > slowCall || code == codes.Internal || code == codes.Unknown {
		level = slog.LevelInfo
	}
	if !log.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{slog.String("code", code.String()), slog.Duration("duration", d)}
	if p := broker.PrincipalFrom(ctx); p != nil {
		attrs = append(attrs, slog.String("client_id", p.ID))
	}
	log.LogAttrs(ctx, level, "rpc", attrs...)
}

func recovered(log *slog.Logger, ctx context.Context, v any) error {
	log.ErrorContext(ctx, "panic in handler", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	return status.Error(codes.Internal, "internal error")
}

func (g *guard) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	start := time.Now()
	log, _ := g.requestLogger(ctx, info.FullMethod)
	defer func() {
		if v := recover(); v != nil {
			err = recovered(log, ctx, v)
		}
		g.finish(ctx, log, start, err)
	}()
	ctx, err = g.admit(ctx, info.FullMethod, req)
	if err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (g *guard) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	start := time.Now()
	ctx := ss.Context()
	log, _ := g.requestLogger(ctx, info.FullMethod)
	defer func() {
		if v := recover(); v != nil {
			err = recovered(log, ctx, v)
		}
		g.finish(ctx, log, start, err)
	}()
	ctx, err = g.admit(ctx, info.FullMethod, nil)
	if err != nil {
		return err
	}
	return handler(srv, &contextStream{ServerStream: ss, ctx: ctx})
}

// contextStream gives a streaming handler the admitted context.
type contextStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *contextStream) Context() context.Context { return s.ctx }
