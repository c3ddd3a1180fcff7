package broker

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"

	"github.com/tokenbroker/tokenbroker/server/policy"
	"github.com/tokenbroker/tokenbroker/server/pulsarjwt"
	"github.com/tokenbroker/tokenbroker/store"
)

// Token formats of a tenant.
const (
	FormatRS256 = "rs256"
	FormatHS256 = "hs256"
)

// Pulsar token types (Astra's v3 "type").
const (
	PulsarTypeAdmin    = "admin"
	PulsarTypeNonAdmin = "non-admin"
)

// PrincipalPulsarToken is the principal kind of a Pulsar JWT in Check.
const (
	PrincipalPulsarToken = "pulsar-token"
	CredentialPulsarJWT  = "pulsar-jwt"
)

// DefaultPulsarTokenLimit is the default number of live tokens per tenant.
const DefaultPulsarTokenLimit = 100

// minPulsarExpiry is the shortest expiry accepted. It also catches "1m"
// written for "one month": m means minutes here, and 1m is refused with a
// message that says so.
const minPulsarExpiry = 5 * time.Minute

// PulsarConfig configures Pulsar token issuing.
type PulsarConfig struct {
	// Issuer is the iss claim and the OIDC issuer URL.
	Issuer string
	// Audience is the aud claim (Pulsar's openIDAllowedAudiences / tokenAudience).
	Audience string
	// TokenLimit is the maximum number of live tokens per tenant (<= 0: default).
	TokenLimit int
	// SealKey encrypts private keys and tenant secrets at rest (32 bytes,
	// derived from the key file).
	SealKey []byte
	// KeyRotation, when positive, rotates the signing key on a schedule:
	// the next key is prepared (published) when the active one is half this
	// old, and activated when it is this old.
	KeyRotation time.Duration
}

// JWKS returns the published public keys.
func (b *Broker) JWKS() []jose.JSONWebKey {
	return append([]jose.JSONWebKey(nil), b.view.Keys().JWKS...)
}

// Issuer returns the iss claim of issued Pulsar tokens.
func (b *Broker) Issuer() string { return b.pulsar.Issuer }

// ensureSigningKey creates the first signing key if there is none; the
// view loads it (it loaded any existing ones when it opened).
func (b *Broker) ensureSigningKey(ctx context.Context) error {
	if len(b.view.Keys().Public) == 0 {
		k, err := b.newSigningKey()
		if err != nil {
			return err
		}
		err = b.st.UpdateSigningKeys(ctx, func(cur []store.SigningKey) ([]store.SigningKey, error) {
			if len(cur) > 0 {
				return cur, nil // another writer created one first
			}
			return []store.SigningKey{k}, nil
		})
		if err != nil {
			return fmt.Errorf("create signing key: %w", err)
		}
	}
	return b.keysLoaded()
}

// keysLoaded reports, after a write of the signing key set, whether the
// view could load the result (it reloads from the change feed before the
// write returns).
func (b *Broker) keysLoaded() error {
	if err := b.view.KeysError(); err != nil {
		return err
	}
	if b.view.Keys().Key == nil {
		return errors.New("no active signing key")
	}
	return nil
}

// newSigningKey generates a key pair outside any transaction (RSA key
// generation takes tens of milliseconds).
func (b *Broker) newSigningKey() (store.SigningKey, error) {
	priv, err := pulsarjwt.GenerateRSAKey()
	if err != nil {
		return store.SigningKey{}, fmt.Errorf("generate signing key: %w", err)
	}
	kid, err := pulsarjwt.KeyID(&priv.PublicKey)
	if err != nil {
		return store.SigningKey{}, err
	}
	der, err := pulsarjwt.PublicDER(&priv.PublicKey)
	if err != nil {
		return store.SigningKey{}, err
	}
	pkcs8, err := pulsarjwt.MarshalPrivateKey(priv)
	if err != nil {
		return store.SigningKey{}, err
	}
	sealed, err := pulsarjwt.Seal(b.pulsar.SealKey, pkcs8, []byte("signing-key:"+kid))
	if err != nil {
		return store.SigningKey{}, err
	}
	return store.SigningKey{Kid: kid, Alg: "RS256", PublicDER: der, SealedPrivate: sealed, CreatedAt: b.now().UTC()}, nil
}

// Signing key rotation phases (RotateSigningKey's phase).
const (
	PhaseImmediate = ""         // a new key signs at once
	PhasePrepare   = "prepare"  // a new key is published but does not sign yet
	PhaseActivate  = "activate" // the prepared key starts signing
)

