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
	"strings"
	"sync"
	"time"

	"github.com/tokenbroker/tokenbroker/server/credential"
	"github.com/tokenbroker/tokenbroker/server/password"
	"github.com/tokenbroker/tokenbroker/server/policy"
	"github.com/tokenbroker/tokenbroker/server/throttle"
	"github.com/tokenbroker/tokenbroker/server/view"
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
	// Sleep waits d or until ctx ends: how failed logins are slowed
	// (injected so tests can observe the delays without waiting them).
	Sleep func(ctx context.Context, d time.Duration)

	// AuthMAC keys the MACs under which authorization tokens are stored.
	AuthMAC *credential.MAC
	// AuthTokenTTL is how long an authorization token stays valid after its
	// most recent use (Stargate's default: 30 minutes).
	AuthTokenTTL time.Duration
	// Passwords hashes and verifies database users' passwords.
	Passwords *password.Hasher
	// LoginThrottle and CheckThrottle limit failed logins and failed
	// credential checks (see docs/auth.md for the policies).
	LoginThrottle *throttle.Limiter
	CheckThrottle *throttle.Limiter
	// LoginUserThrottle slows (never refuses) failed logins per username.
	LoginUserThrottle *throttle.Limiter

	// PulsarMAC keys the MACs under which issued Pulsar JWTs are recorded.
	PulsarMAC *credential.MAC
	Pulsar    PulsarConfig

	// Observer is told Check, login and throttle outcomes (metrics); nil
	// observes nothing.
	Observer Observer

	// Leading, if set, says whether this broker leads the cluster-wide
	// background jobs (a store shared by several brokers); CollectGarbage
	// then runs the store's sweeps, pruning and scheduled rotation only
	// while it returns true. Nil: this broker is the only one.
	Leading func() bool
}

// Broker implements the domain operations. Safe for concurrent use.
//
// Everything it keeps beside the store (compiled roles, signing keys, the
// token policy, the metered databases, last-use times and usage counts) is
// in one place, view: a cached view of the store that every backend keeps
// current from its own change feed (server/view). The broker reads through
// it on every backend alike.
type Broker struct {
	st    store.Store // the view: uncached calls go straight to the store
	view  *view.View
	mac   *credential.MAC
	org   store.Organization
	log   *slog.Logger
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration)
	// roleWrites serializes this process's role writes, so that the
	// name-uniqueness check (checkNameFree) and the write are race-free
	// within a process.
	roleWrites sync.Mutex

	authMAC    *credential.MAC
	authTTL    time.Duration
	passwords  *password.Hasher
	logins     *throttle.Limiter // refuses: per (username, address) and per address
	loginUsers *throttle.Limiter // slows only: per username
	checks     *throttle.Limiter

	pulsar    PulsarConfig
	pulsarMAC *credential.MAC

	refused *refusedAudit // audit events of refused calls, written in the background
	obs     Observer

	leading func() bool
}

// DefaultAuthTokenTTL is Stargate's default idle lifetime of an auth token.
const DefaultAuthTokenTTL = 30 * time.Minute

