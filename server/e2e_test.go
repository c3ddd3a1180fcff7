package server_test

// End-to-end tests: a real server (gRPC + REST over a bbolt file) driven
// the way a new user would drive it, over both transports. Time is a fake
// clock (servertest.Clock) set far from the wall clock; no test sleeps.
//
// With TOKENBROKER_TEST_STORE=etcd every suite of this package runs again
// over the etcd backend: each Env on a fresh key prefix of one real etcd
// member started by the first test that needs it (servertest). Tests about
// bbolt's files skip there, naming the etcd test that covers the same
// ground.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	rpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	tbv1 "github.com/tokenbroker/tokenbroker/gen/tokenbroker/v1"
	"github.com/tokenbroker/tokenbroker/server"
	"github.com/tokenbroker/tokenbroker/server/policy"
	"github.com/tokenbroker/tokenbroker/server/servertest"
)

const (
	idMissingOrMalformed = 340012
	idUnknownToken       = 340018
	tokensPath           = "/v2/clientIdSecrets"
	rolesPath            = "/v2/organizations/roles"
)

var clientIDRE = regexp.MustCompile(`^[A-Za-z]{24}$`)

// TestMain stops the etcd member the Envs share on the etcd pass.
func TestMain(m *testing.M) {
	code := m.Run()
	servertest.StopShared()
	os.Exit(code)
}

// ---- helpers -------------------------------------------------------------

// object decodes a JSON object, failing the test if raw is not one.
func object(t *testing.T, raw []byte) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		t.Fatalf("want a JSON object, got %q (%v)", raw, err)
	}
	return m
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func wantKeys[V any](t *testing.T, what string, m map[string]V, want ...string) {
	t.Helper()
	sort.Strings(want)
	if got := keys(m); !slices.Equal(got, want) {
		t.Errorf("%s: keys %v, want exactly %v", what, got, want)
	}
}

func str(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("want a JSON string, got %s", raw)
	}
	return s
}

// wantStatus fails the test unless the HTTP status is want.
func wantStatus(t *testing.T, what string, got int, raw []byte, want int) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: HTTP %d, want %d; body %s", what, got, want, raw)
	}
}

// wantAstraError checks an error response: status, Astra's exact body
// shape, the ID (wantID 0 means "the HTTP status", as docs/api.md
// documents for errors without a published Astra ID), a message containing
// wantMsg, and WWW-Authenticate on 401.
func wantAstraError(t *testing.T, what string, code int, raw []byte, hdr http.Header, wantCode, wantID int, wantMsg string) string {
	t.Helper()
	if code != wantCode {
		t.Fatalf("%s: HTTP %d, want %d; body %s", what, code, wantCode, raw)
	}
	if wantID == 0 {
		wantID = wantCode
	}
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type %q, want application/json", what, ct)
	}
	top := object(t, raw)
	wantKeys(t, what+": error body", top, "errors")
	var items []map[string]json.RawMessage
	if err := json.Unmarshal(top["errors"], &items); err != nil || len(items) != 1 {
		t.Fatalf("%s: want errors to be an array of one object, got %s", what, raw)
	}
	wantKeys(t, what+": errors[0]", items[0], "ID", "message")
	var id int
	if err := json.Unmarshal(items[0]["ID"], &id); err != nil {
		t.Fatalf("%s: ID is not an integer: %s", what, items[0]["ID"])
	}
	if id != wantID {
		t.Errorf("%s: error ID %d, want %d; body %s", what, id, wantID, raw)
	}
	msg := str(t, items[0]["message"])
	if !strings.Contains(msg, wantMsg) {
		t.Errorf("%s: message %q does not contain %q", what, msg, wantMsg)
	}
	if wantCode == http.StatusUnauthorized && hdr.Get("WWW-Authenticate") == "" {
		t.Errorf("%s: 401 without a WWW-Authenticate header", what)
	}
	return msg
}

// wantGRPC fails the test unless err has the code (and, if wantMsg is not
// "", a message containing it).
func wantGRPC(t *testing.T, what string, err error, want codes.Code, wantMsg string) {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != want {
		t.Fatalf("%s: gRPC %v, want %v", what, err, want)
	}
	if wantMsg != "" && !strings.Contains(st.Message(), wantMsg) {
		t.Errorf("%s: gRPC message %q does not contain %q", what, st.Message(), wantMsg)
	}
}

// tokenList returns the tokens listed over gRPC by the admin, by client ID.
func tokenList(t *testing.T, env *servertest.Env) map[string]*tbv1.TokenInfo {
	t.Helper()
	resp, err := env.Tokens.ListTokens(env.GRPCCtx(env.AdminToken), &tbv1.ListTokensRequest{})
	if err != nil {
		t.Fatalf("ListTokens: %v", err)
	}
	out := map[string]*tbv1.TokenInfo{}
	for _, c := range resp.GetClients() {
		if _, dup := out[c.GetClientId()]; dup {
			t.Fatalf("ListTokens lists %s twice", c.GetClientId())
		}
		out[c.GetClientId()] = c
	}
	return out
}

// unknownToken is well formed (AstraCS:<24 letters>:<64 hex>) but was never issued.
func unknownToken() (token, clientID string) {
	sum := sha256.Sum256([]byte("never issued"))
	clientID = "QwErTyUiOpAsDfGhJkLzXcVb"
	return "AstraCS:" + clientID + ":" + hex.EncodeToString(sum[:]), clientID
}

func authCtx(auth string) context.Context {
	if auth == "" {
		return context.Background()
	}
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", auth)
}

// restAuth does a REST call with a verbatim Authorization header value.
func restAuth(t *testing.T, env *servertest.Env, method, path, auth string, body any) (int, []byte, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, env.HTTPBase+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	return env.Do(t, req)
}

// canon re-encodes JSON canonically (protojson varies its whitespace).
func canon(t *testing.T, raw []byte) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("invalid JSON %q: %v", raw, err)
	}
	out, _ := json.Marshal(v)
	return string(out)
}

func orgDRN(env *servertest.Env) string { return policy.OrgDRN(env.OrgID) }

func rolePolicy(resources []string, actions ...string) map[string]any {
	return map[string]any{"description": "test role", "resources": resources, "actions": actions, "effect": "allow"}
}

// createRole creates a custom role over REST as the admin and returns its ID.
func createRole(t *testing.T, env *servertest.Env, name string, actions ...string) string {
	t.Helper()
	code, raw, _ := env.REST(t, http.MethodPost, rolesPath, env.AdminToken,
		map[string]any{"Name": name, "Policy": rolePolicy([]string{orgDRN(env)}, actions...)})
	wantStatus(t, "create role "+name, code, raw, http.StatusCreated)
	return str(t, object(t, raw)["ID"])
}

// ---- 3. discovery ----------------------------------------------------------

// TestDiscovery: server reflection lists the services, and health answers
// SERVING without a credential, over gRPC and at /healthz.
func TestDiscovery(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	stream, err := rpb.NewServerReflectionClient(env.Conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatalf("ServerReflectionInfo: %v", err)
	}
	if err := stream.Send(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatalf("send ListServices: %v", err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatalf("recv ListServices: %v", err)
	}
	_ = stream.CloseSend()
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	for _, want := range []string{"tokenbroker.v1.TokenService", "grpc.health.v1.Health"} {
		if !slices.Contains(names, want) {
			t.Errorf("reflection lists %v, missing %s", names, want)
		}
	}

	health := healthpb.NewHealthClient(env.Conn)
	for _, svc := range []string{"", "tokenbroker.v1.TokenService"} {
		hr, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil {
			t.Fatalf("health Check(%q) without credential: %v", svc, err)
		}
		if hr.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health Check(%q) = %v, want SERVING", svc, hr.GetStatus())
		}
	}
	code, raw, _ := env.REST(t, http.MethodGet, "/healthz", "", nil)
	wantStatus(t, "GET /healthz", code, raw, http.StatusOK)
}

