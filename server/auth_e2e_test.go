package server_test

// End-to-end tests of authorization tokens (Stargate's Auth API), their
// sliding expiry and revocation, database users, Check, and login/Check
// throttling, as docs/auth.md describes them, against a real server over
// both transports. Time is the fake clock (the server's Config.Now), and the
// throttle's slowdowns are recorded by the harness (env.Sleeps), not waited.
//
// Helpers here are prefixed "ae" so they cannot collide with the other
// files of this package.

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	tbv1 "github.com/tokenbroker/tokenbroker/gen/tokenbroker/v1"
	"github.com/tokenbroker/tokenbroker/server"
	"github.com/tokenbroker/tokenbroker/server/policy"
	"github.com/tokenbroker/tokenbroker/server/servertest"
)

const (
	aeLoginPath       = "/v1/auth"
	aeAstraLoginPath  = "/api/rest/v1/auth"
	aeGeneratePath    = "/v1/auth/token/generate"
	aeCheckPath       = "/v1/auth/check"
	aeUsersPath       = "/v2/organizations/users"
	aeTokensPath      = "/v2/clientIdSecrets"
	aeNoStore         = "no-store, no-transform, max-age=0, s-maxage=0"
	aeUnknownClientID = "QwErTyUiOpAsDfGhJkLzXcVb" // client-ID shaped, never issued
	aeTooMany         = "too many failed logins; retry later"
	aeInvalid         = "CREDENTIAL_INVALID"
	aeDenied          = "PERMISSION_DENIED"
)

// ---- helpers -------------------------------------------------------------

func aeObject(t *testing.T, what string, raw []byte) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		t.Fatalf("%s: want a JSON object, got %q (%v)", what, raw, err)
	}
	return m
}

func aeWantKeys(t *testing.T, what string, m map[string]json.RawMessage, want ...string) {
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

func aeString(t *testing.T, what string, raw json.RawMessage) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("%s: want a JSON string, got %s", what, raw)
	}
	return s
}

func aeWantCode(t *testing.T, what string, got int, raw []byte, want int) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: HTTP %d, want %d; body %s", what, got, want, raw)
	}
}

// aeStargateError checks a Stargate Auth API error: status, a body that is
// exactly {"description": wantDesc} ("" means any non-empty text), JSON, and
// Stargate's no-store Cache-Control.
func aeStargateError(t *testing.T, what string, code int, raw []byte, hdr http.Header, wantCode int, wantDesc string) string {
	t.Helper()
	aeWantCode(t, what, code, raw, wantCode)
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type %q, want application/json", what, ct)
	}
	m := aeObject(t, what, raw)
	aeWantKeys(t, what+": error body", m, "description")
	desc := aeString(t, what, m["description"])
	if wantDesc == "" && desc == "" || wantDesc != "" && desc != wantDesc {
		t.Errorf("%s: description %q, want %q", what, desc, wantDesc)
	}
	if cc := hdr.Get("Cache-Control"); cc != aeNoStore {
		t.Errorf("%s: Cache-Control %q, want %q", what, cc, aeNoStore)
	}
	return desc
}

// aeWantUUIDv4 checks a canonical (36-character, lower-case) random UUID.
func aeWantUUIDv4(t *testing.T, what, s string) {
	t.Helper()
	u, err := uuid.Parse(s)
	if err != nil || u.String() != s {
		t.Fatalf("%s: %q is not a UUID in canonical form (%v)", what, s, err)
	}
	if u.Version() != 4 || u.Variant() != uuid.RFC4122 {
		t.Errorf("%s: %q is UUID version %d variant %v, want a version 4 RFC 4122 UUID", what, s, u.Version(), u.Variant())
	}
}

// aeAuthToken checks a successful login: 201, a body that is exactly
// {"authToken":"<uuid v4>"}, and Stargate's Cache-Control for the TTL.
func aeAuthToken(t *testing.T, what string, code int, raw []byte, hdr http.Header, maxAge int) string {
	t.Helper()
	aeWantCode(t, what, code, raw, http.StatusCreated)
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type %q, want application/json", what, ct)
	}
	m := aeObject(t, what, raw)
	aeWantKeys(t, what+": body", m, "authToken")
	tok := aeString(t, what, m["authToken"])
	aeWantUUIDv4(t, what, tok)
	var canon bytes.Buffer
	if err := json.Compact(&canon, raw); err != nil || canon.String() != `{"authToken":"`+tok+`"}` {
		t.Errorf("%s: body %s, want exactly {\"authToken\":\"%s\"}", what, raw, tok)
	}
	for k := range hdr {
		if lk := strings.ToLower(k); strings.HasPrefix(lk, "grpc-") || strings.HasPrefix(lk, "x-http-") {
			t.Errorf("%s: internal header %s leaked into the response", what, k)
		}
	}
	want := fmt.Sprintf("no-transform, max-age=%d, s-maxage=%d", maxAge, maxAge)
	if cc := hdr.Get("Cache-Control"); cc != want {
		t.Errorf("%s: Cache-Control %q, want %q", what, cc, want)
	}
	return tok
}

// aeRefused is Stargate's 401 text for bad credentials.
func aeRefused(name string) string {
	return "Failed to create token: Provided username " + name + " and/or password are incorrect"
}

func aeLogin(t *testing.T, env *servertest.Env, path string, body any) (int, []byte, http.Header) {
	t.Helper()
	return env.REST(t, http.MethodPost, path, "", body)
}

// aeMaxAge is Stargate's Cache-Control max-age for a TTL: TTL-10s, or
// TTL-1s when the TTL is at most 100s.
func aeMaxAge(ttl time.Duration) int {
	s := int(ttl / time.Second)
	if s > 100 {
		return s - 10
	}
	return s - 1
}

// aeLoginREST logs in over REST at /v1/auth and returns the auth token.
func aeLoginREST(t *testing.T, env *servertest.Env, username, password string) string {
	t.Helper()
	code, raw, hdr := aeLogin(t, env, aeLoginPath, map[string]string{"username": username, "password": password})
	return aeAuthToken(t, "login as "+username, code, raw, hdr, aeMaxAge(env.Server.Broker().AuthTokenTTL()))
}

func aeGRPCCode(t *testing.T, what string, err error, want codes.Code, wantMsg string) *status.Status {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != want {
		t.Fatalf("%s: gRPC %v, want %v", what, err, want)
	}
	if wantMsg != "" && st.Message() != wantMsg {
		t.Errorf("%s: gRPC message %q, want %q", what, st.Message(), wantMsg)
	}
	return st
}

func aeMD(kv ...string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), kv...)
}

func aeTableDRN(orgID, dbID string) string {
	return policy.DatabaseDRN(orgID, dbID) + ":keyspace:ks:table:t"
}

// aeCheckREST posts a Check over REST with the given extra headers (name,
// value pairs), requires 200, checks the exact JSON shape and returns the
// decoded answer.
func aeCheckREST(t *testing.T, env *servertest.Env, what string, body any, headers ...string) *tbv1.CheckResponse {
	t.Helper()
	req := env.NewRequest(t, http.MethodPost, aeCheckPath, "", body)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	code, raw, _ := env.Do(t, req)
	aeWantCode(t, what, code, raw, http.StatusOK)
	m := aeObject(t, what, raw)
	aeWantKeys(t, what+": Check answer", m, "allowed", "reason", "principal")
	if string(m["principal"]) != "null" {
		aeWantKeys(t, what+": principal", aeObject(t, what, m["principal"]), "kind", "id", "orgId", "roles", "credentialType")
	}
	var out tbv1.CheckResponse
	if err := protojson.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s: decode %s: %v", what, raw, err)
	}
	return &out
}

func aeCheckGRPC(t *testing.T, env *servertest.Env, what string, ctx context.Context, cred, action, resource string) *tbv1.CheckResponse {
	t.Helper()
	res, err := env.Auth.Check(ctx, &tbv1.CheckRequest{Credential: cred, Action: action, Resource: resource})
	if err != nil {
		t.Fatalf("%s: Check: %v", what, err)
	}
	return res
}

// aeWantCheck checks a Check answer. want nil means no principal.
func aeWantCheck(t *testing.T, what string, got *tbv1.CheckResponse, allowed bool, reason string, want *tbv1.Principal) {
	t.Helper()
	if got.GetAllowed() != allowed || got.GetReason() != reason {
		t.Errorf("%s: allowed=%v reason=%q, want allowed=%v reason=%q", what, got.GetAllowed(), got.GetReason(), allowed, reason)
	}
	p := got.GetPrincipal()
	switch {
	case want == nil && p != nil:
		t.Errorf("%s: principal %v, want none", what, p)
	case want != nil && p == nil:
		t.Errorf("%s: no principal, want %v", what, want)
	case want != nil:
		if p.GetKind() != want.GetKind() || p.GetId() != want.GetId() || p.GetOrgId() != want.GetOrgId() ||
			!slices.Equal(p.GetRoles(), want.GetRoles()) || p.GetCredentialType() != want.GetCredentialType() {
			t.Errorf("%s: principal {kind %q id %q org %q roles %v credential %q}, want {kind %q id %q org %q roles %v credential %q}",
				what, p.GetKind(), p.GetId(), p.GetOrgId(), p.GetRoles(), p.GetCredentialType(),
				want.GetKind(), want.GetId(), want.GetOrgId(), want.GetRoles(), want.GetCredentialType())
		}
	}
}

// aeValid reports whether an auth token or application token is currently
// accepted, by a Check of an action it need not hold: any answer but
// CREDENTIAL_INVALID means the credential was accepted (and used).
func aeValid(t *testing.T, env *servertest.Env, cred string) bool {
	t.Helper()
	res := aeCheckGRPC(t, env, "validity check", context.Background(), cred, "org-read", policy.OrgDRN(env.OrgID))
	if res.GetReason() == aeInvalid {
		if res.GetPrincipal() != nil {
			t.Errorf("CREDENTIAL_INVALID answer carries a principal: %v", res.GetPrincipal())
		}
		return false
	}
	return true
}

func aeWantValid(t *testing.T, env *servertest.Env, what, cred string, want bool) {
	t.Helper()
	if got := aeValid(t, env, cred); got != want {
		t.Errorf("%s: credential accepted=%v, want %v", what, got, want)
	}
}