// Signing key states in RotateSigningKey's answer.
const (
	KeyStateActive  = "active"
	KeyStatePending = "pending"
)

// RotatedKey is the outcome of RotateSigningKey.
type RotatedKey struct {
	Kid, Previous, State string
}

// RotateSigningKey rotates the organization's signing key.
//
// PhaseImmediate makes a new key active for new tokens at once. PhasePrepare
// creates the next key and publishes it (JWKS, token-keys) without signing
// with it, so that verifiers can pick it up before any token needs it;
// PhaseActivate then makes it sign. Either way the key that signed before
// is retired: it signs nothing more but stays published until every token
// it signed has expired or been deleted (see pruneSigningKeys).
func (b *Broker) RotateSigningKey(ctx context.Context, caller *Principal, phase string) (RotatedKey, error) {
	var out RotatedKey
	var err error
	switch phase {
	case PhaseImmediate, PhasePrepare:
		out, err = b.newNextKey(ctx, phase == PhasePrepare)
	case PhaseActivate:
		out, err = b.activateNextKey(ctx)
	default:
		return RotatedKey{}, Invalid("phase: %q is not \"\" (immediate), %q or %q", truncate(phase, 32), PhasePrepare, PhaseActivate)
	}
	if err != nil {
		return RotatedKey{}, err
	}
	by := "schedule"
	if caller != nil {
		by = caller.ID
	}
	b.log.InfoContext(ctx, "signing key rotated", "phase", phase, "kid", out.Kid, "previous_kid", out.Previous, "state", out.State, "by", by)
	return out, nil
}

func (b *Broker) newNextKey(ctx context.Context, pending bool) (RotatedKey, error) {
	k, err := b.newSigningKey()
	if err != nil {
		return RotatedKey{}, err
	}
	now := b.now().UTC()
	k.Pending = pending
	if !pending {
		k.ActivatedAt = now
	}
	auditTarget(ctx, "signing-key", k.Kid)
	var previous string
	err = b.st.UpdateSigningKeys(ctx, func(cur []store.SigningKey) ([]store.SigningKey, error) {
		previous = ""
		for i := range cur {
			if cur[i].Pending {
				return nil, &Error{Kind: KindFailedPrecondition, Msg: fmt.Sprintf(
					"signing key %s is prepared and waiting; activate it (phase %q) first", cur[i].Kid, PhaseActivate)}
			}
		}
		if !pending {
			for i := range cur {
				if cur[i].RetiredAt.IsZero() {
					previous = cur[i].Kid
					cur[i].RetiredAt = now
				}
			}
		}
		return append(cur, k), nil
	})
	if err != nil {
		return RotatedKey{}, unwrapDomain(err, "rotate signing key")
	}
	if err := b.keysLoaded(); err != nil {
		return RotatedKey{}, err
	}
	state := KeyStateActive
	if pending {
		state = KeyStatePending
	}
	return RotatedKey{Kid: k.Kid, Previous: previous, State: state}, nil
}

func (b *Broker) activateNextKey(ctx context.Context) (RotatedKey, error) {
	now := b.now().UTC()
	// The audit event is written with the change, so its target is set
	// before: the prepared key as last loaded (the closure re-checks).
	if kid, _ := b.view.Keys().Next(); kid != "" {
		auditTarget(ctx, "signing-key", kid)
	}
	var out RotatedKey
	err := b.st.UpdateSigningKeys(ctx, func(cur []store.SigningKey) ([]store.SigningKey, error) {
		out = RotatedKey{State: KeyStateActive}
		next := -1
		for i := range cur {
			if cur[i].Pending {
				next = i
			}
		}
		if next < 0 {
			return nil, &Error{Kind: KindFailedPrecondition, Msg: fmt.Sprintf("no prepared signing key; prepare one first (phase %q)", PhasePrepare)}
		}
		for i := range cur {
			if i != next && cur[i].RetiredAt.IsZero() && !cur[i].Pending {
				out.Previous = cur[i].Kid
				cur[i].RetiredAt = now
			}
		}
		cur[next].Pending, cur[next].ActivatedAt = false, now
		out.Kid = cur[next].Kid
		return cur, nil
	})
	if err != nil {
		return RotatedKey{}, unwrapDomain(err, "activate signing key")
	}
	if err := b.keysLoaded(); err != nil {
		return RotatedKey{}, err
	}
	return out, nil
}