// ---- 4. REST token lifecycle ----------------------------------------------

// TestRESTTokenLifecycle: create → list → delete with the bootstrap token
// over REST, checking Astra's exact shapes, and that a deleted token is
// refused on its very next call.
func TestRESTTokenLifecycle(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)

	code, raw, _ := env.REST(t, http.MethodPost, tokensPath, env.AdminToken,
		map[string]any{"roles": []string{policy.RWSvcAcctID}, "description": "svc"})
	wantStatus(t, "POST "+tokensPath, code, raw, http.StatusOK)
	created := object(t, raw)
	wantKeys(t, "create response", created,
		"clientId", "secret", "orgId", "roles", "token", "generatedOn", "description", "tokenExpiry")
	clientID, secret, token := str(t, created["clientId"]), str(t, created["secret"]), str(t, created["token"])
	if !clientIDRE.MatchString(clientID) {
		t.Errorf("clientId %q is not 24 ASCII letters", clientID)
	}
	sum := sha256.Sum256([]byte(secret))
	if want := "AstraCS:" + clientID + ":" + hex.EncodeToString(sum[:]); token != want {
		t.Errorf("token %q, want AstraCS:<clientId>:<hex(sha256(secret))> = %q", token, want)
	}
	if len(token) != 97 {
		t.Errorf("token has %d characters, want 97", len(token))
	}
	gen, err := time.Parse(time.RFC3339, str(t, created["generatedOn"]))
	if err != nil {
		t.Errorf("generatedOn: %v", err)
	} else if !gen.Equal(env.Clock.Now()) {
		t.Errorf("generatedOn %v, want the (fake) clock's %v", gen, env.Clock.Now())
	}
	if got := str(t, created["orgId"]); got != env.OrgID {
		t.Errorf("orgId %q, want %q", got, env.OrgID)
	}
	var roles []string
	_ = json.Unmarshal(created["roles"], &roles)
	if !slices.Equal(roles, []string{policy.RWSvcAcctID}) {
		t.Errorf("roles %v", roles)
	}
	if got := str(t, created["description"]); got != "svc" {
		t.Errorf("description %q", got)
	}
	if string(created["tokenExpiry"]) != "null" {
		t.Errorf("tokenExpiry %s, want null", created["tokenExpiry"])
	}

	// The new token authenticates: an R/W Svc Acct lacks org-token-read, so
	// it gets 403, not 401.
	code, raw, hdr := env.REST(t, http.MethodGet, tokensPath, token, nil)
	wantAstraError(t, "list with the R/W Svc Acct token", code, raw, hdr, http.StatusForbidden, 0, "org-token-read")

	code, raw, _ = env.REST(t, http.MethodGet, tokensPath, env.AdminToken, nil)
	wantStatus(t, "GET "+tokensPath, code, raw, http.StatusOK)
	list := object(t, raw)
	wantKeys(t, "list response", list, "clients")
	var clients []map[string]json.RawMessage
	if err := json.Unmarshal(list["clients"], &clients); err != nil {
		t.Fatalf("clients: %v (%s)", err, raw)
	}
	found := false
	for _, c := range clients {
		wantKeys(t, "list item", c, "clientId", "roles", "generatedOn", "description", "tokenExpiry", "lastUsedOn", "state") // rotatedTo, rotatedOn: only on rotated tokens
		if str(t, c["clientId"]) == clientID {
			found = true
			if str(t, c["description"]) != "svc" {
				t.Errorf("listed description %s", c["description"])
			}
		}
	}
	if !found || len(clients) != 2 {
		t.Errorf("list has %d clients (want the bootstrap token and %s): %s", len(clients), clientID, raw)
	}
	for what, s := range map[string]string{
		"secret": secret, "token": token, "token hex": token[len("AstraCS:")+25:],
		"bootstrap token": env.AdminToken, "bootstrap secret": env.Admin.Secret,
	} {
		if bytes.Contains(raw, []byte(s)) {
			t.Errorf("list response contains the %s", what)
		}
	}

	code, raw, _ = env.REST(t, http.MethodDelete, tokensPath+"/"+clientID, env.AdminToken, nil)
	wantStatus(t, "DELETE", code, raw, http.StatusOK)
	if len(raw) != 0 {
		t.Errorf("DELETE body %q, want empty", raw)
	}

	// The very next call with the deleted token is refused.
	code, raw, hdr = env.REST(t, http.MethodGet, tokensPath, token, nil)
	wantAstraError(t, "deleted token", code, raw, hdr, http.StatusUnauthorized, idUnknownToken, clientID)
	if bytes.Contains(raw, []byte(token[len("AstraCS:")+25:])) {
		t.Errorf("401 body echoes the presented credential: %s", raw)
	}
	if _, ok := tokenList(t, env)[clientID]; ok {
		t.Errorf("deleted token %s is still listed", clientID)
	}
	code, raw, hdr = env.REST(t, http.MethodDelete, tokensPath+"/"+clientID, env.AdminToken, nil)
	wantAstraError(t, "delete again", code, raw, hdr, http.StatusNotFound, 0, clientID)

	// POST /v2/tokens is the same call.
	code, raw, _ = env.REST(t, http.MethodPost, "/v2/tokens", env.AdminToken, map[string]any{"roles": []string{policy.RWSvcAcctID}})
	wantStatus(t, "POST /v2/tokens", code, raw, http.StatusOK)
	wantKeys(t, "POST /v2/tokens response", object(t, raw),
		"clientId", "secret", "orgId", "roles", "token", "generatedOn", "description", "tokenExpiry")
}

// ---- 5. authorization matrix ------------------------------------------------