// aeMgmt lists application tokens with the credential in X-Cassandra-Token,
// the way Stargate clients send an auth token, and returns the status.
func aeMgmt(t *testing.T, env *servertest.Env, cred string) int {
	t.Helper()
	req := env.NewRequest(t, http.MethodGet, aeTokensPath, "", nil)
	req.Header.Set("X-Cassandra-Token", cred)
	code, _, hdr := env.Do(t, req)
	if code == http.StatusUnauthorized && hdr.Get("WWW-Authenticate") == "" {
		t.Errorf("management call: 401 without WWW-Authenticate")
	}
	return code
}

func aePrincipalApp(env *servertest.Env, clientID, credType string, roles ...string) *tbv1.Principal {
	return &tbv1.Principal{Kind: "application-token", Id: clientID, OrgId: env.OrgID, Roles: roles, CredentialType: credType}
}

func aePrincipalUser(env *servertest.Env, userID string, roles ...string) *tbv1.Principal {
	return &tbv1.Principal{Kind: "user", Id: userID, OrgId: env.OrgID, Roles: roles, CredentialType: "auth-token"}
}

// aeRetryAfter checks a Retry-After header: whole seconds, at least 1.
func aeRetryAfter(t *testing.T, what string, hdr http.Header, atMost int) {
	t.Helper()
	v := hdr.Get("Retry-After")
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > atMost {
		t.Errorf("%s: Retry-After %q, want whole seconds in [1, %d]", what, v, atMost)
	}
}

// aeRetryInfo checks that a ResourceExhausted status carries a RetryInfo.
func aeRetryInfo(t *testing.T, what string, st *status.Status) {
	t.Helper()
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay().AsDuration() > 0 {
			return
		}
	}
	t.Errorf("%s: ResourceExhausted without a positive RetryInfo detail: %v", what, st.Details())
}

// ---- 1. login success --------------------------------------------------------

// TestAuthLoginSuccess: the seed's curl and its variants (POST /v1/auth,
// /api/rest/v1/auth, /v1/auth/token/generate, gRPC CreateAuthToken and
// GenerateAuthToken) answer 201 {"authToken":"<uuid v4>"} with Stargate's
// Cache-Control (TTL-10s; TTL-1s when TTL <= 100s), for an application
// token's clientId/secret and for a database user; each token is distinct
// and works.
func TestAuthLoginSuccess(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	app := env.CreateToken(t, env.AdminToken, policy.RWSvcAcctID)
	user := env.CreateUser(t, env.AdminToken, "alice", "alice-password-1", policy.RWUserID)

	seen := map[string]string{}
	use := func(what, tok string, want *tbv1.Principal) {
		t.Helper()
		if prev, dup := seen[tok]; dup {
			t.Errorf("%s returned the same auth token as %s", what, prev)
		}
		seen[tok] = what
		got := aeCheckGRPC(t, env, what, context.Background(), tok, "db-table-select", aeTableDRN(env.OrgID, uuid.NewString()))
		aeWantCheck(t, what+": Check", got, true, "", want)
	}
	appP := aePrincipalApp(env, app.ClientId, "auth-token", policy.RWSvcAcctID)
	userP := aePrincipalUser(env, user.GetUserId(), policy.RWUserID)

	// The seed's curl, with Astra's X-Cassandra-Request-Id header.
	req := env.NewRequest(t, http.MethodPost, aeAstraLoginPath, "", `{"username":"`+app.ClientId+`","password":"`+app.Secret+`"}`)
	req.Header.Set("X-Cassandra-Request-Id", uuid.NewString())
	code, raw, hdr := env.Do(t, req)
	use("POST "+aeAstraLoginPath, aeAuthToken(t, "POST "+aeAstraLoginPath, code, raw, hdr, 1790), appP)

	code, raw, hdr = aeLogin(t, env, aeLoginPath, map[string]string{"username": app.ClientId, "password": app.Secret})
	use("POST "+aeLoginPath, aeAuthToken(t, "POST "+aeLoginPath, code, raw, hdr, 1790), appP)

	code, raw, hdr = aeLogin(t, env, aeGeneratePath, map[string]string{"key": app.ClientId, "secret": app.Secret})
	use("POST "+aeGeneratePath, aeAuthToken(t, "POST "+aeGeneratePath, code, raw, hdr, 1790), appP)

	// Unknown fields are ignored, as by Stargate.
	code, raw, hdr = aeLogin(t, env, aeLoginPath, map[string]any{"username": app.ClientId, "password": app.Secret, "extra": 1})
	use("login with an unknown field", aeAuthToken(t, "login with an unknown field", code, raw, hdr, 1790), appP)

	// A database user.
	code, raw, hdr = aeLogin(t, env, aeAstraLoginPath, map[string]string{"username": "alice", "password": "alice-password-1"})
	use("user via "+aeAstraLoginPath, aeAuthToken(t, "user via "+aeAstraLoginPath, code, raw, hdr, 1790), userP)
	code, raw, hdr = aeLogin(t, env, aeGeneratePath, map[string]string{"key": "alice", "secret": "alice-password-1"})
	use("user via "+aeGeneratePath, aeAuthToken(t, "user via "+aeGeneratePath, code, raw, hdr, 1790), userP)

	// gRPC.
	cr, err := env.Auth.CreateAuthToken(context.Background(), &tbv1.CreateAuthTokenRequest{Username: app.ClientId, Password: app.Secret})
	if err != nil {
		t.Fatalf("gRPC CreateAuthToken: %v", err)
	}
	aeWantUUIDv4(t, "gRPC CreateAuthToken", cr.GetAuthToken())
	use("gRPC CreateAuthToken", cr.GetAuthToken(), appP)
	gr, err := env.Auth.GenerateAuthToken(context.Background(), &tbv1.GenerateAuthTokenRequest{Key: app.ClientId, Secret: app.Secret})
	if err != nil {
		t.Fatalf("gRPC GenerateAuthToken: %v", err)
	}
	aeWantUUIDv4(t, "gRPC GenerateAuthToken", gr.GetAuthToken())
	use("gRPC GenerateAuthToken", gr.GetAuthToken(), appP)
	ur, err := env.Auth.CreateAuthToken(context.Background(), &tbv1.CreateAuthTokenRequest{Username: "alice", Password: "alice-password-1"})
	if err != nil {
		t.Fatalf("gRPC CreateAuthToken as a user: %v", err)
	}
	aeWantUUIDv4(t, "gRPC user login", ur.GetAuthToken())
	use("gRPC user login", ur.GetAuthToken(), userP)

	// Cache-Control follows the TTL: TTL-1s up to 100s, TTL-10s above.
	for _, c := range []struct {
		ttl    time.Duration
		maxAge int
	}{{3 * time.Second, 2}, {100 * time.Second, 99}, {101 * time.Second, 91}, {time.Hour, 3590}} {
		t.Run(fmt.Sprintf("ttl=%v", c.ttl), func(t *testing.T) {
			t.Parallel()
			env := servertest.Start(t, servertest.WithConfig(func(cfg *server.Config) { cfg.AuthTokenTTL = c.ttl }))
			app := env.CreateToken(t, env.AdminToken, policy.RWSvcAcctID)
			code, raw, hdr := aeLogin(t, env, aeAstraLoginPath, map[string]string{"username": app.ClientId, "password": app.Secret})
			aeAuthToken(t, "login", code, raw, hdr, c.maxAge)
			code, raw, hdr = aeLogin(t, env, aeGeneratePath, map[string]string{"key": app.ClientId, "secret": app.Secret})
			aeAuthToken(t, "generate", code, raw, hdr, c.maxAge)
		})
	}
}

// ---- 2. login errors -----------------------------------------------------------

