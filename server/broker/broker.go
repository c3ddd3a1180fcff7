// Package broker is tokenbroker's domain layer: it issues, verifies and
// revokes credentials and manages roles, on top of the store contract. It
// knows nothing of gRPC or HTTP; handlers translate to and from it, and
// server/rpcerr maps its errors to status codes.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/tokenbroker/tokenbroker/server/credential"
	"github.com/tokenbroker/tokenbroker/server/policy"
	"github.com/tokenbroker/tokenbroker/store"
)

// Config holds the broker's dependencies.
type Config struct {
	Store  store.Store
	MAC    *credential.MAC
	Org    store.Organization
	Logger *slog.Logger
	// Now is the clock (injected so tests can move time); default time.Now.
	Now func() time.Time
}

// Broker implements the domain operations. Safe for concurrent use.
type Broker struct {
	st    store.Store
	mac   *credential.MAC
	org   store.Organization
	log   *slog.Logger
	now   func() time.Time
	roles *roleCache
	usage *usageTracker
}

// New builds a broker and loads the role cache.
func New(ctx context.Context, cfg Config) (*Broker, error) {
	if cfg.Store == nil || cfg.MAC == nil || cfg.Org.ID == "" {
		return nil, errors.New("broker: Store, MAC and Org are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	b := &Broker{
		st: cfg.Store, mac: cfg.MAC, org: cfg.Org, log: cfg.Logger, now: cfg.Now,
		roles: newRoleCache(cfg.Org.ID),
		usage: newUsageTracker(),
	}
	roles, err := b.st.ListRoles(ctx)
	if err != nil {
		return nil, fmt.Errorf("load roles: %w", err)
	}
	b.roles.load(roles)
	return b, nil
}

// Org returns the organization this broker serves.
func (b *Broker) Org() store.Organization { return b.org }

// Principal is an authenticated caller.
type Principal struct {
	Kind  string // "application-token"
	ID    string // the client ID: what audit records and LastUpdateUserID show
	OrgID string
	Roles []string
	perms *policy.Set
}

// PrincipalKindAppToken marks a principal authenticated by an AstraCS token.
const PrincipalKindAppToken = "application-token"

// Allows reports whether the principal may do action on resource.
func (p *Principal) Allows(action, resource string) bool {
	return p != nil && p.perms != nil && p.perms.Allows(action, resource)
}

// dummyMAC is verified against when no token exists for a client ID, so an
// unknown client ID and a wrong secret cost the same time.
var dummyMAC = make([]byte, 32)

// Authenticate verifies a bearer credential and returns its principal. It
// reads the store but never writes: last-use times go to an in-memory tracker
// that FlushUsage persists in the background. Unknown, revoked, expired and
// wrongly-keyed tokens get one indistinguishable error.
func (b *Broker) Authenticate(ctx context.Context, bearer string) (*Principal, error) {
	if bearer == "" {
		return nil, Unauthenticated(ReasonMissingToken, "missing bearer token: send 'Authorization: Bearer <application token>'")
	}
	clientID, err := credential.Parse(bearer)
	if err != nil {
		return nil, Unauthenticated(ReasonMalformedToken, "invalid token format")
	}
	refused := Unauthenticated(ReasonUnknownToken, "Resource not found: token with identifier: "+clientID)
	t, err := b.st.GetToken(ctx, clientID)
	if errors.Is(err, store.ErrNotFound) {
		b.mac.Verify(bearer, dummyMAC)
		return nil, refused
	}
	if err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	now := b.now()
	if !b.mac.Verify(bearer, t.SecretMAC) || t.Expired(now) {
		return nil, refused
	}
	b.usage.touch(clientID, now)
	return &Principal{
		Kind:  PrincipalKindAppToken,
		ID:    t.ClientID,
		OrgID: t.OrgID,
		Roles: t.Roles,
		perms: b.roles.setFor(t.Roles),
	}, nil
}

// FlushUsage persists last-use times recorded since the previous flush.
func (b *Broker) FlushUsage(ctx context.Context) error {
	pending := b.usage.pending()
	if len(pending) == 0 {
		return nil
	}
	if err := b.st.RecordTokenUse(ctx, pending); err != nil {
		return fmt.Errorf("flush token use: %w", err)
	}
	b.usage.flushed(pending)
	return nil
}

// CollectGarbage deletes expired tokens.
func (b *Broker) CollectGarbage(ctx context.Context) (int, error) {
	n, err := b.st.DeleteExpiredTokens(ctx, b.now())
	if err != nil {
		return n, fmt.Errorf("delete expired tokens: %w", err)
	}
	return n, nil
}

type principalKey struct{}

// WithPrincipal returns ctx carrying the authenticated caller.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the authenticated caller, or nil for public methods.
func PrincipalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}
