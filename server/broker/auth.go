package broker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/tokenbroker/tokenbroker/server/credential"
	"github.com/tokenbroker/tokenbroker/server/policy"
	"github.com/tokenbroker/tokenbroker/server/throttle"
	"github.com/tokenbroker/tokenbroker/store"
)

// Throttling policies (docs/auth.md explains them).
var (
	// DefaultLoginPolicy: per (username, client address) and per client
	// address, 10 failed logins are allowed at once and one more every 6 s
	// (10/min sustained); from the 4th failure on, each failed answer is
	// delayed by 200 ms more, up to 2 s. Beyond the budget: 429 with
	// Retry-After. No budget is per username alone, so failures from one
	// address never refuse the owner logging in from another.
	DefaultLoginPolicy = throttle.Policy{
		Burst: 10, Refill: 6 * time.Second,
		SlowAfter: 3, SlowStep: 200 * time.Millisecond, MaxSlow: 2 * time.Second,
		MaxKeys: 100_000,
	}
	// DefaultLoginUserPolicy: per username, failed logins from any address
	// are only slowed, never refused: from the 4th outstanding failure on
	// (one forgiven every 6 s), each failed answer is delayed by 200 ms
	// more, up to 2 s. A brute force spread over many addresses is thus
	// still slowed, while the right password is answered at once. (Burst
	// is unused: this limiter is never asked to Allow.)
	DefaultLoginUserPolicy = throttle.Policy{
		Burst: 10, Refill: 6 * time.Second,
		SlowAfter: 3, SlowStep: 200 * time.Millisecond, MaxSlow: 2 * time.Second,
		MaxKeys: 100_000,
	}
	// DefaultCheckPolicy: per client address, failed Checks (invalid
	// credentials) are budgeted at 1000 at once and 100/s sustained, never
	// delayed. Check's callers are internal services relaying many users'
	// credentials, some of them stale, so the budget is generous; it only
	// stops the port from serving as a fast oracle for guessing tokens.
	DefaultCheckPolicy = throttle.Policy{
		Burst: 1000, Refill: 10 * time.Millisecond,
		SlowAfter: 1 << 30, MaxKeys: 10_000,
	}
)

// Reasons in a Check answer.
const (
	CheckReasonCredentialInvalid = "CREDENTIAL_INVALID"
	CheckReasonPermissionDenied  = "PERMISSION_DENIED"
)