// TestAuthLoginErrors: Stargate's error texts, statuses, body shape
// ({"description"} only) and no-store Cache-Control, checked in Stargate's
// order, over REST and gRPC; bad credentials of every kind get one 401 shape.
func TestAuthLoginErrors(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	app := env.CreateToken(t, env.AdminToken, policy.RWSvcAcctID)
	env.CreateUser(t, env.AdminToken, "bob", "bob-password-12", policy.RWUserID)

	const (
		noBody = "Must provide a body to the request"
		noUser = "Must provide username in request"
		noPass = "Must provide password in request"
		noKey  = "Must provide key in request"
		noSec  = "Must provide secret in request"
	)
	for _, path := range []string{aeLoginPath, aeAstraLoginPath, aeGeneratePath} {
		for _, body := range []any{nil, "", "  \n", "null", " null "} {
			code, raw, hdr := aeLogin(t, env, path, body)
			aeStargateError(t, fmt.Sprintf("POST %s body %#v", path, body), code, raw, hdr, http.StatusBadRequest, noBody)
		}
		code, raw, hdr := aeLogin(t, env, path, `{"username":`)
		aeStargateError(t, "POST "+path+" malformed JSON", code, raw, hdr, http.StatusBadRequest, "")
	}
	for _, path := range []string{aeLoginPath, aeAstraLoginPath} {
		for _, c := range []struct {
			body any
			want string
		}{
			{`{}`, noUser},
			{map[string]string{"password": "p"}, noUser},
			{map[string]string{"username": "", "password": "p"}, noUser},
			{map[string]string{"key": "k", "secret": "s"}, noUser}, // the other call's fields
			{map[string]string{"username": "bob"}, noPass},
			{map[string]string{"username": "bob", "password": ""}, noPass},
		} {
			code, raw, hdr := aeLogin(t, env, path, c.body)
			aeStargateError(t, fmt.Sprintf("POST %s %v", path, c.body), code, raw, hdr, http.StatusBadRequest, c.want)
		}
	}
	for _, c := range []struct {
		body any
		want string
	}{
		{`{}`, noKey},
		{map[string]string{"secret": "s"}, noKey},
		{map[string]string{"username": "bob", "password": "bob-password-12"}, noKey},
		{map[string]string{"key": "bob"}, noSec},
		{map[string]string{"key": "bob", "secret": ""}, noSec},
	} {
		code, raw, hdr := aeLogin(t, env, aeGeneratePath, c.body)
		aeStargateError(t, fmt.Sprintf("POST %s %v", aeGeneratePath, c.body), code, raw, hdr, http.StatusBadRequest, c.want)
	}
	_, err := env.Auth.CreateAuthToken(context.Background(), &tbv1.CreateAuthTokenRequest{})
	aeGRPCCode(t, "gRPC CreateAuthToken {}", err, codes.InvalidArgument, noUser)
	_, err = env.Auth.CreateAuthToken(context.Background(), &tbv1.CreateAuthTokenRequest{Username: "bob"})
	aeGRPCCode(t, "gRPC CreateAuthToken username only", err, codes.InvalidArgument, noPass)
	_, err = env.Auth.GenerateAuthToken(context.Background(), &tbv1.GenerateAuthTokenRequest{})
	aeGRPCCode(t, "gRPC GenerateAuthToken {}", err, codes.InvalidArgument, noKey)
	_, err = env.Auth.GenerateAuthToken(context.Background(), &tbv1.GenerateAuthTokenRequest{Key: "bob"})
	aeGRPCCode(t, "gRPC GenerateAuthToken key only", err, codes.InvalidArgument, noSec)

	// Bad credentials: one 401 shape whatever is wrong. Each failure is
	// forgiven (the clock moves a minute) so throttling stays out of the way.
	// Database-user attempts cost an argon2id verification each (about
	// 0.4s under -race), so they are tried on fewer paths.
	type attempt struct {
		name, user, pass string
		paths            []string
	}
	all := []string{aeLoginPath, aeAstraLoginPath, aeGeneratePath}
	bad := []attempt{
		{"wrong secret", app.ClientId, app.Secret + "x", all},
		{"token instead of secret", app.ClientId, app.Token, all},
		{"unknown clientId", aeUnknownClientID, app.Secret, all},
		{"unknown user", "nobody-here", "bob-password-12", []string{aeLoginPath}},
		{"wrong user password", "bob", "bob-password-13", []string{aeGeneratePath}},
	}
	var shapes []string
	for _, a := range bad {
		for _, path := range a.paths {
			body := map[string]string{"username": a.user, "password": a.pass}
			if path == aeGeneratePath {
				body = map[string]string{"key": a.user, "secret": a.pass}
			}
			code, raw, hdr := aeLogin(t, env, path, body)
			aeStargateError(t, a.name+" via "+path, code, raw, hdr, http.StatusUnauthorized, aeRefused(a.user))
			shape := fmt.Sprintf("%d %s|%s|%s|%s", code, strings.ReplaceAll(string(raw), a.user, "<name>"),
				hdr.Get("Cache-Control"), hdr.Get("Content-Type"), hdr.Get("WWW-Authenticate"))
			shapes = append(shapes, shape)
			env.Clock.Advance(time.Minute)
		}
		_, err := env.Auth.CreateAuthToken(context.Background(), &tbv1.CreateAuthTokenRequest{Username: a.user, Password: a.pass})
		aeGRPCCode(t, a.name+" via gRPC CreateAuthToken", err, codes.Unauthenticated, aeRefused(a.user))
		env.Clock.Advance(time.Minute)
		if len(a.paths) < len(all) {
			continue
		}
		_, err = env.Auth.GenerateAuthToken(context.Background(), &tbv1.GenerateAuthTokenRequest{Key: a.user, Secret: a.pass})
		aeGRPCCode(t, a.name+" via gRPC GenerateAuthToken", err, codes.Unauthenticated, aeRefused(a.user))
		env.Clock.Advance(time.Minute)
	}
	for i, s := range shapes {
		if s != shapes[0] {
			t.Errorf("401 answers differ beyond the name: %q vs %q", s, shapes[i])
		}
	}
	// No bad attempt minted anything: the right credentials still work.
	aeLoginREST(t, env, "bob", "bob-password-12")
	aeLoginREST(t, env, app.ClientId, app.Secret)
}

// ---- 3. sliding expiry -----------------------------------------------------------

// TestAuthSlidingExpiry (TTL 3s, fake clock): an auth token used every 2s
// (by Check, and by management calls with X-Cassandra-Token over REST and
// x-cassandra-token over gRPC) outlives its TTL many times; one left idle is
// refused; the boundaries are exact: idle TTL → refused, TTL-200ms →
// accepted, whether the last use is the login or a later call.
func TestAuthSlidingExpiry(t *testing.T) {
	t.Parallel()
	const ttl = 3 * time.Second
	env := servertest.Start(t, servertest.WithConfig(func(c *server.Config) { c.AuthTokenTTL = ttl }))
	// Database Administrator: may list tokens, so a management call is 200.
	app := env.CreateToken(t, env.AdminToken, policy.DatabaseAdministratorID)
	login := func() string { t.Helper(); return env.Login(t, app.ClientId, app.Secret) }

	active, idle := login(), login()
	for i := 1; i <= 4; i++ {
		env.Clock.Advance(2 * time.Second)
		at := fmt.Sprintf("+%ds", 2*i)
		switch i {
		case 1, 3:
			aeWantValid(t, env, "used token at "+at+" (Check)", active, true)
		case 2:
			if code := aeMgmt(t, env, active); code != http.StatusOK {
				t.Errorf("used token at %s: REST management call with X-Cassandra-Token: HTTP %d, want 200", at, code)
			}
			// The idle token, 4s after its login, is refused everywhere.
			aeWantValid(t, env, "idle token at +4s (Check)", idle, false)
			if code := aeMgmt(t, env, idle); code != http.StatusUnauthorized {
				t.Errorf("idle token at +4s: management call HTTP %d, want 401", code)
			}
			_, err := env.Tokens.ListTokens(aeMD("x-cassandra-token", idle), &tbv1.ListTokensRequest{})
			aeGRPCCode(t, "idle token at +4s over gRPC", err, codes.Unauthenticated, "")
		case 4:
			if _, err := env.Tokens.ListTokens(aeMD("x-cassandra-token", active), &tbv1.ListTokensRequest{}); err != nil {
				t.Errorf("used token at %s: gRPC management call with x-cassandra-token: %v", at, err)
			}
		}
	}
	// +8s: last used at +8s; the Check below is 0s after that.
	aeWantValid(t, env, "used token at +8s", active, true)
	env.Clock.Advance(4 * time.Second)
	if code := aeMgmt(t, env, active); code != http.StatusUnauthorized {
		t.Errorf("token idle 4s (TTL 3s): management call HTTP %d, want 401", code)
	}
	aeWantValid(t, env, "token idle 4s (TTL 3s)", active, false)

	t.Run("boundary after login", func(t *testing.T) {
		exact, early := login(), login()
		env.Clock.Advance(ttl - 200*time.Millisecond)
		aeWantValid(t, env, "TTL-200ms after login", early, true)
		env.Clock.Advance(200 * time.Millisecond)
		aeWantValid(t, env, "exactly TTL after login", exact, false)
		// early was used 200ms ago.
		aeWantValid(t, env, "200ms after a use", early, true)
		env.Clock.Advance(ttl - 200*time.Millisecond)
		aeWantValid(t, env, "TTL-200ms after a use", early, true)
		env.Clock.Advance(ttl)
		aeWantValid(t, env, "exactly TTL after a use", early, false)
	})

	t.Run("boundary after a management call", func(t *testing.T) {
		a, b := login(), login()
		env.Clock.Advance(time.Second)
		for _, tok := range []string{a, b} {
			if code := aeMgmt(t, env, tok); code != http.StatusOK {
				t.Fatalf("management call: HTTP %d", code)
			}
		}
		env.Clock.Advance(ttl - 200*time.Millisecond)
		aeWantValid(t, env, "TTL-200ms after a management call", a, true)
		env.Clock.Advance(200 * time.Millisecond)
		aeWantValid(t, env, "exactly TTL after a management call", b, false)
	})

	t.Run("uses closer than the granularity", func(t *testing.T) {
		// A use 50ms after another may go unrecorded (100ms granularity); the
		// token then expires up to 100ms early, never late, and is still
		// accepted at TTL-200ms after the last use.
		a, b := login(), login()
		env.Clock.Advance(time.Second)
		aeWantValid(t, env, "first use", a, true)
		aeWantValid(t, env, "first use", b, true)
		env.Clock.Advance(50 * time.Millisecond)
		aeWantValid(t, env, "second use", a, true)
		aeWantValid(t, env, "second use", b, true)
		env.Clock.Advance(ttl - 200*time.Millisecond)
		aeWantValid(t, env, "TTL-200ms after the last use", a, true)
		env.Clock.Advance(200 * time.Millisecond)
		aeWantValid(t, env, "exactly TTL after the last use", b, false)
	})
}

// ---- 4. revocation ---------------------------------------------------------------