// TestAuthorizationMatrix: who may do what, over REST and gRPC, with the
// same outcome on both transports.
func TestAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	dbAdmin := env.CreateToken(t, env.AdminToken, policy.DatabaseAdministratorID)
	rwUser := env.CreateToken(t, env.AdminToken, policy.RWUserID)
	unknown, unknownID := unknownToken()
	unknownRole := uuid.NewString()

	type call struct {
		name     string
		auth     string // the whole Authorization value; "" sends none
		method   string
		path     func(t *testing.T) string // REST path (may create fixtures)
		body     any
		rpc      func(t *testing.T, ctx context.Context) error
		wantHTTP int
		wantCode codes.Code
		wantID   int    // for errors; 0: the HTTP status
		wantMsg  string // for errors
	}
	fixed := func(p string) func(*testing.T) string { return func(*testing.T) string { return p } }
	create := func(roles ...string) func(*testing.T, context.Context) error {
		return func(_ *testing.T, ctx context.Context) error {
			_, err := env.Tokens.CreateToken(ctx, &tbv1.CreateTokenRequest{Roles: roles})
			return err
		}
	}
	list := func(_ *testing.T, ctx context.Context) error {
		_, err := env.Tokens.ListTokens(ctx, &tbv1.ListTokensRequest{})
		return err
	}
	deleteToken := func(id func(t *testing.T) string) func(*testing.T, context.Context) error {
		return func(t *testing.T, ctx context.Context) error {
			_, err := env.Tokens.DeleteToken(ctx, &tbv1.DeleteTokenRequest{ClientId: id(t)})
			return err
		}
	}
	// freshRWUser creates, as the admin, a token for a delete to remove.
	freshRWUser := func(t *testing.T) string { return env.CreateToken(t, env.AdminToken, policy.RWUserID).ClientId }
	adminID := func(*testing.T) string { return env.AdminClientID }

	calls := []call{
		{name: "db admin creates R/W User token", auth: "Bearer " + dbAdmin.Token,
			method: http.MethodPost, path: fixed(tokensPath), body: map[string]any{"roles": []string{policy.RWUserID}},
			rpc: create(policy.RWUserID), wantHTTP: http.StatusOK, wantCode: codes.OK},
		{name: "db admin lists tokens", auth: "Bearer " + dbAdmin.Token,
			method: http.MethodGet, path: fixed(tokensPath), rpc: list, wantHTTP: http.StatusOK, wantCode: codes.OK},
		{name: "db admin deletes a R/W User token", auth: "Bearer " + dbAdmin.Token,
			method: http.MethodDelete, path: func(t *testing.T) string { return tokensPath + "/" + freshRWUser(t) },
			rpc: deleteToken(freshRWUser), wantHTTP: http.StatusOK, wantCode: codes.OK},
		{name: "db admin creates Organization Administrator token (escalation)", auth: "Bearer " + dbAdmin.Token,
			method: http.MethodPost, path: fixed(tokensPath), body: map[string]any{"roles": []string{policy.OrganizationAdministratorID}},
			rpc: create(policy.OrganizationAdministratorID), wantHTTP: http.StatusForbidden, wantCode: codes.PermissionDenied,
			wantMsg: "Organization Administrator"},
		{name: "db admin deletes the bootstrap admin token", auth: "Bearer " + dbAdmin.Token,
			method: http.MethodDelete, path: func(*testing.T) string { return tokensPath + "/" + env.AdminClientID },
			rpc: deleteToken(adminID), wantHTTP: http.StatusForbidden, wantCode: codes.PermissionDenied,
			wantMsg: "Organization Administrator"},
		{name: "R/W User lists tokens", auth: "Bearer " + rwUser.Token,
			method: http.MethodGet, path: fixed(tokensPath), rpc: list,
			wantHTTP: http.StatusForbidden, wantCode: codes.PermissionDenied, wantMsg: "org-token-read"},
		{name: "R/W User creates a token", auth: "Bearer " + rwUser.Token,
			method: http.MethodPost, path: fixed(tokensPath), body: map[string]any{"roles": []string{policy.RWUserID}},
			rpc: create(policy.RWUserID), wantHTTP: http.StatusForbidden, wantCode: codes.PermissionDenied, wantMsg: "org-token-write"},
		{name: "unknown role id", auth: "Bearer " + env.AdminToken,
			method: http.MethodPost, path: fixed(tokensPath), body: map[string]any{"roles": []string{unknownRole}},
			rpc: create(unknownRole), wantHTTP: http.StatusBadRequest, wantCode: codes.InvalidArgument, wantMsg: unknownRole},
		{name: "no Authorization", auth: "",
			method: http.MethodGet, path: fixed(tokensPath), rpc: list,
			wantHTTP: http.StatusUnauthorized, wantCode: codes.Unauthenticated, wantID: idMissingOrMalformed},
		{name: "malformed token", auth: "Bearer AstraCS:abc",
			method: http.MethodGet, path: fixed(tokensPath), rpc: list,
			wantHTTP: http.StatusUnauthorized, wantCode: codes.Unauthenticated, wantID: idMissingOrMalformed},
		{name: "Bearer with no token", auth: "Bearer ",
			method: http.MethodGet, path: fixed(tokensPath), rpc: list,
			wantHTTP: http.StatusUnauthorized, wantCode: codes.Unauthenticated, wantID: idMissingOrMalformed},
		{name: "well-formed unknown token", auth: "Bearer " + unknown,
			method: http.MethodGet, path: fixed(tokensPath), rpc: list,
			wantHTTP: http.StatusUnauthorized, wantCode: codes.Unauthenticated, wantID: idUnknownToken, wantMsg: unknownID},
		{name: "right client ID, wrong secret", auth: "Bearer " + dbAdmin.Token[:len(dbAdmin.Token)-64] + strings.Repeat("0", 64),
			method: http.MethodGet, path: fixed(tokensPath), rpc: list,
			wantHTTP: http.StatusUnauthorized, wantCode: codes.Unauthenticated, wantID: idUnknownToken},
		{name: "lowercase bearer scheme", auth: "bearer " + dbAdmin.Token,
			method: http.MethodGet, path: fixed(tokensPath), rpc: list, wantHTTP: http.StatusOK, wantCode: codes.OK},
		{name: "uppercase BEARER scheme", auth: "BEARER " + dbAdmin.Token,
			method: http.MethodGet, path: fixed(tokensPath), rpc: list, wantHTTP: http.StatusOK, wantCode: codes.OK},
	}

	for _, c := range calls {
		t.Run("REST/"+c.name, func(t *testing.T) {
			code, raw, hdr := restAuth(t, env, c.method, c.path(t), c.auth, c.body)
			if c.wantHTTP < 300 {
				wantStatus(t, c.name, code, raw, c.wantHTTP)
				if c.method == http.MethodDelete && len(raw) != 0 {
					t.Errorf("DELETE body %q, want empty", raw)
				}
				return
			}
			wantAstraError(t, c.name, code, raw, hdr, c.wantHTTP, c.wantID, c.wantMsg)
		})
		t.Run("gRPC/"+c.name, func(t *testing.T) {
			err := c.rpc(t, authCtx(c.auth))
			wantGRPC(t, c.name, err, c.wantCode, c.wantMsg)
		})
	}

	// The refused delete left the admin token working.
	if _, ok := tokenList(t, env)[env.AdminClientID]; !ok {
		t.Error("the bootstrap admin token is gone")
	}
}

// ---- 6. rejected creates change nothing -------------------------------------

