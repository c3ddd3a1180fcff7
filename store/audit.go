package store

import (
	"context"
	"time"
)

// AuditEvent records one change, or one refused management call. It never
// holds a secret: actors and targets are identifiers (client IDs, role IDs,
// token IDs), never credentials.
type AuditEvent struct {
	Seq        uint64    // assigned by the store: strictly increasing
	Time       time.Time // UTC
	RequestID  string
	ActorKind  string // "application-token", "user", "" when unauthenticated
	ActorID    string
	Action     string // the RPC, e.g. "TokenService.CreateToken"
	TargetKind string // e.g. "token", "role", "tenant"
	TargetID   string
	Outcome    string // "success", "denied", "unauthenticated"
	Detail     string // a short, secret-free description
}

// AuditQuery selects audit events: Seq > AfterSeq, Time in [From, To)
// (zero bounds are open), at most Limit (<= 0: 100) in Seq order.
type AuditQuery struct {
	AfterSeq uint64
	From, To time.Time
	Limit    int
}

type auditKey struct{}

// WithAudit returns ctx carrying ev. Every write method called with such a
// context records ev in the same transaction as its change (so an audit
// record exists exactly when the change does). The event is shared by the
// call's writes: a call that writes twice records it twice, each time
// with the targets set at that moment.
func WithAudit(ctx context.Context, ev *AuditEvent) context.Context {
	return context.WithValue(ctx, auditKey{}, ev)
}

// AuditFrom returns the event carried by ctx, or nil.
func AuditFrom(ctx context.Context) *AuditEvent {
	ev, _ := ctx.Value(auditKey{}).(*AuditEvent)
	return ev
}
