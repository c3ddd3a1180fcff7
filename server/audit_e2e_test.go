package server_test

// End-to-end tests of the audit log (docs/audit.md) and of streaming stats,
// Astra's "billing report by tenant" (docs/databases.md, "Streaming
// stats"), against a real server over both transports. Time is the fake
// clock; refused-call events are flushed with the broker's FlushAudit
// rather than by waiting for the server's 1 s flush. The only real-time
// waits are in TestAuditFollow (the stream polls every 500 ms).
//
// Helpers here are prefixed "au" so they cannot collide with the other
// files of this package.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	tbv1 "github.com/tokenbroker/tokenbroker/gen/tokenbroker/v1"
	"github.com/tokenbroker/tokenbroker/server"
	"github.com/tokenbroker/tokenbroker/server/auditlog"
	"github.com/tokenbroker/tokenbroker/server/policy"
	"github.com/tokenbroker/tokenbroker/server/servertest"
)

const (
	auEventsPath     = "/v2/audit/events"
	auStatsPath      = "/v2/stats/namespaces"
	auAdminStatsPath = "/admin/v2/stats/namespaces"
	auTenantsPath    = "/v2/streaming/tenants"
	auUsersPath      = "/v2/organizations/users"
	auLoginPath      = "/v1/auth"
	auDBPath         = "/v2/databases"

	auApp  = "application-token"
	auUser = "user"
)

// ---- helpers -------------------------------------------------------------

// auREST is env.REST with an X-Request-Id header when rid is not "".
func auREST(t *testing.T, env *servertest.Env, method, path, bearer, rid string, body any) (int, []byte, http.Header) {
	t.Helper()
	req := env.NewRequest(t, method, path, bearer, body)
	if rid != "" {
		req.Header.Set("X-Request-Id", rid)
	}
	return env.Do(t, req)
}

// auCtx is a gRPC context with the bearer (when not "") and the request ID
// (when not "").
func auCtx(bearer, rid string) context.Context {
	var kv []string
	if bearer != "" {
		kv = append(kv, "authorization", "Bearer "+bearer)
	}
	if rid != "" {
		kv = append(kv, "x-request-id", rid)
	}
	return metadata.AppendToOutgoingContext(context.Background(), kv...)
}

func au2xx(t *testing.T, what string, code int, raw []byte) {
	t.Helper()
	if code < 200 || code > 299 {
		t.Fatalf("%s: HTTP %d, want 2xx; body %s", what, code, raw)
	}
}

func auCode(t *testing.T, what string, code int, raw []byte, want int) {
	t.Helper()
	if code != want {
		t.Fatalf("%s: HTTP %d, want %d; body %s", what, code, want, raw)
	}
}

func auGRPC(t *testing.T, what string, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Fatalf("%s: gRPC %v, want %v", what, err, want)
	}
}

// auJSON decodes a JSON object keeping numbers as json.Number.
func auJSON(t *testing.T, what string, raw []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		t.Fatalf("%s: want a JSON object, got %q (%v)", what, raw, err)
	}
	return m
}

func auStr(t *testing.T, what string, m map[string]any, key string) string {
	t.Helper()
	s, ok := m[key].(string)
	if !ok {
		t.Fatalf("%s: %q is %#v, want a string", what, key, m[key])
	}
	return s
}