// TestRejectedCreateChangesNothing: every rejected create (REST and gRPC)
// leaves the token list exactly as it was.
func TestRejectedCreateChangesNothing(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	env.CreateToken(t, env.AdminToken, policy.RWUserID)
	before := keys(tokenList(t, env))
	unknownRole := uuid.NewString()
	now := env.Clock.Now()
	// In the past of the fake clock (2040), but in the wall clock's future:
	// only a server that uses the injected clock rejects it.
	past := now.Add(-time.Minute)

	cases := []struct {
		name     string
		body     any // REST body
		req      *tbv1.CreateTokenRequest
		wantHTTP int
		wantCode codes.Code
		wantMsg  string
	}{
		{"unknown role", map[string]any{"roles": []string{unknownRole}},
			&tbv1.CreateTokenRequest{Roles: []string{unknownRole}}, 400, codes.InvalidArgument, unknownRole},
		{"unknown role after a valid one", map[string]any{"roles": []string{policy.RWUserID, unknownRole}},
			&tbv1.CreateTokenRequest{Roles: []string{policy.RWUserID, unknownRole}}, 400, codes.InvalidArgument, unknownRole},
		{"duplicate role ids", map[string]any{"roles": []string{policy.RWUserID, policy.RWUserID}},
			&tbv1.CreateTokenRequest{Roles: []string{policy.RWUserID, policy.RWUserID}}, 400, codes.InvalidArgument, policy.RWUserID},
		{"no roles", map[string]any{"description": "x"},
			&tbv1.CreateTokenRequest{Description: "x"}, 400, codes.InvalidArgument, "roles"},
		{"tokenExpiry before the clock", map[string]any{"roles": []string{policy.RWUserID}, "tokenExpiry": past.Format(time.RFC3339Nano)},
			&tbv1.CreateTokenRequest{Roles: []string{policy.RWUserID}, TokenExpiry: timestamppb.New(past)}, 400, codes.InvalidArgument, "tokenExpiry"},
		{"tokenExpiry equal to the clock", map[string]any{"roles": []string{policy.RWUserID}, "tokenExpiry": now.Format(time.RFC3339Nano)},
			&tbv1.CreateTokenRequest{Roles: []string{policy.RWUserID}, TokenExpiry: timestamppb.New(now)}, 400, codes.InvalidArgument, "tokenExpiry"},
		{"foreign orgId", map[string]any{"roles": []string{policy.RWUserID}, "orgId": "0b0e0a55-0000-4000-8000-000000000000"},
			&tbv1.CreateTokenRequest{Roles: []string{policy.RWUserID}, OrgId: "0b0e0a55-0000-4000-8000-000000000000"}, 403, codes.PermissionDenied, "0b0e0a55"},
		{"malformed JSON", []byte(`{"roles":["` + policy.RWUserID), nil, 400, 0, ""},
		{"roles of the wrong JSON type", []byte(`{"roles":"` + policy.RWUserID + `"}`), nil, 400, 0, ""},
		{"tokenExpiry not a time", map[string]any{"roles": []string{policy.RWUserID}, "tokenExpiry": "tomorrow"}, nil, 400, 0, ""},
		{"not JSON at all", []byte("roles=" + policy.RWUserID), nil, 400, 0, ""},
	}
	check := func(t *testing.T) {
		t.Helper()
		if after := keys(tokenList(t, env)); !slices.Equal(after, before) {
			t.Errorf("token list changed: before %v, after %v", before, after)
		}
	}
	for _, c := range cases {
		t.Run("REST/"+c.name, func(t *testing.T) {
			code, raw, hdr := env.REST(t, http.MethodPost, tokensPath, env.AdminToken, c.body)
			wantAstraError(t, c.name, code, raw, hdr, c.wantHTTP, 0, c.wantMsg)
			check(t)
		})
		if c.req == nil {
			continue
		}
		t.Run("gRPC/"+c.name, func(t *testing.T) {
			_, err := env.Tokens.CreateToken(env.GRPCCtx(env.AdminToken), c.req)
			wantGRPC(t, c.name, err, c.wantCode, c.wantMsg)
			check(t)
		})
	}
}

// ---- 7. expiry ----------------------------------------------------------------

// TestExpiry: a token works until its expiry on the fake clock, then is
// refused exactly like an unknown token; an expired token does not hold its
// role.
func TestExpiry(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	expiry := env.Clock.Now().Add(time.Hour)
	roleID := createRole(t, env, "expiring-reader", "org-token-read")

	code, raw, _ := env.REST(t, http.MethodPost, tokensPath, env.AdminToken, map[string]any{
		"roles": []string{roleID}, "tokenExpiry": expiry.Format(time.RFC3339Nano)})
	wantStatus(t, "create with tokenExpiry", code, raw, http.StatusOK)
	created := object(t, raw)
	token, clientID := str(t, created["token"]), str(t, created["clientId"])
	if got, err := time.Parse(time.RFC3339, str(t, created["tokenExpiry"])); err != nil || !got.Equal(expiry) {
		t.Errorf("tokenExpiry %s (%v), want %v", created["tokenExpiry"], err, expiry)
	}
	if te := tokenList(t, env)[clientID].GetTokenExpiry(); te == nil || !te.AsTime().Equal(expiry) {
		t.Errorf("listed tokenExpiry %v, want %v", te, expiry)
	}

	code, raw, _ = env.REST(t, http.MethodGet, tokensPath, token, nil)
	wantStatus(t, "before expiry", code, raw, http.StatusOK)
	env.Clock.Advance(time.Hour - time.Second)
	code, raw, _ = env.REST(t, http.MethodGet, tokensPath, token, nil)
	wantStatus(t, "one second before expiry", code, raw, http.StatusOK)

	// The role is held by a live token: it cannot be deleted yet.
	code, raw, hdr := env.REST(t, http.MethodDelete, rolesPath+"/"+roleID, env.AdminToken, nil)
	wantAstraError(t, "delete role held by a live token", code, raw, hdr, http.StatusConflict, 0, roleID)

	// From the expiry instant on, the token is refused.
	env.Clock.Advance(time.Second)
	code, raw, hdr = env.REST(t, http.MethodGet, tokensPath, token, nil)
	wantAstraError(t, "token at its expiry instant", code, raw, hdr, http.StatusUnauthorized, idUnknownToken, clientID)

	env.Clock.Advance(time.Hour) // two hours after creation
	code, raw, hdr = env.REST(t, http.MethodGet, tokensPath, token, nil)
	expiredMsg := wantAstraError(t, "expired token", code, raw, hdr, http.StatusUnauthorized, idUnknownToken, clientID)
	_, err := env.Tokens.ListTokens(env.GRPCCtx(token), &tbv1.ListTokensRequest{})
	wantGRPC(t, "expired token over gRPC", err, codes.Unauthenticated, clientID)

	// Refused like an unknown one: same ID, same message modulo the client ID.
	unknown, unknownID := unknownToken()
	code, raw, hdr = env.REST(t, http.MethodGet, tokensPath, unknown, nil)
	unknownMsg := wantAstraError(t, "unknown token", code, raw, hdr, http.StatusUnauthorized, idUnknownToken, unknownID)
	if strings.ReplaceAll(expiredMsg, clientID, "X") != strings.ReplaceAll(unknownMsg, unknownID, "X") {
		t.Errorf("expired token message %q differs from unknown token message %q", expiredMsg, unknownMsg)
	}

	// An expired token no longer holds its role.
	code, raw, _ = env.REST(t, http.MethodDelete, rolesPath+"/"+roleID, env.AdminToken, nil)
	wantStatus(t, "delete role held only by an expired token", code, raw, http.StatusNoContent)
}

// ---- 8. secrets never stored ------------------------------------------------

