package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/tokenbroker/tokenbroker/server/credential"
	"github.com/tokenbroker/tokenbroker/store"
)

// Application token lifecycle beyond create and delete: rotation with a
// grace period, the organization's lifetime policy, and finding and
// revoking tokens nobody uses.

// MaxRotationGrace is the longest grace period of a rotation: long enough
// to roll a credential through a deployment pipeline, short enough that a
// rotation is not a way to keep two credentials alive indefinitely.
const MaxRotationGrace = 7 * 24 * time.Hour

// maxLifetime bounds every duration a caller may give (100 years, as for
// Pulsar expiries).
const maxLifetime = 100 * 365 * 24 * time.Hour

// Token states shown in lists.
const (
	TokenStateActive  = "active"
	TokenStateRotated = "rotated"
	TokenStateExpired = "expired"
)

var lifetimeUnits = map[byte]time.Duration{
	's': time.Second, 'm': time.Minute, 'h': time.Hour,
	'd': 24 * time.Hour, 'w': 7 * 24 * time.Hour, 'y': 365 * 24 * time.Hour,
}

// ParseLifetime parses "<n><unit>" with unit s, m (minutes), h, d, w or y
// (365 days), n ≥ 0, at most 100 years. "" is 0. field names the input in
// errors.
func ParseLifetime(field, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	bad := func() error {
		return Invalid("%s: %q is not a duration like 90s, 5m, 2h, 30d, 2w or 1y", field, truncate(s, 16))
	}
	if len(s) < 2 || len(s) > 12 {
		return 0, bad()
	}
	unit, ok := lifetimeUnits[s[len(s)-1]]
	if !ok {
		return 0, bad()
	}
	n, err := strconv.ParseInt(s[:len(s)-1], 10, 64)
	if err != nil || n < 0 || s[0] == '+' {
		return 0, bad()
	}
	if n > int64(maxLifetime/unit) {
		return 0, Invalid("%s: %q is longer than 100 years", field, s)
	}
	return time.Duration(n) * unit, nil
}

// FormatLifetime writes d in the largest unit of ParseLifetime that
// divides it exactly ("30d", "12h", "90s"); 0 is "".
func FormatLifetime(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	for _, u := range []byte{'y', 'd', 'h', 'm'} {
		if d%lifetimeUnits[u] == 0 {
			return strconv.FormatInt(int64(d/lifetimeUnits[u]), 10) + string(u)
		}
	}
	return strconv.FormatInt(int64(d/time.Second), 10) + "s"
}

// TokenPolicy returns the organization's lifetime policy for new tokens.
func (b *Broker) TokenPolicy() store.TokenPolicy { return b.view.TokenPolicy() }

// UpdateTokenPolicy replaces the lifetime policy. Durations as for
// ParseLifetime; "" means no limit. Existing tokens keep their expiry.
func (b *Broker) UpdateTokenPolicy(ctx context.Context, caller *Principal, maxToken, maxPulsar string) (store.TokenPolicy, error) {
	app, err := ParseLifetime("maxTokenLifetime", maxToken)
	if err != nil {
		return store.TokenPolicy{}, err
	}
	if app != 0 && app < time.Minute {
		return store.TokenPolicy{}, Invalid("maxTokenLifetime: %q is shorter than the minimum 1m", maxToken)
	}
	pulsar, err := ParseLifetime("maxPulsarTokenLifetime", maxPulsar)
	if err != nil {
		return store.TokenPolicy{}, err
	}
	if pulsar != 0 && pulsar < minPulsarExpiry {
		return store.TokenPolicy{}, Invalid("maxPulsarTokenLifetime: %q is shorter than the minimum 5m of a Pulsar token", maxPulsar)
	}
	p := store.TokenPolicy{MaxTokenLifetime: app, MaxPulsarTokenLifetime: pulsar, UpdatedAt: b.now().UTC(), UpdatedBy: caller.ID}
	auditTarget(ctx, "token-policy", b.org.ID)
	org, err := b.st.UpdateOrganization(ctx, func(o store.Organization) (store.Organization, error) {
		o.TokenPolicy = p
		return o, nil
	})
	if err != nil {
		return store.TokenPolicy{}, fmt.Errorf("update token policy: %w", err)
	}
	b.log.InfoContext(ctx, "token policy updated", "max_token_lifetime", FormatLifetime(app),
		"max_pulsar_token_lifetime", FormatLifetime(pulsar), "by", caller.ID)
	return org.TokenPolicy, nil
}

