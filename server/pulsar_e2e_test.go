package server_test

// End-to-end tests of streaming tenants and Pulsar JWTs (docs/pulsar.md)
// against a real server over both transports: the Astra-style REST API,
// independent verification of every issued JWT with golang-jwt (through
// OIDC discovery + JWKS, and through the exported tokenPublicKey /
// tokenSecretKey, as a stock Pulsar broker would), Check's refusals,
// rotation, secrets at rest, authorization and restart. Time is the fake
// clock; no test sleeps.
//
// Helpers here are prefixed "pe" so they cannot collide with the other
// files of this package.

import (
	"bytes"
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"maps"
	"math/big"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	tbv1 "github.com/tokenbroker/tokenbroker/gen/tokenbroker/v1"
	"github.com/tokenbroker/tokenbroker/server"
	"github.com/tokenbroker/tokenbroker/server/policy"
	"github.com/tokenbroker/tokenbroker/server/pulsarjwt"
	"github.com/tokenbroker/tokenbroker/server/servertest"
)

const (
	peTenantsPath   = "/v2/streaming/tenants"
	peRotatePath    = "/v2/streaming/signing-keys/rotate"
	peCheckPath     = "/v1/auth/check"
	peDiscoveryPath = "/.well-known/openid-configuration"
	peClusterHeader = "X-DataStax-Pulsar-Cluster"
	peCluster       = "pulsar-east-1"
	peInvalid       = "CREDENTIAL_INVALID"
	peDenied        = "PERMISSION_DENIED"
	peDataURL       = "data:;base64,"
)

func peTokensPath(tenant string) string { return peTenantsPath + "/" + tenant + "/tokens" }
func peV3Path(tenant string) string     { return "/v3/streaming/tenants/" + tenant + "/tokens" }
func peKeysPath(tenant string) string   { return peTenantsPath + "/" + tenant + "/token-keys" }

// ---- JSON and HTTP helpers ---------------------------------------------------

// peDecode decodes one JSON value with numbers kept as json.Number.
func peDecode(t *testing.T, what string, raw []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: decode %q: %v", what, raw, err)
	}
}

func peObject(t *testing.T, what string, raw []byte) map[string]any {
	t.Helper()
	var m map[string]any
	peDecode(t, what, raw, &m)
	if m == nil {
		t.Fatalf("%s: want a JSON object, got %q", what, raw)
	}
	return m
}

func peArray(t *testing.T, what string, raw []byte) []map[string]any {
	t.Helper()
	var a []map[string]any
	peDecode(t, what, raw, &a)
	if a == nil {
		t.Fatalf("%s: want a JSON array, got %q", what, raw)
	}
	return a
}

func peWantKeys(t *testing.T, what string, m map[string]any, want ...string) {
	t.Helper()
	got := make([]string, 0, len(m))
	for k := range m {
		got = append(got, k)
	}
	sort.Strings(got)
	want = slices.Clone(want)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s: keys %v, want exactly %v", what, got, want)
	}
}

func peString(t *testing.T, what string, m map[string]any, key string) string {
	t.Helper()
	s, ok := m[key].(string)
	if !ok {
		t.Fatalf("%s: %q is %#v, want a string", what, key, m[key])
	}
	return s
}

func peInt(t *testing.T, what string, m map[string]any, key string) int64 {
	t.Helper()
	n, ok := m[key].(json.Number)
	if !ok {
		t.Fatalf("%s: %q is %#v, want a number", what, key, m[key])
	}
	i, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil {
		t.Fatalf("%s: %q is %s, want an integer", what, key, n)
	}
	return i
}

func peWantCode(t *testing.T, what string, got int, raw []byte, want int) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: HTTP %d, want %d; body %s", what, got, want, raw)
	}
}