// TestAuthRevocation: deleting the application token or the user behind an
// auth token, or revoking it with DELETE /v1/auth (REST, both paths) or
// RevokeAuthToken (gRPC), makes it fail on the very next call while other
// auth tokens of the same principal keep working; an application token
// cannot be revoked there (400); an expiring application token takes its
// auth tokens with it.
func TestAuthRevocation(t *testing.T) {
	t.Parallel()
	// A long TTL: nothing here expires by idleness.
	env := servertest.Start(t, servertest.WithConfig(func(c *server.Config) { c.AuthTokenTTL = 24 * time.Hour }))

	t.Run("delete application token", func(t *testing.T) {
		app := env.CreateToken(t, env.AdminToken, policy.DatabaseAdministratorID)
		a1, a2 := env.Login(t, app.ClientId, app.Secret), aeLoginREST(t, env, app.ClientId, app.Secret)
		aeWantValid(t, env, "before delete", a1, true)
		if code := aeMgmt(t, env, a2); code != http.StatusOK {
			t.Fatalf("before delete: management call HTTP %d", code)
		}
		code, raw, _ := env.REST(t, http.MethodDelete, aeTokensPath+"/"+app.ClientId, env.AdminToken, nil)
		aeWantCode(t, "delete application token", code, raw, http.StatusOK)
		aeWantValid(t, env, "auth token of a deleted application token (Check)", a1, false)
		if code := aeMgmt(t, env, a2); code != http.StatusUnauthorized {
			t.Errorf("auth token of a deleted application token: management call HTTP %d, want 401", code)
		}
		code, raw, hdr := aeLogin(t, env, aeLoginPath, map[string]string{"username": app.ClientId, "password": app.Secret})
		aeStargateError(t, "login with a deleted application token", code, raw, hdr, http.StatusUnauthorized, aeRefused(app.ClientId))
	})

	t.Run("delete user", func(t *testing.T) {
		u := env.CreateUser(t, env.AdminToken, "doomed", "doomed-password", policy.AdminUserID)
		u1, u2 := env.Login(t, "doomed", "doomed-password"), aeLoginREST(t, env, "doomed", "doomed-password")
		aeWantValid(t, env, "user token before delete", u1, true)
		code, raw, _ := env.REST(t, http.MethodDelete, aeUsersPath+"/"+u.GetUserId(), env.AdminToken, nil)
		aeWantCode(t, "delete user", code, raw, http.StatusNoContent)
		aeWantValid(t, env, "auth token of a deleted user (Check)", u1, false)
		code, raw, _ = env.REST(t, http.MethodGet, aeUsersPath, u2, nil)
		aeWantCode(t, "auth token of a deleted user (management call)", code, raw, http.StatusUnauthorized)
		// A new user with the same name is someone else: old tokens stay dead.
		env.CreateUser(t, env.AdminToken, "doomed", "doomed-password", policy.AdminUserID)
		aeWantValid(t, env, "old token after the name is reused", u1, false)
	})

	t.Run("DELETE /v1/auth", func(t *testing.T) {
		app := env.CreateToken(t, env.AdminToken, policy.DatabaseAdministratorID)
		r1, r2, r3, keep := aeLoginREST(t, env, app.ClientId, app.Secret), aeLoginREST(t, env, app.ClientId, app.Secret),
			env.Login(t, app.ClientId, app.Secret), env.Login(t, app.ClientId, app.Secret)

		req := env.NewRequest(t, http.MethodDelete, aeLoginPath, "", nil)
		req.Header.Set("X-Cassandra-Token", r1)
		code, raw, _ := env.Do(t, req)
		aeWantCode(t, "DELETE /v1/auth with X-Cassandra-Token", code, raw, http.StatusNoContent)
		if len(raw) != 0 {
			t.Errorf("DELETE /v1/auth: body %q, want none", raw)
		}
		aeWantValid(t, env, "revoked token (Check)", r1, false)
		if code := aeMgmt(t, env, r1); code != http.StatusUnauthorized {
			t.Errorf("revoked token: management call HTTP %d, want 401", code)
		}
		aeWantValid(t, env, "another token of the same principal", keep, true)

		// Revoking it again: it no longer authenticates.
		req = env.NewRequest(t, http.MethodDelete, aeLoginPath, "", nil)
		req.Header.Set("X-Cassandra-Token", r1)
		code, raw, hdr := env.Do(t, req)
		aeStargateError(t, "DELETE /v1/auth with a revoked token", code, raw, hdr, http.StatusUnauthorized, "")

		code, raw, _ = env.REST(t, http.MethodDelete, aeAstraLoginPath, r2, nil)
		aeWantCode(t, "DELETE /api/rest/v1/auth with Authorization: Bearer", code, raw, http.StatusNoContent)
		aeWantValid(t, env, "token revoked with Bearer", r2, false)

		if _, err := env.Auth.RevokeAuthToken(aeMD("x-cassandra-token", r3), &tbv1.RevokeAuthTokenRequest{}); err != nil {
			t.Fatalf("gRPC RevokeAuthToken: %v", err)
		}
		aeWantValid(t, env, "token revoked over gRPC", r3, false)
		aeWantValid(t, env, "another token of the same principal, after three revocations", keep, true)

		// An application token is not revoked here.
		code, raw, hdr = env.REST(t, http.MethodDelete, aeLoginPath, app.Token, nil)
		aeStargateError(t, "DELETE /v1/auth with an application token", code, raw, hdr, http.StatusBadRequest, "")
		aeWantValid(t, env, "application token after DELETE /v1/auth", app.Token, true)
		_, err := env.Auth.RevokeAuthToken(env.GRPCCtx(app.Token), &tbv1.RevokeAuthTokenRequest{})
		aeGRPCCode(t, "gRPC RevokeAuthToken with an application token", err, codes.InvalidArgument, "")

		code, raw, hdr = env.REST(t, http.MethodDelete, aeLoginPath, "", nil)
		aeStargateError(t, "DELETE /v1/auth without a credential", code, raw, hdr, http.StatusUnauthorized, "")
	})

	t.Run("application token expiry", func(t *testing.T) {
		expiry := env.Clock.Now().Add(time.Hour)
		code, raw, _ := env.REST(t, http.MethodPost, aeTokensPath, env.AdminToken, map[string]any{
			"roles": []string{policy.RWSvcAcctID}, "tokenExpiry": expiry.Format(time.RFC3339Nano)})
		aeWantCode(t, "create expiring token", code, raw, http.StatusOK)
		m := aeObject(t, "create expiring token", raw)
		clientID, secret := aeString(t, "clientId", m["clientId"]), aeString(t, "secret", m["secret"])
		e1, e2 := env.Login(t, clientID, secret), env.Login(t, clientID, secret)
		env.Clock.Advance(time.Hour - time.Second)
		aeWantValid(t, env, "auth token 1s before its application token expires", e1, true)
		env.Clock.Advance(time.Second)
		aeWantValid(t, env, "auth token once its application token expired", e1, false)
		aeWantValid(t, env, "unused auth token once its application token expired", e2, false)
		code, raw, hdr := aeLogin(t, env, aeLoginPath, map[string]string{"username": clientID, "password": secret})
		aeStargateError(t, "login with an expired application token", code, raw, hdr, http.StatusUnauthorized, aeRefused(clientID))
	})
}

// ---- 5. Check -------------------------------------------------------------------------

// TestAuthCheck: Check over gRPC and REST for application tokens and auth
// tokens (from an application token and from a user): allowed and denied
// answers with the principal, the credential from the body, Authorization
// or X-Cassandra-Token (body first), invalid credentials as an answer, and
// malformed requests as 400/InvalidArgument.
func TestAuthCheck(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	app := env.CreateToken(t, env.AdminToken, policy.RWSvcAcctID)
	user := env.CreateUser(t, env.AdminToken, "carol", "carol-password", policy.RWUserID)
	appAuth := aeLoginREST(t, env, app.ClientId, app.Secret)
	userAuth := env.Login(t, "carol", "carol-password")

	table := aeTableDRN(env.OrgID, uuid.NewString())
	org := policy.OrgDRN(env.OrgID)
	otherTable := aeTableDRN(uuid.NewString(), uuid.NewString())
	creds := []struct {
		name, cred string
		p          *tbv1.Principal
	}{
		{"application token", app.Token, aePrincipalApp(env, app.ClientId, "application-token", policy.RWSvcAcctID)},
		{"auth token of an application token", appAuth, aePrincipalApp(env, app.ClientId, "auth-token", policy.RWSvcAcctID)},
		{"auth token of a user", userAuth, aePrincipalUser(env, user.GetUserId(), policy.RWUserID)},
	}
	for _, c := range creds {
		for _, q := range []struct {
			what, action, resource string
			allowed                bool
		}{
			{"db-table-select on a table of this org", "db-table-select", table, true},
			{"org-token-write on the org", "org-token-write", org, false},
			{"db-table-select on another org's table", "db-table-select", otherTable, false},
		} {
			reason := ""
			if !q.allowed {
				reason = aeDenied
			}
			what := c.name + ": " + q.what
			body := map[string]string{"credential": c.cred, "action": q.action, "resource": q.resource}
			aeWantCheck(t, what+" (gRPC, body)", aeCheckGRPC(t, env, what, context.Background(), c.cred, q.action, q.resource), q.allowed, reason, c.p)
			aeWantCheck(t, what+" (REST, body)", aeCheckREST(t, env, what, body), q.allowed, reason, c.p)
		}
		noCred := map[string]string{"action": "db-table-select", "resource": table}
		what := c.name + ": credential from "
		aeWantCheck(t, what+"Authorization (REST)", aeCheckREST(t, env, what, noCred, "Authorization", "Bearer "+c.cred), true, "", c.p)
		aeWantCheck(t, what+"X-Cassandra-Token (REST)", aeCheckREST(t, env, what, noCred, "X-Cassandra-Token", c.cred), true, "", c.p)
		aeWantCheck(t, what+"authorization (gRPC)", aeCheckGRPC(t, env, what, env.GRPCCtx(c.cred), "", "db-table-select", table), true, "", c.p)
		aeWantCheck(t, what+"x-cassandra-token (gRPC)", aeCheckGRPC(t, env, what, aeMD("x-cassandra-token", c.cred), "", "db-table-select", table), true, "", c.p)
		// The body wins over a header.
		withCred := map[string]string{"credential": c.cred, "action": "db-table-select", "resource": table}
		aeWantCheck(t, c.name+": body over a garbage header", aeCheckREST(t, env, "body wins", withCred, "X-Cassandra-Token", "garbage"), true, "", c.p)
		aeWantCheck(t, c.name+": body over a garbage Authorization", aeCheckREST(t, env, "body wins", withCred, "Authorization", "Bearer garbage"), true, "", c.p)
		garbageBody := map[string]string{"credential": "garbage", "action": "db-table-select", "resource": table}
		aeWantCheck(t, c.name+": garbage body over a valid header", aeCheckREST(t, env, "body wins", garbageBody, "X-Cassandra-Token", c.cred), false, aeInvalid, nil)
		aeWantCheck(t, c.name+": garbage body over valid metadata (gRPC)",
			aeCheckGRPC(t, env, "body wins", env.GRPCCtx(c.cred), "garbage", "db-table-select", table), false, aeInvalid, nil)
	}

	// User roles show through: R/W User may read users but not write them.
	aeWantCheck(t, "user: org-user-read", aeCheckGRPC(t, env, "", context.Background(), userAuth, "org-user-read", org), true, "", creds[2].p)
	aeWantCheck(t, "user: org-user-write", aeCheckGRPC(t, env, "", context.Background(), userAuth, "org-user-write", org), false, aeDenied, creds[2].p)
	aeWantCheck(t, "app: org-user-read", aeCheckGRPC(t, env, "", context.Background(), appAuth, "org-user-read", org), false, aeDenied, creds[1].p)

	// Invalid credentials are an answer: 200, CREDENTIAL_INVALID, no principal.
	wrongSecret := app.Token[:len(app.Token)-64] + strings.Repeat("0", 64)
	for _, c := range []struct{ name, cred string }{
		{"garbage", "garbage"},
		{"unknown AstraCS token", "AstraCS:" + aeUnknownClientID + ":" + strings.Repeat("ab", 32)},
		{"known clientId, wrong secret", wrongSecret},
		{"unknown uuid", uuid.NewString()},
		{"uuid without hyphens", strings.ReplaceAll(appAuth, "-", "")},
	} {
		aeWantCheck(t, c.name+" (gRPC)", aeCheckGRPC(t, env, c.name, context.Background(), c.cred, "db-table-select", table), false, aeInvalid, nil)
		body := map[string]string{"credential": c.cred, "action": "db-table-select", "resource": table}
		aeWantCheck(t, c.name+" (REST)", aeCheckREST(t, env, c.name, body), false, aeInvalid, nil)
	}
	// The raw REST answer for an invalid credential: principal is null.
	code, raw, _ := env.REST(t, http.MethodPost, aeCheckPath, "", map[string]string{"credential": "garbage", "action": "db-table-select", "resource": table})
	aeWantCode(t, "invalid credential (REST)", code, raw, http.StatusOK)
	if string(aeObject(t, "invalid credential", raw)["principal"]) != "null" {
		t.Errorf("invalid credential: principal %s, want null", raw)
	}

	// Malformed requests: 400 / InvalidArgument.
	for _, c := range []struct {
		name                   string
		cred, action, resource string
	}{
		{"no credential", "", "db-table-select", table},
		{"unknown action", app.Token, "db-table-frobnicate", table},
		{"no action", app.Token, "", table},
		{"resource not a DRN", app.Token, "db-table-select", "arn:aws:s3:::bucket"},
		{"no resource", app.Token, "db-table-select", ""},
	} {
		_, err := env.Auth.Check(context.Background(), &tbv1.CheckRequest{Credential: c.cred, Action: c.action, Resource: c.resource})
		aeGRPCCode(t, c.name+" (gRPC)", err, codes.InvalidArgument, "")
		code, raw, _ := env.REST(t, http.MethodPost, aeCheckPath, "", map[string]string{"credential": c.cred, "action": c.action, "resource": c.resource})
		aeWantCode(t, c.name+" (REST)", code, raw, http.StatusBadRequest)
	}

	// A successful Check is a use: it updates the application token's lastUsedOn.
	fresh := env.CreateToken(t, env.AdminToken, policy.RWSvcAcctID)
	env.Clock.Advance(time.Hour)
	checkedAt := env.Clock.Now()
	aeWantValid(t, env, "fresh token", fresh.Token, true)
	list, err := env.Tokens.ListTokens(env.GRPCCtx(env.AdminToken), &tbv1.ListTokensRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range list.GetClients() {
		if c.GetClientId() == fresh.ClientId {
			if lu := c.GetLastUsedOn(); lu == nil || lu.AsTime().Sub(checkedAt).Abs() > time.Second {
				t.Errorf("lastUsedOn after a Check: %v, want %v", lu, checkedAt)
			}
		}
	}
}

// ---- 6. users --------------------------------------------------------------------

// aeWantUser checks a user object's exact shape and values and returns its ID.
func aeWantUser(t *testing.T, what string, raw []byte, username string, roles [][2]string, createdOn time.Time) string {
	t.Helper()
	m := aeObject(t, what, raw)
	aeWantKeys(t, what+": user", m, "UserID", "Username", "Status", "Roles", "CreatedOn")
	id := aeString(t, what, m["UserID"])
	if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
		t.Errorf("%s: UserID %q is not a UUID", what, id)
	}
	if got := aeString(t, what, m["Username"]); got != username {
		t.Errorf("%s: Username %q, want %q", what, got, username)
	}
	if got := aeString(t, what, m["Status"]); got != "active" {
		t.Errorf("%s: Status %q, want active", what, got)
	}
	var rs []map[string]json.RawMessage
	if err := json.Unmarshal(m["Roles"], &rs); err != nil {
		t.Fatalf("%s: Roles %s: %v", what, m["Roles"], err)
	}
	var got [][2]string
	for _, r := range rs {
		aeWantKeys(t, what+": role", r, "ID", "Name")
		got = append(got, [2]string{aeString(t, what, r["ID"]), aeString(t, what, r["Name"])})
	}
	if !slices.Equal(got, roles) {
		t.Errorf("%s: Roles %v, want %v", what, got, roles)
	}
	if c, err := time.Parse(time.RFC3339Nano, aeString(t, what, m["CreatedOn"])); err != nil || !c.Equal(createdOn) {
		t.Errorf("%s: CreatedOn %s (%v), want %v", what, m["CreatedOn"], err, createdOn)
	}
	return id
}