func auKeys(t *testing.T, what string, m map[string]any, want ...string) {
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

// auReason checks a {"reason": ...} error body (Astra Streaming's, on the
// stats paths) and returns the reason.
func auReason(t *testing.T, what string, code int, raw []byte, want int) string {
	t.Helper()
	auCode(t, what, code, raw, want)
	m := auJSON(t, what, raw)
	auKeys(t, what+": error body", m, "reason")
	r := auStr(t, what, m, "reason")
	if r == "" {
		t.Errorf("%s: empty reason", what)
	}
	return r
}

// auAstraError checks Astra's {"errors":[{"ID","message"}]} body, which the
// report call (a management call, unlike the stats reads) answers with.
func auAstraError(t *testing.T, what string, code int, raw []byte, want int) {
	t.Helper()
	auCode(t, what, code, raw, want)
	var body struct {
		Errors []struct {
			ID      *int    `json:"ID"`
			Message *string `json:"message"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(raw, &body); err != nil || len(body.Errors) != 1 || body.Errors[0].ID == nil ||
		body.Errors[0].Message == nil || *body.Errors[0].Message == "" {
		t.Errorf("%s: body %s, want {\"errors\":[{\"ID\":…,\"message\":…}]}", what, raw)
	}
}

// auList does GET /v2/audit/events with the query and decodes the page.
func auList(t *testing.T, env *servertest.Env, bearer string, q url.Values) (int, []byte, *tbv1.ListAuditEventsResponse) {
	t.Helper()
	path := auEventsPath
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	code, raw, _ := env.REST(t, http.MethodGet, path, bearer, nil)
	if code != http.StatusOK {
		return code, raw, nil
	}
	m := auJSON(t, "audit page", raw)
	auKeys(t, "audit page", m, "events", "nextPageToken")
	if evs, ok := m["events"].([]any); ok {
		for _, e := range evs {
			if em, ok := e.(map[string]any); ok {
				auKeys(t, "audit event", em, "seq", "time", "requestId", "actorKind", "actorId",
					"action", "targetKind", "targetId", "outcome", "detail")
			}
		}
	}
	var resp tbv1.ListAuditEventsResponse
	if err := protojson.Unmarshal(raw, &resp); err != nil {
		t.Fatalf("audit page: decode %s: %v", raw, err)
	}
	return code, raw, &resp
}

// auAll pages through the whole audit log over REST (as the admin, with
// pageSize size; 0 for the default) and returns the events and the raw
// pages. It checks that seqs strictly increase across pages.
func auAll(t *testing.T, env *servertest.Env, size int, extra url.Values) ([]*tbv1.AuditEvent, [][]byte) {
	t.Helper()
	var events []*tbv1.AuditEvent
	var pages [][]byte
	token := ""
	for i := 0; ; i++ {
		if i > 10000 {
			t.Fatal("audit log paging does not end")
		}
		q := url.Values{}
		for k, v := range extra {
			q[k] = v
		}
		if size > 0 {
			q.Set("pageSize", strconv.Itoa(size))
		}
		if token != "" {
			q.Set("pageToken", token)
		}
		code, raw, resp := auList(t, env, env.AdminToken, q)
		auCode(t, "list audit events "+q.Encode(), code, raw, http.StatusOK)
		pages = append(pages, raw)
		if size > 0 && len(resp.GetEvents()) > size {
			t.Errorf("page of %d events for pageSize %d", len(resp.GetEvents()), size)
		}
		for _, ev := range resp.GetEvents() {
			if n := len(events); n > 0 && ev.GetSeq() <= events[n-1].GetSeq() {
				t.Errorf("seq %d follows seq %d: not strictly increasing", ev.GetSeq(), events[n-1].GetSeq())
			}
			events = append(events, ev)
		}
		if token = resp.GetNextPageToken(); token == "" {
			return events, pages
		}
	}
}

// auFlushAll flushes refused-call events, then lists the whole log.
func auFlushAll(t *testing.T, env *servertest.Env) []*tbv1.AuditEvent {
	t.Helper()
	env.FlushAudit(t)
	evs, _ := auAll(t, env, 0, nil)
	return evs
}

func auByRID(events []*tbv1.AuditEvent, rid string) []*tbv1.AuditEvent {
	var out []*tbv1.AuditEvent
	for _, ev := range events {
		if ev.GetRequestId() == rid {
			out = append(out, ev)
		}
	}
	return out
}

func auFmt(ev *tbv1.AuditEvent) string {
	return fmt.Sprintf("{seq %d %s rid=%q actor=%s/%s action=%s target=%s/%s outcome=%s detail=%q}",
		ev.GetSeq(), ev.GetTime().AsTime().Format(time.RFC3339Nano), ev.GetRequestId(), ev.GetActorKind(), ev.GetActorId(),
		ev.GetAction(), ev.GetTargetKind(), ev.GetTargetId(), ev.GetOutcome(), truncateForLog(ev.GetDetail()))
}

func truncateForLog(s string) string {
	if len(s) > 120 {
		return s[:120] + fmt.Sprintf("...(%d bytes)", len(s))
	}
	return s
}

// auOne returns the single event with request ID rid.
func auOne(t *testing.T, events []*tbv1.AuditEvent, rid string) *tbv1.AuditEvent {
	t.Helper()
	got := auByRID(events, rid)
	if len(got) != 1 {
		var s []string
		for _, ev := range got {
			s = append(s, auFmt(ev))
		}
		t.Fatalf("request %q: %d audit events, want 1: %v", rid, len(got), s)
	}
	return got[0]
}

// auWant is an expected audit event.
type auWant struct {
	rid, action, actorKind, actorID, targetKind, targetID, outcome string
	at                                                             time.Time // the fake clock during the call
}

// auCheck compares an event with a want (detail only for success: empty).
func auCheck(t *testing.T, ev *tbv1.AuditEvent, w auWant) {
	t.Helper()
	what := "event of " + w.rid + " (" + w.action + ")"
	outcome := w.outcome
	if outcome == "" {
		outcome = "success"
	}
	for _, c := range [][3]string{
		{"action", ev.GetAction(), w.action},
		{"outcome", ev.GetOutcome(), outcome},
		{"actorKind", ev.GetActorKind(), w.actorKind},
		{"actorId", ev.GetActorId(), w.actorID},
		{"targetKind", ev.GetTargetKind(), w.targetKind},
		{"targetId", ev.GetTargetId(), w.targetID},
		{"requestId", ev.GetRequestId(), w.rid},
	} {
		if c[1] != c[2] {
			t.Errorf("%s: %s %q, want %q", what, c[0], c[1], c[2])
		}
	}
	if outcome == "success" && ev.GetDetail() != "" {
		t.Errorf("%s: detail %q, want none", what, ev.GetDetail())
	}
	auWantTime(t, what, ev, w.at)
}

// auWantTime: the event's time is when the call was admitted, by the
// server's clock (the fake clock, which does not move during a call).
func auWantTime(t *testing.T, what string, ev *tbv1.AuditEvent, at time.Time) {
	t.Helper()
	if got := ev.GetTime().AsTime(); !got.Equal(at) {
		t.Errorf("%s: time %s, want the fake clock's %s (the server's Config.Now)",
			what, got.Format(time.RFC3339Nano), at.UTC().Format(time.RFC3339Nano))
	}
}

// auJWTClaim returns a claim of an (unverified) JWT.
func auJWTClaim(t *testing.T, jwt, claim string) string {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("%q is not a compact JWS", jwt)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("JWT payload: %v", err)
	}
	m := auJSON(t, "JWT payload", payload)
	return fmt.Sprint(m[claim])
}

// auHex is the hex part of an AstraCS token.
func auHex(token string) string { return token[strings.LastIndex(token, ":")+1:] }

// ---- the flow: one call of every change-making kind -------------------------

// auFlowResult is what auFlow did: the events it expects (in order) and
// every secret it saw.
type auFlowResult struct {
	wants   []auWant
	secrets map[string]string // what → secret
}

// auFlow makes one call of each change-making kind, alternating REST and
// gRPC, each with its own request ID, advancing the fake clock before each.
func auFlow(t *testing.T, env *servertest.Env) auFlowResult {
	t.Helper()
	admin, adminID := env.AdminToken, env.AdminClientID
	res := auFlowResult{secrets: map[string]string{
		"bootstrap token": admin, "bootstrap token hex": auHex(admin), "bootstrap secret": env.Admin.Secret,
	}}
	at := env.Clock.Now()
	step := func() { env.Clock.Advance(time.Minute + time.Millisecond); at = env.Clock.Now() }
	want := func(rid, action, actorKind, actorID, targetKind, targetID string) {
		res.wants = append(res.wants, auWant{rid: rid, action: action, actorKind: actorKind, actorID: actorID,
			targetKind: targetKind, targetID: targetID, at: at})
	}
	token := func(what, tok, secret string) {
		res.secrets[what+" token"] = tok
		res.secrets[what+" token hex"] = auHex(tok)
		res.secrets[what+" secret"] = secret
	}

	// Application tokens.
	step()
	code, raw, _ := auREST(t, env, http.MethodPost, "/v2/clientIdSecrets", admin, "au-token-create",
		map[string]any{"roles": []string{policy.RWSvcAcctID}, "description": "audited"})
	au2xx(t, "create token", code, raw)
	m := auJSON(t, "create token", raw)
	tok1ID := auStr(t, "create token", m, "clientId")
	token("first app", auStr(t, "create token", m, "token"), auStr(t, "create token", m, "secret"))
	want("au-token-create", "TokenService.CreateToken", auApp, adminID, "token", tok1ID)

	step()
	if _, err := env.Tokens.DeleteToken(auCtx(admin, "au-token-delete"), &tbv1.DeleteTokenRequest{ClientId: tok1ID}); err != nil {
		t.Fatalf("DeleteToken: %v", err)
	}
	want("au-token-delete", "TokenService.DeleteToken", auApp, adminID, "token", tok1ID)

	// Custom roles.
	step()
	code, raw, _ = auREST(t, env, http.MethodPost, rolesPath, admin, "au-role-create",
		map[string]any{"Name": "audited role", "Policy": rolePolicy([]string{orgDRN(env)}, "org-read")})
	au2xx(t, "create role", code, raw)
	roleID := auStr(t, "create role", auJSON(t, "create role", raw), "ID")
	want("au-role-create", "TokenService.CreateRole", auApp, adminID, "role", roleID)

	step()
	if _, err := env.Tokens.UpdateRole(auCtx(admin, "au-role-update"), &tbv1.UpdateRoleRequest{
		RoleId: roleID, Name: "audited role 2",
		Policy: &tbv1.Policy{Description: "d", Resources: []string{orgDRN(env)}, Actions: []string{"org-read", "org-user-read"}, Effect: "allow"},
	}); err != nil {
		t.Fatalf("UpdateRole: %v", err)
	}
	want("au-role-update", "TokenService.UpdateRole", auApp, adminID, "role", roleID)

	step()
	code, raw, _ = auREST(t, env, http.MethodDelete, rolesPath+"/"+roleID, admin, "au-role-delete", nil)
	au2xx(t, "delete role", code, raw)
	want("au-role-delete", "TokenService.DeleteRole", auApp, adminID, "role", roleID)

	// Users.
	const pw1, pw2 = "first-Passw0rd-audit", "second-Passw0rd-audit"
	res.secrets["first password"], res.secrets["second password"] = pw1, pw2
	step()
	cu, err := env.Auth.CreateUser(auCtx(admin, "au-user-create"), &tbv1.CreateUserRequest{Username: "audit.user", Password: pw1, Roles: []string{policy.RWUserID}})
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	userID := cu.GetUser().GetUserId()
	want("au-user-create", "AuthService.CreateUser", auApp, adminID, "user", userID)

	step()
	code, raw, _ = auREST(t, env, http.MethodPut, auUsersPath+"/"+userID+"/password", admin, "au-user-password", map[string]string{"password": pw2})
	au2xx(t, "reset password", code, raw)
	want("au-user-password", "AuthService.ResetUserPassword", auApp, adminID, "user", userID)

	// Logins and logouts.
	step()
	code, raw, _ = auREST(t, env, http.MethodPost, auLoginPath, "", "au-login-user", map[string]string{"username": "audit.user", "password": pw2})
	au2xx(t, "login as the user", code, raw)
	userAuth := auStr(t, "login", auJSON(t, "login", raw), "authToken")
	res.secrets["user auth token"] = userAuth
	want("au-login-user", "AuthService.CreateAuthToken", auUser, userID, "auth-token", userID)

	step()
	app2, err := env.Tokens.CreateToken(auCtx(admin, "au-token-create-2"), &tbv1.CreateTokenRequest{Roles: []string{policy.RWUserID}})
	if err != nil {
		t.Fatalf("CreateToken: %v", err)
	}
	token("second app", app2.GetToken(), app2.GetSecret())
	want("au-token-create-2", "TokenService.CreateToken", auApp, adminID, "token", app2.GetClientId())

	step()
	code, raw, _ = auREST(t, env, http.MethodPost, auLoginPath, "", "au-login-app-rest", map[string]string{"username": app2.GetClientId(), "password": app2.GetSecret()})
	au2xx(t, "login with an application token", code, raw)
	res.secrets["app auth token (REST)"] = auStr(t, "login", auJSON(t, "login", raw), "authToken")
	want("au-login-app-rest", "AuthService.CreateAuthToken", auApp, app2.GetClientId(), "auth-token", app2.GetClientId())

	step()
	code, raw, _ = auREST(t, env, http.MethodPost, "/v1/auth/token/generate", "", "au-login-generate", map[string]string{"key": app2.GetClientId(), "secret": app2.GetSecret()})
	au2xx(t, "login with /v1/auth/token/generate", code, raw)
	res.secrets["app auth token (generate)"] = auStr(t, "generate", auJSON(t, "generate", raw), "authToken")
	want("au-login-generate", "AuthService.GenerateAuthToken", auApp, app2.GetClientId(), "auth-token", app2.GetClientId())

	step()
	lr, err := env.Auth.CreateAuthToken(auCtx("", "au-login-app-grpc"), &tbv1.CreateAuthTokenRequest{Username: app2.GetClientId(), Password: app2.GetSecret()})
	if err != nil {
		t.Fatalf("gRPC login: %v", err)
	}
	res.secrets["app auth token (gRPC)"] = lr.GetAuthToken()
	want("au-login-app-grpc", "AuthService.CreateAuthToken", auApp, app2.GetClientId(), "auth-token", app2.GetClientId())

	step()
	code, raw, _ = auREST(t, env, http.MethodDelete, auLoginPath, userAuth, "au-logout-user", nil)
	au2xx(t, "logout (user)", code, raw)
	want("au-logout-user", "AuthService.RevokeAuthToken", auUser, userID, "auth-token", userID)

	step()
	if _, err := env.Auth.RevokeAuthToken(auCtx(lr.GetAuthToken(), "au-logout-app"), &tbv1.RevokeAuthTokenRequest{}); err != nil {
		t.Fatalf("RevokeAuthToken: %v", err)
	}
	want("au-logout-app", "AuthService.RevokeAuthToken", auApp, app2.GetClientId(), "auth-token", app2.GetClientId())

	step()
	code, raw, _ = auREST(t, env, http.MethodDelete, auUsersPath+"/"+userID, admin, "au-user-delete", nil)
	au2xx(t, "delete user", code, raw)
	want("au-user-delete", "AuthService.DeleteUser", auApp, adminID, "user", userID)

	// Tenants and Pulsar tokens.
	step()
	code, raw, _ = auREST(t, env, http.MethodPost, auTenantsPath, admin, "au-tenant-create",
		map[string]any{"tenantName": "audit-tenant", "clusterName": "cluster-1"})
	au2xx(t, "create tenant", code, raw)
	firstJWT := auStr(t, "create tenant", auJSON(t, "create tenant", raw), "pulsarToken")
	res.secrets["first Pulsar JWT"] = firstJWT
	res.secrets["first Pulsar JWT signature"] = firstJWT[strings.LastIndex(firstJWT, ".")+1:]
	want("au-tenant-create", "PulsarTokenService.CreateTenant", auApp, adminID, "tenant", "audit-tenant")
	want("au-tenant-create", "PulsarTokenService.CreateTenant", auApp, adminID, "pulsar-token", auJWTClaim(t, firstJWT, "tokenid"))

	step()
	pt, err := env.Pulsar.CreatePulsarToken(auCtx(admin, "au-pulsar-create"), &tbv1.CreatePulsarTokenRequest{Tenant: "audit-tenant"})
	if err != nil {
		t.Fatalf("CreatePulsarToken: %v", err)
	}
	res.secrets["second Pulsar JWT"] = pt.GetToken()
	res.secrets["second Pulsar JWT signature"] = pt.GetToken()[strings.LastIndex(pt.GetToken(), ".")+1:]
	want("au-pulsar-create", "PulsarTokenService.CreatePulsarToken", auApp, adminID, "pulsar-token", pt.GetId())

	step()
	code, raw, _ = auREST(t, env, http.MethodDelete, auTenantsPath+"/audit-tenant/tokens/"+pt.GetId(), admin, "au-pulsar-delete", nil)
	au2xx(t, "delete Pulsar token", code, raw)
	want("au-pulsar-delete", "PulsarTokenService.DeletePulsarToken", auApp, adminID, "pulsar-token", pt.GetId())

	step()
	rot, err := env.Pulsar.RotateSigningKey(auCtx(admin, "au-rotate"), &tbv1.RotateSigningKeyRequest{})
	if err != nil {
		t.Fatalf("RotateSigningKey: %v", err)
	}
	want("au-rotate", "PulsarTokenService.RotateSigningKey", auApp, adminID, "signing-key", rot.GetKid())

	step()
	code, raw, _ = auREST(t, env, http.MethodDelete, auTenantsPath+"/audit-tenant", admin, "au-tenant-delete", nil)
	au2xx(t, "delete tenant", code, raw)
	want("au-tenant-delete", "PulsarTokenService.DeleteTenant", auApp, adminID, "tenant", "audit-tenant")

	// Databases.
	step()
	code, raw, _ = auREST(t, env, http.MethodPost, auDBPath, admin, "au-db-create", map[string]any{"name": "audited-db"})
	au2xx(t, "create database", code, raw)
	m = auJSON(t, "create database", raw)
	dbID := auStr(t, "create database", m, "id")
	token("database", auStr(t, "create database", m, "token"), auStr(t, "create database", m, "secret"))
	want("au-db-create", "DatabaseService.CreateDatabase", auApp, adminID, "database", dbID)

	step()
	if _, err := env.Databases.TerminateDatabase(auCtx(admin, "au-db-terminate"), &tbv1.TerminateDatabaseRequest{DatabaseId: dbID}); err != nil {
		t.Fatalf("TerminateDatabase: %v", err)
	}
	want("au-db-terminate", "DatabaseService.TerminateDatabase", auApp, adminID, "database", dbID)
	return res
}

// ---- 1. every change appears ---------------------------------------------------

// TestAuditEveryChange: each change-making call of the flow has exactly its
// event (action, success, actor, target, request ID, time by the fake
// clock), in call order, and nothing else is recorded.
func TestAuditEveryChange(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	flow := auFlow(t, env)
	env.FlushAudit(t) // nothing was refused; a stray refusal would show up
	events, _ := auAll(t, env, 3, nil)

	byRID := map[string][]*tbv1.AuditEvent{}
	for _, ev := range events {
		byRID[ev.GetRequestId()] = append(byRID[ev.GetRequestId()], ev)
	}
	var lastSeq uint64
	used := map[*tbv1.AuditEvent]bool{}
	for _, w := range flow.wants {
		evs := byRID[w.rid]
		if len(evs) == 0 {
			t.Errorf("no audit event for %s (%s)", w.rid, w.action)
			continue
		}
		ev := evs[0]
		byRID[w.rid] = evs[1:]
		used[ev] = true
		auCheck(t, ev, w)
		if ev.GetSeq() <= lastSeq {
			t.Errorf("event of %s: seq %d not after the previous call's %d", w.rid, ev.GetSeq(), lastSeq)
		}
		lastSeq = ev.GetSeq()
	}
	for _, ev := range events {
		if !used[ev] {
			t.Errorf("unexpected audit event %s", auFmt(ev))
		}
	}
	if len(events) != len(flow.wants) {
		t.Errorf("%d audit events, want %d", len(events), len(flow.wants))
	}

	// gRPC lists the same events.
	resp, err := env.Audit.ListAuditEvents(env.GRPCCtx(env.AdminToken), &tbv1.ListAuditEventsRequest{PageSize: 1000})
	if err != nil {
		t.Fatalf("gRPC ListAuditEvents: %v", err)
	}
	if len(resp.GetEvents()) != len(events) || resp.GetNextPageToken() != "" {
		t.Errorf("gRPC lists %d events (next %q), REST %d", len(resp.GetEvents()), resp.GetNextPageToken(), len(events))
	} else {
		for i, ev := range resp.GetEvents() {
			if auFmt(ev) != auFmt(events[i]) {
				t.Errorf("gRPC event %d %s, REST %s", i, auFmt(ev), auFmt(events[i]))
			}
		}
	}
}

// ---- 2. no secret appears --------------------------------------------------------

// TestAuditNoSecrets: no token, secret, password, auth token or JWT of the
// flow appears in any audit page, nor in the audit bucket of the bbolt
// file, nor anywhere in the file.
func TestAuditNoSecrets(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	flow := auFlow(t, env)
	// Refused calls that present secrets must not record them either.
	code, raw, _ := auREST(t, env, http.MethodGet, "/v2/clientIdSecrets", flow.secrets["second app token"], "au-secret-refused", nil)
	auCode(t, "R/W User lists tokens", code, raw, http.StatusForbidden)
	code, raw, _ = auREST(t, env, http.MethodGet, "/v2/clientIdSecrets", flow.secrets["first app token"], "au-secret-deleted", nil)
	auCode(t, "deleted token lists tokens", code, raw, http.StatusUnauthorized)
	events := auFlushAll(t, env)
	if len(auByRID(events, "au-secret-refused")) != 1 || len(auByRID(events, "au-secret-deleted")) != 1 {
		t.Errorf("refused calls not recorded once each")
	}

	_, pages := auAll(t, env, 2, nil)
	for i, page := range pages {
		for what, s := range flow.secrets {
			if s != "" && bytes.Contains(page, []byte(s)) {
				t.Errorf("audit page %d contains the %s", i, what)
			}
		}
		if bytes.Contains(page, []byte("eyJ")) {
			t.Errorf("audit page %d contains base64url JSON (a JWT part?): %s", i, page)
		}
	}

	env.Shutdown()
	records := env.StoredBucket(t, "audit")
	for k, v := range records {
		for what, s := range flow.secrets {
			if s != "" && bytes.Contains(v, []byte(s)) {
				t.Errorf("audit record %x contains the %s", k, what)
			}
		}
	}
	if len(records) != len(events) {
		t.Errorf("%d audit records in the store, %d listed", len(records), len(events))
	}
	file := env.StoredData(t)
	for what, s := range flow.secrets {
		if s != "" && bytes.Contains(file, []byte(s)) {
			t.Errorf("the data file contains the %s", what)
		}
	}
}

// ---- 3. refused calls ---------------------------------------------------------------

// TestAuditRefused: 403s, 401s, a refusal by the broker (escalation) and
// the 404 that hides a database are recorded once flushed, with the actor
// (none when unauthenticated) and a detail naming the missing permission;
// a 5000-character tenant name is recorded clipped without losing the
// rest of its batch.
func TestAuditRefused(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	rw := env.CreateToken(t, env.AdminToken, policy.RWUserID)
	rw2 := env.CreateToken(t, env.AdminToken, policy.RWUserID)
	dba := env.CreateToken(t, env.AdminToken, policy.DatabaseAdministratorID)
	code, raw, _ := env.REST(t, http.MethodPost, auDBPath, env.AdminToken, map[string]any{"name": "a"})
	auCode(t, "create database a", code, raw, http.StatusCreated)
	dbA := auJSON(t, "create database", raw)
	code, raw, _ = env.REST(t, http.MethodPost, auDBPath, env.AdminToken, map[string]any{"name": "b"})
	auCode(t, "create database b", code, raw, http.StatusCreated)
	dbB := auStr(t, "create database", auJSON(t, "create database", raw), "id")
	dbAToken, dbAClient := auStr(t, "db a", dbA, "token"), auStr(t, "db a", dbA, "clientId")
	unknown, _ := unknownToken()
	// A role writer that may not strip a role of permissions it lacks: the
	// store-side check of UpdateRole refuses it.
	writerRole := createRole(t, env, "role writer", "org-role-write", "org-read")
	writer := env.CreateToken(t, env.AdminToken, writerRole)
	victim := createRole(t, env, "token writers", "org-token-write")
	env.FlushAudit(t)
	before, _ := auAll(t, env, 0, nil)

	env.Clock.Advance(time.Hour)
	at := env.Clock.Now()
	longName := strings.Repeat("x", 5000)
	longMulti := strings.Repeat("é", 5000) // 2 bytes a rune: clipping must respect rune boundaries

	// All refused back to back, so they are (most likely) one batch.
	code, raw, _ = auREST(t, env, http.MethodGet, "/v2/clientIdSecrets", rw.GetToken(), "au-rw-list", nil)
	auCode(t, "R/W User lists tokens", code, raw, http.StatusForbidden)
	code, raw, _ = auREST(t, env, http.MethodPost, auTenantsPath, rw.GetToken(), "au-long-rest",
		map[string]any{"tenantName": longName, "clusterName": "c"})
	auCode(t, "R/W User creates a tenant with a 5000-character name", code, raw, http.StatusForbidden)
	code, raw, _ = auREST(t, env, http.MethodGet, "/v2/clientIdSecrets", "", "au-no-token", nil)
	auCode(t, "no token", code, raw, http.StatusUnauthorized)
	_, err := env.Pulsar.CreateTenant(auCtx(rw.GetToken(), "au-long-grpc"), &tbv1.CreateTenantRequest{TenantName: longMulti, ClusterName: "c"})
	auGRPC(t, "gRPC: R/W User creates a tenant with a 5000-rune name", err, codes.PermissionDenied)
	code, raw, _ = auREST(t, env, http.MethodGet, "/v2/clientIdSecrets", "not-a-token", "au-malformed", nil)
	auCode(t, "malformed token", code, raw, http.StatusUnauthorized)
	_, err = env.Tokens.ListRoles(auCtx(unknown, "au-unknown"), &tbv1.ListRolesRequest{})
	auGRPC(t, "gRPC: unknown token", err, codes.Unauthenticated)
	_, err = env.Tokens.CreateToken(auCtx(dba.GetToken(), "au-escalate"), &tbv1.CreateTokenRequest{Roles: []string{policy.OrganizationAdministratorID}})
	auGRPC(t, "gRPC: Database Administrator creates an Organization Administrator token", err, codes.PermissionDenied)
	code, raw, _ = auREST(t, env, http.MethodPost, "/v2/clientIdSecrets", dba.GetToken(), "au-escalate-rest",
		map[string]any{"roles": []string{policy.OrganizationAdministratorID}})
	auCode(t, "Database Administrator creates an Organization Administrator token (REST)", code, raw, http.StatusForbidden)
	code, raw, _ = auREST(t, env, http.MethodGet, auDBPath+"/"+dbB, dbAToken, "au-hidden-db", nil)
	auCode(t, "database a's token gets database b", code, raw, http.StatusNotFound)
	_, err = env.Databases.TerminateDatabase(auCtx(dbAToken, "au-hidden-terminate"), &tbv1.TerminateDatabaseRequest{DatabaseId: dbB})
	auGRPC(t, "gRPC: database a's token terminates database b", err, codes.NotFound)
	_, err = env.Tokens.UpdateRole(auCtx(writer.GetToken(), "au-strip-role"), &tbv1.UpdateRoleRequest{RoleId: victim, Name: "stripped",
		Policy: &tbv1.Policy{Description: "d", Resources: []string{orgDRN(env)}, Actions: []string{"org-read"}, Effect: "allow"}})
	auGRPC(t, "gRPC: role writer strips a role of org-token-write", err, codes.PermissionDenied)
	req := env.NewRequest(t, http.MethodGet, "/v2/clientIdSecrets", rw2.GetToken(), nil)
	req.Header.Set("X-Request-Id", strings.Repeat("r", 5000))
	code, raw, _ = env.Do(t, req)
	auCode(t, "R/W User lists tokens with a 5000-character request ID", code, raw, http.StatusForbidden)

	env.FlushAudit(t)
	events, _ := auAll(t, env, 0, nil)
	if n := len(events) - len(before); n != 12 {
		var s []string
		for _, ev := range events[len(before):] {
			s = append(s, auFmt(ev))
		}
		t.Errorf("%d new events after the refusals, want 12:\n%s", n, strings.Join(s, "\n"))
	}

	org := policy.OrgDRN(env.OrgID)
	refused := func(rid, action, outcome, actorKind, actorID string, detail ...string) *tbv1.AuditEvent {
		t.Helper()
		ev := auOne(t, events, rid)
		auCheck(t, ev, auWant{rid: rid, action: action, outcome: outcome, actorKind: actorKind, actorID: actorID,
			targetKind: ev.GetTargetKind(), targetID: ev.GetTargetId(), at: at})
		if outcome == "unauthenticated" && ev.GetDetail() != "" {
			t.Logf("%s: detail %q", rid, ev.GetDetail())
		}
		for _, d := range detail {
			if !strings.Contains(ev.GetDetail(), d) {
				t.Errorf("%s: detail %q does not contain %q", rid, truncateForLog(ev.GetDetail()), d)
			}
		}
		if len(ev.GetDetail()) > 1024 || !utf8.ValidString(ev.GetDetail()) {
			t.Errorf("%s: detail of %d bytes (valid UTF-8: %v), want at most 1024 of valid UTF-8",
				rid, len(ev.GetDetail()), utf8.ValidString(ev.GetDetail()))
		}
		return ev
	}
	refused("au-rw-list", "TokenService.ListTokens", "denied", auApp, rw.GetClientId(), "org-token-read", org)
	refused("au-no-token", "TokenService.ListTokens", "unauthenticated", "", "")
	refused("au-malformed", "TokenService.ListTokens", "unauthenticated", "", "")
	refused("au-unknown", "TokenService.ListRoles", "unauthenticated", "", "")
	ev := refused("au-escalate", "TokenService.CreateToken", "denied", auApp, dba.GetClientId(), "Organization Administrator")
	if ev.GetTargetId() != "" && ev.GetTargetKind() != "token" {
		t.Errorf("escalation: target %s/%s", ev.GetTargetKind(), ev.GetTargetId())
	}
	refused("au-escalate-rest", "TokenService.CreateToken", "denied", auApp, dba.GetClientId(), "Organization Administrator")
	refused("au-hidden-db", "DatabaseService.GetDatabase", "denied", auApp, dbAClient, "org-db-view", dbB)
	refused("au-hidden-terminate", "DatabaseService.TerminateDatabase", "denied", auApp, dbAClient, "org-db-terminate", dbB)
	if ev := refused("au-strip-role", "TokenService.UpdateRole", "denied", auApp, writer.GetClientId(), "org-token-write"); ev.GetTargetId() != victim {
		t.Errorf("refused role update: target %s/%s, want role %s", ev.GetTargetKind(), ev.GetTargetId(), victim)
	}
	for _, rid := range []string{"au-long-rest", "au-long-grpc"} {
		ev := refused(rid, "PulsarTokenService.CreateTenant", "denied", auApp, rw.GetClientId(), "lacks org-stream-manage on "+policy.StreamDRN(env.OrgID, ""))
		if len(ev.GetDetail()) < 512 {
			t.Errorf("%s: detail of %d bytes: clipped too much", rid, len(ev.GetDetail()))
		}
	}
	// The 5000-character request ID: the server ignores a request ID over
	// 128 bytes and generates one; the refusal is recorded under it.
	var longRID []*tbv1.AuditEvent
	for _, ev := range events[len(before):] {
		if ev.GetActorId() == rw2.GetClientId() {
			longRID = append(longRID, ev)
		}
	}
	if len(longRID) != 1 {
		t.Errorf("%d events of the refusal with a 5000-character request ID, want 1", len(longRID))
	} else if ev := longRID[0]; ev.GetOutcome() != "denied" || ev.GetAction() != "TokenService.ListTokens" ||
		ev.GetRequestId() == "" || len(ev.GetRequestId()) > 128 {
		t.Errorf("refusal with a 5000-character request ID recorded as %s", auFmt(ev))
	}

	// Nothing was created by the refused calls.
	for _, ev := range events[len(before):] {
		if ev.GetOutcome() == "success" {
			t.Errorf("refused calls recorded a success: %s", auFmt(ev))
		}
	}
	if got := len(tokenList(t, env)); got != 7 { // bootstrap, rw, rw2, dba, writer, two database tokens
		t.Errorf("%d tokens after the refused calls, want 7", got)
	}
}

// TestAuditRefusedAfterAtMostOneSecond: without an explicit flush, the
// server's background flush records a refusal within about a second.
func TestAuditRefusedAfterAtMostOneSecond(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	code, raw, _ := auREST(t, env, http.MethodGet, "/v2/clientIdSecrets", "", "au-background", nil)
	auCode(t, "no token", code, raw, http.StatusUnauthorized)
	deadline := time.Now().Add(30 * time.Second) // a safety net against a hang, not a timing assertion
	for {
		evs, _ := auAll(t, env, 0, nil)
		if len(auByRID(evs, "au-background")) == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the refusal was not recorded by the background flush within 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestAuditRefusedSurvivesAFailedFlush: a flush whose write fails (here
// its context has ended, so the store refuses the write before queueing
// it) keeps the batch it took from the queue, and the next flush stores
// it: refused-call events are delayed by a failing store, never lost.
func TestAuditRefusedSurvivesAFailedFlush(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	var rids []string
	failed := 0
	for i := range 5 {
		rid := fmt.Sprintf("au-failed-flush-%d", i)
		rids = append(rids, rid)
		code, raw, _ := auREST(t, env, http.MethodGet, "/v2/clientIdSecrets", "", rid, nil)
		auCode(t, "no token", code, raw, http.StatusUnauthorized)
		// The server's own flush (every second) may take the event first;
		// then this flush finds nothing to write and succeeds.
		if err := env.Server.Broker().FlushAudit(ended); err != nil {
			failed++
		}
	}
	if failed == 0 {
		t.Log("every event was flushed by the server before the failing flush took it; nothing was tested")
	}
	events := auFlushAll(t, env)
	for _, rid := range rids {
		if got := len(auByRID(events, rid)); got != 1 {
			t.Errorf("request %s: %d audit events after a failed and a good flush, want 1", rid, got)
		}
	}
}

// TestAuditFailedWritesLeaveNothing: a call that fails (validation, not
// found, conflict) records nothing: there is a record exactly when the
// change exists.
func TestAuditFailedWritesLeaveNothing(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	role := createRole(t, env, "held", "org-read")
	env.CreateToken(t, env.AdminToken, role)
	code, raw, _ := env.REST(t, http.MethodPost, auTenantsPath, env.AdminToken, map[string]any{"tenantName": "exists", "clusterName": "c"})
	auCode(t, "create tenant", code, raw, http.StatusOK)
	before := auFlushAll(t, env)

	unknownID, _ := unknownToken()
	for _, c := range []struct {
		method, path string
		body         any
		want         int
	}{
		{http.MethodPost, rolesPath, map[string]any{"Name": "held", "Policy": rolePolicy([]string{orgDRN(env)}, "org-read")}, http.StatusConflict},
		{http.MethodDelete, rolesPath + "/" + role, nil, http.StatusConflict},
		{http.MethodDelete, "/v2/clientIdSecrets/QwErTyUiOpAsDfGhJkLzXcVb", nil, http.StatusNotFound},
		{http.MethodPost, "/v2/clientIdSecrets", map[string]any{"roles": []string{"not-a-role"}}, http.StatusBadRequest},
		{http.MethodPost, auTenantsPath, map[string]any{"tenantName": "exists", "clusterName": "c"}, http.StatusConflict},
		{http.MethodPost, auTenantsPath, map[string]any{"tenantName": "bad name", "clusterName": "c"}, http.StatusBadRequest},
		{http.MethodDelete, auTenantsPath + "/nosuch", nil, http.StatusNotFound},
		{http.MethodPost, auUsersPath, map[string]any{"username": "u1", "password": "short", "roles": []string{policy.RWUserID}}, http.StatusBadRequest},
		{http.MethodPost, auDBPath, map[string]any{"name": ""}, http.StatusBadRequest},
	} {
		code, raw, _ := env.REST(t, c.method, c.path, env.AdminToken, c.body)
		auCode(t, c.method+" "+c.path, code, raw, c.want)
	}
	after := auFlushAll(t, env)
	for _, ev := range after[len(before):] {
		t.Errorf("a failed call recorded %s", auFmt(ev))
	}

	// A failed login is a refusal: recorded as such, with no success event
	// and a fixed detail (the username field may hold a mistyped password).
	code, raw, _ = env.REST(t, http.MethodPost, auLoginPath, "", map[string]string{"username": unknownID, "password": "wrong"})
	auCode(t, "failed login", code, raw, http.StatusUnauthorized)
	final := auFlushAll(t, env)
	if got := final[len(after):]; len(got) != 1 || got[0].GetOutcome() != "unauthenticated" ||
		got[0].GetAction() != "AuthService.CreateAuthToken" || got[0].GetDetail() != "invalid credentials" ||
		strings.Contains(got[0].String(), unknownID) {
		t.Errorf("failed login recorded %v, want one unauthenticated CreateAuthToken event with a fixed detail", got)
	}
}

// TestAuditConcurrent: concurrent changes and refusals each get one event,
// with distinct, strictly increasing seqs.
func TestAuditConcurrent(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	rw := env.CreateToken(t, env.AdminToken, policy.RWUserID)
	before := auFlushAll(t, env)
	const n = 20
	created := make(chan string, n)
	errs := make(chan error, 2*n)
	done := make(chan struct{})
	for i := range n {
		go func() {
			defer func() { done <- struct{}{} }()
			resp, err := env.Tokens.CreateToken(auCtx(env.AdminToken, fmt.Sprintf("au-conc-create-%d", i)), &tbv1.CreateTokenRequest{Roles: []string{policy.RWSvcAcctID}})
			if err != nil {
				errs <- err
				return
			}
			created <- resp.GetClientId()
		}()
		go func() {
			defer func() { done <- struct{}{} }()
			_, err := env.Tokens.ListTokens(auCtx(rw.GetToken(), fmt.Sprintf("au-conc-refused-%d", i)), &tbv1.ListTokensRequest{})
			if status.Code(err) != codes.PermissionDenied {
				errs <- fmt.Errorf("refused ListTokens: %v", err)
			}
		}()
	}
	for range 2 * n {
		<-done
	}
	close(created)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	after := auFlushAll(t, env)
	targets := map[string]bool{}
	for id := range created {
		targets[id] = true
	}
	for i := range n {
		ev := auOne(t, after, fmt.Sprintf("au-conc-create-%d", i))
		if ev.GetOutcome() != "success" || !targets[ev.GetTargetId()] {
			t.Errorf("concurrent create %d recorded as %s", i, auFmt(ev))
		}
		delete(targets, ev.GetTargetId())
		if ev := auOne(t, after, fmt.Sprintf("au-conc-refused-%d", i)); ev.GetOutcome() != "denied" || ev.GetActorId() != rw.GetClientId() {
			t.Errorf("concurrent refusal %d recorded as %s", i, auFmt(ev))
		}
	}
	if len(after)-len(before) != 2*n {
		t.Errorf("%d new events, want %d", len(after)-len(before), 2*n)
	}
}

// ---- 4. not audited ------------------------------------------------------------------

// TestAuditNotAudited: Check (allowed, denied, invalid), health, stats
// reports and reads add no event.
func TestAuditNotAudited(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	rw := env.CreateToken(t, env.AdminToken, policy.RWUserID)
	svc := env.CreateToken(t, env.AdminToken, policy.AdminSvcAcctID)
	code, raw, _ := env.REST(t, http.MethodPost, auTenantsPath, env.AdminToken, map[string]any{"tenantName": "quiet", "clusterName": "c"})
	auCode(t, "create tenant", code, raw, http.StatusOK)
	jwt := auStr(t, "create tenant", auJSON(t, "create tenant", raw), "pulsarToken")
	before := auFlushAll(t, env)

	env.Clock.Advance(time.Minute)
	ctx := context.Background()
	// Check: allowed, denied, invalid credential; gRPC and REST.
	for _, c := range []struct{ cred, action, resource string }{
		{env.AdminToken, "org-token-read", orgDRN(env)},
		{rw.GetToken(), "org-token-read", orgDRN(env)},
		{"AstraCS:nope", "org-token-read", orgDRN(env)},
		{jwt, "", policy.StreamDRN(env.OrgID, "quiet")},
		{jwt, "", policy.StreamDRN(env.OrgID, "other")},
	} {
		if _, err := env.Auth.Check(ctx, &tbv1.CheckRequest{Credential: c.cred, Action: c.action, Resource: c.resource}); err != nil {
			t.Fatalf("Check: %v", err)
		}
		code, raw, _ := env.REST(t, http.MethodPost, "/v1/auth/check", "", map[string]string{"credential": c.cred, "action": c.action, "resource": c.resource})
		auCode(t, "REST Check", code, raw, http.StatusOK)
	}
	// Health.
	if _, err := healthpb.NewHealthClient(env.Conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("health: %v", err)
	}
	code, raw, _ = env.REST(t, http.MethodGet, "/healthz", "", nil)
	auCode(t, "healthz", code, raw, http.StatusOK)
	// A stats report (a change, but data-plane: not audited), and reads of it.
	code, raw, _ = env.REST(t, http.MethodPost, auStatsPath, svc.GetToken(),
		map[string]any{"stats": []map[string]any{{"tenant": "quiet", "namespace": "default", "messagesIn": 1}}})
	auCode(t, "stats report", code, raw, http.StatusOK)
	if _, err := env.Pulsar.ReportNamespaceStats(env.GRPCCtx(svc.GetToken()), &tbv1.ReportNamespaceStatsRequest{
		Stats: []*tbv1.NamespaceStats{{Tenant: "quiet", Namespace: "ns2", MessagesIn: 2}}}); err != nil {
		t.Fatalf("gRPC stats report: %v", err)
	}
	code, raw, _ = env.REST(t, http.MethodGet, auStatsPath+"/quiet", env.AdminToken, nil)
	auCode(t, "stats read", code, raw, http.StatusOK)
	code, raw, _ = env.REST(t, http.MethodGet, auAdminStatsPath+"/quiet", jwt, nil)
	auCode(t, "stats read with the tenant's JWT", code, raw, http.StatusOK)
	// Plain reads by authorized callers.
	for _, p := range []string{rolesPath, rolesPath + "/" + policy.RWUserID, "/v2/clientIdSecrets", "/v2/currentOrg",
		auUsersPath, auTenantsPath, auTenantsPath + "/quiet", auTenantsPath + "/quiet/tokens", auDBPath, auEventsPath} {
		code, raw, _ := env.REST(t, http.MethodGet, p, env.AdminToken, nil)
		auCode(t, "GET "+p, code, raw, http.StatusOK)
	}
	if _, err := env.Tokens.ListRoles(env.GRPCCtx(env.AdminToken), &tbv1.ListRolesRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Tokens.ListTokens(env.GRPCCtx(env.AdminToken), &tbv1.ListTokensRequest{}); err != nil {
		t.Fatal(err)
	}
	after := auFlushAll(t, env)
	if len(after) != len(before) {
		for _, ev := range after[len(before):] {
			t.Errorf("unexpected event: %s", auFmt(ev))
		}
	}
}

// ---- 5. paging and filters -------------------------------------------------------------

// TestAuditPagingAndFilters: pageSize 2 visits every event once in seq
// order; from (inclusive) and to (exclusive) select by the fake clock;
// bad parameters are 400; a caller without org-audits-read gets 403.
func TestAuditPagingAndFilters(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	var times []time.Time
	var roleIDs []string
	for i := range 5 {
		env.Clock.Advance(time.Minute)
		times = append(times, env.Clock.Now())
		roleIDs = append(roleIDs, createRole(t, env, fmt.Sprintf("paged %d", i), "org-read"))
	}
	all, _ := auAll(t, env, 1000, nil)
	if len(all) != 5 {
		t.Fatalf("%d events, want 5", len(all))
	}
	for i, ev := range all {
		if ev.GetTargetId() != roleIDs[i] {
			t.Errorf("event %d targets %s, want role %s", i, ev.GetTargetId(), roleIDs[i])
		}
		auWantTime(t, fmt.Sprintf("event %d", i), ev, times[i])
	}

	// pageSize 2: 2, 2, 1; each event once, in order; "" at the end.
	var seqs []uint64
	token, pages := "", 0
	for {
		q := url.Values{"pageSize": {"2"}}
		if token != "" {
			q.Set("pageToken", token)
		}
		code, raw, resp := auList(t, env, env.AdminToken, q)
		auCode(t, "page", code, raw, http.StatusOK)
		pages++
		for _, ev := range resp.GetEvents() {
			seqs = append(seqs, ev.GetSeq())
		}
		token = resp.GetNextPageToken()
		if token == "" || pages > 10 {
			break
		}
		if len(resp.GetEvents()) != 2 {
			t.Errorf("page %d: %d events with a next page", pages, len(resp.GetEvents()))
		}
	}
	var want []uint64
	for _, ev := range all {
		want = append(want, ev.GetSeq())
	}
	if !slices.Equal(seqs, want) {
		t.Errorf("pageSize 2 visits seqs %v, want %v", seqs, want)
	}
	if pages != 3 {
		t.Errorf("%d pages of 2 for 5 events, want 3", pages)
	}

	// from inclusive, to exclusive (times have nanoseconds).
	rfc := func(tm time.Time) string { return tm.UTC().Format(time.RFC3339Nano) }
	window := func(q url.Values) []string {
		t.Helper()
		evs, _ := auAll(t, env, 0, q)
		var ids []string
		for _, ev := range evs {
			ids = append(ids, ev.GetTargetId())
		}
		return ids
	}
	for _, c := range []struct {
		name string
		q    url.Values
		want []string
	}{
		{"from t1 to t3", url.Values{"from": {rfc(times[1])}, "to": {rfc(times[3])}}, roleIDs[1:3]},
		{"from t1+1ns", url.Values{"from": {rfc(times[1].Add(time.Nanosecond))}}, roleIDs[2:]},
		{"to t1+1ns", url.Values{"to": {rfc(times[1].Add(time.Nanosecond))}}, roleIDs[:2]},
		{"from t4", url.Values{"from": {rfc(times[4])}}, roleIDs[4:]},
		{"to t0", url.Values{"to": {rfc(times[0])}}, nil},
		{"from t0 to t4, pageSize 1", url.Values{"from": {rfc(times[0])}, "to": {rfc(times[4])}, "pageSize": {"1"}}, roleIDs[:4]},
	} {
		if got := window(c.q); !slices.Equal(got, c.want) {
			t.Errorf("%s: roles %v, want %v", c.name, got, c.want)
		}
	}
	// gRPC, with Timestamps.
	resp, err := env.Audit.ListAuditEvents(env.GRPCCtx(env.AdminToken), &tbv1.ListAuditEventsRequest{
		From: timestamppb.New(times[2]), To: timestamppb.New(times[4])})
	if err != nil {
		t.Fatalf("gRPC ListAuditEvents from/to: %v", err)
	}
	var ids []string
	for _, ev := range resp.GetEvents() {
		ids = append(ids, ev.GetTargetId())
	}
	if !slices.Equal(ids, roleIDs[2:4]) {
		t.Errorf("gRPC [t2, t4): roles %v, want %v", ids, roleIDs[2:4])
	}

	// Bad parameters.
	for _, q := range []url.Values{
		{"pageToken": {"!not a token!"}},
		{"pageToken": {"AAAA"}},            // 3 bytes, not 8
		{"pageToken": {"AAAAAAAAAAAAAAA"}}, // 11 bytes
		{"pageSize": {"5000"}},
		{"pageSize": {"1001"}},
		{"pageSize": {"-1"}},
		{"from": {rfc(times[3])}, "to": {rfc(times[1])}},
		{"from": {"yesterday"}},
	} {
		code, raw, _ := auList(t, env, env.AdminToken, q)
		auCode(t, "GET audit events ?"+q.Encode(), code, raw, http.StatusBadRequest)
	}
	code, raw, _ := auList(t, env, env.AdminToken, url.Values{"pageSize": {"1000"}})
	auCode(t, "pageSize 1000", code, raw, http.StatusOK)
	_, err = env.Audit.ListAuditEvents(env.GRPCCtx(env.AdminToken), &tbv1.ListAuditEventsRequest{PageSize: 5000})
	auGRPC(t, "gRPC pageSize 5000", err, codes.InvalidArgument)
	_, err = env.Audit.ListAuditEvents(env.GRPCCtx(env.AdminToken), &tbv1.ListAuditEventsRequest{PageToken: "%%%"})
	auGRPC(t, "gRPC bad pageToken", err, codes.InvalidArgument)

	// Without org-audits-read.
	dba := env.CreateToken(t, env.AdminToken, policy.DatabaseAdministratorID)
	code, raw, _ = auREST(t, env, http.MethodGet, auEventsPath, dba.GetToken(), "au-dba-audit", nil)
	auCode(t, "Database Administrator lists audit events", code, raw, http.StatusForbidden)
	if !bytes.Contains(raw, []byte("org-audits-read")) {
		t.Errorf("403 body %s does not name org-audits-read", raw)
	}
	_, err = env.Audit.ListAuditEvents(env.GRPCCtx(dba.GetToken()), &tbv1.ListAuditEventsRequest{})
	auGRPC(t, "gRPC: Database Administrator lists audit events", err, codes.PermissionDenied)
	code, raw, _ = env.REST(t, http.MethodGet, auEventsPath, "", nil)
	auCode(t, "no token lists audit events", code, raw, http.StatusUnauthorized)
	// The refusal itself is audited.
	ev := auOne(t, auFlushAll(t, env), "au-dba-audit")
	if ev.GetOutcome() != "denied" || ev.GetAction() != "AuditService.ListAuditEvents" || !strings.Contains(ev.GetDetail(), "org-audits-read") {
		t.Errorf("refused audit read recorded as %s", auFmt(ev))
	}
}

// ---- 6. following -----------------------------------------------------------------------

// auRecv receives one event (the stream's context bounds the wait).
func auRecv(t *testing.T, what string, s tbv1.AuditService_FollowAuditEventsClient) *tbv1.AuditEvent {
	t.Helper()
	msg, err := s.Recv()
	if err != nil {
		t.Fatalf("%s: Recv: %v", what, err)
	}
	return msg.GetEvent()
}

// TestAuditFollow: FollowAuditEvents streams new events (afterSeq 0) and,
// with afterSeq N, every event after N first.
func TestAuditFollow(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	createRole(t, env, "existing 1", "org-read")
	createRole(t, env, "existing 2", "org-read")
	existing, _ := auAll(t, env, 0, nil)

	ctx, cancel := context.WithTimeout(env.GRPCCtx(env.AdminToken), 10*time.Second)
	defer cancel()
	s, err := env.Audit.FollowAuditEvents(ctx, &tbv1.FollowAuditEventsRequest{AfterSeq: 0})
	if err != nil {
		t.Fatalf("FollowAuditEvents: %v", err)
	}
	// afterSeq 0 means "after the newest event when the server handles the
	// call"; the server says which one in the stream's header, sent before
	// any event, so changes made after it are certain to follow.
	hdr, err := s.Header()
	if err != nil {
		t.Fatalf("follow header: %v", err)
	}
	if got, want := hdr.Get(auditlog.HeaderAfterSeq), strconv.FormatUint(existing[len(existing)-1].GetSeq(), 10); len(got) != 1 || got[0] != want {
		t.Fatalf("follow header %s = %v, want [%s] (the newest existing event)", auditlog.HeaderAfterSeq, got, want)
	}
	r1 := createRole(t, env, "followed 1", "org-read")
	r2 := createRole(t, env, "followed 2", "org-read")
	for i, want := range []string{r1, r2} {
		ev := auRecv(t, "afterSeq 0", s)
		if ev.GetTargetId() != want || ev.GetAction() != "TokenService.CreateRole" {
			t.Errorf("followed event %d: %s, want the creation of role %s", i, auFmt(ev), want)
		}
		if ev.GetSeq() <= existing[len(existing)-1].GetSeq() {
			t.Errorf("followed event %d has seq %d, not after the existing events", i, ev.GetSeq())
		}
	}
	// Exactly those two: the next event is the next change.
	r3 := createRole(t, env, "followed 3", "org-read")
	if ev := auRecv(t, "afterSeq 0, third", s); ev.GetTargetId() != r3 {
		t.Errorf("third followed event %s, want the creation of role %s", auFmt(ev), r3)
	}
	// A refused call appears too, once written.
	code, raw, _ := auREST(t, env, http.MethodGet, auEventsPath, "", "au-follow-refused", nil)
	auCode(t, "no token", code, raw, http.StatusUnauthorized)
	env.FlushAudit(t)
	if ev := auRecv(t, "afterSeq 0, refused", s); ev.GetRequestId() != "au-follow-refused" || ev.GetOutcome() != "unauthenticated" {
		t.Errorf("followed refusal %s", auFmt(ev))
	}
	cancel()

	// afterSeq N: everything after N, then new events.
	all, _ := auAll(t, env, 0, nil)
	n := all[0].GetSeq()
	ctx2, cancel2 := context.WithTimeout(env.GRPCCtx(env.AdminToken), 10*time.Second)
	defer cancel2()
	s2, err := env.Audit.FollowAuditEvents(ctx2, &tbv1.FollowAuditEventsRequest{AfterSeq: n})
	if err != nil {
		t.Fatalf("FollowAuditEvents(afterSeq %d): %v", n, err)
	}
	for _, want := range all[1:] {
		if ev := auRecv(t, "afterSeq N", s2); auFmt(ev) != auFmt(want) {
			t.Errorf("afterSeq %d: got %s, want %s", n, auFmt(ev), auFmt(want))
		}
	}
	r4 := createRole(t, env, "followed 4", "org-read")
	if ev := auRecv(t, "afterSeq N, new", s2); ev.GetTargetId() != r4 {
		t.Errorf("afterSeq %d, after the backlog: %s, want the creation of role %s", n, auFmt(ev), r4)
	}

	// Following needs org-audits-read.
	dba := env.CreateToken(t, env.AdminToken, policy.DatabaseAdministratorID)
	ctx3, cancel3 := context.WithTimeout(env.GRPCCtx(dba.GetToken()), 10*time.Second)
	defer cancel3()
	s3, err := env.Audit.FollowAuditEvents(ctx3, &tbv1.FollowAuditEventsRequest{})
	if err == nil {
		_, err = s3.Recv()
	}
	auGRPC(t, "Database Administrator follows", err, codes.PermissionDenied)
}

// ---- 7. restart -------------------------------------------------------------------------

// TestAuditRestart: events survive a restart with their seqs; refused
// events queued before a graceful shutdown are written by it; seqs keep
// increasing after the restart.
func TestAuditRestart(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	rw := env.CreateToken(t, env.AdminToken, policy.RWUserID)
	createRole(t, env, "before restart", "org-read")
	env.FlushAudit(t)
	before, _ := auAll(t, env, 0, nil)

	code, raw, _ := auREST(t, env, http.MethodGet, "/v2/clientIdSecrets", rw.GetToken(), "au-queued-1", nil)
	auCode(t, "R/W User lists tokens", code, raw, http.StatusForbidden)
	code, raw, _ = auREST(t, env, http.MethodGet, "/v2/clientIdSecrets", "", "au-queued-2", nil)
	auCode(t, "no token", code, raw, http.StatusUnauthorized)
	env.Restart(t) // no explicit flush: Shutdown writes the queue

	after, _ := auAll(t, env, 0, nil)
	if len(after) < len(before) {
		t.Fatalf("%d events after restart, %d before", len(after), len(before))
	}
	for i, ev := range before {
		if auFmt(after[i]) != auFmt(ev) {
			t.Errorf("event %d after restart %s, before %s", i, auFmt(after[i]), auFmt(ev))
		}
	}
	if ev := auOne(t, after, "au-queued-1"); ev.GetOutcome() != "denied" || ev.GetActorId() != rw.GetClientId() {
		t.Errorf("queued refusal recorded as %s", auFmt(ev))
	}
	if ev := auOne(t, after, "au-queued-2"); ev.GetOutcome() != "unauthenticated" {
		t.Errorf("queued refusal recorded as %s", auFmt(ev))
	}
	if len(after) != len(before)+2 {
		t.Errorf("%d events after restart, want %d", len(after), len(before)+2)
	}
	code, raw, _ = auREST(t, env, http.MethodPost, rolesPath, env.AdminToken, "au-after-restart",
		map[string]any{"Name": "after restart", "Policy": rolePolicy([]string{orgDRN(env)}, "org-read")})
	auCode(t, "create role after restart", code, raw, http.StatusCreated)
	final, _ := auAll(t, env, 0, nil)
	if ev := auOne(t, final, "au-after-restart"); ev.GetSeq() <= after[len(after)-1].GetSeq() {
		t.Errorf("event after restart has seq %d, not after %d", ev.GetSeq(), after[len(after)-1].GetSeq())
	}
}

// ---- 8. streaming stats ----------------------------------------------------------------------

// auReport is one namespace's report in the REST body's JSON names.
func auReport(tenant, ns string, base int64) map[string]any {
	return map[string]any{
		"tenant": tenant, "namespace": ns,
		"messagesIn": base, "messagesOut": base + 1, "bytesIn": base + 2, "bytesOut": base + 3,
		"msgRateIn": 1.5, "msgRateOut": 2.25, "throughputIn": 100.5, "throughputOut": 200.75,
		"subscriptions": base + 4, "producers": base + 5, "consumers": base + 6, "subscriptionDelayed": base + 7,
		"storageSize": base + 8, "backlogBytes": base + 9, "backlogMessages": base + 10,
	}
}

// auUsage is the Usage object (reference §5.2) a report should read back as.
func auUsage(tenant, ns string, base int64, updated time.Time) map[string]string {
	n := func(v int64) string { return strconv.FormatInt(v, 10) }
	return map[string]string{
		"name":            tenant + "/" + ns,
		"totalMessagesIn": n(base), "totalMessagesOut": n(base + 1), "totalBytesIn": n(base + 2), "totalBytesOut": n(base + 3),
		"msgRateIn": "1.5", "msgRateOut": "2.25", "throughputIn": "100.5", "throughputOut": "200.75",
		"subscriptionCount": n(base + 4), "producerCount": n(base + 5), "consumerCount": n(base + 6),
		"subscriptionDelayed": n(base + 7), "storageSize": n(base + 8),
		"backlogStorageByteSize": n(base + 9), "msgBacklogNumber": n(base + 10),
		"updatedAt": updated.UTC().Format(time.RFC3339Nano),
	}
}

// auBilling does the seed's "billing report by tenant" curl: GET with
// Accept: application/json and Authorization: Bearer.
func auBilling(t *testing.T, env *servertest.Env, path, bearer string) (int, []byte) {
	t.Helper()
	req := env.NewRequest(t, http.MethodGet, path, bearer, nil)
	req.Header.Set("Accept", "application/json")
	code, raw, _ := env.Do(t, req)
	return code, raw
}

// auWantStats checks a billing report: exactly the namespaces, each with
// exactly the keys of §5.2 and the figures as JSON numbers.
func auWantStats(t *testing.T, what string, code int, raw []byte, want map[string]map[string]string) {
	t.Helper()
	auCode(t, what, code, raw, http.StatusOK)
	m := auJSON(t, what, raw)
	var names []string
	for k := range want {
		names = append(names, k)
	}
	auKeys(t, what, m, names...)
	for name, fields := range want {
		u, ok := m[name].(map[string]any)
		if !ok {
			t.Errorf("%s: %q is %#v, want an object", what, name, m[name])
			continue
		}
		var keys []string
		for k := range fields {
			keys = append(keys, k)
		}
		auKeys(t, what+" "+name, u, keys...)
		for k, v := range fields {
			switch got := u[k].(type) {
			case json.Number:
				if k == "name" || k == "updatedAt" {
					t.Errorf("%s %s: %s is the number %s, want the string %q", what, name, k, got, v)
				} else if string(got) != v {
					t.Errorf("%s %s: %s = %s, want %s", what, name, k, got, v)
				}
			case string:
				if k != "name" && k != "updatedAt" {
					t.Errorf("%s %s: %s is the string %q, want the JSON number %s", what, name, k, got, v)
				} else if got != v {
					t.Errorf("%s %s: %s = %q, want %q", what, name, k, got, v)
				}
			default:
				t.Errorf("%s %s: %s is %#v, want %s", what, name, k, u[k], v)
			}
		}
	}
}

// TestStreamingStats: reports by a data-plane token, and the billing
// report by tenant on both paths for every kind of caller.
func TestStreamingStats(t *testing.T) {
	t.Parallel()
	// A fixed issuer: the default names the HTTP port, which a restart changes.
	env := servertest.Start(t, servertest.WithConfig(func(c *server.Config) { c.IssuerURL = "https://tokens.example.internal" }))
	code, raw, _ := env.REST(t, http.MethodPost, auTenantsPath, env.AdminToken, map[string]any{"tenantName": "mytenant", "clusterName": "c"})
	auCode(t, "create mytenant", code, raw, http.StatusOK)
	myJWT := auStr(t, "create mytenant", auJSON(t, "create mytenant", raw), "pulsarToken")
	code, raw, _ = env.REST(t, http.MethodPost, auTenantsPath, env.AdminToken, map[string]any{"tenantName": "othertenant", "clusterName": "c"})
	auCode(t, "create othertenant", code, raw, http.StatusOK)
	otherJWT := auStr(t, "create othertenant", auJSON(t, "create othertenant", raw), "pulsarToken")
	svc := env.CreateToken(t, env.AdminToken, policy.AdminSvcAcctID)
	billing := env.CreateToken(t, env.AdminToken, policy.BillingAdminID)
	rw := env.CreateToken(t, env.AdminToken, policy.RWUserID)
	eventsBefore := auFlushAll(t, env)

	env.Clock.Advance(time.Hour)
	reported := env.Clock.Now()
	code, raw, _ = env.REST(t, http.MethodPost, auStatsPath, svc.GetToken(),
		map[string]any{"stats": []any{auReport("mytenant", "default", 516), auReport("mytenant", "ns2", 7000)}})
	auCode(t, "report (Admin Svc Acct)", code, raw, http.StatusOK)
	want := map[string]map[string]string{
		"mytenant/default": auUsage("mytenant", "default", 516, reported),
		"mytenant/ns2":     auUsage("mytenant", "ns2", 7000, reported),
	}
	env.Clock.Advance(time.Minute)

	for _, p := range []string{auStatsPath, auAdminStatsPath} {
		code, raw := auBilling(t, env, p+"/mytenant", env.AdminToken)
		auWantStats(t, "GET "+p+"/mytenant as the admin", code, raw, want)
		code, raw = auBilling(t, env, p+"/mytenant", myJWT)
		auWantStats(t, "GET "+p+"/mytenant with the tenant's Pulsar token", code, raw, want)
		code, raw = auBilling(t, env, p+"/mytenant", billing.GetToken())
		auWantStats(t, "GET "+p+"/mytenant as a Billing Admin", code, raw, want)
		code, raw = auBilling(t, env, p+"/mytenant", svc.GetToken())
		auWantStats(t, "GET "+p+"/mytenant as an Admin Svc Acct (org-stream-manage)", code, raw, want)
		code, raw = auBilling(t, env, p+"/othertenant", env.AdminToken)
		auWantStats(t, "GET "+p+"/othertenant (nothing reported)", code, raw, map[string]map[string]string{})

		code, raw = auBilling(t, env, p+"/mytenant", otherJWT)
		auReason(t, "GET "+p+"/mytenant with another tenant's Pulsar token", code, raw, http.StatusForbidden)
		code, raw = auBilling(t, env, p+"/mytenant", rw.GetToken())
		auReason(t, "GET "+p+"/mytenant as a R/W User", code, raw, http.StatusForbidden)
		code, raw = auBilling(t, env, p+"/mytenant", "garbage")
		auReason(t, "GET "+p+"/mytenant with garbage", code, raw, http.StatusUnauthorized)
		code, raw = auBilling(t, env, p+"/mytenant", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.c2ln")
		auReason(t, "GET "+p+"/mytenant with a forged JWT", code, raw, http.StatusUnauthorized)
		code, raw = auBilling(t, env, p+"/mytenant", "")
		auReason(t, "GET "+p+"/mytenant without a credential", code, raw, http.StatusUnauthorized)
		code, raw = auBilling(t, env, p+"/nosuchtenant", env.AdminToken)
		auReason(t, "GET "+p+"/nosuchtenant", code, raw, http.StatusNotFound)
	}

	// gRPC.
	gs, err := env.Pulsar.GetNamespaceStats(env.GRPCCtx(myJWT), &tbv1.GetNamespaceStatsRequest{Tenant: "mytenant"})
	if err != nil {
		t.Fatalf("gRPC GetNamespaceStats: %v", err)
	}
	if u := gs.GetNamespaces()["mytenant/default"]; u.GetTotalMessagesIn() != 516 || u.GetMsgBacklogNumber() != 526 || len(gs.GetNamespaces()) != 2 {
		t.Errorf("gRPC GetNamespaceStats: %v", gs)
	}
	_, err = env.Pulsar.GetNamespaceStats(env.GRPCCtx(otherJWT), &tbv1.GetNamespaceStatsRequest{Tenant: "mytenant"})
	auGRPC(t, "gRPC GetNamespaceStats with another tenant's token", err, codes.PermissionDenied)

	// A second report replaces the first, per namespace.
	env.Clock.Advance(time.Hour)
	second := env.Clock.Now()
	code, raw, _ = env.REST(t, http.MethodPost, auStatsPath, svc.GetToken(),
		map[string]any{"stats": []any{auReport("mytenant", "default", 9000)}})
	auCode(t, "second report", code, raw, http.StatusOK)
	want["mytenant/default"] = auUsage("mytenant", "default", 9000, second)
	code, raw = auBilling(t, env, auStatsPath+"/mytenant", env.AdminToken)
	auWantStats(t, "after the second report", code, raw, want)

	// Refused reports store nothing.
	for _, c := range []struct {
		name   string
		bearer string
		body   any
		want   int
	}{
		{"unknown tenant", svc.GetToken(), map[string]any{"stats": []any{auReport("mytenant", "ns3", 1), auReport("nosuchtenant", "default", 1)}}, http.StatusNotFound},
		{"negative counter", svc.GetToken(), map[string]any{"stats": []any{auReport("mytenant", "ns3", 1),
			map[string]any{"tenant": "mytenant", "namespace": "ns4", "messagesIn": -1}}}, http.StatusBadRequest},
		{"negative rate", svc.GetToken(), map[string]any{"stats": []any{map[string]any{"tenant": "mytenant", "namespace": "ns3", "msgRateIn": -0.5}}}, http.StatusBadRequest},
		{"no entries", svc.GetToken(), map[string]any{"stats": []any{}}, http.StatusBadRequest},
		{"R/W User", rw.GetToken(), map[string]any{"stats": []any{auReport("mytenant", "ns3", 1)}}, http.StatusForbidden},
		{"Billing Admin", billing.GetToken(), map[string]any{"stats": []any{auReport("mytenant", "ns3", 1)}}, http.StatusForbidden},
		{"the tenant's Pulsar token", myJWT, map[string]any{"stats": []any{auReport("mytenant", "ns3", 1)}}, http.StatusUnauthorized},
		{"garbage", "garbage", map[string]any{"stats": []any{auReport("mytenant", "ns3", 1)}}, http.StatusUnauthorized},
	} {
		env.Clock.Advance(time.Second)
		code, raw, _ := env.REST(t, http.MethodPost, auStatsPath, c.bearer, c.body)
		auAstraError(t, "report: "+c.name, code, raw, c.want)
	}
	_, err = env.Pulsar.ReportNamespaceStats(env.GRPCCtx(rw.GetToken()), &tbv1.ReportNamespaceStatsRequest{
		Stats: []*tbv1.NamespaceStats{{Tenant: "mytenant", Namespace: "ns3"}}})
	auGRPC(t, "gRPC report as a R/W User", err, codes.PermissionDenied)
	code, raw = auBilling(t, env, auStatsPath+"/mytenant", env.AdminToken)
	auWantStats(t, "after the refused reports", code, raw, want)
	code, raw = auBilling(t, env, auStatsPath+"/nosuchtenant", env.AdminToken)
	auReason(t, "unknown tenant after the refused report", code, raw, http.StatusNotFound)

	// Stats survive a restart.
	env.Restart(t)
	code, raw = auBilling(t, env, auAdminStatsPath+"/mytenant", myJWT)
	auWantStats(t, "after restart", code, raw, want)

	// Deleting the tenant deletes its stats (a new tenant of the same name
	// starts empty) but not another tenant's.
	code, raw, _ = env.REST(t, http.MethodPost, auStatsPath, svc.GetToken(),
		map[string]any{"stats": []any{auReport("othertenant", "default", 1)}})
	auCode(t, "report othertenant", code, raw, http.StatusOK)
	code, raw, _ = env.REST(t, http.MethodDelete, auTenantsPath+"/mytenant", env.AdminToken, nil)
	au2xx(t, "delete mytenant", code, raw)
	code, raw = auBilling(t, env, auStatsPath+"/mytenant", env.AdminToken)
	auReason(t, "stats of a deleted tenant", code, raw, http.StatusNotFound)
	code, raw = auBilling(t, env, auStatsPath+"/mytenant", myJWT)
	if code != http.StatusUnauthorized && code != http.StatusNotFound {
		t.Errorf("stats of a deleted tenant with its (deleted) Pulsar token: HTTP %d %s", code, raw)
	}
	code, raw, _ = env.REST(t, http.MethodPost, auTenantsPath, env.AdminToken, map[string]any{"tenantName": "mytenant", "clusterName": "c"})
	auCode(t, "recreate mytenant", code, raw, http.StatusOK)
	code, raw = auBilling(t, env, auStatsPath+"/mytenant", env.AdminToken)
	auWantStats(t, "stats of the recreated tenant", code, raw, map[string]map[string]string{})
	code, raw = auBilling(t, env, auStatsPath+"/othertenant", otherJWT)
	if code != http.StatusOK || !bytes.Contains(raw, []byte(`"othertenant/default"`)) {
		t.Errorf("othertenant's stats after deleting mytenant: HTTP %d %s", code, raw)
	}

	// Reports and successful stats reads are not audited: only the tenant
	// deletion and re-creation (tenant + its first token) were recorded,
	// besides the refused stats reads (recorded as refusals).
	after := auFlushAll(t, env)
	var actions []string
	for _, ev := range after[len(eventsBefore):] {
		if ev.GetAction() == "PulsarTokenService.GetNamespaceStats" {
			if ev.GetOutcome() == "success" {
				t.Errorf("a stats read recorded a success event: %s", auFmt(ev))
			}
			continue
		}
		actions = append(actions, ev.GetAction()+":"+ev.GetTargetKind())
	}
	if wantActions := []string{"PulsarTokenService.DeleteTenant:tenant", "PulsarTokenService.CreateTenant:tenant",
		"PulsarTokenService.CreateTenant:pulsar-token"}; !slices.Equal(actions, wantActions) {
		t.Errorf("events during the stats test %v, want %v", actions, wantActions)
	}
}