// unwrapDomain returns the domain error a store closure returned, or err
// wrapped with what.
func unwrapDomain(err error, what string) error {
	var be *Error
	if errors.As(err, &be) {
		return be
	}
	return fmt.Errorf("%s: %w", what, err)
}

// rotateSigningKeyOnSchedule prepares the next key once the active one is
// half of KeyRotation old, and activates it once the active one is
// KeyRotation old: a verifier that refreshes its JWKS at least every
// KeyRotation/2 knows each key before any token is signed with it.
func (b *Broker) rotateSigningKeyOnSchedule(ctx context.Context) error {
	period := b.pulsar.KeyRotation
	if period <= 0 {
		return nil
	}
	keys, err := b.st.SigningKeys(ctx)
	if err != nil {
		return err
	}
	var active *store.SigningKey
	pending := false
	for i := range keys {
		switch {
		case keys[i].Pending:
			pending = true
		case keys[i].RetiredAt.IsZero():
			active = &keys[i]
		}
	}
	if active == nil {
		return nil
	}
	since := active.ActivatedAt
	if since.IsZero() {
		since = active.CreatedAt
	}
	age := b.now().Sub(since)
	switch {
	case pending && age >= period:
		_, err = b.RotateSigningKey(ctx, nil, PhaseActivate)
	case !pending && age >= period/2:
		_, err = b.RotateSigningKey(ctx, nil, PhasePrepare)
	}
	return err
}

// signingKeyPruneMargin is how long a retired signing key is kept even when
// no live token names it (see pruneSigningKeys): far above a replica's
// staleness bound and a call's timeout.
const signingKeyPruneMargin = 2 * time.Minute

// pruneSigningKeys removes retired keys that no live token was signed with.
// It runs on the GC timer, so its idle cost must not grow with the number of
// tokens: with no retired key (the normal state) it is one short read, no
// token scan and no write; while retired keys remain, the scan stops as soon
// as every one of them is known to be in use, and nothing is written unless
// a key can go.
//
// Only keys retired at least signingKeyPruneMargin ago are candidates: a
// replica whose view of the store lags (by at most its staleness bound,
// seconds) may still sign with a key another replica has just retired, and
// that token's record must be in the store before the scan that decides
// the key is unused. A key retired after the read below is never dropped.
func (b *Broker) pruneSigningKeys(ctx context.Context) error {
	keys, err := b.st.SigningKeys(ctx)
	if err != nil {
		return err
	}
	now := b.now()
	retired := map[string]bool{}
	for _, k := range keys {
		if !k.RetiredAt.IsZero() && now.Sub(k.RetiredAt) >= signingKeyPruneMargin {
			retired[k.Kid] = true
		}
	}
	if len(retired) == 0 {
		return nil
	}
	tenants, err := b.st.ListTenants(ctx)
	if err != nil {
		return err
	}
	inUse := map[string]bool{}
scan:
	for _, t := range tenants {
		toks, err := b.st.ListPulsarTokens(ctx, t.Name)
		if err != nil {
			return err
		}
		for _, tok := range toks {
			if retired[tok.Kid] && !tok.Expired(now) {
				inUse[tok.Kid] = true
				if len(inUse) == len(retired) {
					break scan // every retired key still signs a live token
				}
			}
		}
	}
	if len(inUse) == len(retired) {
		return nil
	}
	pruned := 0
	err = b.st.UpdateSigningKeys(ctx, func(cur []store.SigningKey) ([]store.SigningKey, error) {
		pruned = 0
		keep := cur[:0]
		for _, k := range cur {
			if !retired[k.Kid] || inUse[k.Kid] {
				keep = append(keep, k)
			} else {
				pruned++
			}
		}
		return keep, nil
	})
	if err != nil {
		return err
	}
	if pruned > 0 {
		b.log.InfoContext(ctx, "retired signing keys unpublished", "count", pruned)
		return b.keysLoaded()
	}
	return nil
}

// TenantInput is a tenant to create.
type TenantInput struct {
	Name, Cluster                                 string
	ClusterHeader                                 string // X-DataStax-Pulsar-Cluster, optional
	WebServiceURL, BrokerServiceURL, WebsocketURL string
	CloudProvider, CloudRegion                    string
	TokenFormat                                   string
}

var tenantNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// CreateTenant creates a tenant and its first admin token (Astra returns
// one with every new tenant).
func (b *Broker) CreateTenant(ctx context.Context, caller *Principal, in TenantInput) (store.Tenant, IssuedPulsarToken, error) {
	if !tenantNameRE.MatchString(in.Name) {
		return store.Tenant{}, IssuedPulsarToken{}, Invalid("tenantName: 1 to 64 characters of letters, digits, '_', '.' and '-'")
	}
	if in.Cluster == "" || len(in.Cluster) > 128 {
		return store.Tenant{}, IssuedPulsarToken{}, Invalid("clusterName: required, at most 128 characters")
	}
	if err := validateText("clusterName", in.Cluster, 128); err != nil {
		return store.Tenant{}, IssuedPulsarToken{}, err
	}
	if in.ClusterHeader != "" && in.ClusterHeader != in.Cluster {
		return store.Tenant{}, IssuedPulsarToken{}, Invalid("X-DataStax-Pulsar-Cluster %q does not match clusterName %q", truncate(in.ClusterHeader, 128), in.Cluster)
	}
	for field, u := range map[string]string{"webServiceUrl": in.WebServiceURL, "brokerServiceUrl": in.BrokerServiceURL, "websocketUrl": in.WebsocketURL} {
		if len(u) > 1024 || strings.IndexFunc(u, func(r rune) bool { return r == ' ' || unicode.IsControl(r) }) >= 0 {
			return store.Tenant{}, IssuedPulsarToken{}, Invalid("%s: not a URL", field)
		}
	}
	switch in.TokenFormat {
	case "":
		in.TokenFormat = FormatRS256
	case FormatRS256, FormatHS256:
	default:
		return store.Tenant{}, IssuedPulsarToken{}, Invalid("tokenFormat: %q is not one of %q, %q", truncate(in.TokenFormat, 32), FormatRS256, FormatHS256)
	}
	t := store.Tenant{
		Name: in.Name, OrgID: b.org.ID, ClusterName: in.Cluster,
		WebServiceURL: in.WebServiceURL, BrokerServiceURL: in.BrokerServiceURL, WebsocketURL: in.WebsocketURL,
		CloudProvider: in.CloudProvider, CloudRegion: in.CloudRegion,
		TokenFormat: in.TokenFormat, CreatedAt: b.now().UTC(), CreatedBy: caller.ID,
	}
	if t.TokenFormat == FormatHS256 {
		secret := make([]byte, 32) // HS256: Pulsar's create-secret-key default size
		if _, err := rand.Read(secret); err != nil {
			return store.Tenant{}, IssuedPulsarToken{}, err
		}
		sealed, err := pulsarjwt.Seal(b.pulsar.SealKey, secret, tenantSecretAAD(t.Name))
		if err != nil {
			return store.Tenant{}, IssuedPulsarToken{}, err
		}
		t.SealedSecret = sealed
	}
	auditTarget(ctx, "tenant", t.Name)
	switch err := b.st.CreateTenant(ctx, t); {
	case errors.Is(err, store.ErrAlreadyExists):
		return store.Tenant{}, IssuedPulsarToken{}, &Error{Kind: KindAlreadyExists, Msg: fmt.Sprintf("tenant %q exists already", t.Name)}
	case err != nil:
		return store.Tenant{}, IssuedPulsarToken{}, fmt.Errorf("create tenant: %w", err)
	}
	b.log.InfoContext(ctx, "tenant created", "tenant", t.Name, "format", t.TokenFormat, "by", caller.ID)
	tok, err := b.CreatePulsarToken(ctx, caller, PulsarTokenInput{Tenant: t.Name})
	if err != nil {
		return t, IssuedPulsarToken{}, err
	}
	return t, tok, nil
}

func tenantSecretAAD(name string) []byte { return []byte("tenant-secret:" + name) }

// GetTenant returns one tenant; cluster, when set (the
// X-DataStax-Pulsar-Cluster header), must be the tenant's.
func (b *Broker) GetTenant(ctx context.Context, name, cluster string) (store.Tenant, error) {
	t, err := b.st.GetTenant(ctx, name)
	if b.caughtUp(ctx, err) {
		t, err = b.st.GetTenant(ctx, name)
	}
	if errors.Is(err, store.ErrNotFound) {
		return store.Tenant{}, NotFound("tenant %q not found", truncate(name, 64))
	}
	if err != nil {
		return store.Tenant{}, fmt.Errorf("get tenant: %w", err)
	}
	if cluster != "" && cluster != t.ClusterName {
		return store.Tenant{}, Invalid("cluster %q does not match tenant %q's cluster %q", truncate(cluster, 128), t.Name, t.ClusterName)
	}
	return t, nil
}

