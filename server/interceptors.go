package server

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tokenbroker/tokenbroker/server/broker"
	"github.com/tokenbroker/tokenbroker/server/callctx"
	"github.com/tokenbroker/tokenbroker/server/rpcerr"
	"github.com/tokenbroker/tokenbroker/store"
)

// slowCall is the duration above which a call is logged at Info rather
// than Debug.
const slowCall = 250 * time.Millisecond

// guard runs, for every RPC and in this order: panic recovery, request ID
// and logging, authentication, and authorization from the rules table. One
// implementation serves unary and streaming calls.
type guard struct {
	b        *broker.Broker
	log      *slog.Logger
	rules    map[string]rule
	idPrefix string        // random per process, so request IDs are unique across restarts
	seq      atomic.Uint64 // request counter
}

func newGuard(b *broker.Broker, log *slog.Logger, rules map[string]rule) *guard {
	return &guard{b: b, log: log, rules: rules, idPrefix: uuid.NewString()[:8] + "-"}
}

// admit authenticates and authorizes one call and returns the context the
// handler runs with. req is nil for streaming calls.
func (g *guard) admit(ctx context.Context, method string, req any) (context.Context, error) {
	r, ok := g.rules[method]
	if !ok {
		g.log.ErrorContext(ctx, "method has no authorization rule; denied", "method", method)
		return ctx, status.Error(codes.PermissionDenied, "method has no authorization rule")
	}
	// The call's audit event: the store records it in the same transaction
	// as any change the call makes (reads record nothing).
	var ev *store.AuditEvent
	if !r.noAudit {
		ev = &store.AuditEvent{
			Time: g.b.Now().UTC(), RequestID: clip(callctx.RequestID(ctx)),
			Action: auditAction(method), Outcome: broker.AuditSuccess,
		}
		ctx = store.WithAudit(ctx, ev)
	}
	if r.public {
		return ctx, nil
	}
	p, err := g.b.Authenticate(ctx, callctx.Credential(ctx))
	if err != nil {
		g.refuse(ev, broker.AuditUnauthenticated, nil, "")
		return ctx, rpcerr.ToStatus(ctx, g.log, err)
	}
	if ev != nil {
		ev.ActorKind, ev.ActorID = p.Kind, p.ID
	}
	if r.anyPrincipal {
		return broker.WithPrincipal(ctx, p), nil
	}
	if r.action == "" { // a rule that grants nothing by mistake must not grant everything
		g.log.ErrorContext(ctx, "authorization rule has no action; denied", "method", method)
		return ctx, status.Error(codes.PermissionDenied, "method has no authorization rule")
	}
	resource := r.resourceFor(g.b.Org().ID, req)
	if !p.Allows(r.action, resource) {
		g.refuse(ev, broker.AuditDenied, p, "lacks "+r.action+" on "+resource)
		if r.notFound != nil {
			return ctx, rpcerr.ToStatus(ctx, g.log, r.notFound(req))
		}
		return ctx, rpcerr.ToStatus(ctx, g.log,
			broker.Denied("token lacks permission %q on %q", r.action, resource))
	}
	return broker.WithPrincipal(ctx, p), nil
}

// refuse records a refused call in the audit log (in the background).
func (g *guard) refuse(ev *store.AuditEvent, outcome string, p *broker.Principal, detail string) {
	if ev == nil {
		return
	}
	rec := *ev
	rec.Outcome, rec.Detail = outcome, clip(detail)
	if p != nil {
		rec.ActorKind, rec.ActorID = p.Kind, p.ID
	}
	g.b.RecordRefused(rec)
}

// maxAuditField is the store's limit for an audit string field.
const maxAuditField = 1024

// clip makes caller-influenced text (a requested resource) storable in an
// audit event: valid UTF-8 and at most maxAuditField bytes, cut at a rune
// boundary. An unstorable event would fail its whole batch.
func clip(s string) string {
	s = strings.ToValidUTF8(s, "?")
	if len(s) <= maxAuditField {
		return s
	}
	cut := maxAuditField - 3
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// auditAction shortens "/tokenbroker.v1.TokenService/CreateToken" to
// "TokenService.CreateToken".
func auditAction(method string) string {
	m := strings.TrimPrefix(method, "/")
	if i := strings.LastIndex(m[:max(strings.Index(m, "/"), 0)], "."); i >= 0 {
		m = m[i+1:]
	}
	return strings.Replace(m, "/", ".", 1)
}

// begin gives the call its request ID: the client's (x-request-id or
// x-cassandra-request-id) or a cheap process-unique one (no crypto/rand on
// the hot path).
func (g *guard) begin(ctx context.Context) context.Context {
	if id := callctx.IncomingRequestID(ctx); id != "" {
		return callctx.WithRequestID(ctx, id)
	}
	return callctx.WithGeneratedRequestID(ctx, g.idPrefix, g.seq.Add(1))
}

// finish logs the call: at Debug normally, at Info when slow or failed
// internally. Nothing is built unless the level is enabled.
func (g *guard) finish(ctx context.Context, method string, start time.Time, err error) {
	d := time.Since(start)
	code := status.Code(err)
	level := slog.LevelDebug
	if d > slowCall || code == codes.Internal || code == codes.Unknown {
		level = slog.LevelInfo
	}
	if !g.log.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{slog.String("method", method), slog.String("code", code.String()), slog.Duration("duration", d)}
	if p := broker.PrincipalFrom(ctx); p != nil {
		attrs = append(attrs, slog.String("principal", p.ID))
	}
	g.log.LogAttrs(ctx, level, "rpc", attrs...)
}

func recovered(log *slog.Logger, ctx context.Context, v any) error {
	log.ErrorContext(ctx, "panic in handler", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	return status.Error(codes.Internal, "internal error")
}

func (g *guard) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	start := time.Now()
	ctx = g.begin(ctx)
	defer func() {
		if v := recover(); v != nil {
			err = recovered(g.log, ctx, v)
		}
		g.finish(ctx, info.FullMethod, start, err)
	}()
	ctx, err = g.admit(ctx, info.FullMethod, req)
	if err != nil {
		return nil, err
	}
	resp, err = handler(ctx, req)
	switch status.Code(err) {
	case codes.PermissionDenied:
		// Refused by the domain (e.g. an escalation attempt): audited like a
		// refusal by the rules table.
		g.refuse(store.AuditFrom(ctx), broker.AuditDenied, broker.PrincipalFrom(ctx), status.Convert(err).Message())
	case codes.Unauthenticated:
		// A credential refused by a call that checks its own (a failed
		// login, a stats read). The detail is fixed: a login's message
		// names the username, which is sometimes a mistyped password.
		g.refuse(store.AuditFrom(ctx), broker.AuditUnauthenticated, nil, "invalid credentials")
	}
	return resp, err
}

func (g *guard) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	start := time.Now()
	ctx := g.begin(ss.Context())
	defer func() {
		if v := recover(); v != nil {
			err = recovered(g.log, ctx, v)
		}
		g.finish(ctx, info.FullMethod, start, err)
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