// isAuthTokenShape reports whether s looks like an auth token: a UUID in
// its canonical 36-character form.
func isAuthTokenShape(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// authRefused is the one answer for every unusable auth token.
func authRefused() error {
	return Unauthenticated(ReasonUnknownToken, "authorization failed: unknown or expired authorization token")
}

func (b *Broker) authenticateAuthToken(ctx context.Context, tok string) (*Principal, error) {
	mac := b.authMAC.Sum(strings.ToLower(tok))
	// One read: the auth token and its principal's current roles. A
	// deleted principal makes every auth token minted from it unusable at
	// once, whatever cleanup has or has not run.
	key := string(mac)
	at, err := b.view.ResolvedAuthToken(ctx, key, mac)
	if errors.Is(err, store.ErrNotFound) {
		return nil, authRefused()
	}
	if err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	now := b.now()
	last := at.LastUsed
	if mem := b.view.AuthTokenUse.LastUsed(key); mem.After(last) {
		last = mem
	}
	if now.Sub(last) >= b.authTTL || (!at.Expiry.IsZero() && !at.Expiry.After(now)) {
		return nil, authRefused()
	}
	b.view.AuthTokenUse.Touch(key, now) // the sliding expiry: valid for TTL after this use
	return &Principal{
		Kind: at.PrincipalKind, ID: at.PrincipalID, OrgID: at.OrgID, Roles: at.Roles,
		Credential: CredentialAuthToken, authTokenMAC: mac,
		perms: b.view.Permissions(at.Roles),
	}, nil
}

// LoginInput is a login attempt.
type LoginInput struct {
	Username   string // a database user's name, or an application token's client ID
	Password   string // the user's password, or the application token's secret
	ClientAddr string // for per-address throttling ("" if unknown)
	// Refused is the message for bad credentials (Stargate's wording
	// differs between /v1/auth and /v1/auth/token/generate only in field names).
	Refused string
}

// Login verifies a username and password (a database user, or an
// application token's client ID and secret) and mints an authorization
// token. Unknown users and wrong passwords get the same answer in similar
// time. Repeated failures for a username are slowed (from any address);
// repeated failures from an address, or for a username from one address,
// are also refused (KindExhausted) until forgiven.
func (b *Broker) Login(ctx context.Context, in LoginInput) (string, error) {
	tok, err := b.login(ctx, in)
	b.obs.LoginDone(loginOutcome(err))
	return tok, err
}

func (b *Broker) login(ctx context.Context, in LoginInput) (string, error) {
	user := truncate(in.Username, 256)
	// Refusal budgets: per (username, address) and per address. The NUL
	// separator cannot occur in an address, so pairs cannot collide.
	keys := []string{"login-pair:" + in.ClientAddr + "\x00" + user}
	if in.ClientAddr != "" {
		keys = append(keys, "login-addr:"+in.ClientAddr)
	}
	if ok, retry := b.logins.Allow(keys...); !ok {
		b.obs.Throttled(ThrottleLogin)
		return "", &Error{Kind: KindExhausted, Msg: "too many failed logins; retry later", RetryAfter: retry}
	}
	kind, id, err := b.verifyLogin(ctx, in.Username, in.Password)
	if err != nil {
		return "", err
	}
	if id == "" {
		delay := max(b.logins.Failure(keys...), b.loginUsers.Failure("login-user:"+user))
		// No username in the log: the field sometimes holds a mistyped password.
		b.log.InfoContext(ctx, "login refused", "client_addr", in.ClientAddr)
		if delay > 0 {
			b.sleep(ctx, delay)
		}
		return "", &Error{Kind: KindUnauthenticated, Reason: ReasonBadLogin, Msg: in.Refused}
	}

	tok := uuid.NewString() // version 4, from crypto/rand
	now := b.now().UTC()
	auditActor(ctx, kind, id) // the login proved who this is
	auditTarget(ctx, "auth-token", id)
	err = b.st.CreateAuthToken(ctx, store.AuthToken{
		MAC: b.authMAC.Sum(tok), OrgID: b.org.ID,
		PrincipalKind: kind, PrincipalID: id,
		CreatedAt: now, LastUsed: now,
	})
	if errors.Is(err, store.ErrNotFound) { // the principal was deleted meanwhile
		return "", &Error{Kind: KindUnauthenticated, Reason: ReasonBadLogin, Msg: in.Refused}
	}
	if err != nil {
		return "", fmt.Errorf("create auth token: %w", err)
	}
	b.log.InfoContext(ctx, "auth token issued", "principal_kind", kind, "principal_id", id)
	return tok, nil
}

// verifyLogin returns the principal a username and password belong to, or
// id "" when they do not match. Usernames never have the client-ID shape
// (CreateUser refuses it), so the two namespaces cannot collide.
func (b *Broker) verifyLogin(ctx context.Context, username, pw string) (kind, id string, err error) {
	if credential.ValidClientID(username) {
		// An application token's secret has ≥ 256 bits of entropy, so a
		// keyed MAC suffices: no slow hash is needed to resist guessing.
		bearer := credential.TokenFor(username, pw)
		t, err := b.view.TokenCredential(ctx, username)
		if errors.Is(err, store.ErrNotFound) {
			b.mac.Verify(bearer, dummyMAC)
			return "", "", nil
		}
		if err != nil {
			return "", "", fmt.Errorf("login: %w", err)
		}
		if !b.mac.Verify(bearer, t.SecretMAC) || t.Expired(b.now()) {
			return "", "", nil
		}
		return store.PrincipalApplicationToken, t.ClientID, nil
	}
	u, err := b.st.GetUserByName(ctx, username)
	if errors.Is(err, store.ErrNotFound) {
		_ = b.passwords.DummyVerify(ctx, pw) // same cost as a real verification
		return "", "", nil
	}
	if err != nil {
		return "", "", fmt.Errorf("login: %w", err)
	}
	ok, err := b.passwords.Verify(ctx, pw, u.PasswordHash)
	if err != nil && ctx.Err() != nil {
		return "", "", ctx.Err()
	}
	if err != nil {
		b.log.WarnContext(ctx, "stored password hash is unusable", "user_id", u.ID, "err", err)
	}
	if !ok {
		return "", "", nil
	}
	return store.PrincipalUser, u.ID, nil
}

// RevokeAuthToken revokes the authorization token the caller presented.
func (b *Broker) RevokeAuthToken(ctx context.Context, caller *Principal) error {
	if caller == nil || caller.Credential != CredentialAuthToken {
		return Invalid("only an authorization token can be revoked here (present it in X-Cassandra-Token or Authorization); application tokens are revoked with DELETE /v2/clientIdSecrets/{clientId}")
	}
	auditTarget(ctx, "auth-token", caller.ID)
	err := b.st.DeleteAuthToken(ctx, caller.authTokenMAC)
	if err != nil && !errors.Is(err, store.ErrNotFound) { // already gone: the goal is met
		return fmt.Errorf("revoke auth token: %w", err)
	}
	// The view drops its last-use entry when the feed reports the
	// deletion; a token already gone reports nothing, so drop it here too.
	b.view.AuthTokenUse.Forget(string(caller.authTokenMAC))
	return nil
}

// CheckResult is the answer to a Check.
type CheckResult struct {
	Allowed   bool
	Reason    string     // "" when allowed
	Principal *Principal // nil when the credential is invalid
}

// Check answers whether cred may do action on resource. An invalid
// credential or a missing permission is an answer, not an error; a
// malformed request (unknown action, bad DRN, no credential) is
// KindInvalid. Failed checks are throttled per client address.
func (b *Broker) Check(ctx context.Context, cred, action, resource, clientAddr string) (CheckResult, error) {
	res, err := b.check(ctx, cred, action, resource, clientAddr)
	b.obs.CheckDone(credentialKind(cred), checkOutcome(res, err))
	return res, err
}

func (b *Broker) check(ctx context.Context, cred, action, resource, clientAddr string) (CheckResult, error) {
	if cred == "" {
		return CheckResult{}, Invalid("credential: required (in the request, or as Authorization: Bearer / X-Cassandra-Token)")
	}
	if isJWTShape(cred) {
		// A Pulsar JWT: checked against its tenant's DRN; the action is
		// Pulsar's business and may be empty.
		if err := policy.ValidateResource(resource); err != nil {
			return CheckResult{}, Invalid("%v", err)
		}
		return b.throttledCheck(clientAddr, func() (CheckResult, error) { return b.checkPulsarJWT(ctx, cred, resource) })
	}
	if !policy.KnownAction(action) {
		return CheckResult{}, Invalid("action: unknown action %q", truncate(action, 64))
	}
	if err := policy.ValidateResource(resource); err != nil {
		return CheckResult{}, Invalid("%v", err)
	}
	res, err := b.throttledCheck(clientAddr, func() (CheckResult, error) {
		p, err := b.Authenticate(ctx, cred)
		if KindOf(err) == KindUnauthenticated {
			return CheckResult{Reason: CheckReasonCredentialInvalid}, nil
		}
		if err != nil {
			return CheckResult{}, err
		}
		if !p.Allows(action, resource) {
			return CheckResult{Reason: CheckReasonPermissionDenied, Principal: p}, nil
		}
		return CheckResult{Allowed: true, Principal: p}, nil
	})
	if err == nil {
		// Usage metering: an allowed Check on a database is a read or a
		// write by its action; a refused one an error. In memory only.
		b.view.Meter.Record(resource, action, res.Allowed, b.now())
	}
	return res, err
}

// throttledCheck runs check under the per-address budget of failed checks:
// refused once exhausted, and an invalid credential spends from it.
func (b *Broker) throttledCheck(clientAddr string, check func() (CheckResult, error)) (CheckResult, error) {
	key := clientAddr // the Check limiter holds client addresses only
	if ok, retry := b.checks.Allow(key); !ok {
		b.obs.Throttled(ThrottleCheck)
		return CheckResult{}, &Error{Kind: KindExhausted, Msg: "too many failed checks from this address; retry later", RetryAfter: retry}
	}
	res, err := check()
	if err == nil && res.Reason == CheckReasonCredentialInvalid {
		b.checks.Failure(key)
	}
	return res, err
}

// AuthTokenTTL is the idle lifetime of authorization tokens.
func (b *Broker) AuthTokenTTL() time.Duration { return b.authTTL }

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