// DeleteTenant deletes a tenant and all its tokens.
func (b *Broker) DeleteTenant(ctx context.Context, caller *Principal, name, cluster string) error {
	if _, err := b.GetTenant(ctx, name, cluster); err != nil {
		return err
	}
	auditTarget(ctx, "tenant", name)
	if err := b.st.DeleteTenant(ctx, name); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return NotFound("tenant %q not found", name)
		}
		return fmt.Errorf("delete tenant: %w", err)
	}
	b.log.InfoContext(ctx, "tenant deleted", "tenant", name, "by", caller.ID)
	return nil
}

// PulsarTokenInput is a Pulsar token to issue.
type PulsarTokenInput struct {
	Tenant  string
	Cluster string // X-DataStax-Pulsar-Cluster, optional
	Exp     string
	Role    string
	Type    string
}

// IssuedPulsarToken is a new token with its one-time JWT.
type IssuedPulsarToken struct {
	store.PulsarToken
	JWT string
}

// ParsePulsarExpiry parses Astra's expiry strings: "" or "never" (no
// expiry), the UI presets 7d 30d 60d 90d 180d 1y, or <n><unit> with unit m
// (minutes), h, d, w or y (365 days). The result is at least 5 minutes and
// at most 100 years; 0 means never.
func ParsePulsarExpiry(s string) (time.Duration, error) {
	if s == "" || s == "never" {
		return 0, nil
	}
	if len(s) < 2 || len(s) > 12 {
		return 0, Invalid("exp: %q is not a duration like 5m, 2h, 10d, 1w, 1y or \"never\"", truncate(s, 16))
	}
	n, err := strconv.Atoi(s[:len(s)-1])
	if err != nil || n <= 0 {
		return 0, Invalid("exp: %q is not a duration like 5m, 2h, 10d, 1w, 1y or \"never\"", s)
	}
	units := map[byte]time.Duration{'m': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour, 'w': 7 * 24 * time.Hour, 'y': 365 * 24 * time.Hour}
	unit, ok := units[s[len(s)-1]]
	if !ok {
		return 0, Invalid("exp: unit of %q must be m (minutes), h, d, w or y", s)
	}
	const maxExpiry = 100 * 365 * 24 * time.Hour
	if n > int(maxExpiry/unit) {
		return 0, Invalid("exp: %q is longer than 100 years; use \"never\"", s)
	}
	d := time.Duration(n) * unit
	if d < minPulsarExpiry {
		return 0, Invalid("exp: %q is shorter than the minimum 5m (m means minutes)", s)
	}
	return d, nil
}

var pulsarRoleRE = regexp.MustCompile(`^[\x21-\x7e]{1,256}$`) // printable ASCII, no spaces