// TestAuthUsersREST: the database-user API over REST (and a little gRPC):
// shapes, validation, permissions, anti-escalation, password reset and
// deletion, and that a user's auth token carries the user's roles.
func TestAuthUsersREST(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	const pw = "s3cret-Passw0rd!"
	var bodies [][]byte // every response, scanned for secrets at the end
	rest := func(method, path, bearer string, body any) (int, []byte, http.Header) {
		t.Helper()
		code, raw, hdr := env.REST(t, method, path, bearer, body)
		bodies = append(bodies, raw)
		return code, raw, hdr
	}
	rwUser := [][2]string{{policy.RWUserID, "R/W User"}}

	code, raw, hdr := rest(http.MethodPost, aeUsersPath, env.AdminToken, map[string]any{
		"username": "alice.db_1@example-org", "password": pw, "roles": []string{policy.RWUserID}})
	aeWantCode(t, "create user", code, raw, http.StatusCreated)
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("create user: Content-Type %q", ct)
	}
	created := raw
	aliceID := aeWantUser(t, "create user", raw, "alice.db_1@example-org", rwUser, env.Clock.Now())

	code, raw, _ = rest(http.MethodGet, aeUsersPath+"/"+aliceID, env.AdminToken, nil)
	aeWantCode(t, "get user", code, raw, http.StatusOK)
	aeWantUser(t, "get user", raw, "alice.db_1@example-org", rwUser, env.Clock.Now())
	var a, b bytes.Buffer
	_ = json.Compact(&a, created)
	_ = json.Compact(&b, raw)
	if a.String() != b.String() {
		t.Errorf("GET %s differs from the create answer:\n%s\n%s", aliceID, a.String(), b.String())
	}

	// Validation.
	for _, c := range []struct {
		name string
		body map[string]any
		want int
	}{
		{"duplicate username", map[string]any{"username": "alice.db_1@example-org", "password": pw, "roles": []string{policy.RWUserID}}, http.StatusConflict},
		{"client-ID-shaped username", map[string]any{"username": "AbcdefghijklmnopqrstuvwX", "password": pw, "roles": []string{policy.RWUserID}}, http.StatusBadRequest},
		{"space in username", map[string]any{"username": "bad name", "password": pw, "roles": []string{policy.RWUserID}}, http.StatusBadRequest},
		{"slash in username", map[string]any{"username": "a/b", "password": pw, "roles": []string{policy.RWUserID}}, http.StatusBadRequest},
		{"non-ASCII username", map[string]any{"username": "jürgen", "password": pw, "roles": []string{policy.RWUserID}}, http.StatusBadRequest},
		{"empty username", map[string]any{"username": "", "password": pw, "roles": []string{policy.RWUserID}}, http.StatusBadRequest},
		{"65-character username", map[string]any{"username": strings.Repeat("u", 65), "password": pw, "roles": []string{policy.RWUserID}}, http.StatusBadRequest},
		{"11-byte password", map[string]any{"username": "shortpw", "password": "12345678901", "roles": []string{policy.RWUserID}}, http.StatusBadRequest},
		{"NUL in password", map[string]any{"username": "nulpw", "password": "abcdef\x00ghijkl", "roles": []string{policy.RWUserID}}, http.StatusBadRequest},
		{"unknown role", map[string]any{"username": "norole", "password": pw, "roles": []string{uuid.NewString()}}, http.StatusBadRequest},
		{"no roles", map[string]any{"username": "noroles", "password": pw, "roles": []string{}}, http.StatusBadRequest},
	} {
		code, raw, _ := rest(http.MethodPost, aeUsersPath, env.AdminToken, c.body)
		aeWantCode(t, c.name, code, raw, c.want)
		aeWantKeys(t, c.name+": error body", aeObject(t, c.name, raw), "errors")
	}
	// Exactly 12 bytes and 24 characters that are not all letters are fine.
	code, raw, _ = rest(http.MethodPost, aeUsersPath, env.AdminToken, map[string]any{
		"username": "Abcdefghijklmnopqrstuvw1", "password": "123456789012", "roles": []string{policy.RWUserID}})
	aeWantCode(t, "12-byte password, 24-character username with a digit", code, raw, http.StatusCreated)
	_, err := env.Auth.CreateUser(env.GRPCCtx(env.AdminToken), &tbv1.CreateUserRequest{Username: "alice.db_1@example-org", Password: "x", Roles: []string{policy.RWUserID}})
	aeGRPCCode(t, "gRPC short password", err, codes.InvalidArgument, "")

	// List.
	code, raw, _ = rest(http.MethodGet, aeUsersPath, env.AdminToken, nil)
	aeWantCode(t, "list users", code, raw, http.StatusOK)
	list := aeObject(t, "list users", raw)
	aeWantKeys(t, "list users", list, "OrgID", "OrgName", "Users")
	if got := aeString(t, "OrgID", list["OrgID"]); got != env.OrgID {
		t.Errorf("OrgID %q, want %q", got, env.OrgID)
	}
	if got := aeString(t, "OrgName", list["OrgName"]); got != env.OrgName {
		t.Errorf("OrgName %q, want %q", got, env.OrgName)
	}
	var users []json.RawMessage
	_ = json.Unmarshal(list["Users"], &users)
	var names []string
	for _, u := range users {
		names = append(names, aeString(t, "Username", aeObject(t, "listed user", u)["Username"]))
	}
	if !slices.Equal(names, []string{"Abcdefghijklmnopqrstuvw1", "alice.db_1@example-org"}) {
		t.Errorf("listed users %v", names)
	}

	// Unknown and malformed IDs.
	code, raw, _ = rest(http.MethodGet, aeUsersPath+"/"+uuid.NewString(), env.AdminToken, nil)
	aeWantCode(t, "get unknown user", code, raw, http.StatusNotFound)
	code, raw, _ = rest(http.MethodGet, aeUsersPath+"/not-a-uuid", env.AdminToken, nil)
	aeWantCode(t, "get malformed user ID", code, raw, http.StatusBadRequest)

	// A user's auth token carries the user's roles.
	aliceTok := aeLoginREST(t, env, "alice.db_1@example-org", pw)
	alice := aePrincipalUser(env, aliceID, policy.RWUserID)
	aeWantCheck(t, "alice: db-table-select", aeCheckGRPC(t, env, "", context.Background(), aliceTok, "db-table-select", aeTableDRN(env.OrgID, "db1")), true, "", alice)
	aeWantCheck(t, "alice: org-user-write", aeCheckGRPC(t, env, "", context.Background(), aliceTok, "org-user-write", policy.OrgDRN(env.OrgID)), false, aeDenied, alice)

	// Permissions by role, with application tokens and with auth tokens.
	tokFor := func(role string) string { return env.CreateToken(t, env.AdminToken, role).Token }
	newUser := map[string]any{"username": "newcomer", "password": pw, "roles": []string{policy.BillingAdminID}}
	for _, c := range []struct {
		name         string
		bearer       string
		create, list int
	}{
		{"R/W User token", tokFor(policy.RWUserID), http.StatusForbidden, http.StatusOK}, // R/W User has org-user-read (docs/roles.md)
		{"R/W User auth token", aliceTok, http.StatusForbidden, http.StatusOK},
		{"R/W Svc Acct token", tokFor(policy.RWSvcAcctID), http.StatusForbidden, http.StatusForbidden},
		{"Database Administrator token", tokFor(policy.DatabaseAdministratorID), http.StatusForbidden, http.StatusOK},
	} {
		code, raw, _ := rest(http.MethodPost, aeUsersPath, c.bearer, newUser)
		aeWantCode(t, c.name+": create user", code, raw, c.create)
		code, raw, _ = rest(http.MethodGet, aeUsersPath, c.bearer, nil)
		aeWantCode(t, c.name+": list users", code, raw, c.list)
		code, raw, _ = rest(http.MethodGet, aeUsersPath+"/"+aliceID, c.bearer, nil)
		aeWantCode(t, c.name+": get user", code, raw, c.list)
		code, raw, _ = rest(http.MethodPut, aeUsersPath+"/"+aliceID+"/password", c.bearer, map[string]string{"password": "another-password"})
		aeWantCode(t, c.name+": reset password", code, raw, c.create)
		code, raw, _ = rest(http.MethodDelete, aeUsersPath+"/"+aliceID, c.bearer, nil)
		aeWantCode(t, c.name+": delete user", code, raw, c.create)
	}

	// Escalation: Admin User (org-user-write) can create users only with
	// roles it covers; not an Organization Administrator.
	env.CreateUser(t, env.AdminToken, "boss", pw, policy.OrganizationAdministratorID)
	bossID := ""
	env.CreateUser(t, env.AdminToken, "useradmin", pw, policy.AdminUserID)
	userAdmin := env.Login(t, "useradmin", pw)
	for _, bearer := range []string{tokFor(policy.AdminUserID), userAdmin} {
		code, raw, _ := rest(http.MethodPost, aeUsersPath, bearer, map[string]any{
			"username": "wannabe-admin", "password": pw, "roles": []string{policy.OrganizationAdministratorID}})
		aeWantCode(t, "Admin User creates an Organization Administrator", code, raw, http.StatusForbidden)
		code, raw, _ = rest(http.MethodGet, aeUsersPath, bearer, nil)
		aeWantCode(t, "Admin User lists users", code, raw, http.StatusOK)
		if bossID == "" {
			var l struct {
				Users []struct{ UserID, Username string }
			}
			_ = json.Unmarshal(raw, &l)
			for _, u := range l.Users {
				if u.Username == "boss" {
					bossID = u.UserID
				}
			}
		}
		code, raw, _ = rest(http.MethodPut, aeUsersPath+"/"+bossID+"/password", bearer, map[string]string{"password": "taken-over-pw!"})
		aeWantCode(t, "Admin User resets an Organization Administrator's password", code, raw, http.StatusForbidden)
		code, raw, _ = rest(http.MethodDelete, aeUsersPath+"/"+bossID, bearer, nil)
		aeWantCode(t, "Admin User deletes an Organization Administrator", code, raw, http.StatusForbidden)
	}
	code, raw, _ = rest(http.MethodPost, aeUsersPath, userAdmin, map[string]any{
		"username": "biller", "password": pw, "roles": []string{policy.BillingAdminID}})
	aeWantCode(t, "Admin User (auth token) creates a Billing Admin", code, raw, http.StatusCreated)
	aeWantUser(t, "Billing Admin user", raw, "biller", [][2]string{{policy.BillingAdminID, "Billing Admin"}}, env.Clock.Now())
	aeLoginREST(t, env, "boss", pw) // the refused reset changed nothing

	// Password reset: old password refused, new one works, old tokens stay.
	code, raw, _ = rest(http.MethodPut, aeUsersPath+"/"+aliceID+"/password", env.AdminToken, map[string]string{"password": "short"})
	aeWantCode(t, "reset to a short password", code, raw, http.StatusBadRequest)
	code, raw, _ = rest(http.MethodPut, aeUsersPath+"/"+uuid.NewString()+"/password", env.AdminToken, map[string]string{"password": "new-password-2"})
	aeWantCode(t, "reset an unknown user", code, raw, http.StatusNotFound)
	code, raw, _ = rest(http.MethodPut, aeUsersPath+"/"+aliceID+"/password", env.AdminToken, map[string]string{"password": "new-password-2"})
	aeWantCode(t, "reset password", code, raw, http.StatusNoContent)
	if len(raw) != 0 {
		t.Errorf("reset password: body %q, want none", raw)
	}
	code, raw, hdr = aeLogin(t, env, aeLoginPath, map[string]string{"username": "alice.db_1@example-org", "password": pw})
	aeStargateError(t, "login with the old password", code, raw, hdr, http.StatusUnauthorized, aeRefused("alice.db_1@example-org"))
	aeLoginREST(t, env, "alice.db_1@example-org", "new-password-2")
	aeWantValid(t, env, "auth token issued before the reset", aliceTok, true)

	// Delete.
	code, raw, _ = rest(http.MethodDelete, aeUsersPath+"/"+aliceID, env.AdminToken, nil)
	aeWantCode(t, "delete user", code, raw, http.StatusNoContent)
	if len(raw) != 0 {
		t.Errorf("delete user: body %q, want none", raw)
	}
	code, raw, _ = rest(http.MethodGet, aeUsersPath+"/"+aliceID, env.AdminToken, nil)
	aeWantCode(t, "get deleted user", code, raw, http.StatusNotFound)
	code, raw, _ = rest(http.MethodDelete, aeUsersPath+"/"+aliceID, env.AdminToken, nil)
	aeWantCode(t, "delete again", code, raw, http.StatusNotFound)
	code, raw, hdr = aeLogin(t, env, aeLoginPath, map[string]string{"username": "alice.db_1@example-org", "password": "new-password-2"})
	aeStargateError(t, "login as a deleted user", code, raw, hdr, http.StatusUnauthorized, aeRefused("alice.db_1@example-org"))

	// gRPC shapes the same.
	lr, err := env.Auth.ListUsers(env.GRPCCtx(env.AdminToken), &tbv1.ListUsersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if lr.GetOrgId() != env.OrgID || lr.GetOrgName() != env.OrgName || len(lr.GetUsers()) != 4 {
		t.Errorf("gRPC ListUsers: org %q %q, %d users, want 4", lr.GetOrgId(), lr.GetOrgName(), len(lr.GetUsers()))
	}

	// No response carried a password or its hash.
	for _, raw := range bodies {
		low := strings.ToLower(string(raw))
		for _, bad := range []string{strings.ToLower(pw), "new-password-2", "argon2", "$v=19$", "passwordhash", `"password"`} {
			if strings.Contains(low, bad) {
				t.Errorf("a response contains %q: %s", bad, raw)
			}
		}
	}
}