// New builds a broker and loads its view of the store.
func New(ctx context.Context, cfg Config) (*Broker, error) {
	if cfg.Store == nil || cfg.MAC == nil || cfg.AuthMAC == nil || cfg.PulsarMAC == nil || cfg.Passwords == nil || cfg.Org.ID == "" {
		return nil, errors.New("broker: Store, MAC, AuthMAC, PulsarMAC, Passwords and Org are required")
	}
	if len(cfg.Pulsar.SealKey) != 32 {
		return nil, errors.New("broker: Pulsar.SealKey must be 32 bytes")
	}
	if cfg.Pulsar.TokenLimit <= 0 {
		cfg.Pulsar.TokenLimit = DefaultPulsarTokenLimit
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleep
	}
	if cfg.AuthTokenTTL <= 0 {
		cfg.AuthTokenTTL = DefaultAuthTokenTTL
	}
	if cfg.LoginThrottle == nil {
		cfg.LoginThrottle = throttle.New(DefaultLoginPolicy, cfg.Now)
	}
	if cfg.LoginUserThrottle == nil {
		cfg.LoginUserThrottle = throttle.New(DefaultLoginUserPolicy, cfg.Now)
	}
	if cfg.CheckThrottle == nil {
		cfg.CheckThrottle = throttle.New(DefaultCheckPolicy, cfg.Now)
	}
	if cfg.Observer == nil {
		cfg.Observer = noObserver{}
	}
	v, err := view.Open(ctx, cfg.Store, view.Config{
		OrgID: cfg.Org.ID, SealKey: cfg.Pulsar.SealKey, Logger: cfg.Logger,
		WriteAction: func(action string) bool { return writeActions[action] },
	})
	if err != nil {
		return nil, err
	}
	b := &Broker{
		st: v, view: v, mac: cfg.MAC, org: cfg.Org, log: cfg.Logger, now: cfg.Now, sleep: cfg.Sleep,

		authMAC: cfg.AuthMAC, authTTL: cfg.AuthTokenTTL,
		passwords:  cfg.Passwords,
		logins:     cfg.LoginThrottle,
		loginUsers: cfg.LoginUserThrottle,
		checks:     cfg.CheckThrottle,

		pulsar: cfg.Pulsar, pulsarMAC: cfg.PulsarMAC, refused: newRefusedAudit(),
		obs: cfg.Observer, leading: cfg.Leading,
	}
	if err := b.ensureSigningKey(ctx); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// Close stops the view following the store's change feed. The store
// itself is the caller's to close.
func (b *Broker) Close() { b.view.Stop() }

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// Now returns the broker's clock reading (injected in tests).
func (b *Broker) Now() time.Time { return b.now() }

// Org returns the organization this broker serves.
func (b *Broker) Org() store.Organization { return b.org }

// Principal is an authenticated caller.
type Principal struct {
	Kind       string // store.PrincipalApplicationToken or store.PrincipalUser
	ID         string // client ID or user ID: what logs and LastUpdateUserID show
	OrgID      string
	Roles      []string
	Credential string // what was presented: CredentialAppToken or CredentialAuthToken

	authTokenMAC []byte // the presented auth token's MAC (for revocation)
	perms        *policy.Set
}

// Credential types.
const (
	CredentialAppToken  = "application-token"
	CredentialAuthToken = "auth-token"
)

// Allows reports whether the principal may do action on resource.
func (p *Principal) Allows(action, resource string) bool {
	return p != nil && p.perms != nil && p.perms.Allows(action, resource)
}

// dummyMAC is verified against when no record exists, so an unknown
// identifier and a wrong secret cost the same time.
var dummyMAC = make([]byte, 32)

// Authenticate verifies a credential (an application token or an
// authorization token) and returns its principal. It reads the store but
// never writes: last-use times (and with them the auth tokens' sliding
// expiry) are kept in memory and persisted by FlushUsage in the background.
// Unknown, revoked, expired and wrongly-keyed credentials get one
// indistinguishable error.
func (b *Broker) Authenticate(ctx context.Context, cred string) (*Principal, error) {
	switch {
	case cred == "":
		return nil, Unauthenticated(ReasonMissingToken, "missing bearer token: send 'Authorization: Bearer <application token>'")
	case strings.HasPrefix(cred, credential.Prefix):
		return b.authenticateAppToken(ctx, cred)
	case isAuthTokenShape(cred):
		return b.authenticateAuthToken(ctx, cred)
	default:
		return nil, Unauthenticated(ReasonMalformedToken, "invalid token format")
	}
}

func (b *Broker) authenticateAppToken(ctx context.Context, bearer string) (*Principal, error) {
	clientID, err := credential.Parse(bearer)
	if err != nil {
		return nil, Unauthenticated(ReasonMalformedToken, "invalid token format")
	}
	// Built only when refusing: this is the hot path.
	refused := func() error {
		return Unauthenticated(ReasonUnknownToken, "Resource not found: token with identifier: "+clientID)
	}
	t, err := b.view.TokenCredential(ctx, clientID)
	if errors.Is(err, store.ErrNotFound) {
		b.mac.Verify(bearer, dummyMAC)
		return nil, refused()
	}
	if err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	now := b.now()
	if !b.mac.Verify(bearer, t.SecretMAC) || t.Expired(now) {
		return nil, refused()
	}
	b.view.TokenUse.Touch(clientID, now)
	return &Principal{
		Kind:       store.PrincipalApplicationToken,
		ID:         t.ClientID,
		OrgID:      t.OrgID,
		Roles:      t.Roles,
		Credential: CredentialAppToken,
		perms:      b.view.Permissions(t.Roles),
	}, nil
}

// FlushUsage persists last-use times and database usage recorded since the
// previous flush.
func (b *Broker) FlushUsage(ctx context.Context) error { return b.view.Flush(ctx) }

// CollectGarbage deletes expired application tokens and idle
// authorization tokens, and forgets in-memory state nobody needs.
//
// An auth token's live last use may be newer in memory than in the store
// by up to one flush interval, so only tokens idle for longer than
// TTL + idleMargin in the store are deleted: one that was used within its
// TTL has been flushed by then. (Validity never depends on GC: every check
// compares the newest known use with the TTL.)
//
// With a shared store (Config.Leading), only the leader deletes, prunes and
// rotates; every broker forgets its own in-memory state.
func (b *Broker) CollectGarbage(ctx context.Context, idleMargin time.Duration) (int, error) {
	now := b.now()
	if b.leading != nil && !b.leading() {
		b.view.AuthTokenUse.ForgetOlderThan(now.Add(-b.authTTL - idleMargin))
		b.logins.Sweep()
		b.loginUsers.Sweep()
		b.checks.Sweep()
		return 0, nil
	}
	n, err := b.st.DeleteExpiredTokens(ctx, now)
	if err != nil {
		return n, fmt.Errorf("delete expired tokens: %w", err)
	}
	m, err := b.st.DeleteIdleAuthTokens(ctx, now.Add(-b.authTTL-idleMargin))
	if err != nil {
		return n + m, fmt.Errorf("delete idle auth tokens: %w", err)
	}
	b.view.AuthTokenUse.ForgetOlderThan(now.Add(-b.authTTL - idleMargin))
	b.logins.Sweep()
	b.loginUsers.Sweep()
	b.checks.Sweep()
	p, err := b.st.DeleteExpiredPulsarTokens(ctx, now)
	if err != nil {
		return n + m + p, fmt.Errorf("delete expired pulsar tokens: %w", err)
	}
	if err := b.pruneSigningKeys(ctx); err != nil {
		return n + m + p, fmt.Errorf("prune signing keys: %w", err)
	}
	if err := b.rotateSigningKeyOnSchedule(ctx); err != nil {
		return n + m + p, fmt.Errorf("scheduled signing key rotation: %w", err)
	}
	return n + m + p, nil
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