// TestSecretsNeverStored: after issuing and using tokens over both
// transports, the stored data (the bbolt file, or on etcd every key and
// value under the prefix, history included) holds no secret, token, token hex part,
// SHA-256 digest of a secret, nor the master key; the key and bootstrap
// files are private.
func TestSecretsNeverStored(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t, servertest.WithBootstrapFile())

	type cred struct{ clientID, secret, token string }
	creds := []cred{{env.AdminClientID, env.Admin.Secret, env.AdminToken}}
	for i := range 3 {
		code, raw, _ := env.REST(t, http.MethodPost, tokensPath, env.AdminToken, map[string]any{
			"roles": []string{policy.DatabaseAdministratorID}, "description": fmt.Sprintf("rest %d", i)})
		wantStatus(t, "create", code, raw, http.StatusOK)
		m := object(t, raw)
		creds = append(creds, cred{str(t, m["clientId"]), str(t, m["secret"]), str(t, m["token"])})
	}
	for range 3 {
		r := env.CreateToken(t, env.AdminToken, policy.DatabaseAdministratorID, policy.RWUserID)
		creds = append(creds, cred{r.ClientId, r.Secret, r.Token})
	}
	// Use every token, so last-use times are written too, and write a role.
	for _, c := range creds {
		code, raw, _ := env.REST(t, http.MethodGet, tokensPath, c.token, nil)
		wantStatus(t, "use token", code, raw, http.StatusOK)
	}
	createRole(t, env, "some-role", "org-token-read")
	env.Shutdown()

	db := env.StoredData(t)
	keyPath := env.DataPath + ".key"
	keyFile, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	master, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(keyFile)))
	if err != nil || len(master) != 32 {
		t.Fatalf("key file is not 32 base64 bytes: %v", err)
	}
	forbidden := map[string][]byte{"master key": master, "key file text": bytes.TrimSpace(keyFile)}
	for _, c := range creds {
		hexPart := c.token[len(c.token)-64:]
		digest, _ := hex.DecodeString(hexPart)
		forbidden["secret of "+c.clientID] = []byte(c.secret)
		forbidden["token of "+c.clientID] = []byte(c.token)
		forbidden["token hex of "+c.clientID] = []byte(hexPart)
		forbidden["raw sha256(secret) of "+c.clientID] = digest
		// Control: the scan can see plaintext in this file at all.
		if !bytes.Contains(db, []byte(c.clientID)) {
			t.Errorf("control failed: client ID %s not found in the database file (is the scan meaningful?)", c.clientID)
		}
	}
	for what, b := range forbidden {
		if bytes.Contains(db, b) {
			t.Errorf("database file contains the %s", what)
		}
	}

	private := []string{keyPath, env.BootstrapFile}
	if !servertest.OnEtcd() {
		private = append(private, env.DataPath)
	}
	for _, p := range private {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", p, fi.Mode().Perm())
		}
	}
	bootRaw, err := os.ReadFile(env.BootstrapFile)
	if err != nil {
		t.Fatal(err)
	}
	boot := object(t, bootRaw)
	wantKeys(t, "bootstrap file", boot, "clientId", "secret", "token", "orgId", "roles", "generatedOn")
	if str(t, boot["token"]) != env.AdminToken || str(t, boot["secret"]) != env.Admin.Secret ||
		str(t, boot["clientId"]) != env.AdminClientID || str(t, boot["orgId"]) != env.OrgID {
		t.Errorf("bootstrap file %s does not match Bootstrap()", bootRaw)
	}
	var bootRoles []string
	_ = json.Unmarshal(boot["roles"], &bootRoles)
	if !slices.Equal(bootRoles, []string{policy.OrganizationAdministratorID}) {
		t.Errorf("bootstrap roles %v, want [Organization Administrator]", bootRoles)
	}
}

// ---- 9. restart -------------------------------------------------------------

// TestRestart: a restart on the same data bootstraps nothing, keeps issued
// tokens working and deleted ones refused, and keeps last-use times (which
// Shutdown flushes: the periodic flush is set out of reach here).
func TestRestart(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t, servertest.WithConfig(func(c *server.Config) { c.UsageFlushInterval = 24 * time.Hour }))
	user := env.CreateToken(t, env.AdminToken, policy.DatabaseAdministratorID)
	idle := env.CreateToken(t, env.AdminToken, policy.RWUserID)
	gone := env.CreateToken(t, env.AdminToken, policy.RWUserID)

	env.Clock.Advance(time.Minute)
	usedAt := env.Clock.Now()
	code, raw, _ := env.REST(t, http.MethodGet, tokensPath, user.Token, nil)
	wantStatus(t, "use before restart", code, raw, http.StatusOK)
	if _, err := env.Tokens.DeleteToken(env.GRPCCtx(env.AdminToken), &tbv1.DeleteTokenRequest{ClientId: gone.ClientId}); err != nil {
		t.Fatal(err)
	}
	env.Clock.Advance(time.Hour)

	env.Restart(t)
	if b := env.Server.Bootstrap(); b != nil {
		t.Fatalf("second start bootstrapped again: new admin %s", b.ClientID)
	}

	// Read last-use times before `user` is used again (a new use would
	// supersede the persisted one).
	list := tokenList(t, env)
	if len(list) != 3 {
		t.Errorf("after restart %d tokens listed, want 3 (admin, user, idle): %v", len(list), keys(list))
	}
	lu := list[user.ClientId].GetLastUsedOn()
	// The store keeps at least microsecond precision.
	if lu == nil || lu.AsTime().After(usedAt) || usedAt.Sub(lu.AsTime()) >= time.Microsecond {
		t.Errorf("lastUsedOn of a token used before shutdown: %v, want %v", lu, usedAt)
	}
	if lu := list[idle.ClientId].GetLastUsedOn(); lu != nil {
		t.Errorf("lastUsedOn of a never-used token: %v, want null", lu.AsTime())
	}
	if g := list[user.ClientId].GetGeneratedOn(); g == nil || g.AsTime().Sub(servertest.DefaultStart).Abs() >= time.Microsecond {
		t.Errorf("generatedOn after restart: %v, want %v", g, servertest.DefaultStart)
	}

	code, raw, _ = env.REST(t, http.MethodGet, tokensPath, user.Token, nil)
	wantStatus(t, "issued token after restart (REST)", code, raw, http.StatusOK)
	if _, err := env.Tokens.ListTokens(env.GRPCCtx(user.Token), &tbv1.ListTokensRequest{}); err != nil {
		t.Errorf("issued token after restart (gRPC): %v", err)
	}
	code, raw, hdr := env.REST(t, http.MethodGet, tokensPath, gone.Token, nil)
	wantAstraError(t, "deleted token after restart", code, raw, hdr, http.StatusUnauthorized, idUnknownToken, gone.ClientId)

	// A second restart keeps the newer use.
	env.Restart(t)
	if lu := tokenList(t, env)[user.ClientId].GetLastUsedOn(); lu == nil || !lu.AsTime().After(usedAt) {
		t.Errorf("lastUsedOn after the second restart: %v, want after %v", lu, usedAt)
	}
}

// ---- 10. key file -------------------------------------------------------------

// TestKeyFile: a database refuses to start with another key, a corrupt key
// or no key file (and does not create one); the right key starts it again.
func TestKeyFile(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	env.Shutdown()
	keyPath := env.DataPath + ".key"
	original, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	other := make([]byte, 32)
	if _, err := rand.Read(other); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name  string
		write []byte // nil: remove the key file
	}{
		{"another valid key", []byte(base64.StdEncoding.EncodeToString(other) + "\n")},
		{"not base64", []byte("this is not a key\n")},
		{"short key", []byte(base64.StdEncoding.EncodeToString(other[:16]) + "\n")},
		{"missing key file", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.write == nil {
				if err := os.Remove(keyPath); err != nil {
					t.Fatal(err)
				}
			} else if err := os.WriteFile(keyPath, c.write, 0o600); err != nil {
				t.Fatal(err)
			}
			err := env.TryRestart()
			if err == nil {
				env.Shutdown()
				t.Fatal("Start succeeded with the wrong key file")
			}
			if !strings.Contains(err.Error(), "key file") {
				t.Errorf("Start error %q does not mention the key file", err)
			}
			got, readErr := os.ReadFile(keyPath)
			switch {
			case c.write == nil && readErr == nil:
				t.Errorf("Start created a new key file after refusing to start")
			case c.write != nil && !bytes.Equal(got, c.write):
				t.Errorf("Start rewrote the key file")
			}
		})
	}

	if err := os.WriteFile(keyPath, original, 0o600); err != nil {
		t.Fatal(err)
	}
	env.Restart(t)
	code, raw, _ := env.REST(t, http.MethodGet, tokensPath, env.AdminToken, nil)
	wantStatus(t, "admin token with the right key restored", code, raw, http.StatusOK)
}