// TestAuthUserCustomRole: a user may hold a custom role; a change to the
// role applies at once to the user's existing auth token; the role cannot
// be deleted while a user holds it.
func TestAuthUserCustomRole(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	const rolesPath = "/v2/organizations/roles"
	org := policy.OrgDRN(env.OrgID)
	rolePolicy := func(actions ...string) map[string]any {
		return map[string]any{"description": "auth e2e", "resources": []string{org}, "actions": actions, "effect": "allow"}
	}
	code, raw, _ := env.REST(t, http.MethodPost, rolesPath, env.AdminToken, map[string]any{"Name": "user-reader", "Policy": rolePolicy("org-user-read")})
	aeWantCode(t, "create role", code, raw, http.StatusCreated)
	roleID := aeString(t, "role ID", aeObject(t, "create role", raw)["ID"])

	u := env.CreateUser(t, env.AdminToken, "gina", "gina-password", roleID)
	tok := env.Login(t, "gina", "gina-password")
	p := aePrincipalUser(env, u.GetUserId(), roleID)
	aeWantCheck(t, "custom role: org-user-read", aeCheckGRPC(t, env, "", context.Background(), tok, "org-user-read", org), true, "", p)
	aeWantCheck(t, "custom role: org-read", aeCheckGRPC(t, env, "", context.Background(), tok, "org-read", org), false, aeDenied, p)
	code, raw, _ = env.REST(t, http.MethodGet, aeUsersPath, tok, nil)
	aeWantCode(t, "custom role: list users with the auth token", code, raw, http.StatusOK)

	code, raw, _ = env.REST(t, http.MethodPut, rolesPath+"/"+roleID, env.AdminToken, map[string]any{"Name": "user-reader", "Policy": rolePolicy("org-read")})
	aeWantCode(t, "update role", code, raw, http.StatusOK)
	aeWantCheck(t, "updated role: org-read", aeCheckGRPC(t, env, "", context.Background(), tok, "org-read", org), true, "", p)
	aeWantCheck(t, "updated role: org-user-read", aeCheckGRPC(t, env, "", context.Background(), tok, "org-user-read", org), false, aeDenied, p)
	code, raw, _ = env.REST(t, http.MethodGet, aeUsersPath, tok, nil)
	aeWantCode(t, "updated role: list users with the auth token", code, raw, http.StatusForbidden)

	code, raw, _ = env.REST(t, http.MethodDelete, rolesPath+"/"+roleID, env.AdminToken, nil)
	aeWantCode(t, "delete a role held by a user", code, raw, http.StatusConflict)
	code, raw, _ = env.REST(t, http.MethodDelete, aeUsersPath+"/"+u.GetUserId(), env.AdminToken, nil)
	aeWantCode(t, "delete the user", code, raw, http.StatusNoContent)
	code, raw, _ = env.REST(t, http.MethodDelete, rolesPath+"/"+roleID, env.AdminToken, nil)
	aeWantCode(t, "delete the role once no user holds it", code, raw, http.StatusNoContent)
}

// ---- 7. throttling ------------------------------------------------------------------