// CreatePulsarToken issues a Pulsar JWT for a tenant.
func (b *Broker) CreatePulsarToken(ctx context.Context, caller *Principal, in PulsarTokenInput) (IssuedPulsarToken, error) {
	t, err := b.GetTenant(ctx, in.Tenant, in.Cluster)
	if err != nil {
		return IssuedPulsarToken{}, err
	}
	ttl, err := ParsePulsarExpiry(in.Exp)
	if err != nil {
		return IssuedPulsarToken{}, err
	}
	if max := b.view.TokenPolicy().MaxPulsarTokenLifetime; max > 0 {
		switch {
		case in.Exp == "":
			ttl = max // no expiry asked for: the organization's maximum
		case ttl == 0:
			return IssuedPulsarToken{}, Invalid("exp: \"never\" is beyond the organization's maxPulsarTokenLifetime of %s", FormatLifetime(max))
		case ttl > max:
			return IssuedPulsarToken{}, Invalid("exp: %q is beyond the organization's maxPulsarTokenLifetime of %s", in.Exp, FormatLifetime(max))
		}
	}
	switch in.Type {
	case "":
		in.Type = PulsarTypeAdmin
	case PulsarTypeAdmin, PulsarTypeNonAdmin:
	default:
		return IssuedPulsarToken{}, Invalid("type: %q is not %q or %q", truncate(in.Type, 32), PulsarTypeAdmin, PulsarTypeNonAdmin)
	}
	if in.Role == "" {
		if in.Type == PulsarTypeNonAdmin {
			return IssuedPulsarToken{}, Invalid("role: required for a non-admin token")
		}
		in.Role = t.Name + "-admin"
	}
	if !pulsarRoleRE.MatchString(in.Role) {
		return IssuedPulsarToken{}, Invalid("role: 1 to 256 printable ASCII characters without spaces")
	}

	now := b.now().UTC().Truncate(time.Second) // JWT times are whole seconds
	rec := store.PulsarToken{
		ID: uuid.NewString(), Tenant: t.Name, Role: in.Role, Type: in.Type,
		IssuedAt: now, CreatedBy: caller.ID,
	}
	var exp int64
	if ttl > 0 {
		rec.Expiry = now.Add(ttl)
		exp = rec.Expiry.Unix()
	}
	var jwt string
	switch t.TokenFormat {
	case FormatHS256:
		secret, err := b.tenantSecret(t)
		if err != nil {
			return IssuedPulsarToken{}, err
		}
		jwt, err = pulsarjwt.SignHS256Plain(secret, in.Role, exp)
		if err != nil {
			return IssuedPulsarToken{}, err
		}
	default:
		keys := b.view.Keys()
		kid, key := keys.Kid, keys.Key
		rec.Kid = kid
		jwt, err = pulsarjwt.SignRS256(key, kid, pulsarjwt.Claims{
			Sub: in.Role, Iss: b.pulsar.Issuer, Aud: b.pulsar.Audience,
			Iat: now.Unix(), Nbf: now.Unix(), Exp: exp, TokenID: rec.ID,
		})
		if err != nil {
			return IssuedPulsarToken{}, err
		}
	}
	rec.MAC = b.pulsarMAC.Sum(jwt)
	auditTarget(ctx, "pulsar-token", rec.ID)
	switch err := b.st.CreatePulsarToken(ctx, rec, b.pulsar.TokenLimit); {
	case errors.Is(err, store.ErrLimitReached):
		return IssuedPulsarToken{}, &Error{Kind: KindFailedPrecondition, Msg: fmt.Sprintf("token limit exceeded for tenant %q (%d live tokens); delete some first", t.Name, b.pulsar.TokenLimit)}
	case errors.Is(err, store.ErrNotFound):
		return IssuedPulsarToken{}, NotFound("tenant %q not found", t.Name)
	case errors.Is(err, store.ErrAlreadyExists) && t.TokenFormat == FormatHS256:
		// Pulsar's plain format carries only sub and exp, so the same role
		// and expiry make the very same JWT: it already exists.
		return IssuedPulsarToken{}, &Error{Kind: KindAlreadyExists, Msg: fmt.Sprintf(
			"an identical token exists: plain-format (hs256) tokens carry only the role and expiry, so role %q with this expiry is already issued; choose another role or expiry", in.Role)}
	case err != nil:
		return IssuedPulsarToken{}, fmt.Errorf("create pulsar token: %w", err)
	}
	b.log.InfoContext(ctx, "pulsar token created", "tenant", t.Name, "token_id", rec.ID, "role", rec.Role, "by", caller.ID)
	return IssuedPulsarToken{PulsarToken: rec, JWT: jwt}, nil
}

// MaxSecretOverlap is the longest overlap of an hs256 secret rotation.
const MaxSecretOverlap = 30 * 24 * time.Hour