// applyTokenPolicy returns the expiry of a new application token: the one
// asked for (zero: none), or the policy's maximum when none was asked for;
// one beyond the maximum is refused.
func (b *Broker) applyTokenPolicy(now, asked time.Time) (time.Time, error) {
	max := b.view.TokenPolicy().MaxTokenLifetime
	if max <= 0 {
		return asked, nil
	}
	limit := now.Add(max).UTC()
	if asked.IsZero() {
		return limit, nil
	}
	if asked.After(limit) {
		return time.Time{}, Invalid("tokenExpiry: %s is beyond the organization's maxTokenLifetime of %s (latest allowed now: %s)",
			asked.UTC().Format(time.RFC3339), FormatLifetime(max), limit.Format(time.RFC3339))
	}
	return asked, nil
}

// TokenState is what a list shows for a token at now.
func TokenState(t store.Token, now time.Time) string {
	switch {
	case t.Expired(now):
		return TokenStateExpired
	case t.RotatedTo != "":
		return TokenStateRotated
	default:
		return TokenStateActive
	}
}

// RotatedToken is the result of a rotation.
type RotatedToken struct {
	New IssuedToken
	Old store.Token // as stored after the rotation: Expiry is the end of its grace
}

// RotateToken replaces an application token by a new one with the same
// roles, description and lifetime (the time from creation to expiry, capped
// by the policy), and leaves the old one working for grace (0 .. 7 days),
// after which it is refused, with every auth token minted from it. The
// caller needs what both deleting the old and creating the new token need.
func (b *Broker) RotateToken(ctx context.Context, caller *Principal, clientID, grace string) (RotatedToken, error) {
	if !credential.ValidClientID(clientID) {
		return RotatedToken{}, Invalid("clientId: must be %d ASCII letters", credential.ClientIDLen)
	}
	g, err := ParseLifetime("gracePeriod", grace)
	if err != nil {
		return RotatedToken{}, err
	}
	if g > MaxRotationGrace {
		return RotatedToken{}, Invalid("gracePeriod: %q is beyond the maximum of %s", grace, FormatLifetime(MaxRotationGrace))
	}
	old, err := b.st.GetToken(ctx, clientID)
	if b.caughtUp(ctx, err) {
		old, err = b.st.GetToken(ctx, clientID)
	}
	if errors.Is(err, store.ErrNotFound) {
		return RotatedToken{}, NotFound("token with clientId %q not found", clientID)
	}
	if err != nil {
		return RotatedToken{}, fmt.Errorf("get token: %w", err)
	}
	now := b.now()
	if old.Expired(now) {
		return RotatedToken{}, NotFound("token with clientId %q not found", clientID)
	}
	if old.RotatedTo != "" {
		return RotatedToken{}, alreadyRotated(clientID, old.RotatedTo)
	}
	// Like delete: its own token, or one whose roles the caller could grant.
	if caller.ID != clientID {
		if err := b.mayManage(caller, "a token", old.Roles); err != nil {
			return RotatedToken{}, err
		}
	}
	// Like create: the caller may grant every role of the new token.
	if err := b.validateRoleList(caller, old.Roles); err != nil {
		return RotatedToken{}, err
	}
	var expiry time.Time
	if !old.Expiry.IsZero() {
		expiry = now.Add(old.Expiry.Sub(old.GeneratedOn)).UTC()
	}
	if max := b.view.TokenPolicy().MaxTokenLifetime; max > 0 && (expiry.IsZero() || expiry.After(now.Add(max))) {
		expiry = now.Add(max).UTC()
	}
	retires := now.Add(g).UTC()
	if !old.Expiry.IsZero() && old.Expiry.Before(retires) {
		retires = old.Expiry
	}

	for attempt := 0; ; attempt++ {
		cred, err := credential.New()
		if err != nil {
			return RotatedToken{}, fmt.Errorf("generate credential: %w", err)
		}
		next := store.Token{
			ClientID: cred.ClientID, OrgID: b.org.ID, Roles: slices.Clone(old.Roles), Description: old.Description,
			SecretMAC: b.mac.Sum(cred.Token), GeneratedOn: now.UTC(), Expiry: expiry, CreatedBy: caller.ID,
		}
		auditTarget(ctx, "token", clientID)
		auditDetail(ctx, fmt.Sprintf("rotated to %s; old token works until %s", next.ClientID, retires.Format(time.RFC3339)))
		stored, err := b.st.RotateToken(ctx, clientID, next, func(cur store.Token) (store.Token, error) {
			if cur.RotatedTo != "" {
				return cur, alreadyRotated(clientID, cur.RotatedTo)
			}
			if cur.Expiry.IsZero() || cur.Expiry.After(retires) {
				cur.Expiry = retires
			}
			cur.RotatedTo, cur.RotatedAt = next.ClientID, now.UTC()
			return cur, nil
		})
		var be *Error
		switch {
		case err == nil:
			b.log.InfoContext(ctx, "application token rotated", "client_id", clientID, "new_client_id", next.ClientID,
				"grace_until", retires, "by", caller.ID)
			return RotatedToken{New: IssuedToken{Token: next, Secret: cred.Secret, Bearer: cred.Token}, Old: stored}, nil
		case errors.As(err, &be):
			return RotatedToken{}, be
		case errors.Is(err, store.ErrNotFound):
			// The old token or one of its roles went meanwhile.
			if _, gerr := b.st.GetToken(ctx, clientID); errors.Is(gerr, store.ErrNotFound) {
				return RotatedToken{}, NotFound("token with clientId %q not found", clientID)
			}
			return RotatedToken{}, Invalid("roles: %v", err)
		case errors.Is(err, store.ErrAlreadyExists) && attempt < maxCreateRetries:
			continue // the new client ID collided
		default:
			return RotatedToken{}, fmt.Errorf("rotate token: %w", err)
		}
	}
}