// TestAuthLoginThrottle: failed logins are budgeted per (username, client
// address) and per client address (10 at once, one more per 6s), then
// refused with 429, Retry-After and Stargate's body, even for the right
// password from that address; per username they are only slowed (from the
// 4th, 200 ms more each, at most 2 s), from any address, never refused.
// Distinct loopback source addresses separate the keys.
func TestAuthLoginThrottle(t *testing.T) {
	t.Parallel()
	addr := func(net, host int) string { return fmt.Sprintf("127.0.%d.%d", net, host) }

	t.Run("per username: slowed from any address, never refused", func(t *testing.T) {
		t.Parallel()
		env := servertest.Start(t)
		const pw = "victim-password"
		env.CreateUser(t, env.AdminToken, "victim", pw, policy.RWUserID)
		wrong := map[string]string{"username": "victim", "password": "wrong-password"}
		right := map[string]string{"username": "victim", "password": pw}

		// Failures 1-5 in sequence, each from its own address (so only the
		// username key accumulates); the 4th and 5th are slowed.
		for i := 1; i <= 5; i++ {
			before := len(env.Sleeps.All())
			code, raw, hdr := env.RESTFrom(t, addr(1, i), http.MethodPost, aeLoginPath, "", wrong)
			aeStargateError(t, fmt.Sprintf("failure %d", i), code, raw, hdr, http.StatusUnauthorized, aeRefused("victim"))
			// The slowdown, as recorded by the harness (not measured in wall time).
			var want []time.Duration
			if d := time.Duration(i-3) * 200 * time.Millisecond; d > 0 {
				want = []time.Duration{d}
			}
			if got := env.Sleeps.All()[before:]; !slices.Equal(got, want) {
				t.Errorf("failure %d was delayed %v, want %v (slowdown from the 4th failure)", i, got, want)
			}
		}
		// Failures 6-10 at once over gRPC (their slowdowns overlap).
		clients := make([]tbv1.AuthServiceClient, 11)
		for i := 6; i <= 10; i++ {
			clients[i] = env.AuthFrom(t, addr(1, i))
		}
		errs := make([]error, 11)
		var wg sync.WaitGroup
		for i := 6; i <= 10; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = clients[i].CreateAuthToken(context.Background(), &tbv1.CreateAuthTokenRequest{Username: "victim", Password: "wrong-password"})
			}()
		}
		wg.Wait()
		for i := 6; i <= 10; i++ {
			aeGRPCCode(t, fmt.Sprintf("failure %d (gRPC)", i), errs[i], codes.Unauthenticated, aeRefused("victim"))
		}

		// A brute force spread over many addresses is never refused but
		// stays slowed, up to the 2 s maximum from the 13th failure on.
		for i := 11; i <= 30; i++ {
			before := len(env.Sleeps.All())
			code, raw, hdr := env.RESTFrom(t, addr(1, i), http.MethodPost, aeLoginPath, "", wrong)
			aeStargateError(t, fmt.Sprintf("failure %d", i), code, raw, hdr, http.StatusUnauthorized, aeRefused("victim"))
			want := min(time.Duration(i-3)*200*time.Millisecond, 2*time.Second)
			if got := env.Sleeps.All()[before:]; !slices.Equal(got, []time.Duration{want}) {
				t.Errorf("failure %d from a fresh address was delayed %v, want [%v]", i, got, want)
			}
		}
		// The owner, from a fresh address or one the attacker used once,
		// logs in at once: a success is never delayed.
		before := len(env.Sleeps.All())
		code, raw, hdr := env.RESTFrom(t, addr(1, 31), http.MethodPost, aeAstraLoginPath, "", right)
		aeAuthToken(t, "right password from a fresh address", code, raw, hdr, 1790)
		code, raw, hdr = env.RESTFrom(t, addr(1, 12), http.MethodPost, aeGeneratePath, "", map[string]string{"key": "victim", "secret": pw})
		aeWantCode(t, "right secret on /token/generate from an address with one failure", code, raw, http.StatusCreated)
		_, err := env.Auth.CreateAuthToken(context.Background(), &tbv1.CreateAuthTokenRequest{Username: "victim", Password: pw})
		if err != nil {
			t.Errorf("gRPC right password: %v", err)
		}
		if got := env.Sleeps.All()[before:]; len(got) != 0 {
			t.Errorf("successful logins were delayed %v", got)
		}
	})

	t.Run("per username and address", func(t *testing.T) {
		t.Parallel()
		env := servertest.Start(t)
		const pw = "victim-password"
		env.CreateUser(t, env.AdminToken, "victim", pw, policy.RWUserID)
		env.CreateUser(t, env.AdminToken, "bystander", pw, policy.RWUserID)
		wrong := map[string]string{"username": "victim", "password": "wrong-password"}
		right := map[string]string{"username": "victim", "password": pw}
		x := addr(3, 1)

		// 100 wrong passwords from one address: the first 10 are answered
		// 401, the rest refused 429 without being checked.
		var refused int
		for i := 1; i <= 100; i++ {
			code, raw, hdr := env.RESTFrom(t, x, http.MethodPost, aeLoginPath, "", wrong)
			switch {
			case i <= 10:
				aeStargateError(t, fmt.Sprintf("failure %d", i), code, raw, hdr, http.StatusUnauthorized, aeRefused("victim"))
			default:
				aeStargateError(t, fmt.Sprintf("attempt %d", i), code, raw, hdr, http.StatusTooManyRequests, aeTooMany)
				refused++
			}
		}
		if refused != 90 {
			t.Errorf("%d of 100 attempts refused, want 90", refused)
		}
		code, raw, hdr := env.RESTFrom(t, x, http.MethodPost, aeAstraLoginPath, "", right)
		aeStargateError(t, "right password from the attacking address", code, raw, hdr, http.StatusTooManyRequests, aeTooMany)
		aeRetryAfter(t, "right password from the attacking address", hdr, 6)

		// The owner logs in at once from another address, over REST and gRPC.
		before := len(env.Sleeps.All())
		code, raw, hdr = env.RESTFrom(t, addr(3, 2), http.MethodPost, aeLoginPath, "", right)
		aeAuthToken(t, "right password from another address", code, raw, hdr, 1790)
		if _, err := env.AuthFrom(t, addr(3, 3)).CreateAuthToken(context.Background(), &tbv1.CreateAuthTokenRequest{Username: "victim", Password: pw}); err != nil {
			t.Errorf("gRPC right password from another address: %v", err)
		}
		if got := env.Sleeps.All()[before:]; len(got) != 0 {
			t.Errorf("the owner's logins were delayed %v", got)
		}

		// One refill period later: one more attempt from the address.
		env.Clock.Advance(6 * time.Second)
		code, raw, hdr = env.RESTFrom(t, x, http.MethodPost, aeLoginPath, "", right)
		aeAuthToken(t, "right password after the refill", code, raw, hdr, 1790)
		code, raw, hdr = env.RESTFrom(t, x, http.MethodPost, aeLoginPath, "", wrong)
		aeStargateError(t, "one more failure after the refill", code, raw, hdr, http.StatusUnauthorized, aeRefused("victim"))
		code, raw, hdr = env.RESTFrom(t, x, http.MethodPost, aeLoginPath, "", map[string]string{"username": "bystander", "password": pw})
		aeStargateError(t, "another user from the exhausted address", code, raw, hdr, http.StatusTooManyRequests, aeTooMany)
	})

	t.Run("per address", func(t *testing.T) {
		t.Parallel()
		env := servertest.Start(t)
		const pw = "honest-password"
		env.CreateUser(t, env.AdminToken, "honest", pw, policy.RWUserID)
		x, y := addr(2, 1), addr(2, 2)

		app := env.CreateToken(t, env.AdminToken, policy.RWSvcAcctID)
		// 10 failures from one address, each for another unknown username:
		// 1-3 over REST (unknown users), 4-10 at once over gRPC (unknown
		// client IDs, which cost no argon2id) on the same address key.
		ghost := func(i int) string { return strings.Repeat(string(rune('A'+i)), 24) }
		for i := 1; i <= 3; i++ {
			name := fmt.Sprintf("ghost-%d", i)
			code, raw, hdr := env.RESTFrom(t, x, http.MethodPost, aeLoginPath, "", map[string]string{"username": name, "password": "whatever-pw"})
			aeStargateError(t, "failure "+name, code, raw, hdr, http.StatusUnauthorized, aeRefused(name))
		}
		cx := env.AuthFrom(t, x)
		errs := make([]error, 11)
		var wg sync.WaitGroup
		for i := 4; i <= 10; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = cx.CreateAuthToken(context.Background(), &tbv1.CreateAuthTokenRequest{Username: ghost(i), Password: "whatever-pw"})
			}()
		}
		wg.Wait()
		for i := 4; i <= 10; i++ {
			aeGRPCCode(t, fmt.Sprintf("failure %d (gRPC)", i), errs[i], codes.Unauthenticated, aeRefused(ghost(i)))
		}

		code, raw, hdr := env.RESTFrom(t, x, http.MethodPost, aeLoginPath, "", map[string]string{"username": "ghost-11", "password": "whatever-pw"})
		aeStargateError(t, "11th failure from the address", code, raw, hdr, http.StatusTooManyRequests, aeTooMany)
		aeRetryAfter(t, "11th failure from the address", hdr, 6)
		code, raw, hdr = env.RESTFrom(t, x, http.MethodPost, aeLoginPath, "", map[string]string{"username": "honest", "password": pw})
		aeStargateError(t, "right password from the exhausted address", code, raw, hdr, http.StatusTooManyRequests, aeTooMany)
		_, err := cx.CreateAuthToken(context.Background(), &tbv1.CreateAuthTokenRequest{Username: "honest", Password: pw})
		aeGRPCCode(t, "gRPC from the exhausted address", err, codes.ResourceExhausted, aeTooMany)

		// The address cannot be spoofed with headers or metadata.
		for _, h := range [][2]string{
			{"X-Forwarded-For", "10.9.9.9"},
			{"X-Real-Ip", "10.9.9.9"},
			{"Grpc-Metadata-X-Tokenbroker-Client-Addr", "10.9.9.9"},
			{"X-Tokenbroker-Client-Addr", "10.9.9.9"},
		} {
			req := env.NewRequest(t, http.MethodPost, aeLoginPath, "", map[string]string{"username": "honest", "password": pw})
			req.Header.Set(h[0], h[1])
			code, raw, hdr := env.DoFrom(t, x, req)
			aeStargateError(t, "exhausted address with "+h[0], code, raw, hdr, http.StatusTooManyRequests, aeTooMany)
		}
		_, err = cx.CreateAuthToken(metadata.AppendToOutgoingContext(context.Background(), "x-tokenbroker-client-addr", "10.9.9.9"),
			&tbv1.CreateAuthTokenRequest{Username: "honest", Password: pw})
		aeGRPCCode(t, "gRPC from the exhausted address with spoofed metadata", err, codes.ResourceExhausted, aeTooMany)

		// Another address is unaffected.
		code, raw, hdr = env.RESTFrom(t, y, http.MethodPost, aeLoginPath, "", map[string]string{"username": "honest", "password": pw})
		aeAuthToken(t, "right password from another address", code, raw, hdr, 1790)
		if _, err := env.AuthFrom(t, y).CreateAuthToken(context.Background(), &tbv1.CreateAuthTokenRequest{Username: app.ClientId, Password: app.Secret}); err != nil {
			t.Errorf("gRPC from another address: %v", err)
		}
		code, raw, hdr = env.RESTFrom(t, x, http.MethodPost, aeGeneratePath, "", map[string]string{"key": app.ClientId, "secret": app.Secret})
		aeStargateError(t, "application token from the exhausted address", code, raw, hdr, http.StatusTooManyRequests, aeTooMany)

		env.Clock.Advance(6 * time.Second)
		code, raw, hdr = env.RESTFrom(t, x, http.MethodPost, aeGeneratePath, "", map[string]string{"key": app.ClientId, "secret": app.Secret})
		aeAuthToken(t, "right secret from the address after the refill", code, raw, hdr, 1790)
	})
}