// ---- 11. roles --------------------------------------------------------------

// TestRolesREST: the roles API over REST, its validation and conflicts,
// escalation, and that role changes apply to tokens at once.
func TestRolesREST(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	admin := env.AdminToken
	org := orgDRN(env)

	// Default roles.
	code, raw, _ := env.REST(t, http.MethodGet, rolesPath, admin, nil)
	wantStatus(t, "list roles", code, raw, http.StatusOK)
	var defaults []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &defaults); err != nil {
		t.Fatalf("roles list is not a JSON array of objects: %v (%.200s)", err, raw)
	}
	wantIDs := []string{
		policy.OrganizationAdministratorID, policy.DatabaseAdministratorID, policy.BillingAdminID, policy.UIViewOnlyID,
		policy.AdminUserID, policy.RWUserID, policy.ROUserID, policy.AdminSvcAcctID, policy.RWSvcAcctID,
		policy.ROSvcAcctID, policy.APIAdminUserID, policy.APIRWUserID, policy.APIROUserID, policy.APIAdminSvcAcctID,
		policy.APIRWSvcAcctID, policy.APIROSvcAcctID,
	}
	var gotIDs []string
	defaultRaw := map[string]string{}
	for _, r := range defaults {
		wantKeys(t, "role", r, "ID", "Name", "Policy", "OrgID", "LastUpdateDateTime", "LastUpdateUserID", "Type")
		id := str(t, r["ID"])
		gotIDs = append(gotIDs, id)
		if str(t, r["Type"]) != "default" {
			t.Errorf("default role %s has Type %s", id, r["Type"])
		}
		if str(t, r["Name"]) == "" {
			t.Errorf("default role %s has no Name", id)
		}
		pol := object(t, r["Policy"])
		wantKeys(t, "role Policy", pol, "description", "resources", "actions", "effect")
		if str(t, pol["effect"]) != "allow" {
			t.Errorf("default role %s has effect %s", id, pol["effect"])
		}
		b, _ := json.Marshal(r)
		defaultRaw[id] = canon(t, b)
	}
	sort.Strings(gotIDs)
	sort.Strings(wantIDs)
	if !slices.Equal(gotIDs, wantIDs) {
		t.Errorf("default role IDs %v, want %v", gotIDs, wantIDs)
	}
	roleCount := func() int {
		t.Helper()
		code, raw, _ := env.REST(t, http.MethodGet, rolesPath, admin, nil)
		wantStatus(t, "list roles", code, raw, http.StatusOK)
		var rs []json.RawMessage
		if err := json.Unmarshal(raw, &rs); err != nil {
			t.Fatal(err)
		}
		return len(rs)
	}

	// Create with PascalCase keys.
	env.Clock.Advance(time.Minute)
	keyspacePolicy := rolePolicy([]string{org}, "db-all-keyspace-create", "db-all-keyspace-describe")
	code, raw, _ = env.REST(t, http.MethodPost, rolesPath, admin, map[string]any{"Name": "keyspaceRole", "Policy": keyspacePolicy})
	wantStatus(t, "create role (PascalCase)", code, raw, http.StatusCreated)
	createdRaw := raw
	role := object(t, raw)
	wantKeys(t, "created role", role, "ID", "Name", "Policy", "OrgID", "LastUpdateDateTime", "LastUpdateUserID", "Type")
	roleID := str(t, role["ID"])
	if _, err := uuid.Parse(roleID); err != nil {
		t.Errorf("role ID %q is not a UUID", roleID)
	}
	if got := str(t, role["OrgID"]); got != env.OrgID {
		t.Errorf("OrgID %q, want %q", got, env.OrgID)
	}
	if got := str(t, role["LastUpdateUserID"]); got != env.AdminClientID {
		t.Errorf("LastUpdateUserID %q, want the admin client ID %q", got, env.AdminClientID)
	}
	if got, err := time.Parse(time.RFC3339, str(t, role["LastUpdateDateTime"])); err != nil || !got.Equal(env.Clock.Now()) {
		t.Errorf("LastUpdateDateTime %s (%v), want the clock's %v", role["LastUpdateDateTime"], err, env.Clock.Now())
	}
	if str(t, role["Type"]) != "custom" || str(t, role["Name"]) != "keyspaceRole" {
		t.Errorf("created role %s", raw)
	}
	wantPolicy := func(what string, got json.RawMessage, want map[string]any) {
		t.Helper()
		w, _ := json.Marshal(want)
		if canon(t, got) != canon(t, w) {
			t.Errorf("%s: Policy %s, want %s", what, got, w)
		}
	}
	wantPolicy("created role", role["Policy"], keyspacePolicy)

	// Lowercase keys are accepted too.
	code, raw, _ = env.REST(t, http.MethodPost, rolesPath, admin,
		map[string]any{"name": "lowercaseRole", "policy": rolePolicy([]string{org}, "org-read")})
	wantStatus(t, "create role (lowercase)", code, raw, http.StatusCreated)
	lower := object(t, raw)
	if str(t, lower["Name"]) != "lowercaseRole" || !strings.Contains(string(lower["Policy"]), "org-read") {
		t.Errorf("lowercase create returned %s", raw)
	}
	lowerID := str(t, lower["ID"])

	// GET by id returns what POST returned.
	code, raw, _ = env.REST(t, http.MethodGet, rolesPath+"/"+roleID, admin, nil)
	wantStatus(t, "get role", code, raw, http.StatusOK)
	if got, want := canon(t, raw), canon(t, createdRaw); got != want {
		t.Errorf("GET role %s, want the created %s", got, want)
	}

	// Validation and conflicts: all rejected, nothing created.
	count := roleCount()
	for _, c := range []struct {
		name     string
		body     any
		wantHTTP int
		wantMsg  string
	}{
		{"duplicate name", map[string]any{"Name": "keyspaceRole", "Policy": keyspacePolicy}, 409, "keyspaceRole"},
		{"duplicate name, other case", map[string]any{"Name": "KEYSPACEROLE", "Policy": keyspacePolicy}, 409, "keyspaceRole"},
		{"duplicate of a default role name", map[string]any{"Name": "R/W User", "Policy": keyspacePolicy}, 409, "R/W User"},
		{"invalid action", map[string]any{"Name": "bad", "Policy": rolePolicy([]string{org}, "org-read", "org-frobnicate")}, 400, "org-frobnicate"},
		{"invalid resource DRN", map[string]any{"Name": "bad", "Policy": rolePolicy([]string{"arn:aws:s3:::bucket"}, "org-read")}, 400, "policy.resources[0]"},
		{"resource with a bad org id", map[string]any{"Name": "bad", "Policy": rolePolicy([]string{"drn:astra:org:not-an-org"}, "org-read")}, 400, "policy.resources[0]"},
		{"effect deny", map[string]any{"Name": "bad", "Policy": map[string]any{
			"description": "d", "resources": []string{org}, "actions": []string{"org-read"}, "effect": "deny"}}, 400, "deny"},
		{"empty name", map[string]any{"Name": "", "Policy": keyspacePolicy}, 400, "name"},
		{"no actions", map[string]any{"Name": "bad", "Policy": rolePolicy([]string{org})}, 400, "policy.actions"},
		{"malformed JSON", []byte(`{"Name":`), 400, ""},
	} {
		code, raw, hdr := env.REST(t, http.MethodPost, rolesPath, admin, c.body)
		wantAstraError(t, c.name, code, raw, hdr, c.wantHTTP, 0, c.wantMsg)
	}
	if got := roleCount(); got != count {
		t.Errorf("rejected creates changed the role count from %d to %d", count, got)
	}

	// PUT replaces the policy.
	env.Clock.Advance(time.Minute)
	newPolicy := rolePolicy([]string{org, org + ":db:*"}, "db-all-keyspace-describe")
	code, raw, _ = env.REST(t, http.MethodPut, rolesPath+"/"+roleID, admin, map[string]any{"Name": "keyspaceRole2", "Policy": newPolicy})
	wantStatus(t, "PUT role", code, raw, http.StatusOK)
	updated := object(t, raw)
	wantPolicy("PUT response", updated["Policy"], newPolicy)
	if str(t, updated["Name"]) != "keyspaceRole2" || str(t, updated["ID"]) != roleID {
		t.Errorf("PUT returned %s, want name keyspaceRole2 and ID %s", raw, roleID)
	}
	if got, err := time.Parse(time.RFC3339, str(t, updated["LastUpdateDateTime"])); err != nil || !got.Equal(env.Clock.Now()) {
		t.Errorf("LastUpdateDateTime after PUT %s, want %v", updated["LastUpdateDateTime"], env.Clock.Now())
	}
	code, raw, _ = env.REST(t, http.MethodGet, rolesPath+"/"+roleID, admin, nil)
	wantStatus(t, "get updated role", code, raw, http.StatusOK)
	if !strings.Contains(string(raw), `"keyspaceRole2"`) {
		t.Errorf("GET after PUT: %s", raw)
	}
	// The role ID comes from the path: a roleId in the body cannot redirect
	// the update to another role.
	code, raw, _ = env.REST(t, http.MethodPut, rolesPath+"/"+lowerID, admin,
		map[string]any{"roleId": roleID, "Name": "lowercaseRole", "Policy": rolePolicy([]string{org}, "org-read")})
	wantStatus(t, "PUT with a roleId in the body", code, raw, http.StatusOK)
	if got := str(t, object(t, raw)["ID"]); got != lowerID {
		t.Errorf("PUT /roles/%s with body roleId %s updated %s", lowerID, roleID, got)
	}
	code, raw, _ = env.REST(t, http.MethodGet, rolesPath+"/"+roleID, admin, nil)
	wantStatus(t, "GET the role named in the body", code, raw, http.StatusOK)
	wantPolicy("role named in the body, not the path", object(t, raw)["Policy"], newPolicy)

	// PUT to another role's name conflicts.
	code, raw, hdr := env.REST(t, http.MethodPut, rolesPath+"/"+roleID, admin, map[string]any{"Name": "lowercaseRole", "Policy": newPolicy})
	wantAstraError(t, "PUT to a taken name", code, raw, hdr, http.StatusConflict, 0, "lowercaseRole")

	// DELETE → 204, then 404.
	code, raw, _ = env.REST(t, http.MethodDelete, rolesPath+"/"+roleID, admin, nil)
	wantStatus(t, "DELETE role", code, raw, http.StatusNoContent)
	if len(raw) != 0 {
		t.Errorf("DELETE role body %q, want empty", raw)
	}
	code, raw, hdr = env.REST(t, http.MethodGet, rolesPath+"/"+roleID, admin, nil)
	wantAstraError(t, "GET deleted role", code, raw, hdr, http.StatusNotFound, 0, roleID)
	code, raw, hdr = env.REST(t, http.MethodPut, rolesPath+"/"+roleID, admin, map[string]any{"Name": "x", "Policy": newPolicy})
	wantAstraError(t, "PUT deleted role", code, raw, hdr, http.StatusNotFound, 0, roleID)
	code, raw, hdr = env.REST(t, http.MethodDelete, rolesPath+"/"+roleID, admin, nil)
	wantAstraError(t, "DELETE deleted role", code, raw, hdr, http.StatusNotFound, 0, roleID)
	code, raw, hdr = env.REST(t, http.MethodGet, rolesPath+"/not-a-uuid", admin, nil)
	wantAstraError(t, "GET role with a bad id", code, raw, hdr, http.StatusBadRequest, 0, "not-a-uuid")

	// Default roles cannot be changed or deleted, and stay unchanged.
	code, raw, hdr = env.REST(t, http.MethodPut, rolesPath+"/"+policy.RWUserID, admin,
		map[string]any{"Name": "R/W User", "Policy": rolePolicy([]string{org}, "org-read")})
	wantAstraError(t, "PUT default role", code, raw, hdr, http.StatusBadRequest, 0, "default role")
	code, raw, hdr = env.REST(t, http.MethodDelete, rolesPath+"/"+policy.RWUserID, admin, nil)
	wantAstraError(t, "DELETE default role", code, raw, hdr, http.StatusBadRequest, 0, "default role")
	code, raw, _ = env.REST(t, http.MethodGet, rolesPath+"/"+policy.RWUserID, admin, nil)
	wantStatus(t, "GET default role", code, raw, http.StatusOK)
	if after := canon(t, raw); after != defaultRaw[policy.RWUserID] {
		t.Errorf("default role changed:\nbefore %s\nafter  %s", defaultRaw[policy.RWUserID], after)
	}

	// A role held by a live token cannot be deleted until the token is.
	holder := env.CreateToken(t, admin, lowerID)
	code, raw, hdr = env.REST(t, http.MethodDelete, rolesPath+"/"+lowerID, admin, nil)
	wantAstraError(t, "DELETE role in use", code, raw, hdr, http.StatusConflict, 0, lowerID)
	code, raw, _ = env.REST(t, http.MethodGet, rolesPath+"/"+lowerID, admin, nil)
	wantStatus(t, "role in use remains", code, raw, http.StatusOK)
	code, raw, _ = env.REST(t, http.MethodDelete, tokensPath+"/"+holder.ClientId, admin, nil)
	wantStatus(t, "delete the holder token", code, raw, http.StatusOK)
	code, raw, _ = env.REST(t, http.MethodDelete, rolesPath+"/"+lowerID, admin, nil)
	wantStatus(t, "DELETE role no longer in use", code, raw, http.StatusNoContent)

	// Escalation: a role manager cannot put into a role what it lacks.
	mgrRole := createRole(t, env, "role-manager", "org-role-read", "org-role-write")
	mgr := env.CreateToken(t, admin, mgrRole)
	code, raw, hdr = env.REST(t, http.MethodPost, rolesPath, mgr.Token,
		map[string]any{"Name": "token-writer", "Policy": rolePolicy([]string{org}, "org-token-write")})
	wantAstraError(t, "role manager creates a role with org-token-write", code, raw, hdr, http.StatusForbidden, 0, "org-token-write")
	_, err := env.Tokens.CreateRole(env.GRPCCtx(mgr.Token), &tbv1.CreateRoleRequest{Name: "token-writer",
		Policy: &tbv1.Policy{Resources: []string{org}, Actions: []string{"org-token-write"}, Effect: "allow"}})
	wantGRPC(t, "role manager creates a role with org-token-write (gRPC)", err, codes.PermissionDenied, "org-token-write")
	code, raw, _ = env.REST(t, http.MethodPost, rolesPath, mgr.Token,
		map[string]any{"Name": "role-reader", "Policy": rolePolicy([]string{org}, "org-role-read")})
	wantStatus(t, "role manager creates a role within its own permissions", code, raw, http.StatusCreated)
	if got := str(t, object(t, raw)["LastUpdateUserID"]); got != mgr.ClientId {
		t.Errorf("LastUpdateUserID %q, want the role manager %q", got, mgr.ClientId)
	}
	code, raw, hdr = env.REST(t, http.MethodDelete, rolesPath+"/"+str(t, object(t, raw)["ID"]), mgr.Token, nil)
	wantAstraError(t, "role manager deletes a role (lacks org-role-delete)", code, raw, hdr, http.StatusForbidden, 0, "org-role-delete")
	code, raw, hdr = env.REST(t, http.MethodPut, rolesPath+"/"+mgrRole, mgr.Token,
		map[string]any{"Name": "role-manager", "Policy": rolePolicy([]string{org}, "org-role-read", "org-role-write", "org-token-write")})
	wantAstraError(t, "role manager widens its own role", code, raw, hdr, http.StatusForbidden, 0, "org-token-write")

	// A token bound to a custom role gets exactly its permissions, and a
	// change to the role applies from the token's next call.
	readerRole := createRole(t, env, "token-reader", "org-token-read")
	reader := env.CreateToken(t, admin, readerRole)
	code, raw, _ = env.REST(t, http.MethodGet, tokensPath, reader.Token, nil)
	wantStatus(t, "custom role with org-token-read lists tokens", code, raw, http.StatusOK)
	code, raw, hdr = env.REST(t, http.MethodPost, tokensPath, reader.Token, map[string]any{"roles": []string{readerRole}})
	wantAstraError(t, "custom role with org-token-read creates a token", code, raw, hdr, http.StatusForbidden, 0, "org-token-write")
	code, raw, hdr = env.REST(t, http.MethodGet, "/v2/currentOrg", reader.Token, nil)
	wantAstraError(t, "custom role without org-read reads the org", code, raw, hdr, http.StatusForbidden, 0, "org-read")

	code, raw, _ = env.REST(t, http.MethodPut, rolesPath+"/"+readerRole, admin,
		map[string]any{"Name": "token-reader", "Policy": rolePolicy([]string{org}, "org-read")})
	wantStatus(t, "PUT removes org-token-read", code, raw, http.StatusOK)
	code, raw, hdr = env.REST(t, http.MethodGet, tokensPath, reader.Token, nil)
	wantAstraError(t, "list after org-token-read was removed", code, raw, hdr, http.StatusForbidden, 0, "org-token-read")
	_, err = env.Tokens.ListTokens(env.GRPCCtx(reader.Token), &tbv1.ListTokensRequest{})
	wantGRPC(t, "list after org-token-read was removed (gRPC)", err, codes.PermissionDenied, "")
	code, raw, _ = env.REST(t, http.MethodGet, "/v2/currentOrg", reader.Token, nil)
	wantStatus(t, "currentOrg after org-read was added", code, raw, http.StatusOK)

	// The escalation check of a create sees a role change at once: a
	// granter holding org-read may hand out the role while it grants only
	// org-read, and not once it grants org-token-read too.
	granter := env.CreateToken(t, admin, createRole(t, env, "granter", "org-token-write", "org-read"))
	code, raw, _ = env.REST(t, http.MethodPost, tokensPath, granter.Token, map[string]any{"roles": []string{readerRole}})
	wantStatus(t, "granter creates a token with a role within its permissions", code, raw, http.StatusOK)
	code, raw, _ = env.REST(t, http.MethodPut, rolesPath+"/"+readerRole, admin,
		map[string]any{"Name": "token-reader", "Policy": rolePolicy([]string{org}, "org-read", "org-token-read")})
	wantStatus(t, "PUT adds org-token-read", code, raw, http.StatusOK)
	code, raw, hdr = env.REST(t, http.MethodPost, tokensPath, granter.Token, map[string]any{"roles": []string{readerRole}})
	wantAstraError(t, "granter creates a token with the widened role", code, raw, hdr, http.StatusForbidden, 0, "org-token-read")
	_, err = env.Tokens.CreateToken(env.GRPCCtx(granter.Token), &tbv1.CreateTokenRequest{Roles: []string{readerRole}})
	wantGRPC(t, "granter creates a token with the widened role (gRPC)", err, codes.PermissionDenied, "org-token-read")
}