func alreadyRotated(clientID, to string) error {
	return &Error{Kind: KindFailedPrecondition, Msg: fmt.Sprintf("token %q was already rotated to %q; rotate that one", clientID, to)}
}

// auditDetail sets the secret-free description of the current call's
// audit event.
func auditDetail(ctx context.Context, detail string) {
	if ev := store.AuditFrom(ctx); ev != nil {
		ev.Detail = detail
	}
}

// TokenFilter selects tokens in ListTokens and RevokeTokens.
type TokenFilter struct {
	UnusedFor string // a ParseLifetime duration; "" selects all
	Role      string // a role ID; "" selects all
}

type tokenMatcher func(store.Token) bool

func (b *Broker) tokenMatcher(f TokenFilter, now time.Time) (tokenMatcher, error) {
	unused, err := ParseLifetime("unusedFor", f.UnusedFor)
	if err != nil {
		return nil, err
	}
	if f.Role != "" {
		if _, ok := b.view.Role(f.Role); !ok {
			return nil, Invalid("role: unknown role id %q", truncate(f.Role, 64))
		}
	}
	return func(t store.Token) bool {
		if f.Role != "" && !slices.Contains(t.Roles, f.Role) {
			return false
		}
		if f.UnusedFor != "" {
			last := t.LastUsed
			if last.IsZero() {
				last = t.GeneratedOn // never used: idle since its creation
			}
			if now.Sub(last) < unused {
				return false
			}
		}
		return true
	}, nil
}

// ListTokensFiltered is ListTokens restricted to the tokens f selects. The
// last use compared is the newest known (memory or store).
func (b *Broker) ListTokensFiltered(ctx context.Context, f TokenFilter) ([]store.Token, error) {
	match, err := b.tokenMatcher(f, b.now())
	if err != nil {
		return nil, err
	}
	all, err := b.ListTokens(ctx)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(t store.Token) bool { return !match(t) }), nil
}

// RevokeTokens deletes every token bound to a role (and, with UnusedFor,
// unused that long) that the caller may revoke. With dryRun it only lists
// them. The caller's own credential is never revoked this way (revoking
// it mid-call would lock the caller out; delete it explicitly). A token
// the caller may not manage makes the whole call fail before anything is
// deleted.
func (b *Broker) RevokeTokens(ctx context.Context, caller *Principal, f TokenFilter, dryRun bool) ([]store.Token, error) {
	if f.Role == "" {
		return nil, Invalid("role: required (the role ID whose tokens are revoked)")
	}
	toks, err := b.ListTokensFiltered(ctx, f)
	if err != nil {
		return nil, err
	}
	toks = slices.DeleteFunc(toks, func(t store.Token) bool { return t.ClientID == caller.ID })
	for _, t := range toks {
		if err := b.mayManage(caller, "token "+t.ClientID, t.Roles); err != nil {
			return nil, err
		}
	}
	if err := b.refuseRevokingEveryOrgAdmin(ctx, toks); err != nil {
		return nil, err
	}
	if dryRun {
		return toks, nil
	}
	revoked := toks[:0]
	for _, t := range toks {
		auditTarget(ctx, "token", t.ClientID)
		auditDetail(ctx, "bulk revocation of role "+f.Role)
		var be *Error
		switch err := b.deleteToken(ctx, t); {
		case errors.Is(err, store.ErrNotFound):
			continue // gone meanwhile
		case errors.As(err, &be): // the last live administrator: another delete raced the check above
			be.Msg = fmt.Sprintf("%s (after %d revoked)", be.Msg, len(revoked))
			return revoked, be
		case err != nil:
			return revoked, fmt.Errorf("revoke token %s (after %d revoked): %w", t.ClientID, len(revoked), err)
		}
		revoked = append(revoked, t)
	}
	b.log.InfoContext(ctx, "application tokens revoked by role", "role_id", f.Role, "count", len(revoked), "by", caller.ID)
	return revoked, nil
}