// RotateTenantSecret gives an hs256 tenant a new shared secret, which signs
// every token from now on. Tokens signed with the old secret keep verifying
// in Check for overlap (0 .. 30 days), then are refused. A second rotation
// is refused while the previous overlap lasts (it would cut it short).
func (b *Broker) RotateTenantSecret(ctx context.Context, caller *Principal, tenant, cluster, overlap string) (store.Tenant, []byte, error) {
	o, err := ParseLifetime("overlap", overlap)
	if err != nil {
		return store.Tenant{}, nil, err
	}
	if o > MaxSecretOverlap {
		return store.Tenant{}, nil, Invalid("overlap: %q is beyond the maximum of %s", overlap, FormatLifetime(MaxSecretOverlap))
	}
	t, err := b.GetTenant(ctx, tenant, cluster)
	if err != nil {
		return store.Tenant{}, nil, err
	}
	if t.TokenFormat != FormatHS256 {
		return store.Tenant{}, nil, &Error{Kind: KindFailedPrecondition, Msg: fmt.Sprintf(
			"tenant %q signs with the organization's RSA key (tokenFormat %q); rotate that with the signing-keys call", t.Name, t.TokenFormat)}
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return store.Tenant{}, nil, err
	}
	sealed, err := pulsarjwt.Seal(b.pulsar.SealKey, secret, tenantSecretAAD(t.Name))
	if err != nil {
		return store.Tenant{}, nil, err
	}
	now := b.now().UTC()
	auditTarget(ctx, "tenant", t.Name)
	auditDetail(ctx, "hs256 secret rotated; overlap "+FormatLifetime(o))
	updated, err := b.st.UpdateTenant(ctx, t.Name, func(cur store.Tenant) (store.Tenant, error) {
		if cur.PreviousSealedSecret != nil && cur.PreviousSecretRetiresAt.After(now) {
			return cur, &Error{Kind: KindFailedPrecondition, Msg: fmt.Sprintf(
				"the previous secret of tenant %q still verifies until %s; rotate again after that", cur.Name, cur.PreviousSecretRetiresAt.Format(time.RFC3339))}
		}
		cur.PreviousSealedSecret, cur.PreviousSecretRetiresAt = nil, time.Time{}
		if o > 0 {
			cur.PreviousSealedSecret, cur.PreviousSecretRetiresAt = cur.SealedSecret, now.Add(o)
		}
		cur.SealedSecret = sealed
		return cur, nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return store.Tenant{}, nil, NotFound("tenant %q not found", t.Name)
	}
	if err != nil {
		return store.Tenant{}, nil, unwrapDomain(err, "rotate tenant secret")
	}
	b.log.InfoContext(ctx, "tenant secret rotated", "tenant", t.Name, "overlap", FormatLifetime(o), "by", caller.ID)
	return updated, secret, nil
}

// previousTenantSecret returns the tenant's previous hs256 secret while its
// overlap lasts.
func (b *Broker) previousTenantSecret(t store.Tenant) ([]byte, bool) {
	if t.PreviousSealedSecret == nil || !t.PreviousSecretRetiresAt.After(b.now()) {
		return nil, false
	}
	prev, err := pulsarjwt.Open(b.pulsar.SealKey, t.PreviousSealedSecret, tenantSecretAAD(t.Name))
	if err != nil {
		return nil, false
	}
	return prev, true
}

func (b *Broker) tenantSecret(t store.Tenant) ([]byte, error) {
	secret, err := pulsarjwt.Open(b.pulsar.SealKey, t.SealedSecret, tenantSecretAAD(t.Name))
	if err != nil {
		return nil, fmt.Errorf("tenant %q secret cannot be decrypted with this key file: %w", t.Name, err)
	}
	return secret, nil
}

// PulsarClaims returns the claim map shown for a token: what its JWT
// carries, plus tokenid and iat for plain-format tokens, whose JWT has
// neither (so that they can be listed and deleted).
func (b *Broker) PulsarClaims(t store.PulsarToken) map[string]any {
	m := map[string]any{"sub": t.Role, "tokenid": t.ID, "iat": t.IssuedAt.Unix()}
	if t.Kid != "" {
		m["iss"], m["aud"], m["nbf"] = b.pulsar.Issuer, b.pulsar.Audience, t.IssuedAt.Unix()
	}
	if !t.Expiry.IsZero() {
		m["exp"] = t.Expiry.Unix()
	}
	return m
}

// GetPulsarToken returns one token's record.
func (b *Broker) GetPulsarToken(ctx context.Context, tenant, cluster, id string) (store.PulsarToken, error) {
	if _, err := b.GetTenant(ctx, tenant, cluster); err != nil {
		return store.PulsarToken{}, err
	}
	t, err := b.st.GetPulsarToken(ctx, id)
	if b.caughtUp(ctx, err) {
		t, err = b.st.GetPulsarToken(ctx, id)
	}
	if errors.Is(err, store.ErrNotFound) || (err == nil && t.Tenant != tenant) {
		return store.PulsarToken{}, NotFound("token %q not found in tenant %q", truncate(id, 64), tenant)
	}
	if err != nil {
		return store.PulsarToken{}, fmt.Errorf("get pulsar token: %w", err)
	}
	return t, nil
}

// DeletePulsarToken deletes a token; Check refuses it from then on.
func (b *Broker) DeletePulsarToken(ctx context.Context, caller *Principal, tenant, cluster, id string) error {
	if _, err := b.GetPulsarToken(ctx, tenant, cluster, id); err != nil {
		return err
	}
	auditTarget(ctx, "pulsar-token", id)
	if err := b.st.DeletePulsarToken(ctx, id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return NotFound("token %q not found in tenant %q", id, tenant)
		}
		return fmt.Errorf("delete pulsar token: %w", err)
	}
	b.log.InfoContext(ctx, "pulsar token deleted", "tenant", tenant, "token_id", id, "by", caller.ID)
	return nil
}