// ---- 12. misc endpoints -----------------------------------------------------

// TestOrgOpenAPIAndRouting: /v2/currentOrg, /openapi.json, unknown paths and
// /healthz.
func TestOrgOpenAPIAndRouting(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t, servertest.WithOrgName("acme"))

	code, raw, _ := env.REST(t, http.MethodGet, "/v2/currentOrg", env.AdminToken, nil)
	wantStatus(t, "GET /v2/currentOrg", code, raw, http.StatusOK)
	org := object(t, raw)
	wantKeys(t, "currentOrg", org, "id", "name")
	if str(t, org["id"]) != env.OrgID || str(t, org["name"]) != "acme" {
		t.Errorf("currentOrg %s, want id %s name acme", raw, env.OrgID)
	}
	code, raw, hdr := env.REST(t, http.MethodGet, "/v2/currentOrg", "", nil)
	wantAstraError(t, "currentOrg without a credential", code, raw, hdr, http.StatusUnauthorized, idMissingOrMalformed, "")

	code, raw, _ = env.REST(t, http.MethodGet, "/openapi.json", "", nil)
	wantStatus(t, "GET /openapi.json", code, raw, http.StatusOK)
	var doc struct {
		Paths map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("openapi.json is not valid JSON: %v", err)
	}
	if _, ok := doc.Paths["/v2/clientIdSecrets"]; !ok {
		t.Errorf("openapi.json paths %v lack /v2/clientIdSecrets", keys(doc.Paths))
	}

	for _, p := range []string{"/v2/nope", "/", "/v2/clientIdSecrets/a/b"} {
		code, raw, hdr = env.REST(t, http.MethodGet, p, env.AdminToken, nil)
		wantAstraError(t, "GET "+p, code, raw, hdr, http.StatusNotFound, 0, "")
	}
	code, raw, _ = env.REST(t, http.MethodGet, "/healthz", "", nil)
	wantStatus(t, "GET /healthz", code, raw, http.StatusOK)
}