// TestAuthCheckThrottle: failed Checks are budgeted per client address
// (1000 at once, one more per 10ms); beyond that Check answers 429 /
// ResourceExhausted with Retry-After, for valid credentials too, while
// other addresses are unaffected.
func TestAuthCheckThrottle(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	app := env.CreateToken(t, env.AdminToken, policy.RWSvcAcctID)
	x, y := "127.0.3.1", "127.0.3.2"
	cx := env.AuthFrom(t, x)
	table := aeTableDRN(env.OrgID, "db")
	bad := &tbv1.CheckRequest{Credential: uuid.NewString(), Action: "db-table-select", Resource: table}
	good := &tbv1.CheckRequest{Credential: app.Token, Action: "db-table-select", Resource: table}

	// 999 failures at once, then a valid Check (which draws nothing), then
	// the 1000th failure, which spends the budget.
	const workers, each = 9, 111
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		problems []string
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				res, err := cx.Check(context.Background(), bad)
				if err != nil || res.GetReason() != aeInvalid {
					mu.Lock()
					problems = append(problems, fmt.Sprintf("%v %v", res, err))
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if len(problems) > 0 {
		t.Fatalf("%d of the first 999 failed Checks were not answered CREDENTIAL_INVALID, e.g. %s", len(problems), problems[0])
	}
	for i := range 2 {
		if res, err := cx.Check(context.Background(), good); err != nil || !res.GetAllowed() {
			t.Fatalf("valid Check %d within the budget: %v %v", i+1, res, err)
		}
	}
	if res, err := cx.Check(context.Background(), bad); err != nil || res.GetReason() != aeInvalid {
		t.Fatalf("1000th failed Check: %v %v", res, err)
	}
	_, err := cx.Check(context.Background(), bad)
	aeRetryInfo(t, "1001st failed Check", aeGRPCCode(t, "1001st failed Check", err, codes.ResourceExhausted, ""))
	_, err = cx.Check(context.Background(), good)
	aeGRPCCode(t, "valid Check from the exhausted address", err, codes.ResourceExhausted, "")
	code, raw, hdr := env.RESTFrom(t, x, http.MethodPost, aeCheckPath, "", map[string]string{"credential": app.Token, "action": "db-table-select", "resource": table})
	aeWantCode(t, "REST Check from the exhausted address", code, raw, http.StatusTooManyRequests)
	aeRetryAfter(t, "REST Check from the exhausted address", hdr, 1)

	if res, err := env.AuthFrom(t, y).Check(context.Background(), bad); err != nil || res.GetReason() != aeInvalid {
		t.Errorf("failed Check from another address: %v %v", res, err)
	}
	env.Clock.Advance(10 * time.Millisecond)
	if res, err := cx.Check(context.Background(), bad); err != nil || res.GetReason() != aeInvalid {
		t.Errorf("failed Check after one refill: %v %v", res, err)
	}
	_, err = cx.Check(context.Background(), good)
	aeGRPCCode(t, "Check after the refill was spent", err, codes.ResourceExhausted, "")
}

// ---- 8. secrets at rest ----------------------------------------------------------

// TestAuthSecretsAtRest: after users with known passwords are created and
// reset, logins over both transports, and auth tokens used, revoked and
// flushed, the database file holds no password, no application secret or
// token, and no auth token in any textual form or as raw bytes.
func TestAuthSecretsAtRest(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	const pw1, pw2 = "first-Password-9f8e7d", "second-Password-1a2b3c"
	app := env.CreateToken(t, env.AdminToken, policy.DatabaseAdministratorID)
	u := env.CreateUser(t, env.AdminToken, "dora-the-dba", pw1, policy.DatabaseAdministratorID)

	toks := []string{env.Login(t, "dora-the-dba", pw1), aeLoginREST(t, env, "dora-the-dba", pw1)}
	for range 2 {
		toks = append(toks, env.Login(t, app.ClientId, app.Secret), aeLoginREST(t, env, app.ClientId, app.Secret))
	}
	code, raw, _ := env.REST(t, http.MethodPut, aeUsersPath+"/"+u.GetUserId()+"/password", env.AdminToken, map[string]string{"password": pw2})
	aeWantCode(t, "reset password", code, raw, http.StatusNoContent)
	toks = append(toks, aeLoginREST(t, env, "dora-the-dba", pw2))
	env.Clock.Advance(time.Minute)
	for _, tok := range toks {
		if code := aeMgmt(t, env, tok); code != http.StatusOK {
			t.Fatalf("use auth token: HTTP %d", code)
		}
	}
	code, raw, _ = env.REST(t, http.MethodDelete, aeLoginPath, toks[0], nil)
	aeWantCode(t, "revoke one", code, raw, http.StatusNoContent)
	env.Shutdown() // flushes last-use times

	db := env.StoredData(t)
	// Controls: the scan sees plaintext, and a hash was stored.
	for _, s := range []string{"dora-the-dba", u.GetUserId(), app.ClientId, "$argon2id$"} {
		if !bytes.Contains(db, []byte(s)) {
			t.Errorf("control failed: %q not found in the database file", s)
		}
	}
	// Text, searched case-insensitively (ASCII folding only, so binary
	// content is not mangled).
	text := map[string]string{
		"first password": pw1, "second password": pw2,
		"application secret": app.Secret, "application token": app.Token,
		"application token hex": app.Token[len(app.Token)-64:],
	}
	binary := map[string][]byte{}
	for i, tok := range toks {
		id := uuid.MustParse(tok)
		text[fmt.Sprintf("auth token %d", i)] = tok
		text[fmt.Sprintf("auth token %d without hyphens", i)] = hex.EncodeToString(id[:])
		binary[fmt.Sprintf("auth token %d as raw bytes", i)] = id[:]
	}
	lower := asciiLower(db)
	for what, s := range text {
		if bytes.Contains(lower, asciiLower([]byte(s))) {
			t.Errorf("database file contains the %s (in some letter case)", what)
		}
	}
	for what, b := range binary {
		if bytes.Contains(db, b) {
			t.Errorf("database file contains the %s", what)
		}
	}
}

func asciiLower(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		out[i] = c
	}
	return out
}

// ---- 9. restart -----------------------------------------------------------------------

// TestAuthRestart: auth tokens survive a graceful restart with their last
// use (flushed by Shutdown; the periodic flush is out of reach): 29 minutes
// after the last use before the restart a token is valid, 31 minutes after
// it is refused. Revocations and deletions survive too.
func TestAuthRestart(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t, servertest.WithConfig(func(c *server.Config) { c.UsageFlushInterval = 24 * time.Hour }))
	app := env.CreateToken(t, env.AdminToken, policy.DatabaseAdministratorID)
	env.CreateUser(t, env.AdminToken, "erin", "erin-password", policy.RWUserID)
	gone := env.CreateUser(t, env.AdminToken, "frank", "frank-password", policy.RWUserID)

	a29, a31 := env.Login(t, app.ClientId, app.Secret), aeLoginREST(t, env, app.ClientId, app.Secret)
	u29, u31 := env.Login(t, "erin", "erin-password"), env.Login(t, "erin", "erin-password")
	revoked, ofDeleted, unused := env.Login(t, app.ClientId, app.Secret), env.Login(t, "frank", "frank-password"), env.Login(t, app.ClientId, app.Secret)

	// Last use 10 minutes after login: the store has only the login time
	// until something persists the use.
	env.Clock.Advance(10 * time.Minute)
	lastUse := env.Clock.Now()
	for _, tok := range []string{a29, u29, u31} {
		aeWantValid(t, env, "use before restart", tok, true)
	}
	if code := aeMgmt(t, env, a31); code != http.StatusOK {
		t.Fatalf("management call before restart: HTTP %d", code)
	}
	if _, err := env.Auth.RevokeAuthToken(aeMD("x-cassandra-token", revoked), &tbv1.RevokeAuthTokenRequest{}); err != nil {
		t.Fatal(err)
	}
	code, raw, _ := env.REST(t, http.MethodDelete, aeUsersPath+"/"+gone.GetUserId(), env.AdminToken, nil)
	aeWantCode(t, "delete user", code, raw, http.StatusNoContent)

	env.Restart(t)
	env.Clock.Set(lastUse.Add(29 * time.Minute))
	aeWantValid(t, env, "application's auth token 29m after its last use, across a restart", a29, true)
	aeWantValid(t, env, "user's auth token 29m after its last use, across a restart", u29, true)
	aeWantValid(t, env, "auth token unused since login 39m ago", unused, false)
	aeWantValid(t, env, "revoked auth token after restart", revoked, false)
	aeWantValid(t, env, "auth token of a deleted user after restart", ofDeleted, false)

	env.Clock.Set(lastUse.Add(31 * time.Minute))
	if code := aeMgmt(t, env, a31); code != http.StatusUnauthorized {
		t.Errorf("auth token 31m after its last use: management call HTTP %d, want 401", code)
	}
	aeWantValid(t, env, "user's auth token 31m after its last use", u31, false)
	// The ones used at +29m are 2 minutes idle.
	aeWantValid(t, env, "auth token used 2m ago", a29, true)
	aeWantValid(t, env, "user's auth token used 2m ago", u29, true)

	// Uses after the restart are flushed by the next shutdown too.
	env.Restart(t)
	env.Clock.Set(lastUse.Add(31*time.Minute + 29*time.Minute))
	aeWantValid(t, env, "auth token 29m after its last use, across a second restart", a29, true)
}