// peWantError checks a DevOps API error: the status and the body
// {"errors":[{"ID":<status>,"message":"...msg..."}]}.
func peWantError(t *testing.T, what string, code int, raw []byte, want int, msg string) {
	t.Helper()
	if code != want {
		t.Errorf("%s: HTTP %d, want %d; body %s", what, code, want, raw)
		return
	}
	var body struct {
		Errors []struct {
			ID      int    `json:"ID"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(raw, &body); err != nil || len(body.Errors) != 1 {
		t.Errorf("%s: want {\"errors\":[one item]}, got %s", what, raw)
		return
	}
	if body.Errors[0].ID != want {
		t.Errorf("%s: error ID %d, want %d", what, body.Errors[0].ID, want)
	}
	if !strings.Contains(body.Errors[0].Message, msg) {
		t.Errorf("%s: message %q does not contain %q", what, body.Errors[0].Message, msg)
	}
}

func peWantGRPC(t *testing.T, what string, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Errorf("%s: gRPC %v, want %v", what, err, want)
	}
}

// peREST is env.REST with an X-DataStax-Pulsar-Cluster header when cluster
// is not "".
func peREST(t *testing.T, env *servertest.Env, method, path, bearer string, body any, cluster string) (int, []byte) {
	t.Helper()
	req := env.NewRequest(t, method, path, bearer, body)
	if cluster != "" {
		req.Header.Set(peClusterHeader, cluster)
	}
	code, raw, _ := env.Do(t, req)
	return code, raw
}

// peNoJWT fails if body holds anything that looks like a JWT segment (the
// base64url of a JSON object starts with "eyJ") or one of the tokens.
func peNoJWT(t *testing.T, what string, body []byte, tokens ...string) {
	t.Helper()
	if bytes.Contains(body, []byte("eyJ")) {
		t.Errorf("%s: body contains base64url JSON (a JWT part?): %s", what, body)
	}
	for _, tok := range tokens {
		if tok == "" {
			continue
		}
		parts := strings.Split(tok, ".")
		if bytes.Contains(body, []byte(tok)) || bytes.Contains(body, []byte(parts[len(parts)-1])) {
			t.Errorf("%s: body contains an issued JWT or its signature", what)
		}
	}
}

// ---- fixtures -----------------------------------------------------------------

// peCreateTenant creates a tenant over REST as the admin (cluster peCluster)
// and returns the tenant object and its first token.
func peCreateTenant(t *testing.T, env *servertest.Env, name, format string) (map[string]any, string) {
	t.Helper()
	body := map[string]any{"tenantName": name, "clusterName": peCluster}
	if format != "" {
		body["tokenFormat"] = format
	}
	code, raw, _ := env.REST(t, http.MethodPost, peTenantsPath, env.AdminToken, body)
	peWantCode(t, "create tenant "+name, code, raw, http.StatusOK)
	m := peObject(t, "create tenant "+name, raw)
	return m, peString(t, "create tenant "+name, m, "pulsarToken")
}

// peIssued is a create-token answer.
type peIssued struct{ ID, Role, JWT string }

func peIssuedFrom(t *testing.T, what string, code int, raw []byte) peIssued {
	t.Helper()
	peWantCode(t, what, code, raw, http.StatusCreated)
	m := peObject(t, what, raw)
	peWantKeys(t, what, m, "id", "rolename", "subject", "token")
	if sub, role := peString(t, what, m, "subject"), peString(t, what, m, "rolename"); sub != role {
		t.Errorf("%s: subject %q, rolename %q: want the same role", what, sub, role)
	}
	return peIssued{ID: peString(t, what, m, "id"), Role: peString(t, what, m, "rolename"), JWT: peString(t, what, m, "token")}
}

// peIssue creates a token with Astra's v3 call.
func peIssue(t *testing.T, env *servertest.Env, tenant string, body map[string]any) peIssued {
	t.Helper()
	code, raw, _ := env.REST(t, http.MethodPost, peV3Path(tenant), env.AdminToken, body)
	return peIssuedFrom(t, fmt.Sprintf("v3 create token %v in %s", body, tenant), code, raw)
}

// peIssueV2 creates a token with Astra's v2 call (?exp= when exp is not "").
func peIssueV2(t *testing.T, env *servertest.Env, tenant, exp string) peIssued {
	t.Helper()
	p := peTokensPath(tenant)
	if exp != "" {
		p += "?exp=" + url.QueryEscape(exp)
	}
	code, raw, _ := env.REST(t, http.MethodPost, p, env.AdminToken, nil)
	return peIssuedFrom(t, "v2 create token exp="+exp+" in "+tenant, code, raw)
}

func peDeleteToken(t *testing.T, env *servertest.Env, tenant, id string) {
	t.Helper()
	code, raw, _ := env.REST(t, http.MethodDelete, peTokensPath(tenant)+"/"+id, env.AdminToken, nil)
	peWantCode(t, "delete token "+id, code, raw, http.StatusOK)
	if len(raw) != 0 {
		t.Errorf("delete token: body %q, want none", raw)
	}
}

// peJWT is a decoded (unverified) compact JWS.
type peJWT struct {
	parts           []string
	header, payload []byte // decoded JSON bytes
	hdr, claims     map[string]any
	sig             []byte
}

func peSplit(t *testing.T, tok string) peJWT {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("JWT %q: %d parts, want 3", tok, len(parts))
	}
	var out peJWT
	out.parts = parts
	var err error
	dec := base64.RawURLEncoding.Strict()
	if out.header, err = dec.DecodeString(parts[0]); err != nil {
		t.Fatalf("JWT header is not unpadded base64url: %v", err)
	}
	if out.payload, err = dec.DecodeString(parts[1]); err != nil {
		t.Fatalf("JWT payload is not unpadded base64url: %v", err)
	}
	if out.sig, err = dec.DecodeString(parts[2]); err != nil {
		t.Fatalf("JWT signature is not unpadded base64url: %v", err)
	}
	out.hdr = peObject(t, "JWT header", out.header)
	out.claims = peObject(t, "JWT payload", out.payload)
	return out
}

func peB64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// ---- Check -------------------------------------------------------------------

// peCheck asks Check over gRPC and over REST (POST /v1/auth/check, action
// omitted), requires both to answer the same, and returns the answer.
func peCheck(t *testing.T, env *servertest.Env, what, cred, resource string) *tbv1.CheckResponse {
	t.Helper()
	g, err := env.Auth.Check(context.Background(), &tbv1.CheckRequest{Credential: cred, Resource: resource})
	if err != nil {
		t.Fatalf("%s: gRPC Check: %v", what, err)
	}
	code, raw, _ := env.REST(t, http.MethodPost, peCheckPath, "", map[string]string{"credential": cred, "resource": resource})
	peWantCode(t, what+": REST Check", code, raw, http.StatusOK)
	var r tbv1.CheckResponse
	if err := protojson.Unmarshal(raw, &r); err != nil {
		t.Fatalf("%s: REST Check answer %s: %v", what, raw, err)
	}
	if !proto.Equal(g, &r) {
		t.Errorf("%s: gRPC answers %v but REST %v", what, g, &r)
	}
	return g
}

// peWantAllowed requires Check to allow cred (token id) on resource.
func peWantAllowed(t *testing.T, env *servertest.Env, what, cred, id, resource string) {
	t.Helper()
	res := peCheck(t, env, what, cred, resource)
	if !res.GetAllowed() || res.GetReason() != "" {
		t.Errorf("%s: allowed=%v reason=%q, want allowed", what, res.GetAllowed(), res.GetReason())
		return
	}
	p := res.GetPrincipal()
	if p.GetKind() != "pulsar-token" || p.GetId() != id || p.GetOrgId() != env.OrgID || p.GetCredentialType() != "pulsar-jwt" {
		t.Errorf("%s: principal %v, want kind pulsar-token id %s org %s credential pulsar-jwt", what, p, id, env.OrgID)
	}
}

// peWantRefused requires Check to refuse cred with reason.
func peWantRefused(t *testing.T, env *servertest.Env, what, cred, resource, reason string) {
	t.Helper()
	res := peCheck(t, env, what, cred, resource)
	if res.GetAllowed() || res.GetReason() != reason {
		t.Errorf("%s: allowed=%v reason=%q, want refused with %s", what, res.GetAllowed(), res.GetReason(), reason)
	}
	if res.GetReason() == peInvalid && res.GetPrincipal() != nil {
		t.Errorf("%s: CREDENTIAL_INVALID answer names a principal %v", what, res.GetPrincipal())
	}
}

func peStream(env *servertest.Env, tenant string) string { return policy.StreamDRN(env.OrgID, tenant) }

// ---- OIDC discovery, JWKS and token-keys --------------------------------------

// peThumbprint is the RFC 7638 JWK thumbprint, computed here independently
// of the server.
func peThumbprint(pub *rsa.PublicKey) string {
	n := peB64(pub.N.Bytes())
	e := peB64(big.NewInt(int64(pub.E)).Bytes())
	sum := sha256.Sum256([]byte(`{"e":"` + e + `","kty":"RSA","n":"` + n + `"}`))
	return peB64(sum[:])
}

// peOIDC is what Pulsar's AuthenticationProviderOpenID reads.
type peOIDC struct {
	issuer, jwksURI string
	keys            map[string]*rsa.PublicKey // by kid
}

// peFetchOIDC fetches the discovery document and then its jwks_uri (on this
// server: the URI's path), the way Pulsar's OIDC provider does, and checks
// every JWK.
func peFetchOIDC(t *testing.T, env *servertest.Env) peOIDC {
	t.Helper()
	code, raw, hdr := env.REST(t, http.MethodGet, peDiscoveryPath, "", nil)
	peWantCode(t, "discovery", code, raw, http.StatusOK)
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("discovery: Content-Type %q", ct)
	}
	doc := peObject(t, "discovery", raw)
	out := peOIDC{issuer: peString(t, "discovery", doc, "issuer"), jwksURI: peString(t, "discovery", doc, "jwks_uri"), keys: map[string]*rsa.PublicKey{}}
	if algs, _ := doc["id_token_signing_alg_values_supported"].([]any); !slices.Contains(algs, any("RS256")) {
		t.Errorf("discovery: id_token_signing_alg_values_supported %v lacks RS256", doc["id_token_signing_alg_values_supported"])
	}
	u, err := url.Parse(out.jwksURI)
	if err != nil || u.Path == "" {
		t.Fatalf("discovery: jwks_uri %q is not a URL", out.jwksURI)
	}
	code, raw, hdr = env.REST(t, http.MethodGet, u.RequestURI(), "", nil)
	peWantCode(t, "JWKS", code, raw, http.StatusOK)
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("JWKS: Content-Type %q", ct)
	}
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(raw, &set); err != nil {
		t.Fatalf("JWKS %s: %v", raw, err)
	}
	for _, k := range set.Keys {
		what := "JWK " + k["kid"]
		if k["kty"] != "RSA" || k["use"] != "sig" || k["alg"] != "RS256" || k["kid"] == "" {
			t.Errorf("%s: %v, want kty RSA, use sig, alg RS256 and a kid", what, k)
		}
		n, err1 := base64.RawURLEncoding.Strict().DecodeString(k["n"])
		e, err2 := base64.RawURLEncoding.Strict().DecodeString(k["e"])
		if err1 != nil || err2 != nil || len(n) == 0 || n[0] == 0 || len(e) == 0 || e[0] == 0 {
			t.Fatalf("%s: n/e are not minimal unpadded base64url integers: %v", what, k)
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		if pub.N.BitLen() != 2048 || pub.E != 65537 {
			t.Errorf("%s: %d-bit modulus, e=%d; want RSA-2048, e=65537", what, pub.N.BitLen(), pub.E)
		}
		if got := peThumbprint(pub); got != k["kid"] {
			t.Errorf("%s: kid is not the key's RFC 7638 thumbprint %s", what, got)
		}
		if _, dup := out.keys[k["kid"]]; dup {
			t.Errorf("%s: published twice", what)
		}
		out.keys[k["kid"]] = pub
	}
	return out
}

// peKeyfunc looks a token's key up by its header kid, as Pulsar's OIDC
// provider does (no kid, or an unknown one, fails).
func (o peOIDC) keyfunc(tok *jwt.Token) (any, error) {
	kid, _ := tok.Header["kid"].(string)
	if k, ok := o.keys[kid]; ok {
		return k, nil
	}
	return nil, fmt.Errorf("no JWK for kid %q", kid)
}

// peKeys is the token-keys answer, decoded and cross-checked.
type peKeys struct {
	m      map[string]any
	format string
	pub    *rsa.PublicKey // rs256
	der    []byte         // rs256: SubjectPublicKeyInfo
	pemTxt string         // rs256
	secret []byte         // hs256
}

func peFetchKeys(t *testing.T, env *servertest.Env, tenant string) peKeys {
	t.Helper()
	what := "token-keys of " + tenant
	code, raw, _ := env.REST(t, http.MethodGet, peKeysPath(tenant), env.AdminToken, nil)
	peWantCode(t, what, code, raw, http.StatusOK)
	out := peKeys{m: peObject(t, what, raw)}
	out.format = peString(t, what, out.m, "tokenFormat")
	get := func(k string) string { s, _ := out.m[k].(string); return s }
	switch out.format {
	case "rs256":
		ref := get("tokenPublicKey")
		if !strings.HasPrefix(ref, peDataURL) {
			t.Fatalf("%s: tokenPublicKey %q is not a data:;base64, URL", what, ref)
		}
		der, err := base64.StdEncoding.Strict().DecodeString(strings.TrimPrefix(ref, peDataURL))
		if err != nil {
			t.Fatalf("%s: tokenPublicKey: %v", what, err)
		}
		k, err := x509.ParsePKIXPublicKey(der)
		if err != nil {
			t.Fatalf("%s: tokenPublicKey is not DER SubjectPublicKeyInfo: %v", what, err)
		}
		pub, ok := k.(*rsa.PublicKey)
		if !ok || pub.N.BitLen() != 2048 {
			t.Fatalf("%s: tokenPublicKey is %T, want RSA-2048", what, k)
		}
		out.der, out.pub, out.pemTxt = der, pub, get("publicKeyPem")
		block, rest := pem.Decode([]byte(out.pemTxt))
		if block == nil || block.Type != "PUBLIC KEY" || !bytes.Equal(block.Bytes, der) || len(bytes.TrimSpace(rest)) != 0 {
			t.Errorf("%s: publicKeyPem is not one PUBLIC KEY block of the same DER: %q", what, out.pemTxt)
		}
		if pemKey, err := jwt.ParseRSAPublicKeyFromPEM([]byte(out.pemTxt)); err != nil || !pemKey.Equal(pub) {
			t.Errorf("%s: golang-jwt reads publicKeyPem as a different key (%v)", what, err)
		}
		if get("publicKeyDer") != base64.StdEncoding.EncodeToString(der) {
			t.Errorf("%s: publicKeyDer differs from tokenPublicKey", what)
		}
		if get("tokenPublicAlg") != "RS256" || get("kid") != peThumbprint(pub) || get("tokenSecretKey") != "" {
			t.Errorf("%s: tokenPublicAlg %q kid %q tokenSecretKey %q; want RS256, the key's thumbprint, none",
				what, get("tokenPublicAlg"), get("kid"), get("tokenSecretKey"))
		}
	case "hs256":
		ref := get("tokenSecretKey")
		if !strings.HasPrefix(ref, peDataURL) {
			t.Fatalf("%s: tokenSecretKey %q is not a data:;base64, URL", what, ref)
		}
		secret, err := base64.StdEncoding.Strict().DecodeString(strings.TrimPrefix(ref, peDataURL))
		if err != nil || len(secret) != 32 {
			t.Fatalf("%s: tokenSecretKey is not 32 base64 bytes (%d, %v)", what, len(secret), err)
		}
		out.secret = secret
		for _, k := range []string{"tokenPublicKey", "publicKeyPem", "publicKeyDer", "kid"} {
			if get(k) != "" {
				t.Errorf("%s: hs256 tenant exports %s %q", what, k, get(k))
			}
		}
	default:
		t.Fatalf("%s: tokenFormat %q", what, out.format)
	}
	return out
}

// peVerifyRS256 verifies tok with golang-jwt as Pulsar's OIDC provider
// would: RS256 only, exact issuer, audience, time claims against the fake
// clock (iat too), and the claims it requires (exp only when expiring is
// wanted).
func peVerifyRS256(t *testing.T, env *servertest.Env, what, tok string, keyfunc jwt.Keyfunc, issuer, audience string, wantExp bool) {
	t.Helper()
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{"RS256"}), jwt.WithIssuer(issuer), jwt.WithAudience(audience),
		jwt.WithTimeFunc(env.Clock.Now), jwt.WithIssuedAt(), jwt.WithStrictDecoding(),
	}
	if wantExp {
		opts = append(opts, jwt.WithExpirationRequired())
	}
	claims := jwt.MapClaims{}
	parsed, err := jwt.ParseWithClaims(tok, claims, keyfunc, opts...)
	if err != nil || !parsed.Valid {
		t.Errorf("%s: golang-jwt refuses the token: %v", what, err)
		return
	}
	if parsed.Method.Alg() != "RS256" {
		t.Errorf("%s: alg %s", what, parsed.Method.Alg())
	}
	for _, c := range []string{"iss", "sub", "aud", "iat", "nbf"} {
		if _, ok := claims[c]; !ok {
			t.Errorf("%s: claim %s missing (Pulsar's OIDC provider requires it)", what, c)
		}
	}
	if _, ok := claims["exp"]; ok != wantExp {
		t.Errorf("%s: exp present=%v, want %v", what, ok, wantExp)
	}
}

// peWantRS256Shape checks header and claims of an RS256 token as issued.
func peWantRS256Shape(t *testing.T, what string, j peJWT, kid, sub, issuer, audience, id string, iat, ttl int64) {
	t.Helper()
	wantHdr := `{"alg":"RS256","kid":"` + kid + `","typ":"JWT"}`
	if string(j.header) != wantHdr {
		t.Errorf("%s: header %s, want %s", what, j.header, wantHdr)
	}
	keys := []string{"sub", "iss", "aud", "iat", "nbf", "tokenid"}
	if ttl > 0 {
		keys = append(keys, "exp")
	}
	peWantKeys(t, what+": claims", j.claims, keys...)
	if peString(t, what, j.claims, "sub") != sub || peString(t, what, j.claims, "iss") != issuer ||
		peString(t, what, j.claims, "aud") != audience || peString(t, what, j.claims, "tokenid") != id {
		t.Errorf("%s: claims %s, want sub %q iss %q aud %q tokenid %q", what, j.payload, sub, issuer, audience, id)
	}
	if got := peInt(t, what, j.claims, "iat"); got != iat {
		t.Errorf("%s: iat %d, want %d", what, got, iat)
	}
	if got := peInt(t, what, j.claims, "nbf"); got != iat {
		t.Errorf("%s: nbf %d, want iat %d", what, got, iat)
	}
	if ttl > 0 {
		if got := peInt(t, what, j.claims, "exp") - iat; got != ttl {
			t.Errorf("%s: exp - iat = %d, want %d", what, got, ttl)
		}
	}
}

// ---- 1. tenants ------------------------------------------------------------------

// TestPulsarTenants: create (REST and gRPC) returns Astra's tenant object
// with a first admin JWT; list, get, the refusals (duplicate 409, bad name,
// missing cluster, cluster header mismatch 400, unknown 404); both delete
// paths (200 / Astra's 202) and that a deleted tenant's tokens are refused
// by Check, also after a tenant of the same name is created again.
func TestPulsarTenants(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	admin := env.AdminToken

	body := map[string]any{
		"tenantName": "acme", "clusterName": peCluster,
		"webServiceUrl": "https://pulsar.example:8443", "brokerServiceUrl": "pulsar+ssl://pulsar.example:6651",
		"websocketUrl": "wss://pulsar.example:8001/ws/v2", "cloudProvider": "aws", "cloudRegion": "useast1",
	}
	code, raw, hdr := env.REST(t, http.MethodPost, peTenantsPath, admin, body)
	peWantCode(t, "create acme", code, raw, http.StatusOK)
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("create acme: Content-Type %q", ct)
	}
	acme := peObject(t, "create acme", raw)
	for k, want := range map[string]string{
		"id": "acme", "tenantName": "acme", "clusterName": peCluster, "astraOrgGUID": env.OrgID, "status": "active",
		"tokenFormat": "rs256", "webServiceUrl": "https://pulsar.example:8443",
		"brokerServiceUrl": "pulsar+ssl://pulsar.example:6651", "websocketUrl": "wss://pulsar.example:8001/ws/v2",
		"cloudProvider": "aws", "cloudRegion": "useast1",
	} {
		if got, _ := acme[k].(string); got != want {
			t.Errorf("create acme: %s = %q, want %q", k, got, want)
		}
	}
	acmeJWT := peString(t, "create acme", acme, "pulsarToken")
	first := peSplit(t, acmeJWT)
	if first.hdr["alg"] != "RS256" || first.claims["sub"] != "acme-admin" || first.claims["exp"] != nil {
		t.Errorf("first token: header %s claims %s, want RS256, sub acme-admin, no exp", first.header, first.payload)
	}
	acmeFirstID := peString(t, "first token", first.claims, "tokenid")
	peWantAllowed(t, env, "first acme token", acmeJWT, acmeFirstID, peStream(env, "acme"))

	// gRPC create.
	cr, err := env.Pulsar.CreateTenant(env.GRPCCtx(admin), &tbv1.CreateTenantRequest{TenantName: "beta", ClusterName: "pulsar-west-1"})
	if err != nil {
		t.Fatalf("gRPC CreateTenant: %v", err)
	}
	bt := cr.GetTenant()
	if bt.GetTenantName() != "beta" || bt.GetId() != "beta" || bt.GetClusterName() != "pulsar-west-1" || bt.GetAstraOrgGuid() != env.OrgID ||
		bt.GetStatus() != "active" || bt.GetTokenFormat() != "rs256" || bt.GetPulsarToken() == "" {
		t.Errorf("gRPC CreateTenant: %v", bt)
	}
	betaJWT := bt.GetPulsarToken()
	betaID := peString(t, "beta token", peSplit(t, betaJWT).claims, "tokenid")
	peWantAllowed(t, env, "first beta token", betaJWT, betaID, peStream(env, "beta"))

	// List and get, REST and gRPC: no JWT anywhere.
	code, raw, _ = env.REST(t, http.MethodGet, peTenantsPath, admin, nil)
	peWantCode(t, "list tenants", code, raw, http.StatusOK)
	var names []string
	for _, m := range peArray(t, "list tenants", raw) {
		names = append(names, peString(t, "list tenants", m, "tenantName"))
		if m["astraOrgGUID"] != env.OrgID || m["status"] != "active" {
			t.Errorf("list tenants: item %v", m)
		}
	}
	sort.Strings(names)
	if !slices.Equal(names, []string{"acme", "beta"}) {
		t.Errorf("list tenants: %v, want [acme beta]", names)
	}
	peNoJWT(t, "list tenants", raw, acmeJWT, betaJWT)
	lr, err := env.Pulsar.ListTenants(env.GRPCCtx(admin), &tbv1.ListTenantsRequest{})
	if err != nil || len(lr.GetTenants()) != 2 {
		t.Errorf("gRPC ListTenants: %v, %v", lr, err)
	}
	for _, tn := range lr.GetTenants() {
		if tn.GetPulsarToken() != "" {
			t.Errorf("gRPC ListTenants shows a token for %s", tn.GetTenantName())
		}
	}
	code, raw, _ = env.REST(t, http.MethodGet, peTenantsPath+"/acme", admin, nil)
	peWantCode(t, "get acme", code, raw, http.StatusOK)
	got := peObject(t, "get acme", raw)
	if got["tenantName"] != "acme" || got["clusterName"] != peCluster || got["cloudRegion"] != "useast1" || got["tokenFormat"] != "rs256" {
		t.Errorf("get acme: %s", raw)
	}
	peNoJWT(t, "get acme", raw, acmeJWT)
	gr, err := env.Pulsar.GetTenant(env.GRPCCtx(admin), &tbv1.GetTenantRequest{Tenant: "beta"})
	if err != nil || gr.GetTenant().GetClusterName() != "pulsar-west-1" || gr.GetTenant().GetPulsarToken() != "" {
		t.Errorf("gRPC GetTenant beta: %v, %v", gr, err)
	}

	// X-DataStax-Pulsar-Cluster must match when present.
	code, raw = peREST(t, env, http.MethodGet, peTenantsPath+"/acme", admin, nil, peCluster)
	peWantCode(t, "get acme with its cluster header", code, raw, http.StatusOK)
	code, raw = peREST(t, env, http.MethodGet, peTenantsPath+"/acme", admin, nil, "pulsar-west-1")
	peWantError(t, "get acme with another cluster header", code, raw, http.StatusBadRequest, "does not match")
	mdCtx := metadata.AppendToOutgoingContext(env.GRPCCtx(admin), "x-datastax-pulsar-cluster", "pulsar-west-1")
	_, err = env.Pulsar.GetTenant(mdCtx, &tbv1.GetTenantRequest{Tenant: "acme"})
	peWantGRPC(t, "gRPC GetTenant with another cluster", err, codes.InvalidArgument)

	// Refused creates.
	code, raw, _ = env.REST(t, http.MethodPost, peTenantsPath, admin, map[string]any{"tenantName": "acme", "clusterName": peCluster})
	peWantError(t, "duplicate", code, raw, http.StatusConflict, "exists")
	_, err = env.Pulsar.CreateTenant(env.GRPCCtx(admin), &tbv1.CreateTenantRequest{TenantName: "beta", ClusterName: "x"})
	peWantGRPC(t, "gRPC duplicate", err, codes.AlreadyExists)
	for _, name := range []string{"bad name", "a/b", "ünï", "*", "a.b!", strings.Repeat("a", 65)} {
		code, raw, _ = env.REST(t, http.MethodPost, peTenantsPath, admin, map[string]any{"tenantName": name, "clusterName": peCluster})
		peWantError(t, fmt.Sprintf("tenant name %q", name), code, raw, http.StatusBadRequest, "tenantName")
	}
	// Names that make no valid tenant DRN fail authorization first (the
	// rule checks an impossible DRN, fail closed): 403 even for the admin.
	for _, name := range []string{"", "a:b"} {
		code, raw, _ = env.REST(t, http.MethodPost, peTenantsPath, admin, map[string]any{"tenantName": name, "clusterName": peCluster})
		if code != http.StatusBadRequest && code != http.StatusForbidden {
			t.Errorf("tenant name %q: HTTP %d, want 400 or 403; body %s", name, code, raw)
		}
	}
	code, raw, _ = env.REST(t, http.MethodPost, peTenantsPath, admin, map[string]any{"tenantName": "gamma"})
	peWantError(t, "missing clusterName", code, raw, http.StatusBadRequest, "clusterName")
	_, err = env.Pulsar.CreateTenant(env.GRPCCtx(admin), &tbv1.CreateTenantRequest{TenantName: "gamma"})
	peWantGRPC(t, "gRPC missing clusterName", err, codes.InvalidArgument)
	code, raw, _ = env.REST(t, http.MethodPost, peTenantsPath, admin, map[string]any{"tenantName": "gamma", "clusterName": peCluster, "tokenFormat": "hs512"})
	peWantError(t, "bad tokenFormat", code, raw, http.StatusBadRequest, "tokenFormat")
	t.Run("create with a mismatching cluster header", func(t *testing.T) {
		// docs/pulsar.md: the header "is accepted everywhere and, when
		// present, must equal the tenant's clusterName (400 otherwise)".
		code, raw := peREST(t, env, http.MethodPost, peTenantsPath, admin, map[string]any{"tenantName": "delta", "clusterName": peCluster}, "pulsar-west-1")
		peWantError(t, "create delta on pulsar-east-1 with header pulsar-west-1", code, raw, http.StatusBadRequest, "cluster")
		if code == http.StatusOK { // undo, so the rest of the test is unaffected
			code, raw, _ := env.REST(t, http.MethodDelete, peTenantsPath+"/delta", admin, nil)
			peWantCode(t, "delete delta", code, raw, http.StatusOK)
		}
	})

	// Unknown tenant: 404 everywhere.
	for _, c := range []struct{ method, path string }{
		{http.MethodGet, peTenantsPath + "/nope"},
		{http.MethodDelete, peTenantsPath + "/nope"},
		{http.MethodDelete, peTenantsPath + "/nope/clusters/" + peCluster},
		{http.MethodPost, peTokensPath("nope")},
		{http.MethodPost, peV3Path("nope")},
		{http.MethodGet, peTokensPath("nope")},
		{http.MethodGet, peTokensPath("nope") + "/" + acmeFirstID},
		{http.MethodDelete, peTokensPath("nope") + "/" + acmeFirstID},
		{http.MethodGet, peKeysPath("nope")},
	} {
		code, raw, _ = env.REST(t, c.method, c.path, admin, nil)
		peWantError(t, c.method+" "+c.path, code, raw, http.StatusNotFound, "not found")
	}
	_, err = env.Pulsar.GetTenant(env.GRPCCtx(admin), &tbv1.GetTenantRequest{Tenant: "nope"})
	peWantGRPC(t, "gRPC GetTenant nope", err, codes.NotFound)
	_, err = env.Pulsar.DeleteTenant(env.GRPCCtx(admin), &tbv1.DeleteTenantRequest{Tenant: "nope"})
	peWantGRPC(t, "gRPC DeleteTenant nope", err, codes.NotFound)

	// Delete acme: 200, no body; the tenant and its tokens are gone.
	more := peIssue(t, env, "acme", map[string]any{"exp": "1h", "role": "app1", "type": "non-admin"})
	code, raw = peREST(t, env, http.MethodDelete, peTenantsPath+"/acme", admin, nil, "pulsar-west-1")
	peWantError(t, "delete acme with another cluster header", code, raw, http.StatusBadRequest, "does not match")
	code, raw, _ = env.REST(t, http.MethodDelete, peTenantsPath+"/acme", admin, nil)
	peWantCode(t, "delete acme", code, raw, http.StatusOK)
	if len(raw) != 0 {
		t.Errorf("delete acme: body %q, want none", raw)
	}
	code, raw, _ = env.REST(t, http.MethodGet, peTenantsPath+"/acme", admin, nil)
	peWantError(t, "get deleted acme", code, raw, http.StatusNotFound, "not found")
	code, raw, _ = env.REST(t, http.MethodGet, peTokensPath("acme"), admin, nil)
	peWantError(t, "tokens of deleted acme", code, raw, http.StatusNotFound, "not found")
	peWantRefused(t, env, "first token of deleted acme", acmeJWT, peStream(env, "acme"), peInvalid)
	peWantRefused(t, env, "app1 token of deleted acme", more.JWT, peStream(env, "acme"), peInvalid)

	// A new tenant of the same name does not revive the old tokens.
	_, acme2JWT := peCreateTenant(t, env, "acme", "")
	peWantRefused(t, env, "first token of the old acme, after re-creation", acmeJWT, peStream(env, "acme"), peInvalid)
	peWantRefused(t, env, "app1 token of the old acme, after re-creation", more.JWT, peStream(env, "acme"), peInvalid)
	code, raw, _ = env.REST(t, http.MethodGet, peTokensPath("acme"), admin, nil)
	peWantCode(t, "tokens of the new acme", code, raw, http.StatusOK)
	if items := peArray(t, "tokens of the new acme", raw); len(items) != 1 || items[0]["tokenid"] != peSplit(t, acme2JWT).claims["tokenid"] {
		t.Errorf("tokens of the new acme: %s, want only its first token", raw)
	}

	// Astra's DELETE .../clusters/{cluster}: cluster must match, then 202.
	code, raw, _ = env.REST(t, http.MethodDelete, peTenantsPath+"/beta/clusters/"+peCluster, admin, nil)
	peWantError(t, "delete beta on the wrong cluster", code, raw, http.StatusBadRequest, "does not match")
	peWantAllowed(t, env, "beta token after a refused delete", betaJWT, betaID, peStream(env, "beta"))
	code, raw, _ = env.REST(t, http.MethodDelete, peTenantsPath+"/beta/clusters/pulsar-west-1", admin, nil)
	peWantCode(t, "delete beta on its cluster", code, raw, http.StatusAccepted)
	if len(raw) != 0 {
		t.Errorf("delete beta: body %q, want none", raw)
	}
	peWantRefused(t, env, "beta token after delete", betaJWT, peStream(env, "beta"), peInvalid)

	// gRPC delete.
	if _, err := env.Pulsar.DeleteTenant(env.GRPCCtx(admin), &tbv1.DeleteTenantRequest{Tenant: "acme"}); err != nil {
		t.Fatalf("gRPC DeleteTenant: %v", err)
	}
	peWantRefused(t, env, "new acme token after gRPC delete", acme2JWT, peStream(env, "acme"), peInvalid)
	lr, err = env.Pulsar.ListTenants(env.GRPCCtx(admin), &tbv1.ListTenantsRequest{})
	if err != nil || len(lr.GetTenants()) != 0 {
		t.Errorf("tenants left: %v, %v", lr, err)
	}
}

// ---- 2. tokens ---------------------------------------------------------------------

// TestPulsarTokens: v2 and v3 creation (201 {"id","rolename","token"}),
// roles and types, every expiry form with its exact exp − iat, the
// refusals, listing and getting as claim maps that never hold the JWT,
// deletion, unknown IDs, the cluster header, and the same over gRPC.
func TestPulsarTokens(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	admin := env.AdminToken
	_, firstJWT := peCreateTenant(t, env, "acme", "")
	peCreateTenant(t, env, "other", "")
	keys := peFetchKeys(t, env, "acme")
	issuer, _ := keys.m["issuer"].(string)
	oidc := peFetchOIDC(t, env)
	iat := env.Clock.Now().Unix()

	issued := map[string]peIssued{} // by ID
	first := peSplit(t, firstJWT)
	issued[first.claims["tokenid"].(string)] = peIssued{ID: first.claims["tokenid"].(string), Role: "acme-admin", JWT: firstJWT}
	check := func(what string, tok peIssued, sub string, ttl int64) {
		t.Helper()
		if tok.Role != sub {
			t.Errorf("%s: rolename %q, want %q", what, tok.Role, sub)
		}
		j := peSplit(t, tok.JWT)
		peWantRS256Shape(t, what, j, keys.m["kid"].(string), sub, issuer, "pulsar", tok.ID, iat, ttl)
		peVerifyRS256(t, env, what+" via JWKS", tok.JWT, oidc.keyfunc, oidc.issuer, "pulsar", ttl > 0)
		issued[tok.ID] = tok
	}

	check("v2 exp=2h", peIssueV2(t, env, "acme", "2h"), "acme-admin", 7200)
	check("v2 without exp", peIssueV2(t, env, "acme", ""), "acme-admin", 0)
	check("v3 non-admin app1 1d", peIssue(t, env, "acme", map[string]any{"exp": "1d", "role": "app1", "type": "non-admin"}), "app1", 86400)
	check("v3 admin without role", peIssue(t, env, "acme", map[string]any{"type": "admin"}), "acme-admin", 0)
	check("v3 admin with role", peIssue(t, env, "acme", map[string]any{"role": "ops", "exp": "never"}), "ops", 0)
	check("v3 empty body", peIssue(t, env, "acme", map[string]any{}), "acme-admin", 0)

	const day = 24 * 3600
	for _, c := range []struct {
		exp string
		ttl int64
	}{
		{"7d", 7 * day}, {"30d", 30 * day}, {"60d", 60 * day}, {"90d", 90 * day}, {"180d", 180 * day},
		{"1y", 365 * day}, {"never", 0}, {"5m", 300}, {"2h", 7200}, {"10d", 10 * day}, {"1w", 7 * day},
		{"100y", 100 * 365 * day},
	} {
		check("v3 exp="+c.exp, peIssue(t, env, "acme", map[string]any{"exp": c.exp}), "acme-admin", c.ttl)
	}
	check("v2 exp=30d", peIssueV2(t, env, "acme", "30d"), "acme-admin", 30*day)

	// Refusals.
	code, raw, _ := env.REST(t, http.MethodPost, peV3Path("acme"), admin, map[string]any{"exp": "1m"})
	peWantError(t, "exp 1m", code, raw, http.StatusBadRequest, "m means minutes")
	code, raw, _ = env.REST(t, http.MethodPost, peTokensPath("acme")+"?exp=1m", admin, nil)
	peWantError(t, "v2 exp 1m", code, raw, http.StatusBadRequest, "m means minutes")
	for _, exp := range []string{"4m", "abc", "5", "m", "5x", "5M", "-5m", "0d", "1.5h", "5 m", "101y", "99999999999y", "1mo"} {
		code, raw, _ = env.REST(t, http.MethodPost, peV3Path("acme"), admin, map[string]any{"exp": exp})
		peWantError(t, "exp "+exp, code, raw, http.StatusBadRequest, "exp")
	}
	code, raw, _ = env.REST(t, http.MethodPost, peV3Path("acme"), admin, map[string]any{"type": "non-admin"})
	peWantError(t, "non-admin without role", code, raw, http.StatusBadRequest, "role")
	code, raw, _ = env.REST(t, http.MethodPost, peV3Path("acme"), admin, map[string]any{"type": "superuser"})
	peWantError(t, "bad type", code, raw, http.StatusBadRequest, "type")
	code, raw, _ = env.REST(t, http.MethodPost, peV3Path("acme"), admin, map[string]any{"role": "two words"})
	peWantError(t, "role with a space", code, raw, http.StatusBadRequest, "role")
	_, err := env.Pulsar.CreatePulsarToken(env.GRPCCtx(admin), &tbv1.CreatePulsarTokenRequest{Tenant: "acme", Type: "non-admin"})
	peWantGRPC(t, "gRPC non-admin without role", err, codes.InvalidArgument)

	// gRPC create.
	gc, err := env.Pulsar.CreatePulsarToken(env.GRPCCtx(admin), &tbv1.CreatePulsarTokenRequest{Tenant: "acme", Exp: "5m", Role: "grpc-app", Type: "non-admin"})
	if err != nil {
		t.Fatalf("gRPC CreatePulsarToken: %v", err)
	}
	check("gRPC 5m", peIssued{ID: gc.GetId(), Role: gc.GetRolename(), JWT: gc.GetToken()}, "grpc-app", 300)

	// Cluster header on token calls.
	code, raw = peREST(t, env, http.MethodPost, peV3Path("acme"), admin, map[string]any{"exp": "2h"}, "pulsar-west-1")
	peWantError(t, "create with another cluster header", code, raw, http.StatusBadRequest, "does not match")
	code, raw = peREST(t, env, http.MethodPost, peV3Path("acme"), admin, map[string]any{"exp": "3h"}, peCluster)
	check("v3 with its cluster header", peIssuedFrom(t, "v3 with its cluster header", code, raw), "acme-admin", 3*3600)
	code, raw = peREST(t, env, http.MethodGet, peTokensPath("acme"), admin, nil, "pulsar-west-1")
	peWantError(t, "list with another cluster header", code, raw, http.StatusBadRequest, "does not match")

	allJWTs := func() []string {
		var out []string
		for _, tok := range issued {
			out = append(out, tok.JWT)
		}
		return out
	}

	// List: claim maps, exactly the JWT payloads; never a JWT.
	code, raw, _ = env.REST(t, http.MethodGet, peTokensPath("acme"), admin, nil)
	peWantCode(t, "list tokens", code, raw, http.StatusOK)
	peNoJWT(t, "list tokens", raw, allJWTs()...)
	items := peArray(t, "list tokens", raw)
	if len(items) != len(issued) {
		t.Errorf("list tokens: %d items, want %d", len(items), len(issued))
	}
	for _, m := range items {
		id := peString(t, "list item", m, "tokenid")
		tok, ok := issued[id]
		if !ok {
			t.Errorf("list tokens: unknown tokenid %s", id)
			continue
		}
		for _, k := range []string{"iat", "iss", "sub", "tokenid", "aud", "nbf"} {
			if _, ok := m[k]; !ok {
				t.Errorf("list item %s: no %s", id, k)
			}
		}
		if j := peSplit(t, tok.JWT); !reflect.DeepEqual(m, j.claims) {
			t.Errorf("list item %s: %v, want the JWT's claims %s", id, m, j.payload)
		}
	}
	lr, err := env.Pulsar.ListPulsarTokens(env.GRPCCtx(admin), &tbv1.ListPulsarTokensRequest{Tenant: "acme"})
	if err != nil || len(lr.GetTokens()) != len(issued) {
		t.Errorf("gRPC ListPulsarTokens: %d tokens, %v; want %d", len(lr.GetTokens()), err, len(issued))
	}
	code, raw, _ = env.REST(t, http.MethodGet, peTokensPath("other"), admin, nil)
	peWantCode(t, "list other", code, raw, http.StatusOK)
	if n := len(peArray(t, "list other", raw)); n != 1 {
		t.Errorf("list other: %d items, want its first token only", n)
	}

	// Get: the claims; never the JWT.
	app1 := issued[gc.GetId()]
	for _, tok := range issued {
		code, raw, _ = env.REST(t, http.MethodGet, peTokensPath("acme")+"/"+tok.ID, admin, nil)
		peWantCode(t, "get token", code, raw, http.StatusOK)
		peNoJWT(t, "get token", raw, allJWTs()...)
		if got, j := peObject(t, "get token", raw), peSplit(t, tok.JWT); !reflect.DeepEqual(got, j.claims) {
			t.Errorf("get token %s: %s, want the JWT's claims %s", tok.ID, raw, j.payload)
		}
	}
	gg, err := env.Pulsar.GetPulsarToken(env.GRPCCtx(admin), &tbv1.GetPulsarTokenRequest{Tenant: "acme", TokenId: app1.ID})
	if err != nil {
		t.Fatalf("gRPC GetPulsarToken: %v", err)
	}
	if c := gg.GetClaims().AsMap(); c["sub"] != "grpc-app" || c["tokenid"] != app1.ID || c["exp"].(float64)-c["iat"].(float64) != 300 {
		t.Errorf("gRPC GetPulsarToken: %v", c)
	}

	// Another tenant's path does not reach the token.
	code, raw, _ = env.REST(t, http.MethodGet, peTokensPath("other")+"/"+app1.ID, admin, nil)
	peWantError(t, "get acme token via other", code, raw, http.StatusNotFound, "not found")
	code, raw, _ = env.REST(t, http.MethodDelete, peTokensPath("other")+"/"+app1.ID, admin, nil)
	peWantError(t, "delete acme token via other", code, raw, http.StatusNotFound, "not found")
	peWantAllowed(t, env, "acme token after a delete via other", app1.JWT, app1.ID, peStream(env, "acme"))

	// Delete: 200 without body, then 404.
	peDeleteToken(t, env, "acme", app1.ID)
	delete(issued, app1.ID)
	code, raw, _ = env.REST(t, http.MethodGet, peTokensPath("acme")+"/"+app1.ID, admin, nil)
	peWantError(t, "get deleted", code, raw, http.StatusNotFound, "not found")
	code, raw, _ = env.REST(t, http.MethodDelete, peTokensPath("acme")+"/"+app1.ID, admin, nil)
	peWantError(t, "delete deleted", code, raw, http.StatusNotFound, "not found")
	peWantRefused(t, env, "deleted token", app1.JWT, peStream(env, "acme"), peInvalid)
	for _, id := range []string{"00000000-0000-4000-8000-000000000000", "not-a-uuid"} {
		code, raw, _ = env.REST(t, http.MethodGet, peTokensPath("acme")+"/"+id, admin, nil)
		peWantError(t, "get unknown "+id, code, raw, http.StatusNotFound, "not found")
		code, raw, _ = env.REST(t, http.MethodDelete, peTokensPath("acme")+"/"+id, admin, nil)
		peWantError(t, "delete unknown "+id, code, raw, http.StatusNotFound, "not found")
	}
	_, err = env.Pulsar.GetPulsarToken(env.GRPCCtx(admin), &tbv1.GetPulsarTokenRequest{Tenant: "acme", TokenId: app1.ID})
	peWantGRPC(t, "gRPC get deleted", err, codes.NotFound)
	v2 := peIssueV2(t, env, "acme", "2h")
	if _, err := env.Pulsar.DeletePulsarToken(env.GRPCCtx(admin), &tbv1.DeletePulsarTokenRequest{Tenant: "acme", TokenId: v2.ID}); err != nil {
		t.Fatalf("gRPC DeletePulsarToken: %v", err)
	}
	peWantRefused(t, env, "token deleted over gRPC", v2.JWT, peStream(env, "acme"), peInvalid)
	_, err = env.Pulsar.DeletePulsarToken(env.GRPCCtx(admin), &tbv1.DeletePulsarTokenRequest{Tenant: "acme", TokenId: v2.ID})
	peWantGRPC(t, "gRPC delete deleted", err, codes.NotFound)

	code, raw, _ = env.REST(t, http.MethodGet, peTokensPath("acme"), admin, nil)
	peWantCode(t, "list after deletes", code, raw, http.StatusOK)
	if n := len(peArray(t, "list after deletes", raw)); n != len(issued) {
		t.Errorf("list after deletes: %d items, want %d", n, len(issued))
	}
}

// TestPulsarTokenLimit: with a limit of 3 live tokens (the tenant's first
// token counts) the 4th create is 409 (gRPC FailedPrecondition); deleting
// or expiry frees a slot.
func TestPulsarTokenLimit(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t, servertest.WithConfig(func(c *server.Config) { c.PulsarTokenLimit = 3 }))
	peCreateTenant(t, env, "acme", "")
	peCreateTenant(t, env, "other", "")
	a := peIssue(t, env, "acme", map[string]any{"exp": "5m"})
	peIssue(t, env, "acme", map[string]any{"exp": "5m"})
	code, raw, _ := env.REST(t, http.MethodPost, peV3Path("acme"), env.AdminToken, map[string]any{"exp": "1h"})
	peWantError(t, "4th token", code, raw, http.StatusConflict, "token limit exceeded")
	code, raw, _ = env.REST(t, http.MethodPost, peTokensPath("acme"), env.AdminToken, nil)
	peWantError(t, "4th token (v2)", code, raw, http.StatusConflict, "token limit exceeded")
	_, err := env.Pulsar.CreatePulsarToken(env.GRPCCtx(env.AdminToken), &tbv1.CreatePulsarTokenRequest{Tenant: "acme"})
	peWantGRPC(t, "gRPC 4th token", err, codes.FailedPrecondition)
	peIssue(t, env, "other", map[string]any{}) // the limit is per tenant

	peDeleteToken(t, env, "acme", a.ID)
	peIssue(t, env, "acme", map[string]any{"exp": "5m"})
	code, raw, _ = env.REST(t, http.MethodPost, peV3Path("acme"), env.AdminToken, map[string]any{})
	peWantError(t, "full again", code, raw, http.StatusConflict, "token limit exceeded")

	// Expired tokens are not live, even before garbage collection.
	env.Clock.Advance(5 * time.Minute)
	peIssue(t, env, "acme", map[string]any{})
	peIssue(t, env, "acme", map[string]any{"exp": "1h"})
	code, raw, _ = env.REST(t, http.MethodPost, peV3Path("acme"), env.AdminToken, map[string]any{})
	peWantError(t, "full after expiry", code, raw, http.StatusConflict, "token limit exceeded")
}

// ---- 3. independent verification -------------------------------------------------

// TestPulsarVerifyIndependently is the "done when" of the feature: every
// RS256 token created over REST verifies with golang-jwt through the
// published OIDC discovery document and JWKS (key picked by the header kid)
// and through the exported tokenPublicKey (DER) and PEM; it carries the
// claims Pulsar's OIDC provider requires, and discovery's issuer is the
// token's iss exactly. HS256 tokens verify with the exported secret.
func TestPulsarVerifyIndependently(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	_, first := peCreateTenant(t, env, "acme", "")
	_, plainFirst := peCreateTenant(t, env, "plain", "hs256")
	type tok struct {
		what, jwt string
		exp       bool
	}
	toks := []tok{{"tenant's first token", first, false}}
	for _, exp := range []string{"5m", "2h", "7d", "1y", "never"} {
		toks = append(toks, tok{"v3 exp=" + exp, peIssue(t, env, "acme", map[string]any{"exp": exp}).JWT, exp != "never"})
	}
	toks = append(toks,
		tok{"v2 exp=1h", peIssueV2(t, env, "acme", "1h").JWT, true},
		tok{"v2 never", peIssueV2(t, env, "acme", "").JWT, false},
		tok{"v3 non-admin", peIssue(t, env, "acme", map[string]any{"exp": "1d", "role": "app1", "type": "non-admin"}).JWT, true})

	oidc := peFetchOIDC(t, env)
	keys := peFetchKeys(t, env, "acme")
	if oidc.jwksURI != oidc.issuer+"/.well-known/jwks.json" {
		t.Errorf("jwks_uri %q, want %q", oidc.jwksURI, oidc.issuer+"/.well-known/jwks.json")
	}
	if keys.m["issuer"] != oidc.issuer || keys.m["audience"] != "pulsar" {
		t.Errorf("token-keys issuer %v audience %v, want %q and pulsar", keys.m["issuer"], keys.m["audience"], oidc.issuer)
	}
	kid := keys.m["kid"].(string)
	if jwk := oidc.keys[kid]; jwk == nil || !jwk.Equal(keys.pub) {
		t.Fatalf("JWKS has no key %s equal to the exported tokenPublicKey (JWKS kids %v)", kid, slices.Collect(maps.Keys(oidc.keys)))
	}
	pemKey, err := jwt.ParseRSAPublicKeyFromPEM([]byte(keys.pemTxt))
	if err != nil {
		t.Fatal(err)
	}
	derKey := func(*jwt.Token) (any, error) { return keys.pub, nil }
	pemKeyfunc := func(*jwt.Token) (any, error) { return pemKey, nil }

	for _, tk := range toks {
		j := peSplit(t, tk.jwt)
		if j.hdr["alg"] != "RS256" || j.hdr["kid"] != kid || j.hdr["typ"] != "JWT" {
			t.Errorf("%s: header %s, want alg RS256, typ JWT, kid %s", tk.what, j.header, kid)
		}
		if j.claims["iss"] != oidc.issuer {
			t.Errorf("%s: iss %v is not discovery's issuer %q", tk.what, j.claims["iss"], oidc.issuer)
		}
		peVerifyRS256(t, env, tk.what+" via JWKS", tk.jwt, oidc.keyfunc, oidc.issuer, "pulsar", tk.exp)
		peVerifyRS256(t, env, tk.what+" via tokenPublicKey", tk.jwt, derKey, oidc.issuer, "pulsar", tk.exp)
		peVerifyRS256(t, env, tk.what+" via publicKeyPem", tk.jwt, pemKeyfunc, oidc.issuer, "pulsar", tk.exp)
		// Control: golang-jwt does refuse on a wrong audience or issuer.
		if _, err := jwt.Parse(tk.jwt, oidc.keyfunc, jwt.WithValidMethods([]string{"RS256"}), jwt.WithTimeFunc(env.Clock.Now), jwt.WithAudience("other")); err == nil {
			t.Errorf("%s: control failed: golang-jwt accepts audience other", tk.what)
		}
		if _, err := jwt.Parse(tk.jwt, oidc.keyfunc, jwt.WithValidMethods([]string{"RS256"}), jwt.WithTimeFunc(env.Clock.Now), jwt.WithIssuer(oidc.issuer+"/x")); err == nil {
			t.Errorf("%s: control failed: golang-jwt accepts another issuer", tk.what)
		}
	}
	// Expiry as golang-jwt sees it: the 5m token expires, the others live.
	env.Clock.Advance(5 * time.Minute)
	if _, err := jwt.Parse(toks[1].jwt, oidc.keyfunc, jwt.WithValidMethods([]string{"RS256"}), jwt.WithTimeFunc(env.Clock.Now)); err == nil {
		t.Errorf("golang-jwt still accepts the 5m token 5 minutes later")
	}
	peVerifyRS256(t, env, "2h token 5 minutes later", toks[2].jwt, oidc.keyfunc, oidc.issuer, "pulsar", true)

	// HS256: verifies with the exported secret, HS256 only.
	pk := peFetchKeys(t, env, "plain")
	plainTok := peIssue(t, env, "plain", map[string]any{"exp": "2h", "role": "app1", "type": "non-admin"}).JWT
	for _, tk := range []string{plainFirst, plainTok} {
		parsed, err := jwt.Parse(tk, func(*jwt.Token) (any, error) { return pk.secret, nil },
			jwt.WithValidMethods([]string{"HS256"}), jwt.WithTimeFunc(env.Clock.Now), jwt.WithStrictDecoding())
		if err != nil || !parsed.Valid {
			t.Errorf("hs256 token: golang-jwt refuses it with the exported secret: %v", err)
		}
		if _, err := jwt.Parse(tk, oidc.keyfunc, jwt.WithValidMethods([]string{"RS256"})); err == nil {
			t.Errorf("hs256 token: golang-jwt accepts it as RS256")
		}
	}
}

// TestPulsarIssuerTrailingSlash: with an issuer URL configured with a
// trailing slash, the discovery document must still name the tokens' iss
// exactly (Pulsar's OIDC provider compares them by string equality and
// fetches "<iss>.well-known/openid-configuration" when iss ends with "/").
// Also: a configured audience is the aud claim and verifies.
func TestPulsarIssuerTrailingSlash(t *testing.T) {
	t.Parallel()
	const issuer = "https://tokens.example.internal/"
	env := servertest.Start(t, servertest.WithConfig(func(c *server.Config) {
		c.IssuerURL = issuer
		c.PulsarAudience = "pulsar-cluster-1"
	}))
	_, first := peCreateTenant(t, env, "acme", "")
	j := peSplit(t, first)
	if j.claims["iss"] != issuer || j.claims["aud"] != "pulsar-cluster-1" {
		t.Errorf("token iss %v aud %v, want %q and pulsar-cluster-1", j.claims["iss"], j.claims["aud"], issuer)
	}
	oidc := peFetchOIDC(t, env)
	if oidc.issuer != j.claims["iss"] {
		t.Errorf("discovery issuer %q != token iss %q: Pulsar's AuthenticationProviderOpenID refuses every token (Issuer URL mismatch)",
			oidc.issuer, j.claims["iss"])
	}
	if u, err := url.Parse(oidc.jwksURI); err != nil || u.Host != "tokens.example.internal" || strings.Contains(u.Path, "//") {
		t.Errorf("jwks_uri %q", oidc.jwksURI)
	}
	keys := peFetchKeys(t, env, "acme")
	if keys.m["issuer"] != issuer {
		t.Errorf("token-keys issuer %v, want %q", keys.m["issuer"], issuer)
	}
	peVerifyRS256(t, env, "first token via JWKS", first, oidc.keyfunc, issuer, "pulsar-cluster-1", false)
	peWantAllowed(t, env, "first token", first, j.claims["tokenid"].(string), peStream(env, "acme"))
}

// ---- 4. Check refusals -------------------------------------------------------------

// TestPulsarCheck: Check (gRPC and REST, action omitted) allows an issued
// token on its tenant's DRN and refuses forgeries of every kind: tampered
// payload or signature, expiry (to the second), alg none, HS256 signed with
// the public key (DER and PEM) as the secret, a different RSA key under the
// same kid; another tenant's or a non-stream resource; deletion at once.
func TestPulsarCheck(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	_, otherFirst := peCreateTenant(t, env, "other", "")
	peCreateTenant(t, env, "acme", "")
	acme := peStream(env, "acme")
	tok := peIssue(t, env, "acme", map[string]any{"exp": "1h", "role": "app1", "type": "non-admin"})
	j := peSplit(t, tok.JWT)
	keys := peFetchKeys(t, env, "acme")
	kid := keys.m["kid"].(string)

	peWantAllowed(t, env, "valid", tok.JWT, tok.ID, acme)

	// Forgeries carrying the same claims (or almost).
	withPayload := func(mut func(map[string]any)) string {
		c := map[string]any{}
		for k, v := range j.claims {
			c[k] = v
		}
		mut(c)
		p, _ := json.Marshal(c)
		return j.parts[0] + "." + peB64(p) + "." + j.parts[2]
	}
	hdr := func(alg string) string {
		return peB64([]byte(`{"alg":"` + alg + `","typ":"JWT","kid":"` + kid + `"}`))
	}
	hmacSign := func(secret []byte) string {
		in := hdr("HS256") + "." + j.parts[1]
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(in))
		return in + "." + peB64(m.Sum(nil))
	}
	flipped := slices.Clone(j.sig)
	flipped[len(flipped)/2] ^= 0x01
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	otherRSA := func() string {
		in := j.parts[0] + "." + j.parts[1]
		sum := sha256.Sum256([]byte(in))
		sig, err := rsa.SignPKCS1v15(rand.Reader, otherKey, crypto.SHA256, sum[:])
		if err != nil {
			t.Fatal(err)
		}
		return in + "." + peB64(sig)
	}()
	// The same claims through golang-jwt's own signer, with the kid.
	gjOther := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims(j.claims))
	gjOther.Header["kid"] = kid
	gjOtherTok, err := gjOther.SignedString(otherKey)
	if err != nil {
		t.Fatal(err)
	}
	gjHS := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims(j.claims))
	gjHS.Header["kid"] = kid
	gjHSTok, err := gjHS.SignedString(keys.der)
	if err != nil {
		t.Fatal(err)
	}

	forged := []struct{ what, jwt string }{
		{"payload with another sub, original signature", withPayload(func(c map[string]any) { c["sub"] = "acme-admin" })},
		{"payload with a later exp, original signature", withPayload(func(c map[string]any) { c["exp"] = json.Number("4102444800") })},
		{"payload re-encoded unchanged (other bytes), original signature", withPayload(func(map[string]any) {})},
		{"signature with one bit flipped", j.parts[0] + "." + j.parts[1] + "." + peB64(flipped)},
		{"signature truncated", j.parts[0] + "." + j.parts[1] + "." + j.parts[2][:len(j.parts[2])-4]},
		{"alg none, empty signature", hdr("none") + "." + j.parts[1] + "."},
		{"alg none, original signature", hdr("none") + "." + j.parts[1] + "." + j.parts[2]},
		{"alg none without kid", peB64([]byte(`{"alg":"none"}`)) + "." + j.parts[1] + "."},
		{"HS256 with the public key DER as secret", hmacSign(keys.der)},
		{"HS256 with the public key PEM as secret", hmacSign([]byte(keys.pemTxt))},
		{"HS256 with the data: URL as secret", hmacSign([]byte(keys.m["tokenPublicKey"].(string)))},
		{"HS256 (golang-jwt) with the public key DER as secret", gjHSTok},
		{"RS256 by another key under the same kid", otherRSA},
		{"RS256 (golang-jwt) by another key under the same kid", gjOtherTok},
		{"padded base64", tok.JWT + "="},
		{"trailing newline", tok.JWT + "\n"},
	}
	for _, f := range forged {
		if f.jwt == tok.JWT {
			t.Fatalf("%s: forgery equals the token", f.what)
		}
		peWantRefused(t, env, f.what, f.jwt, acme, peInvalid)
	}
	// Control: the forgeries that keep the real signature or key really are
	// invalid cryptographically (golang-jwt refuses them too), and the
	// original still passes after all those refusals.
	for _, f := range forged[:5] {
		if _, err := jwt.Parse(f.jwt, func(*jwt.Token) (any, error) { return keys.pub, nil }, jwt.WithTimeFunc(env.Clock.Now)); err == nil {
			t.Errorf("control: golang-jwt accepts %q", f.what)
		}
	}
	peWantAllowed(t, env, "valid after the forgeries", tok.JWT, tok.ID, acme)

	// Resources: only the token's own tenant.
	peWantRefused(t, env, "acme token on other", tok.JWT, peStream(env, "other"), peDenied)
	peWantRefused(t, env, "other token on acme", otherFirst, acme, peDenied)
	peWantRefused(t, env, "acme token on stream:*", tok.JWT, peStream(env, "*"), peDenied)
	peWantRefused(t, env, "acme token on the org", tok.JWT, policy.OrgDRN(env.OrgID), peDenied)
	peWantRefused(t, env, "acme token on a database", tok.JWT, policy.DatabaseDRN(env.OrgID, "3f0c8a52-6c25-4a7a-9d0e-5a3f5c1d2e4b"), peDenied)
	peWantRefused(t, env, "acme token on another org's acme", tok.JWT, policy.StreamDRN("5b0f3b1c-9d5e-4d7e-8f31-0c2d7a1e9b64", "acme"), peDenied)
	res := peCheck(t, env, "denied answer", tok.JWT, peStream(env, "other"))
	if res.GetPrincipal().GetId() != tok.ID {
		t.Errorf("PERMISSION_DENIED answer: principal %v, want token %s", res.GetPrincipal(), tok.ID)
	}
	// A malformed resource is a bad request, not an answer.
	_, err = env.Auth.Check(context.Background(), &tbv1.CheckRequest{Credential: tok.JWT, Resource: "acme"})
	peWantGRPC(t, "Check with a malformed resource", err, codes.InvalidArgument)

	// Expiry, to the second: a 5m token is valid until iat+300 exclusive.
	short := peIssue(t, env, "acme", map[string]any{"exp": "5m"})
	exp := peInt(t, "5m token", peSplit(t, short.JWT).claims, "exp")
	env.Clock.Set(time.Unix(exp-1, 999_999_999).UTC())
	peWantAllowed(t, env, "5m token 1ns before exp", short.JWT, short.ID, acme)
	env.Clock.Set(time.Unix(exp, 0).UTC())
	peWantRefused(t, env, "5m token at exp", short.JWT, acme, peInvalid)
	env.Clock.Advance(time.Minute)
	peWantRefused(t, env, "5m token 6 minutes later", short.JWT, acme, peInvalid)
	peWantAllowed(t, env, "1h token 6 minutes later", tok.JWT, tok.ID, acme)

	// Deletion takes effect at once.
	peDeleteToken(t, env, "acme", tok.ID)
	peWantRefused(t, env, "deleted token", tok.JWT, acme, peInvalid)
}

// ---- 5. HS256 plain format ----------------------------------------------------------

// TestPulsarHS256: a "tokenFormat":"hs256" tenant issues byte-for-byte
// `bin/pulsar tokens create` tokens: header exactly {"alg":"HS256"},
// payload exactly {"sub":…} or {"sub":…,"exp":…}; they verify with the
// exported tokenSecretKey (golang-jwt, and pulsarjwt.SignHS256Plain gives
// the identical string); Check accepts them on their tenant only and
// refuses them after delete.
func TestPulsarHS256(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	tenant, first := peCreateTenant(t, env, "plain", "hs256")
	peCreateTenant(t, env, "acme", "")
	if tenant["tokenFormat"] != "hs256" {
		t.Errorf("tenant tokenFormat %v, want hs256", tenant["tokenFormat"])
	}
	keys := peFetchKeys(t, env, "plain")
	if keys.format != "hs256" {
		t.Fatalf("token-keys format %q", keys.format)
	}
	now := env.Clock.Now().Unix()
	type tc struct {
		what, jwt, id, sub string
		exp                int64
	}
	cases := []tc{{what: "tenant's first token", jwt: first, sub: "plain-admin"}}
	a := peIssue(t, env, "plain", map[string]any{"exp": "2h", "role": "app1", "type": "non-admin"})
	cases = append(cases, tc{"v3 app1 2h", a.JWT, a.ID, "app1", now + 7200})
	b := peIssueV2(t, env, "plain", "7d")
	cases = append(cases, tc{"v2 7d", b.JWT, b.ID, "plain-admin", now + 7*86400})
	c := peIssue(t, env, "plain", map[string]any{"role": `we"ird\role`})
	cases = append(cases, tc{"v3 role needing JSON escapes", c.JWT, c.ID, `we"ird\role`, 0})

	code, raw, _ := env.REST(t, http.MethodGet, peTokensPath("plain"), env.AdminToken, nil)
	peWantCode(t, "list plain", code, raw, http.StatusOK)
	peNoJWT(t, "list plain", raw, first, a.JWT, b.JWT, c.JWT)
	list := peArray(t, "list plain", raw)
	if len(list) != 4 {
		t.Fatalf("list plain: %d items, want 4", len(list))
	}
	for _, m := range list {
		if m["sub"] == "plain-admin" && m["exp"] == nil {
			cases[0].id = peString(t, "list plain", m, "tokenid")
		}
		if _, ok := m["iss"]; ok {
			t.Errorf("list plain: item %v shows an iss its JWT does not carry", m)
		}
	}

	for _, k := range cases {
		j := peSplit(t, k.jwt)
		if j.parts[0] != "eyJhbGciOiJIUzI1NiJ9" || string(j.header) != `{"alg":"HS256"}` {
			t.Errorf("%s: header %s, want exactly {\"alg\":\"HS256\"}", k.what, j.header)
		}
		subJSON, _ := json.Marshal(k.sub)
		want := `{"sub":` + string(subJSON) + `}`
		if k.exp != 0 {
			want = `{"sub":` + string(subJSON) + `,"exp":` + strconv.FormatInt(k.exp, 10) + `}`
		}
		if string(j.payload) != want {
			t.Errorf("%s: payload %s, want exactly %s", k.what, j.payload, want)
		}
		if len(j.sig) != 32 {
			t.Errorf("%s: %d-byte signature", k.what, len(j.sig))
		}
		parsed, err := jwt.Parse(k.jwt, func(*jwt.Token) (any, error) { return keys.secret, nil },
			jwt.WithValidMethods([]string{"HS256"}), jwt.WithTimeFunc(env.Clock.Now), jwt.WithStrictDecoding())
		if err != nil || !parsed.Valid {
			t.Errorf("%s: golang-jwt refuses it with tokenSecretKey: %v", k.what, err)
		}
		if again, err := pulsarjwt.SignHS256Plain(keys.secret, k.sub, k.exp); err != nil || again != k.jwt {
			t.Errorf("%s: SignHS256Plain with the exported secret gives %q (%v), want the issued token", k.what, again, err)
		}
		peWantAllowed(t, env, k.what, k.jwt, k.id, peStream(env, "plain"))
		peWantRefused(t, env, k.what+" on acme", k.jwt, peStream(env, "acme"), peDenied)
	}
	// A forgery with a guessed secret, and the real one re-signed with the
	// secret by another library (same bytes: accepted, being the same token).
	forged, err := pulsarjwt.SignHS256Plain(bytes.Repeat([]byte{7}, 32), "app1", now+7200)
	if err != nil {
		t.Fatal(err)
	}
	peWantRefused(t, env, "HS256 with another secret", forged, peStream(env, "plain"), peInvalid)
	elevated, err := pulsarjwt.SignHS256Plain(keys.secret, "superuser", 0)
	if err != nil {
		t.Fatal(err)
	}
	// Signed with the real secret but never issued: Check knows what it issued.
	peWantRefused(t, env, "never-issued token signed with the real secret", elevated, peStream(env, "plain"), peInvalid)

	peDeleteToken(t, env, "plain", a.ID)
	peWantRefused(t, env, "deleted app1 token", a.JWT, peStream(env, "plain"), peInvalid)
	peWantAllowed(t, env, "7d token after app1's delete", b.JWT, b.ID, peStream(env, "plain"))

	// Expiry.
	env.Clock.Advance(2 * time.Hour)
	peWantAllowed(t, env, "7d token 2h later", b.JWT, b.ID, peStream(env, "plain"))
	env.Clock.Advance(7 * 24 * time.Hour)
	peWantRefused(t, env, "7d token 7d later", b.JWT, peStream(env, "plain"), peInvalid)

	// Tenant deletion.
	code, raw, _ = env.REST(t, http.MethodDelete, peTenantsPath+"/plain", env.AdminToken, nil)
	peWantCode(t, "delete plain", code, raw, http.StatusOK)
	peWantRefused(t, env, "first token after tenant delete", first, peStream(env, "plain"), peInvalid)
	peWantRefused(t, env, "escaped-role token after tenant delete", c.JWT, peStream(env, "plain"), peInvalid)
}

// TestPulsarHS256SameClaims: plain-format tokens carry only sub and exp, so
// two tokens of one tenant with the same role and the same expiry second
// are the same bytes. A second such create must be answered cleanly (a
// distinct token, or a 409 that says why) — not an internal error — and
// must not leave two records that one deletion cannot tell apart.
func TestPulsarHS256SameClaims(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	_, first := peCreateTenant(t, env, "plain", "hs256")
	for _, c := range []struct{ what, path string }{
		{"v2 never-expiring admin token (same as the tenant's first)", peTokensPath("plain")},
		{"v2 never-expiring admin token, once more", peTokensPath("plain")},
	} {
		code, raw, _ := env.REST(t, http.MethodPost, c.path, env.AdminToken, nil)
		switch {
		case code == http.StatusCreated:
			if got := peObject(t, c.what, raw)["token"]; got == first {
				t.Errorf("%s: 201 with a token identical to the tenant's first one", c.what)
			}
		case code == http.StatusConflict:
			peWantError(t, c.what, code, raw, http.StatusConflict, "identical token")
		default:
			t.Errorf("%s: HTTP %d %s; want 201 with a distinct token or a 409 explaining the collision", c.what, code, raw)
		}
	}
	a := peIssue(t, env, "plain", map[string]any{"exp": "2h"})
	code, raw, _ := env.REST(t, http.MethodPost, peV3Path("plain"), env.AdminToken, map[string]any{"exp": "2h"})
	switch {
	case code == http.StatusCreated:
		if peObject(t, "second 2h token", raw)["token"] == a.JWT {
			t.Errorf("second 2h token in the same second: identical to the first")
		}
	case code == http.StatusConflict:
		peWantError(t, "second 2h token in the same second", code, raw, http.StatusConflict, "identical token")
	default:
		t.Errorf("second 2h token in the same second: HTTP %d %s; want 201 with a distinct token or a 409", code, raw)
	}
	// One second later the expiry differs, and so does the token.
	env.Clock.Advance(time.Second)
	b := peIssue(t, env, "plain", map[string]any{"exp": "2h"})
	if b.JWT == a.JWT {
		t.Errorf("2h tokens a second apart are identical")
	}
	// Whatever happened, the first token is still listed once and valid.
	peWantAllowed(t, env, "first 2h token", a.JWT, a.ID, peStream(env, "plain"))
}

// ---- 6. rotation ------------------------------------------------------------------

// TestPulsarRotation: rotate → {kid, previousKid}; new tokens use the new
// key, old ones keep verifying (JWKS holds both) and passing Check;
// token-keys exports the new key; garbage collection keeps the old key
// published while any token it signed lives (deleted or expired tokens
// don't count) and then unpublishes it.
func TestPulsarRotation(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	ctx := context.Background()
	gc := func() {
		t.Helper()
		if _, err := env.Server.Broker().CollectGarbage(ctx, 0); err != nil {
			t.Fatalf("CollectGarbage: %v", err)
		}
	}
	_, t0 := peCreateTenant(t, env, "acme", "")
	_, o0 := peCreateTenant(t, env, "other", "")
	peCreateTenant(t, env, "plain", "hs256") // hs256 tokens use no signing key
	t1 := peIssue(t, env, "acme", map[string]any{"exp": "1h"})
	t1b := peIssue(t, env, "other", map[string]any{"role": "app1", "type": "non-admin"})
	k1 := peSplit(t, t1.JWT).hdr["kid"].(string)
	if got := peFetchKeys(t, env, "acme").m["kid"]; got != k1 {
		t.Fatalf("token-keys kid %v, want %s", got, k1)
	}

	code, raw, _ := env.REST(t, http.MethodPost, peRotatePath, env.AdminToken, nil)
	peWantCode(t, "rotate", code, raw, http.StatusOK)
	rot := peObject(t, "rotate", raw)
	peWantKeys(t, "rotate", rot, "kid", "previousKid", "state")
	k2 := peString(t, "rotate", rot, "kid")
	if rot["previousKid"] != k1 || k2 == k1 || k2 == "" {
		t.Fatalf("rotate: %s, want previousKid %s and a new kid", raw, k1)
	}
	t2 := peIssue(t, env, "acme", map[string]any{})
	if got := peSplit(t, t2.JWT).hdr["kid"]; got != k2 {
		t.Errorf("token after rotation: kid %v, want %s", got, k2)
	}
	keys := peFetchKeys(t, env, "acme")
	if keys.m["kid"] != k2 || peThumbprint(keys.pub) != k2 {
		t.Errorf("token-keys after rotation: kid %v, want %s", keys.m["kid"], k2)
	}
	oidc := peFetchOIDC(t, env)
	if len(oidc.keys) != 2 || oidc.keys[k1] == nil || oidc.keys[k2] == nil {
		t.Fatalf("JWKS after rotation: kids %v, want %s and %s", oidc.keys, k1, k2)
	}
	if !oidc.keys[k2].Equal(keys.pub) {
		t.Errorf("JWKS key %s differs from the exported key", k2)
	}
	for _, c := range []struct {
		what, jwt, id string
		exp           bool
	}{
		{"t0 (old key)", t0, peSplit(t, t0).claims["tokenid"].(string), false},
		{"t1 (old key)", t1.JWT, t1.ID, true},
		{"t2 (new key)", t2.JWT, t2.ID, false},
	} {
		peVerifyRS256(t, env, c.what+" via JWKS", c.jwt, oidc.keyfunc, oidc.issuer, "pulsar", c.exp)
		peWantAllowed(t, env, c.what, c.jwt, c.id, peStream(env, "acme"))
	}
	// The new exported key verifies new tokens, not old ones (a broker with
	// one tokenPublicKey needs the new key for new tokens).
	if _, err := jwt.Parse(t1.JWT, func(*jwt.Token) (any, error) { return keys.pub, nil }, jwt.WithTimeFunc(env.Clock.Now)); err == nil {
		t.Errorf("an old-key token verifies with the new exported key")
	}

	// GC keeps k1 while t0, o0, t1b (never expire) and t1 (1h) live.
	gc()
	if oidc := peFetchOIDC(t, env); oidc.keys[k1] == nil {
		t.Fatalf("GC unpublished %s while tokens it signed are live", k1)
	}
	peDeleteToken(t, env, "acme", peSplit(t, t0).claims["tokenid"].(string))
	peDeleteToken(t, env, "other", peSplit(t, o0).claims["tokenid"].(string))
	gc()
	if oidc := peFetchOIDC(t, env); oidc.keys[k1] == nil {
		t.Fatalf("GC unpublished %s while t1 and t1b live", k1)
	}
	peWantAllowed(t, env, "t1 after the other old-key tokens went", t1.JWT, t1.ID, peStream(env, "acme"))

	// t1 expires; t1b (never expires) still holds k1.
	env.Clock.Advance(time.Hour)
	gc()
	if oidc := peFetchOIDC(t, env); oidc.keys[k1] == nil {
		t.Fatalf("GC unpublished %s while t1b lives", k1)
	}
	peVerifyRS256(t, env, "t1b via JWKS after t1 expired", t1b.JWT, peFetchOIDC(t, env).keyfunc, oidc.issuer, "pulsar", false)
	peWantAllowed(t, env, "t1b after t1 expired", t1b.JWT, t1b.ID, peStream(env, "other"))

	// Delete t1b: now no live token uses k1.
	peDeleteToken(t, env, "other", t1b.ID)
	gc()
	oidc = peFetchOIDC(t, env)
	if oidc.keys[k1] != nil || oidc.keys[k2] == nil || len(oidc.keys) != 1 {
		t.Errorf("JWKS after GC: kids %v, want only %s", oidc.keys, k2)
	}
	peWantAllowed(t, env, "t2 after GC", t2.JWT, t2.ID, peStream(env, "acme"))
	peVerifyRS256(t, env, "t2 via JWKS after GC", t2.JWT, oidc.keyfunc, oidc.issuer, "pulsar", false)

	// gRPC rotation: previousKid is k2, and k2 stays published (t2 lives).
	gr, err := env.Pulsar.RotateSigningKey(env.GRPCCtx(env.AdminToken), &tbv1.RotateSigningKeyRequest{})
	if err != nil {
		t.Fatalf("gRPC RotateSigningKey: %v", err)
	}
	if gr.GetPreviousKid() != k2 || gr.GetKid() == k2 || gr.GetKid() == k1 {
		t.Errorf("gRPC rotate: %v, want previousKid %s", gr, k2)
	}
	gc()
	if oidc := peFetchOIDC(t, env); len(oidc.keys) != 2 || oidc.keys[k2] == nil || oidc.keys[gr.GetKid()] == nil {
		t.Errorf("JWKS after the second rotation: %v, want %s and %s", oidc.keys, k2, gr.GetKid())
	}
	peWantAllowed(t, env, "t2 after the second rotation", t2.JWT, t2.ID, peStream(env, "acme"))
}

// ---- 7. secrets at rest -------------------------------------------------------------

// TestPulsarSecretsAtRest: after issuing rs256 and hs256 tokens and a
// rotation, the bbolt file holds no issued JWT (nor its signing input or
// signature, encoded or raw), no hs256 tenant secret in any encoding, and
// no private key (no PEM armor, no unencrypted PKCS#8 or PKCS#1 RSA
// structure) — while it does hold the public keys (control: the scan sees
// plaintext DER).
func TestPulsarSecretsAtRest(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	var jwts []string
	_, a := peCreateTenant(t, env, "acme", "")
	_, p := peCreateTenant(t, env, "plain", "hs256")
	jwts = append(jwts, a, p)
	oldKeys := peFetchKeys(t, env, "acme")
	jwts = append(jwts,
		peIssue(t, env, "acme", map[string]any{"exp": "1d"}).JWT,
		peIssue(t, env, "plain", map[string]any{"exp": "1d", "role": "app1"}).JWT)
	code, raw, _ := env.REST(t, http.MethodPost, peRotatePath, env.AdminToken, nil)
	peWantCode(t, "rotate", code, raw, http.StatusOK)
	jwts = append(jwts,
		peIssue(t, env, "acme", map[string]any{"exp": "2d"}).JWT,
		peIssueV2(t, env, "plain", "2d").JWT)
	newKeys := peFetchKeys(t, env, "acme")
	secret := peFetchKeys(t, env, "plain").secret
	env.Shutdown()

	db := env.StoredData(t)
	// Records are JSON, where bytes are standard base64: every needle is
	// also searched base64-encoded (std and url), at all three alignments.
	found := func(needle []byte) bool {
		if bytes.Contains(db, needle) {
			return true
		}
		for _, v := range peB64Variants(needle) {
			if bytes.Contains(db, v) {
				return true
			}
		}
		return false
	}
	forbidden := map[string][]byte{
		"hs256 secret":               secret,
		"hs256 secret (base64 text)": []byte(base64.StdEncoding.EncodeToString(secret)),
		"hs256 secret (hex)":         []byte(fmt.Sprintf("%x", secret)),
		"PEM private key armor":      []byte("PRIVATE KEY"),
		// version 0 + rsaEncryption AlgorithmIdentifier + OCTET STRING: the
		// start of every unencrypted PKCS#8 RSA private key.
		"PKCS#8 RSA private key": {0x02, 0x01, 0x00, 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00, 0x04, 0x82},
		// version 0 + a 2048-bit modulus INTEGER: the start of PKCS#1.
		"PKCS#1 RSA private key": {0x02, 0x01, 0x00, 0x02, 0x82, 0x01, 0x01, 0x00},
	}
	for i, tok := range jwts {
		parts := strings.Split(tok, ".")
		sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
		forbidden[fmt.Sprintf("JWT %d", i)] = []byte(tok)
		forbidden[fmt.Sprintf("JWT %d signing input", i)] = []byte(parts[0] + "." + parts[1])
		forbidden[fmt.Sprintf("JWT %d signature (base64url text)", i)] = []byte(parts[2])
		forbidden[fmt.Sprintf("JWT %d signature", i)] = sig
	}
	for what, b := range forbidden {
		if found(b) {
			t.Errorf("database file contains the %s", what)
		}
	}
	// Controls: the public keys are stored in the clear and found; so is a
	// token's ID and role.
	for what, der := range map[string][]byte{"old public key DER": oldKeys.der, "new public key DER": newKeys.der} {
		if !found(der) {
			t.Errorf("control failed: %s not found in the database file (is the scan meaningful?)", what)
		}
	}
	if id := peSplit(t, jwts[0]).claims["tokenid"].(string); !found([]byte(id)) {
		t.Errorf("control failed: token ID %s not found in the database file", id)
	}
}

// peB64Variants returns needle's standard and URL base64 encodings as they
// appear inside a longer encoded value, whatever its alignment: for each
// of the three offsets, the encoding of the whole 3-byte groups.
func peB64Variants(needle []byte) [][]byte {
	var out [][]byte
	for k := 0; k < 3 && k < len(needle); k++ {
		n := (len(needle) - k) / 3 * 3
		if n < 6 {
			continue
		}
		chunk := needle[k : k+n]
		out = append(out, []byte(base64.StdEncoding.EncodeToString(chunk)), []byte(base64.URLEncoding.EncodeToString(chunk)))
	}
	return out
}

// ---- 8. authorization ------------------------------------------------------------------

// TestPulsarAuthorization: org-stream-manage decides. A R/W User token gets
// 403 everywhere; an Admin Svc Acct token manages everything; a custom role
// with org-stream-manage on stream:acme only manages tenant acme and its
// tokens, and gets 403 on other tenants, on listing tenants and on rotation
// (stream:*). A Pulsar JWT is no management credential.
func TestPulsarAuthorization(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	_, acmeJWT := peCreateTenant(t, env, "acme", "")
	peCreateTenant(t, env, "other", "")
	peCreateTenant(t, env, "acme2", "")
	otherTok := peIssue(t, env, "other", map[string]any{})

	rw := env.CreateToken(t, env.AdminToken, policy.RWUserID).Token
	svc := env.CreateToken(t, env.AdminToken, policy.AdminSvcAcctID).Token
	code, raw, _ := env.REST(t, http.MethodPost, "/v2/organizations/roles", env.AdminToken, map[string]any{
		"Name": "acme streaming",
		"Policy": map[string]any{"description": "manage tenant acme", "effect": "allow",
			"resources": []string{peStream(env, "acme")}, "actions": []string{"org-stream-manage"}},
	})
	peWantCode(t, "create role", code, raw, http.StatusCreated)
	roleID := peString(t, "create role", peObject(t, "create role", raw), "ID")
	scoped := env.CreateToken(t, env.AdminToken, roleID).Token

	type call struct {
		method, path string
		body         any
	}
	tenantCalls := func(tenant string, tokenID string) []call {
		return []call{
			{http.MethodGet, peTenantsPath + "/" + tenant, nil},
			{http.MethodPost, peTokensPath(tenant) + "?exp=1h", nil},
			{http.MethodPost, peV3Path(tenant), map[string]any{"exp": "1h"}},
			{http.MethodGet, peTokensPath(tenant), nil},
			{http.MethodGet, peTokensPath(tenant) + "/" + tokenID, nil},
			{http.MethodGet, peKeysPath(tenant), nil},
		}
	}
	acmeFirstID := peSplit(t, acmeJWT).claims["tokenid"].(string)
	globalCalls := []call{
		{http.MethodGet, peTenantsPath, nil},
		{http.MethodPost, peTenantsPath, map[string]any{"tenantName": "zeta", "clusterName": peCluster}},
		{http.MethodPost, peRotatePath, nil},
	}
	expect := func(who, bearer string, calls []call, want int) {
		t.Helper()
		for _, c := range calls {
			code, raw, _ := env.REST(t, c.method, c.path, bearer, c.body)
			if code != want {
				t.Errorf("%s: %s %s: HTTP %d, want %d; body %s", who, c.method, c.path, code, want, raw)
			}
		}
	}

	// R/W User: 403 on everything.
	expect("R/W User", rw, tenantCalls("acme", acmeFirstID), http.StatusForbidden)
	expect("R/W User", rw, globalCalls, http.StatusForbidden)
	code, raw, _ = env.REST(t, http.MethodDelete, peTenantsPath+"/acme", rw, nil)
	peWantCode(t, "R/W User deletes acme", code, raw, http.StatusForbidden)
	_, err := env.Pulsar.ListTenants(env.GRPCCtx(rw), &tbv1.ListTenantsRequest{})
	peWantGRPC(t, "gRPC R/W User lists tenants", err, codes.PermissionDenied)
	_, err = env.Pulsar.CreateTenant(env.GRPCCtx(rw), &tbv1.CreateTenantRequest{TenantName: "zeta", ClusterName: peCluster})
	peWantGRPC(t, "gRPC R/W User creates a tenant", err, codes.PermissionDenied)

	// No credential: 401; a Pulsar JWT is not a management credential.
	code, raw, _ = env.REST(t, http.MethodGet, peTenantsPath, "", nil)
	peWantCode(t, "no credential", code, raw, http.StatusUnauthorized)
	code, raw, _ = env.REST(t, http.MethodGet, peTenantsPath+"/acme", acmeJWT, nil)
	peWantCode(t, "Pulsar JWT as bearer", code, raw, http.StatusUnauthorized)

	// Scoped role: tenant acme only.
	expect("stream:acme role on acme", scoped, tenantCalls("acme", acmeFirstID)[:1], http.StatusOK)
	expect("stream:acme role on acme", scoped, tenantCalls("acme", acmeFirstID)[1:3], http.StatusCreated)
	expect("stream:acme role on acme", scoped, tenantCalls("acme", acmeFirstID)[3:], http.StatusOK)
	expect("stream:acme role on other", scoped, tenantCalls("other", otherTok.ID), http.StatusForbidden)
	expect("stream:acme role on acme2", scoped, tenantCalls("acme2", otherTok.ID), http.StatusForbidden)
	expect("stream:acme role", scoped, globalCalls, http.StatusForbidden)
	for _, p := range []string{peTokensPath("other") + "/" + otherTok.ID, peTenantsPath + "/other", peTenantsPath + "/other/clusters/" + peCluster} {
		code, raw, _ = env.REST(t, http.MethodDelete, p, scoped, nil)
		peWantCode(t, "stream:acme role: DELETE "+p, code, raw, http.StatusForbidden)
	}
	peWantAllowed(t, env, "other's token after refused deletes", otherTok.JWT, otherTok.ID, peStream(env, "other"))
	_, err = env.Pulsar.GetTenant(env.GRPCCtx(scoped), &tbv1.GetTenantRequest{Tenant: "other"})
	peWantGRPC(t, "gRPC stream:acme role gets other", err, codes.PermissionDenied)
	_, err = env.Pulsar.RotateSigningKey(env.GRPCCtx(scoped), &tbv1.RotateSigningKeyRequest{})
	peWantGRPC(t, "gRPC stream:acme role rotates", err, codes.PermissionDenied)
	code, raw, _ = env.REST(t, http.MethodDelete, peTokensPath("acme")+"/"+acmeFirstID, scoped, nil)
	peWantCode(t, "stream:acme role deletes an acme token", code, raw, http.StatusOK)
	code, raw, _ = env.REST(t, http.MethodDelete, peTenantsPath+"/acme/clusters/"+peCluster, scoped, nil)
	peWantCode(t, "stream:acme role deletes acme", code, raw, http.StatusAccepted)
	code, raw, _ = env.REST(t, http.MethodPost, peTenantsPath, scoped, map[string]any{"tenantName": "acme", "clusterName": peCluster})
	peWantCode(t, "stream:acme role re-creates acme", code, raw, http.StatusOK)

	// Admin Svc Acct (stream:*): everything.
	expect("Admin Svc Acct", svc, globalCalls[:1], http.StatusOK)
	expect("Admin Svc Acct", svc, globalCalls[1:], http.StatusOK)
	expect("Admin Svc Acct on other", svc, tenantCalls("other", otherTok.ID)[:1], http.StatusOK)
	expect("Admin Svc Acct on other", svc, tenantCalls("other", otherTok.ID)[1:3], http.StatusCreated)
	expect("Admin Svc Acct on other", svc, tenantCalls("other", otherTok.ID)[3:], http.StatusOK)
	code, raw, _ = env.REST(t, http.MethodDelete, peTenantsPath+"/zeta", svc, nil)
	peWantCode(t, "Admin Svc Acct deletes zeta", code, raw, http.StatusOK)
	if _, err := env.Pulsar.ListTenants(env.GRPCCtx(svc), &tbv1.ListTenantsRequest{}); err != nil {
		t.Errorf("gRPC Admin Svc Acct lists tenants: %v", err)
	}
}

// ---- 9. restart ---------------------------------------------------------------------

// TestPulsarRestart: keys and tenant secrets are persisted (sealed with
// the key file): after a restart, rs256 tokens signed by the active and by
// a retired key and hs256 tokens still pass Check and verify through the
// JWKS / exported secret; deleted tokens stay refused; new tokens use the
// active key.
func TestPulsarRestart(t *testing.T) {
	t.Parallel()
	const issuer = "https://tokens.example.internal"
	env := servertest.Start(t, servertest.WithConfig(func(c *server.Config) { c.IssuerURL = issuer }))
	_, r0 := peCreateTenant(t, env, "acme", "")
	_, h0 := peCreateTenant(t, env, "plain", "hs256")
	r1 := peIssue(t, env, "acme", map[string]any{"exp": "1d", "role": "app1", "type": "non-admin"})
	gone := peIssue(t, env, "acme", map[string]any{"exp": "1d"})
	code, raw, _ := env.REST(t, http.MethodPost, peRotatePath, env.AdminToken, nil)
	peWantCode(t, "rotate", code, raw, http.StatusOK)
	k2 := peString(t, "rotate", peObject(t, "rotate", raw), "kid")
	r2 := peIssue(t, env, "acme", map[string]any{"exp": "2d"})
	h1 := peIssue(t, env, "plain", map[string]any{"exp": "1d", "role": "app1"})
	peDeleteToken(t, env, "acme", gone.ID)
	keysBefore := peFetchKeys(t, env, "acme")
	plainBefore := peFetchKeys(t, env, "plain")
	jwksBefore := peFetchOIDC(t, env)

	env.Restart(t)
	env.Clock.Advance(time.Hour)

	oidc := peFetchOIDC(t, env)
	if oidc.issuer != issuer || len(oidc.keys) != len(jwksBefore.keys) {
		t.Errorf("after restart: issuer %q, %d keys; want %q, %d", oidc.issuer, len(oidc.keys), issuer, len(jwksBefore.keys))
	}
	for kid, k := range jwksBefore.keys {
		if !k.Equal(oidc.keys[kid]) {
			t.Errorf("after restart: JWK %s changed or vanished", kid)
		}
	}
	keys := peFetchKeys(t, env, "acme")
	if keys.m["kid"] != k2 || !bytes.Equal(keys.der, keysBefore.der) {
		t.Errorf("after restart: token-keys kid %v, want the active %s and the same key", keys.m["kid"], k2)
	}
	if pk := peFetchKeys(t, env, "plain"); !bytes.Equal(pk.secret, plainBefore.secret) {
		t.Errorf("after restart: the hs256 tenant's secret changed")
	}
	for _, c := range []struct {
		what, jwt, id, tenant string
		exp                   bool
	}{
		{"rs256 first (retired key)", r0, peSplit(t, r0).claims["tokenid"].(string), "acme", false},
		{"rs256 app1 (retired key)", r1.JWT, r1.ID, "acme", true},
		{"rs256 2d (active key)", r2.JWT, r2.ID, "acme", true},
	} {
		peWantAllowed(t, env, c.what+" after restart", c.jwt, c.id, peStream(env, c.tenant))
		peVerifyRS256(t, env, c.what+" via JWKS after restart", c.jwt, oidc.keyfunc, issuer, "pulsar", c.exp)
	}
	for _, tk := range []string{h0, h1.JWT} {
		if _, err := jwt.Parse(tk, func(*jwt.Token) (any, error) { return plainBefore.secret, nil },
			jwt.WithValidMethods([]string{"HS256"}), jwt.WithTimeFunc(env.Clock.Now)); err != nil {
			t.Errorf("hs256 token after restart: %v", err)
		}
	}
	code, raw, _ = env.REST(t, http.MethodGet, peTokensPath("plain"), env.AdminToken, nil)
	peWantCode(t, "list plain after restart", code, raw, http.StatusOK)
	for _, m := range peArray(t, "list plain after restart", raw) {
		if m["sub"] == "plain-admin" {
			peWantAllowed(t, env, "hs256 first after restart", h0, m["tokenid"].(string), peStream(env, "plain"))
		}
	}
	peWantAllowed(t, env, "hs256 app1 after restart", h1.JWT, h1.ID, peStream(env, "plain"))
	peWantRefused(t, env, "deleted token after restart", gone.JWT, peStream(env, "acme"), peInvalid)

	r3 := peIssue(t, env, "acme", map[string]any{"exp": "1h"})
	if got := peSplit(t, r3.JWT).hdr["kid"]; got != k2 {
		t.Errorf("token after restart: kid %v, want the active %s", got, k2)
	}
	peVerifyRS256(t, env, "token issued after restart", r3.JWT, oidc.keyfunc, issuer, "pulsar", true)
}

// TestPruneKeepsFreshlyRetiredKey: a retired key that signs no live token
// is still kept for a margin after its retirement (a replica whose view
// lags may sign with it for a moment), then unpublished.
func TestPruneKeepsFreshlyRetiredKey(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	ctx := context.Background()
	gc := func() {
		t.Helper()
		if _, err := env.Server.Broker().CollectGarbage(ctx, 0); err != nil {
			t.Fatalf("CollectGarbage: %v", err)
		}
	}
	peCreateTenant(t, env, "plain", "hs256") // its tokens use no signing key
	var k1 string
	for kid := range peFetchOIDC(t, env).keys {
		k1 = kid
	}
	if _, err := env.Pulsar.RotateSigningKey(env.GRPCCtx(env.AdminToken), &tbv1.RotateSigningKeyRequest{}); err != nil {
		t.Fatalf("RotateSigningKey: %v", err)
	}
	gc()
	if peFetchOIDC(t, env).keys[k1] == nil {
		t.Fatalf("%s unpublished at once after its retirement", k1)
	}
	env.Clock.Advance(3 * time.Minute)
	gc()
	if keys := peFetchOIDC(t, env).keys; keys[k1] != nil || len(keys) != 1 {
		t.Errorf("JWKS %v still holds %s minutes after its retirement with no token", keys, k1)
	}
}