// ---- 13. concurrency ----------------------------------------------------------

// TestConcurrentCreates: 32 goroutines × 10 creations over gRPC yield 320
// distinct tokens, all listed afterwards (run under -race).
func TestConcurrentCreates(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	const workers, each = 32, 10

	var mu sync.Mutex
	ids := map[string]bool{}
	tokens := map[string]bool{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := env.GRPCCtx(env.AdminToken)
			for i := range each {
				r, err := env.Tokens.CreateToken(ctx, &tbv1.CreateTokenRequest{
					Roles: []string{policy.RWUserID}, Description: fmt.Sprintf("w%d-%d", w, i)})
				if err != nil {
					t.Errorf("worker %d create %d: %v", w, i, err)
					return
				}
				mu.Lock()
				ids[r.ClientId] = true
				tokens[r.Token] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if len(ids) != workers*each || len(tokens) != workers*each {
		t.Fatalf("%d distinct client IDs and %d distinct tokens, want %d", len(ids), len(tokens), workers*each)
	}
	listed := tokenList(t, env)
	if len(listed) != workers*each+1 {
		t.Errorf("%d tokens listed, want %d (+ the admin)", len(listed), workers*each)
	}
	for id := range ids {
		if _, ok := listed[id]; !ok {
			t.Errorf("created token %s is not listed", id)
		}
	}
}
