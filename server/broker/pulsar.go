package broker

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

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
}

// signing holds the signing keys in memory: the active private key, and
// the public keys still published.
type signing struct {
	mu     sync.RWMutex
	kid    string
	key    *rsa.PrivateKey
	public map[string]*rsa.PublicKey
	jwks   []pulsarjwt.JWK // published, newest first
}

func (s *signing) active() (string, *rsa.PrivateKey) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.kid, s.key
}

func (s *signing) publicKey(kid string) *rsa.PublicKey {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.public[kid]
}

// JWKS returns the published public keys.
func (b *Broker) JWKS() []pulsarjwt.JWK {
	b.keys.mu.RLock()
	defer b.keys.mu.RUnlock()
	return append([]pulsarjwt.JWK(nil), b.keys.jwks...)
}

// Issuer returns the iss claim of issued Pulsar tokens.
func (b *Broker) Issuer() string { return b.pulsar.Issuer }

// ensureSigningKey creates the first signing key if there is none, then
// loads the keys into memory.
func (b *Broker) ensureSigningKey(ctx context.Context) error {
	keys, err := b.st.SigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("read signing keys: %w", err)
	}
	if len(keys) == 0 {
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
	return b.loadSigningKeys(ctx)
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

func (b *Broker) loadSigningKeys(ctx context.Context) error {
	keys, err := b.st.SigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("read signing keys: %w", err)
	}
	public := make(map[string]*rsa.PublicKey, len(keys))
	var jwks []pulsarjwt.JWK
	var activeKid string
	var active *rsa.PrivateKey
	for i := len(keys) - 1; i >= 0; i-- { // newest first
		k := keys[i]
		pub, err := pulsarjwt.ParsePublicDER(k.PublicDER)
		if err != nil {
			return fmt.Errorf("signing key %s: %w", k.Kid, err)
		}
		public[k.Kid] = pub
		jwks = append(jwks, pulsarjwt.PublicJWK(k.Kid, pub))
		if k.RetiredAt.IsZero() && active == nil {
			der, err := pulsarjwt.Open(b.pulsar.SealKey, k.SealedPrivate, []byte("signing-key:"+k.Kid))
			if err != nil {
				return fmt.Errorf("signing key %s cannot be decrypted with this key file: %w", k.Kid, err)
			}
			if active, err = pulsarjwt.ParsePrivateKey(der); err != nil {
				return fmt.Errorf("signing key %s: %w", k.Kid, err)
			}
			activeKid = k.Kid
		}
	}
	if active == nil {
		return errors.New("no active signing key")
	}
	b.keys.mu.Lock()
	b.keys.kid, b.keys.key, b.keys.public, b.keys.jwks = activeKid, active, public, jwks
	b.keys.mu.Unlock()
	return nil
}

// RotateSigningKey makes a new key active for new tokens. The previous key
// is retired: it signs nothing more but stays published (JWKS) until every
// token it signed has expired or been deleted (see pruneSigningKeys).
func (b *Broker) RotateSigningKey(ctx context.Context, caller *Principal) (kid, previous string, err error) {
	k, err := b.newSigningKey()
	if err != nil {
		return "", "", err
	}
	now := b.now().UTC()
	auditTarget(ctx, "signing-key", k.Kid)
	err = b.st.UpdateSigningKeys(ctx, func(cur []store.SigningKey) ([]store.SigningKey, error) {
		previous = ""
		for i := range cur {
			if cur[i].RetiredAt.IsZero() {
				previous = cur[i].Kid
				cur[i].RetiredAt = now
			}
		}
		return append(cur, k), nil
	})
	if err != nil {
		return "", "", fmt.Errorf("rotate signing key: %w", err)
	}
	if err := b.loadSigningKeys(ctx); err != nil {
		return "", "", err
	}
	b.log.InfoContext(ctx, "signing key rotated", "kid", k.Kid, "previous_kid", previous, "by", caller.ID)
	return k.Kid, previous, nil
}

// pruneSigningKeys removes retired keys that no live token was signed with.
func (b *Broker) pruneSigningKeys(ctx context.Context) error {
	tenants, err := b.st.ListTenants(ctx)
	if err != nil {
		return err
	}
	now := b.now()
	inUse := map[string]bool{}
	for _, t := range tenants {
		toks, err := b.st.ListPulsarTokens(ctx, t.Name)
		if err != nil {
			return err
		}
		for _, tok := range toks {
			if tok.Kid != "" && !tok.Expired(now) {
				inUse[tok.Kid] = true
			}
		}
	}
	pruned := 0
	err = b.st.UpdateSigningKeys(ctx, func(cur []store.SigningKey) ([]store.SigningKey, error) {
		pruned = 0
		keep := cur[:0]
		for _, k := range cur {
			if k.RetiredAt.IsZero() || inUse[k.Kid] {
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
		return b.loadSigningKeys(ctx)
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

// ListTenants returns every tenant.
func (b *Broker) ListTenants(ctx context.Context) ([]store.Tenant, error) {
	ts, err := b.st.ListTenants(ctx)
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	return ts, nil
}

// GetTenant returns one tenant; cluster, when set (the
// X-DataStax-Pulsar-Cluster header), must be the tenant's.
func (b *Broker) GetTenant(ctx context.Context, name, cluster string) (store.Tenant, error) {
	t, err := b.st.GetTenant(ctx, name)
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
		kid, key := b.keys.active()
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

// ListPulsarTokens returns a tenant's tokens.
func (b *Broker) ListPulsarTokens(ctx context.Context, tenant, cluster string) ([]store.PulsarToken, error) {
	if _, err := b.GetTenant(ctx, tenant, cluster); err != nil {
		return nil, err
	}
	toks, err := b.st.ListPulsarTokens(ctx, tenant)
	if err != nil {
		return nil, fmt.Errorf("list pulsar tokens: %w", err)
	}
	return toks, nil
}

// GetPulsarToken returns one token's record.
func (b *Broker) GetPulsarToken(ctx context.Context, tenant, cluster, id string) (store.PulsarToken, error) {
	if _, err := b.GetTenant(ctx, tenant, cluster); err != nil {
		return store.PulsarToken{}, err
	}
	t, err := b.st.GetPulsarToken(ctx, id)
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
		return TenantTokenKeys{Format: FormatHS256, Secret: secret}, nil
	}
	kid, key := b.keys.active()
	der, err := pulsarjwt.PublicDER(&key.PublicKey)
	if err != nil {
		return TenantTokenKeys{}, err
	}
	return TenantTokenKeys{Format: FormatRS256, Kid: kid, PublicDER: der}, nil
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
		pub := b.keys.publicKey(rec.Kid)
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
		if err != nil || tok.VerifyHS256(secret) != nil {
			return invalid, nil
		}
	}
	p := &Principal{Kind: PrincipalPulsarToken, ID: rec.ID, OrgID: b.org.ID, Credential: CredentialPulsarJWT}
	if resource != policy.StreamDRN(b.org.ID, rec.Tenant) {
		return CheckResult{Reason: CheckReasonPermissionDenied, Principal: p}, nil
	}
	return CheckResult{Allowed: true, Principal: p}, nil
}