// TenantTokenKeys is what a Pulsar broker needs to verify a tenant's tokens.
type TenantTokenKeys struct {
	Format    string
	Kid       string
	PublicDER []byte // rs256
	Secret    []byte // hs256
	// A prepared signing key (rs256), published before it signs.
	NextKid       string
	NextPublicDER []byte
	// During an hs256 secret rotation's overlap: the previous secret.
	PreviousSecret          []byte
	PreviousSecretRetiresAt time.Time
}

// TenantTokenKeys returns the verification material for a tenant's tokens.
func (b *Broker) TenantTokenKeys(ctx context.Context, tenant, cluster string) (TenantTokenKeys, error) {
	t, err := b.GetTenant(ctx, tenant, cluster)
	if err != nil {
		return TenantTokenKeys{}, err
	}
	if t.TokenFormat == FormatHS256 {
		secret, err := b.tenantSecret(t)
		if err != nil {
			return TenantTokenKeys{}, err
		}
		out := TenantTokenKeys{Format: FormatHS256, Secret: secret}
		if prev, ok := b.previousTenantSecret(t); ok {
			out.PreviousSecret, out.PreviousSecretRetiresAt = prev, t.PreviousSecretRetiresAt
		}
		return out, nil
	}
	keys := b.view.Keys() // one set: the active and next key of one load
	kid, key := keys.Kid, keys.Key
	der, err := pulsarjwt.PublicDER(&key.PublicKey)
	if err != nil {
		return TenantTokenKeys{}, err
	}
	out := TenantTokenKeys{Format: FormatRS256, Kid: kid, PublicDER: der}
	if nextKid, pub := keys.Next(); pub != nil {
		if out.NextPublicDER, err = pulsarjwt.PublicDER(pub); err != nil {
			return TenantTokenKeys{}, err
		}
		out.NextKid = nextKid
	}
	return out, nil
}

// Audience returns the aud claim of issued tokens.
func (b *Broker) Audience() string { return b.pulsar.Audience }

// isJWTShape reports whether s looks like a compact JWS (three parts).
func isJWTShape(s string) bool { return strings.Count(s, ".") == 2 }

// checkPulsarJWT answers a Check for a Pulsar JWT. The broker knows every
// JWT it issued by its keyed MAC, so a token is accepted only if that
// record exists (deleted tokens, forged ones, alg:none and alg-confusion
// tokens have none), it verifies with the key the *record* names (never
// one chosen by the token's header), its times are valid, and the
// resource is its tenant's DRN. The action is not evaluated: Pulsar's own
// grants decide what a role may do.
func (b *Broker) checkPulsarJWT(ctx context.Context, jwt, resource string) (CheckResult, error) {
	invalid := CheckResult{Reason: CheckReasonCredentialInvalid}
	tok, err := pulsarjwt.Parse(jwt)
	if err != nil {
		return invalid, nil
	}
	rec, err := b.st.GetPulsarTokenByMAC(ctx, b.pulsarMAC.Sum(jwt))
	if errors.Is(err, store.ErrNotFound) {
		return invalid, nil
	}
	if err != nil {
		return CheckResult{}, fmt.Errorf("check pulsar token: %w", err)
	}
	now := b.now()
	if rec.Expired(now) || tok.Claims.ValidateTime(now, 0) != nil {
		return invalid, nil
	}
	if rec.Kid != "" {
		pub := b.view.Keys().Public[rec.Kid]
		if pub == nil || tok.Kid != rec.Kid || tok.VerifyRS256(pub) != nil || tok.Claims.TokenID != rec.ID ||
			tok.Claims.Iss != b.pulsar.Issuer {
			return invalid, nil
		}
	} else {
		t, err := b.st.GetTenant(ctx, rec.Tenant)
		if err != nil {
			return invalid, nil
		}
		secret, err := b.tenantSecret(t)
		if err != nil {
			return invalid, nil
		}
		if tok.VerifyHS256(secret) != nil {
			// During a secret rotation's overlap, the previous secret too.
			prev, ok := b.previousTenantSecret(t)
			if !ok || tok.VerifyHS256(prev) != nil {
				return invalid, nil
			}
		}
	}
	p := &Principal{Kind: PrincipalPulsarToken, ID: rec.ID, OrgID: b.org.ID, Credential: CredentialPulsarJWT}
	if resource != policy.StreamDRN(b.org.ID, rec.Tenant) {
		return CheckResult{Reason: CheckReasonPermissionDenied, Principal: p}, nil
	}
	return CheckResult{Allowed: true, Principal: p}, nil
}
