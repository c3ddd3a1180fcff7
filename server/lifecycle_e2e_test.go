package server_test

// End-to-end tests of the credential lifecycle beyond create and delete:
// token rotation with a grace period, the organization's lifetime policy,
// stale tokens and bulk revocation, phased signing keys and hs256 secret
// rotation. Helper names start with lc.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	gproto "google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	tbv1 "github.com/tokenbroker/tokenbroker/gen/tokenbroker/v1"
	"github.com/tokenbroker/tokenbroker/server"
	"github.com/tokenbroker/tokenbroker/server/policy"
	"github.com/tokenbroker/tokenbroker/server/servertest"
	"github.com/tokenbroker/tokenbroker/store"
)

const (
	lcPolicyPath = "/v2/organizations/token-policy"
	lcRevokePath = "/v2/clientIdSecrets/revoke"
	lcJWKSPath   = "/.well-known/jwks.json"
)

// lcDB is the database whose table lcAllowed asks about.
const lcDB = "0d9e3d39-0b8f-4b61-9a4c-0a8a4cf0f001"

func lcRotatePath(clientID string) string { return tokensPath + "/" + clientID + "/rotate" }

// lcAllowed reports whether Check (over gRPC and REST, which must agree)
// allows cred to select from a table of this organization.
func lcAllowed(t *testing.T, env *servertest.Env, what, cred string) bool {
	t.Helper()
	table := aeTableDRN(env.OrgID, lcDB)
	g, err := env.Auth.Check(context.Background(), &tbv1.CheckRequest{Credential: cred, Action: "db-table-select", Resource: table})
	if err != nil {
		t.Fatalf("%s: gRPC Check: %v", what, err)
	}
	code, raw, _ := env.REST(t, http.MethodPost, "/v1/auth/check", "", map[string]string{
		"credential": cred, "action": "db-table-select", "resource": table})
	wantStatus(t, what+": REST Check", code, raw, http.StatusOK)
	var r struct {
		Allowed bool   `json:"allowed"`
		Reason  string `json:"reason"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("%s: REST Check %s: %v", what, raw, err)
	}
	if r.Allowed != g.GetAllowed() {
		t.Fatalf("%s: gRPC Check allowed=%v, REST %v", what, g.GetAllowed(), r.Allowed)
	}
	if !g.GetAllowed() && g.GetReason() != "CREDENTIAL_INVALID" {
		t.Fatalf("%s: refused with %q, want CREDENTIAL_INVALID", what, g.GetReason())
	}
	return g.GetAllowed()
}

func lcWantAllowed(t *testing.T, env *servertest.Env, what, cred string, want bool) {
	t.Helper()
	if got := lcAllowed(t, env, what, cred); got != want {
		t.Fatalf("%s: Check allowed=%v, want %v", what, got, want)
	}
}

// lcListed returns the REST token list, by client ID, with optional query.
func lcListed(t *testing.T, env *servertest.Env, query string) map[string]map[string]json.RawMessage {
	t.Helper()
	code, raw, _ := env.REST(t, http.MethodGet, tokensPath+query, env.AdminToken, nil)
	wantStatus(t, "GET "+tokensPath+query, code, raw, http.StatusOK)
	var resp struct {
		Clients []map[string]json.RawMessage `json:"clients"`
	}
	if err := json.Unmarshal(raw, &resp); err != nil {
		t.Fatalf("list %s: %v", raw, err)
	}
	out := map[string]map[string]json.RawMessage{}
	for _, c := range resp.Clients {
		out[str(t, c["clientId"])] = c
	}
	return out
}

func lcRFC3339(t *testing.T, raw json.RawMessage) time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339Nano, str(t, raw))
	if err != nil {
		t.Fatalf("time %s: %v", raw, err)
	}
	return ts
}

// TestRotateTokenWithGrace: a rotation with a 2-minute grace leaves both
// tokens working inside the window (and auth tokens minted from the old
// one), and refuses the old one and its auth tokens from the grace end on.
func TestRotateTokenWithGrace(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	old := env.CreateToken(t, env.AdminToken, policy.RWSvcAcctID)
	oldAuth := aeLoginREST(t, env, old.ClientId, old.Secret)
	start := env.Clock.Now()

	code, raw, _ := env.REST(t, http.MethodPost, lcRotatePath(old.ClientId), env.AdminToken, map[string]any{"gracePeriod": "2m"})
	wantStatus(t, "rotate", code, raw, http.StatusOK)
	rot := object(t, raw)
	wantKeys(t, "rotate answer", rot, "token", "previousClientId", "previousExpiry")
	created := object(t, rot["token"])
	newToken, newID := str(t, created["token"]), str(t, created["clientId"])
	if !clientIDRE.MatchString(newID) || newID == old.ClientId || str(t, created["secret"]) == "" ||
		!strings.HasPrefix(newToken, "AstraCS:"+newID+":") {
		t.Fatalf("rotate answer %s: want a new client ID, secret and token", raw)
	}
	if str(t, rot["previousClientId"]) != old.ClientId || !lcRFC3339(t, rot["previousExpiry"]).Equal(start.Add(2*time.Minute)) {
		t.Fatalf("rotate answer %s: previous %s until %v", raw, old.ClientId, start.Add(2*time.Minute))
	}
	var roles []string
	if err := json.Unmarshal(created["roles"], &roles); err != nil || !slices.Equal(roles, []string{policy.RWSvcAcctID}) {
		t.Fatalf("new token roles %s, want the old token's", created["roles"])
	}
	if _, ok := created["tokenExpiry"]; ok && string(created["tokenExpiry"]) != "null" {
		t.Errorf("new token of a never-expiring one has tokenExpiry %s", created["tokenExpiry"])
	}

	// Inside the grace: both work, and so does the old one's auth token.
	for _, d := range []time.Duration{0, time.Minute, 2*time.Minute - time.Second} {
		env.Clock.Set(start.Add(d))
		lcWantAllowed(t, env, "old token inside the grace", old.Token, true)
		lcWantAllowed(t, env, "auth token of the old token inside the grace", oldAuth, true)
		lcWantAllowed(t, env, "new token", newToken, true)
	}
	list := lcListed(t, env, "")
	if o, n := list[old.ClientId], list[newID]; o == nil || n == nil {
		t.Fatalf("list lacks old or new token: %v", keys(list))
	} else {
		if str(t, o["state"]) != "rotated" || str(t, o["rotatedTo"]) != newID || !lcRFC3339(t, o["rotatedOn"]).Equal(start) ||
			!lcRFC3339(t, o["tokenExpiry"]).Equal(start.Add(2*time.Minute)) {
			t.Errorf("old token listed as %v", o)
		}
		_, hasRotatedTo := n["rotatedTo"]
		if str(t, n["state"]) != "active" || hasRotatedTo || str(t, n["description"]) != str(t, o["description"]) {
			t.Errorf("new token listed as %v", n)
		}
	}

	// From the grace end on: the old one and its auth token are refused.
	env.Clock.Set(start.Add(2 * time.Minute))
	lcWantAllowed(t, env, "old token at the grace end", old.Token, false)
	lcWantAllowed(t, env, "auth token of the old token at the grace end", oldAuth, false)
	lcWantAllowed(t, env, "new token after the grace", newToken, true)
	code, raw, hdr := env.REST(t, http.MethodGet, tokensPath, old.Token, nil)
	wantAstraError(t, "old token on the API after the grace", code, raw, hdr, http.StatusUnauthorized, idUnknownToken, old.ClientId)
	if s := str(t, lcListed(t, env, "")[old.ClientId]["state"]); s != "expired" {
		t.Errorf("old token state after the grace %q, want expired", s)
	}

	// The rotation is audited, naming the old token and its successor.
	env.FlushAudit(t)
	resp, err := env.Audit.ListAuditEvents(env.GRPCCtx(env.AdminToken), &tbv1.ListAuditEventsRequest{PageSize: 1000})
	if err != nil {
		t.Fatalf("ListAuditEvents: %v", err)
	}
	found := false
	for _, ev := range resp.GetEvents() {
		if ev.GetAction() == "TokenService.RotateToken" && ev.GetTargetId() == old.ClientId && ev.GetOutcome() == "success" {
			found = strings.Contains(ev.GetDetail(), newID)
		}
	}
	if !found {
		t.Errorf("no successful RotateToken audit event for %s naming %s", old.ClientId, newID)
	}
}

// TestRotateTokenGRPC: the default grace is 0 (the old token is refused at
// once), the lifetime carries over, and refusals are precise.
func TestRotateTokenGRPC(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	ctx := env.GRPCCtx(env.AdminToken)
	start := env.Clock.Now()
	old, err := env.Tokens.CreateToken(ctx, &tbv1.CreateTokenRequest{Roles: []string{policy.RWSvcAcctID}, Description: "svc",
		TokenExpiry: timestamppb.New(start.Add(10 * 24 * time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	env.Clock.Advance(24 * time.Hour)
	rot, err := env.Tokens.RotateToken(ctx, &tbv1.RotateTokenRequest{ClientId: old.GetClientId()})
	if err != nil {
		t.Fatalf("RotateToken: %v", err)
	}
	now := env.Clock.Now()
	if got := rot.GetToken().GetTokenExpiry().AsTime(); !got.Equal(now.Add(10 * 24 * time.Hour)) {
		t.Errorf("new token expiry %v, want the old lifetime (10d) from now %v", got, now.Add(10*24*time.Hour))
	}
	if rot.GetToken().GetDescription() != "svc" || !rot.GetPreviousExpiry().AsTime().Equal(now) {
		t.Errorf("rotate answer %v", rot)
	}
	lcWantAllowed(t, env, "old token with no grace", old.GetToken(), false)
	lcWantAllowed(t, env, "new token", rot.GetToken().GetToken(), true)

	_, err = env.Tokens.RotateToken(ctx, &tbv1.RotateTokenRequest{ClientId: old.GetClientId()})
	wantGRPC(t, "rotate a retired token", err, codes.NotFound, old.GetClientId())

	next := rot.GetToken().GetClientId()
	for _, bad := range []struct{ grace, msg string }{{"8d", "gracePeriod"}, {"169h", "gracePeriod"}, {"2 minutes", "gracePeriod"}, {"-1m", "gracePeriod"}} {
		code, raw, hdr := env.REST(t, http.MethodPost, lcRotatePath(next), env.AdminToken, map[string]any{"gracePeriod": bad.grace})
		wantAstraError(t, "grace "+bad.grace, code, raw, hdr, http.StatusBadRequest, 0, bad.msg)
	}
	code, raw, hdr := env.REST(t, http.MethodPost, lcRotatePath(next), env.AdminToken, map[string]any{"gracePeriod": "8d"})
	wantAstraError(t, "grace beyond 7d", code, raw, hdr, http.StatusBadRequest, 0, "7d")
	_, unknownID := unknownToken()
	code, raw, hdr = env.REST(t, http.MethodPost, lcRotatePath(unknownID), env.AdminToken, nil)
	wantAstraError(t, "rotate unknown", code, raw, hdr, http.StatusNotFound, 0, unknownID)

	// Rotated once: a second rotation inside the grace is refused.
	r2, err := env.Tokens.RotateToken(ctx, &tbv1.RotateTokenRequest{ClientId: next, GracePeriod: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = env.Tokens.RotateToken(ctx, &tbv1.RotateTokenRequest{ClientId: next, GracePeriod: "1h"})
	wantGRPC(t, "rotate twice", err, codes.FailedPrecondition, r2.GetToken().GetClientId())

	// Authorization: token write is needed, and the roles must be grantable.
	reader := env.CreateToken(t, env.AdminToken, createRole(t, env, "reader", "org-token-read"))
	_, err = env.Tokens.RotateToken(env.GRPCCtx(reader.Token), &tbv1.RotateTokenRequest{ClientId: r2.GetToken().GetClientId()})
	wantGRPC(t, "rotate without org-token-write", err, codes.PermissionDenied, "")
	writer := env.CreateToken(t, env.AdminToken, createRole(t, env, "writer", "org-token-write", "org-token-read"))
	_, err = env.Tokens.RotateToken(env.GRPCCtx(writer.Token), &tbv1.RotateTokenRequest{ClientId: r2.GetToken().GetClientId()})
	wantGRPC(t, "rotate a token whose roles the caller cannot grant", err, codes.PermissionDenied, "")
	lcWantAllowed(t, env, "token after refused rotations", r2.GetToken().GetToken(), true)
}

// TestTokenPolicy: with maxTokenLifetime 30d a create asking 90d is 400
// naming the limit, one without expiry gets 30d; existing tokens keep
// their expiry; Pulsar tokens follow maxPulsarTokenLifetime.
func TestTokenPolicy(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	before := env.CreateToken(t, env.AdminToken, policy.RWSvcAcctID) // never expires

	code, raw, _ := env.REST(t, http.MethodGet, lcPolicyPath, env.AdminToken, nil)
	wantStatus(t, "GET policy", code, raw, http.StatusOK)
	if p := object(t, raw); str(t, p["maxTokenLifetime"]) != "" || str(t, p["maxPulsarTokenLifetime"]) != "" {
		t.Fatalf("initial policy %s, want no limits", raw)
	}
	for _, bad := range []struct {
		body map[string]any
		msg  string
	}{
		{map[string]any{"maxTokenLifetime": "30 days"}, "maxTokenLifetime"},
		{map[string]any{"maxTokenLifetime": "30s"}, "maxTokenLifetime"},
		{map[string]any{"maxPulsarTokenLifetime": "1m"}, "maxPulsarTokenLifetime"},
		{map[string]any{"maxPulsarTokenLifetime": "200y"}, "maxPulsarTokenLifetime"},
	} {
		code, raw, hdr := env.REST(t, http.MethodPut, lcPolicyPath, env.AdminToken, bad.body)
		wantAstraError(t, "PUT policy "+bad.msg, code, raw, hdr, http.StatusBadRequest, 0, bad.msg)
	}
	reader := env.CreateToken(t, env.AdminToken, policy.RWSvcAcctID)
	code, raw, hdr := env.REST(t, http.MethodPut, lcPolicyPath, reader.Token, map[string]any{"maxTokenLifetime": "1d"})
	wantAstraError(t, "PUT policy without org-write", code, raw, hdr, http.StatusForbidden, 0, "org-write")

	code, raw, _ = env.REST(t, http.MethodPut, lcPolicyPath, env.AdminToken, map[string]any{"maxTokenLifetime": "30d", "maxPulsarTokenLifetime": "7d"})
	wantStatus(t, "PUT policy", code, raw, http.StatusOK)
	p := object(t, raw)
	if str(t, p["maxTokenLifetime"]) != "30d" || str(t, p["maxPulsarTokenLifetime"]) != "7d" || str(t, p["updatedBy"]) != env.AdminClientID {
		t.Fatalf("PUT policy answer %s", raw)
	}
	gp, err := env.Tokens.GetTokenPolicy(env.GRPCCtx(env.AdminToken), &tbv1.GetTokenPolicyRequest{})
	if err != nil || gp.GetPolicy().GetMaxTokenLifetime() != "30d" {
		t.Fatalf("gRPC GetTokenPolicy: %v %v", gp, err)
	}

	now := env.Clock.Now()
	code, raw, hdr = env.REST(t, http.MethodPost, tokensPath, env.AdminToken, map[string]any{
		"roles": []string{policy.RWSvcAcctID}, "tokenExpiry": now.Add(90 * 24 * time.Hour).Format(time.RFC3339)})
	wantAstraError(t, "create asking 90d", code, raw, hdr, http.StatusBadRequest, 0, "maxTokenLifetime of 30d")
	code, raw, _ = env.REST(t, http.MethodPost, tokensPath, env.AdminToken, map[string]any{"roles": []string{policy.RWSvcAcctID}})
	wantStatus(t, "create without expiry", code, raw, http.StatusOK)
	if got := lcRFC3339(t, object(t, raw)["tokenExpiry"]); !got.Equal(now.Add(30 * 24 * time.Hour)) {
		t.Errorf("create without expiry: tokenExpiry %v, want %v", got, now.Add(30*24*time.Hour))
	}
	code, raw, _ = env.REST(t, http.MethodPost, tokensPath, env.AdminToken, map[string]any{
		"roles": []string{policy.RWSvcAcctID}, "tokenExpiry": now.Add(24 * time.Hour).Format(time.RFC3339)})
	wantStatus(t, "create asking 1d", code, raw, http.StatusOK)
	// The token created before the policy still never expires.
	if te := tokenList(t, env)[before.ClientId].GetTokenExpiry(); te != nil {
		t.Errorf("policy changed an existing token's expiry to %v", te.AsTime())
	}
	// Rotating it gives the successor the policy's maximum.
	rot, err := env.Tokens.RotateToken(env.GRPCCtx(env.AdminToken), &tbv1.RotateTokenRequest{ClientId: before.ClientId, GracePeriod: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	if got := rot.GetToken().GetTokenExpiry().AsTime(); !got.Equal(now.Add(30 * 24 * time.Hour)) {
		t.Errorf("rotated successor expiry %v, want the policy's 30d", got)
	}

	// Pulsar tokens.
	peCreateTenant(t, env, "acme", "")
	tok := peIssue(t, env, "acme", map[string]any{"role": "app1", "type": "non-admin"})
	if exp := peInt(t, "Pulsar token", peSplit(t, tok.JWT).claims, "exp"); exp != now.Add(7*24*time.Hour).Unix() {
		t.Errorf("Pulsar token without exp: exp %v, want %d", exp, now.Add(7*24*time.Hour).Unix())
	}
	for _, exp := range []string{"30d", "never"} {
		code, raw := peREST(t, env, http.MethodPost, peV3Path("acme"), env.AdminToken, map[string]any{"exp": exp, "role": "app2", "type": "non-admin"}, "")
		peWantError(t, "Pulsar exp "+exp, code, raw, http.StatusBadRequest, "maxPulsarTokenLifetime of 7d")
	}
	peIssue(t, env, "acme", map[string]any{"exp": "7d", "role": "app3", "type": "non-admin"})

	// Clearing the policy lifts the limits.
	code, raw, _ = env.REST(t, http.MethodPut, lcPolicyPath, env.AdminToken, map[string]any{})
	wantStatus(t, "clear policy", code, raw, http.StatusOK)
	code, raw, _ = env.REST(t, http.MethodPost, tokensPath, env.AdminToken, map[string]any{"roles": []string{policy.RWSvcAcctID}})
	wantStatus(t, "create after clearing", code, raw, http.StatusOK)
	if te := object(t, raw)["tokenExpiry"]; te != nil && string(te) != "null" {
		t.Errorf("create after clearing the policy: tokenExpiry %s", te)
	}
	// The policy survives a restart.
	code, raw, _ = env.REST(t, http.MethodPut, lcPolicyPath, env.AdminToken, map[string]any{"maxTokenLifetime": "2w"})
	wantStatus(t, "PUT policy 2w", code, raw, http.StatusOK)
	env.Restart(t)
	code, raw, _ = env.REST(t, http.MethodGet, lcPolicyPath, env.AdminToken, nil)
	wantStatus(t, "GET policy after restart", code, raw, http.StatusOK)
	if got := str(t, object(t, raw)["maxTokenLifetime"]); got != "14d" {
		t.Errorf("policy after restart %s", raw)
	}
}

// TestStaleTokens: listing by idle time and role, and bulk revocation by
// role with a dry run that changes nothing.
func TestStaleTokens(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	code, raw, _ := env.REST(t, http.MethodPost, rolesPath, env.AdminToken,
		map[string]any{"Name": "batch", "Policy": rolePolicy([]string{aeTableDRN(env.OrgID, lcDB)}, "db-table-select")})
	wantStatus(t, "create role batch", code, raw, http.StatusCreated)
	role := str(t, object(t, raw)["ID"])
	idle := env.CreateToken(t, env.AdminToken, role)
	busy := env.CreateToken(t, env.AdminToken, role)
	other := env.CreateToken(t, env.AdminToken, policy.RWSvcAcctID) // idle, another role
	env.Clock.Advance(31 * 24 * time.Hour)
	lcAllowed(t, env, "use busy", busy.Token) // a Check is a use
	if err := env.Server.Broker().FlushUsage(context.Background()); err != nil {
		t.Fatal(err)
	}

	stale := lcListed(t, env, "?unusedFor=30d")
	if stale[idle.ClientId] == nil || stale[other.ClientId] == nil || stale[busy.ClientId] != nil || stale[env.AdminClientID] != nil {
		t.Errorf("unusedFor=30d lists %v; want idle and other, not busy nor the admin (used by this call)", keys(stale))
	}
	byRole := lcListed(t, env, "?role="+role)
	if len(byRole) != 2 || byRole[idle.ClientId] == nil || byRole[busy.ClientId] == nil {
		t.Errorf("role=%s lists %v", role, keys(byRole))
	}
	both := lcListed(t, env, "?"+url.Values{"unusedFor": {"30d"}, "role": {role}}.Encode())
	if len(both) != 1 || both[idle.ClientId] == nil {
		t.Errorf("unusedFor and role list %v", keys(both))
	}
	for _, q := range []string{"?unusedFor=30", "?unusedFor=month", "?role=" + uuid.NewString()} {
		code, raw, hdr := env.REST(t, http.MethodGet, tokensPath+q, env.AdminToken, nil)
		wantAstraError(t, "list "+q, code, raw, hdr, http.StatusBadRequest, 0, strings.TrimPrefix(strings.SplitN(q, "=", 2)[0], "?"))
	}

	// Dry run: lists what would go, revokes nothing.
	code, raw, _ = env.REST(t, http.MethodPost, lcRevokePath, env.AdminToken, map[string]any{"role": role, "dryRun": true})
	wantStatus(t, "dry run", code, raw, http.StatusOK)
	var dry tbv1.RevokeTokensResponse
	if err := protojson.Unmarshal(raw, &dry); err != nil {
		t.Fatalf("dry run %s: %v", raw, err)
	}
	if got := lcIDs(dry.GetClients()); !dry.GetDryRun() || !slices.Equal(got, sortedIDs(idle.ClientId, busy.ClientId)) ||
		dry.GetRevokedCount() != 2 || dry.GetClientsTruncated() {
		t.Fatalf("dry run %s", raw)
	}
	// The members Astra-style clients see: camelCase, and present also at
	// their zero value.
	if m := object(t, raw); string(m["revokedCount"]) != "2" || string(m["clientsTruncated"]) != "false" || string(m["dryRun"]) != "true" {
		t.Fatalf("dry run members %s", raw)
	}
	if l := tokenList(t, env); l[idle.ClientId] == nil || l[busy.ClientId] == nil {
		t.Fatal("a dry run revoked tokens")
	}

	code, raw, hdr := env.REST(t, http.MethodPost, lcRevokePath, env.AdminToken, map[string]any{})
	wantAstraError(t, "revoke without role", code, raw, hdr, http.StatusBadRequest, 0, "role")
	// Limited to idle ones, over gRPC: only the idle one goes.
	gr, err := env.Tokens.RevokeTokens(env.GRPCCtx(env.AdminToken), &tbv1.RevokeTokensRequest{Role: role, UnusedFor: "30d"})
	if err != nil {
		t.Fatalf("RevokeTokens: %v", err)
	}
	if got := lcIDs(gr.GetClients()); gr.GetDryRun() || !slices.Equal(got, []string{idle.ClientId}) || gr.GetRevokedCount() != 1 || gr.GetClientsTruncated() {
		t.Fatalf("RevokeTokens revoked %v (count %d, truncated %v)", got, gr.GetRevokedCount(), gr.GetClientsTruncated())
	}
	lcWantAllowed(t, env, "idle after revocation", idle.Token, false)
	lcWantAllowed(t, env, "busy after revoking the idle ones", busy.Token, true)
	// Then all of the role.
	code, raw, _ = env.REST(t, http.MethodPost, lcRevokePath, env.AdminToken, map[string]any{"role": role})
	wantStatus(t, "revoke by role", code, raw, http.StatusOK)
	lcWantAllowed(t, env, "busy after revoking its role", busy.Token, false)
	lcWantAllowed(t, env, "token of another role", other.Token, true)

	// A caller may not revoke tokens whose roles it could not grant.
	writer := env.CreateToken(t, env.AdminToken, createRole(t, env, "tw", "org-token-write", "org-token-read"))
	_, err = env.Tokens.RevokeTokens(env.GRPCCtx(writer.Token), &tbv1.RevokeTokensRequest{Role: policy.RWSvcAcctID, DryRun: true})
	wantGRPC(t, "revoke ungrantable role", err, codes.PermissionDenied, "")
}

func lcIDs(infos []*tbv1.TokenInfo) []string {
	var ids []string
	for _, c := range infos {
		ids = append(ids, c.GetClientId())
	}
	slices.Sort(ids)
	return ids
}

func sortedIDs(ids ...string) []string {
	slices.Sort(ids)
	return ids
}

// lcJWKS fetches the JWKS as an independent verifier would: go-jose's key set.
func lcJWKS(t *testing.T, env *servertest.Env) *jose.JSONWebKeySet {
	t.Helper()
	code, raw, _ := env.REST(t, http.MethodGet, lcJWKSPath, "", nil)
	wantStatus(t, "JWKS", code, raw, http.StatusOK)
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil {
		t.Fatalf("JWKS %s: %v", raw, err)
	}
	return &set
}

// lcVerify verifies an RS256 Pulsar token with a key set the way an
// independent verifier does: go-jose's JWT parser, RS256 only, key by kid.
func lcVerify(set *jose.JSONWebKeySet, tok, issuer string, now time.Time) error {
	parsed, err := josejwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return err
	}
	if len(parsed.Headers) != 1 {
		return jose.ErrCryptoFailure
	}
	keys := set.Key(parsed.Headers[0].KeyID)
	if len(keys) != 1 {
		return jose.ErrCryptoFailure
	}
	var c josejwt.Claims
	if err := parsed.Claims(keys[0].Key, &c); err != nil {
		return err
	}
	return c.ValidateWithLeeway(josejwt.Expected{Issuer: issuer, AnyAudience: josejwt.Audience{"pulsar"}, Time: now}, 0)
}

// TestSigningKeyPhases: a prepared key is published (JWKS and token-keys)
// before any token is signed with it; after activation new tokens carry its
// kid and verify through a JWKS cached before the activation; the old key
// stays published while its tokens live.
func TestSigningKeyPhases(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	// Under a lifetime policy even the tenant's first token expires, so the
	// retired key can leave the JWKS at the end.
	code, raw, _ := env.REST(t, http.MethodPut, lcPolicyPath, env.AdminToken, map[string]any{"maxPulsarTokenLifetime": "1h"})
	wantStatus(t, "PUT policy", code, raw, http.StatusOK)
	peCreateTenant(t, env, "acme", "")
	issuer := env.Server.Broker().Issuer()
	t1 := peIssue(t, env, "acme", map[string]any{"exp": "1h", "role": "app1", "type": "non-admin"})
	k1 := peSplit(t, t1.JWT).hdr["kid"].(string)

	code, raw, hdr := env.REST(t, http.MethodPost, peRotatePath, env.AdminToken, map[string]any{"phase": "activate"})
	wantAstraError(t, "activate with nothing prepared", code, raw, hdr, http.StatusConflict, 0, "prepare")
	code, raw, hdr = env.REST(t, http.MethodPost, peRotatePath, env.AdminToken, map[string]any{"phase": "later"})
	wantAstraError(t, "unknown phase", code, raw, hdr, http.StatusBadRequest, 0, "phase")

	code, raw, _ = env.REST(t, http.MethodPost, peRotatePath, env.AdminToken, map[string]any{"phase": "prepare"})
	wantStatus(t, "prepare", code, raw, http.StatusOK)
	prep := peObject(t, "prepare", raw)
	k2 := peString(t, "prepare", prep, "kid")
	if prep["state"] != "pending" || prep["previousKid"] != "" || k2 == k1 {
		t.Fatalf("prepare answer %s", raw)
	}
	// Published before it signs anything.
	cached := lcJWKS(t, env)
	if len(cached.Key(k2)) != 1 || len(cached.Key(k1)) != 1 {
		t.Fatalf("JWKS after prepare lacks %s or %s", k2, k1)
	}
	keysAnswer := peFetchKeys(t, env, "acme").m
	if keysAnswer["kid"] != k1 || keysAnswer["nextKid"] != k2 || !strings.HasPrefix(keysAnswer["nextTokenPublicKey"].(string), "data:;base64,") ||
		!strings.Contains(keysAnswer["nextPublicKeyPem"].(string), "BEGIN PUBLIC KEY") {
		t.Fatalf("token-keys after prepare: %v", keysAnswer)
	}
	t2 := peIssue(t, env, "acme", map[string]any{"exp": "1h", "role": "app2", "type": "non-admin"})
	if kid := peSplit(t, t2.JWT).hdr["kid"]; kid != k1 {
		t.Fatalf("token issued while %s is prepared carries kid %v, want the active %s", k2, kid, k1)
	}
	code, raw, hdr = env.REST(t, http.MethodPost, peRotatePath, env.AdminToken, map[string]any{"phase": "prepare"})
	wantAstraError(t, "prepare twice", code, raw, hdr, http.StatusConflict, 0, k2)
	code, raw, hdr = env.REST(t, http.MethodPost, peRotatePath, env.AdminToken, nil)
	wantAstraError(t, "immediate rotation while a key is prepared", code, raw, hdr, http.StatusConflict, 0, k2)

	// Activate over gRPC.
	act, err := env.Pulsar.RotateSigningKey(env.GRPCCtx(env.AdminToken), &tbv1.RotateSigningKeyRequest{Phase: "activate"})
	if err != nil {
		t.Fatalf("activate: %v", err)
	}
	if act.GetKid() != k2 || act.GetPreviousKid() != k1 || act.GetState() != "active" {
		t.Fatalf("activate answer %v", act)
	}
	t3 := peIssue(t, env, "acme", map[string]any{"exp": "1h", "role": "app3", "type": "non-admin"})
	if kid := peSplit(t, t3.JWT).hdr["kid"]; kid != k2 {
		t.Fatalf("token after activation carries kid %v, want %s", kid, k2)
	}
	now := env.Clock.Now()
	for _, tk := range []peIssued{t1, t2, t3} {
		if err := lcVerify(cached, tk.JWT, issuer, now); err != nil {
			t.Errorf("token %s does not verify through the JWKS cached before activation: %v", tk.Role, err)
		}
		peWantAllowed(t, env, "Check "+tk.Role, tk.JWT, tk.ID, peStream(env, "acme"))
	}
	if k := peFetchKeys(t, env, "acme").m; k["kid"] != k2 || k["nextKid"] != "" {
		t.Errorf("token-keys after activation: %v", k)
	}

	// The retired key stays published while its tokens live, then goes.
	if _, err := env.Server.Broker().CollectGarbage(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	if len(lcJWKS(t, env).Key(k1)) != 1 {
		t.Fatal("retired key unpublished while its tokens live")
	}
	env.Clock.Advance(time.Hour)
	if _, err := env.Server.Broker().CollectGarbage(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	if set := lcJWKS(t, env); len(set.Key(k1)) != 0 || len(set.Key(k2)) != 1 {
		t.Errorf("after its last token expired, JWKS still has %s (or lost %s)", k1, k2)
	}
}

// TestSigningKeyRotationSchedule: with a 90d schedule the next key is
// prepared (published) at 45 days and activated at 90.
func TestSigningKeyRotationSchedule(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t, servertest.WithConfig(func(c *server.Config) { c.SigningKeyRotation = 90 * 24 * time.Hour }))
	gc := func() {
		t.Helper()
		if _, err := env.Server.Broker().CollectGarbage(context.Background(), 0); err != nil {
			t.Fatal(err)
		}
	}
	peCreateTenant(t, env, "acme", "")
	k1 := peFetchKeys(t, env, "acme").m["kid"]
	env.Clock.Advance(45*24*time.Hour - time.Minute)
	gc()
	if k := peFetchKeys(t, env, "acme").m; k["nextKid"] != "" || len(lcJWKS(t, env).Keys) != 1 {
		t.Fatalf("a key was prepared before half of the schedule: %v", k)
	}
	env.Clock.Advance(time.Minute)
	gc()
	k := peFetchKeys(t, env, "acme").m
	k2, _ := k["nextKid"].(string)
	if k["kid"] != k1 || k2 == "" || len(lcJWKS(t, env).Key(k2)) != 1 {
		t.Fatalf("at half of the schedule: token-keys %v", k)
	}
	env.Clock.Advance(45 * 24 * time.Hour)
	gc()
	if k := peFetchKeys(t, env, "acme").m; k["kid"] != k2 || k["nextKid"] != "" {
		t.Fatalf("at the full schedule: token-keys %v, want %s active", k, k2)
	}
	tok := peIssue(t, env, "acme", map[string]any{"exp": "1h", "role": "app", "type": "non-admin"})
	if kid := peSplit(t, tok.JWT).hdr["kid"]; kid != k2 {
		t.Errorf("token after scheduled activation has kid %v, want %s", kid, k2)
	}
}

// TestTenantSecretRotation: an hs256 tenant's secret rotated with a 1h
// overlap: tokens of both secrets verify in Check inside it, the old ones
// are refused after it.
func TestTenantSecretRotation(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	peCreateTenant(t, env, "plain", "hs256")
	peCreateTenant(t, env, "acme", "")
	stream := peStream(env, "plain")
	oldTok := peIssue(t, env, "plain", map[string]any{"exp": "1d", "role": "app1", "type": "non-admin"})
	oldSecret := peFetchKeys(t, env, "plain").m["tokenSecretKey"]
	path := peTenantsPath + "/plain/secret/rotate"

	for _, bad := range []string{"31d", "1 hour"} {
		code, raw, hdr := env.REST(t, http.MethodPost, path, env.AdminToken, map[string]any{"overlap": bad})
		wantAstraError(t, "overlap "+bad, code, raw, hdr, http.StatusBadRequest, 0, "overlap")
	}
	code, raw, hdr := env.REST(t, http.MethodPost, peTenantsPath+"/acme/secret/rotate", env.AdminToken, map[string]any{"overlap": "1h"})
	wantAstraError(t, "rotate an rs256 tenant's secret", code, raw, hdr, http.StatusConflict, 0, "rs256")

	code, raw, _ = env.REST(t, http.MethodPost, path, env.AdminToken, map[string]any{"overlap": "1h"})
	wantStatus(t, "rotate secret", code, raw, http.StatusOK)
	rot := peObject(t, "rotate secret", raw)
	newSecret := peString(t, "rotate secret", rot, "tokenSecretKey")
	if newSecret == oldSecret || !strings.HasPrefix(newSecret, "data:;base64,") {
		t.Fatalf("rotate secret answer %s", raw)
	}
	k := peFetchKeys(t, env, "plain").m
	if k["tokenSecretKey"] != newSecret || k["previousTokenSecretKey"] != oldSecret {
		t.Fatalf("token-keys during the overlap: %v", k)
	}
	newTok := peIssue(t, env, "plain", map[string]any{"exp": "1d", "role": "app1", "type": "non-admin"})
	if newTok.JWT == oldTok.JWT {
		t.Fatal("same role and expiry signed the same JWT after a secret rotation")
	}
	peWantAllowed(t, env, "old-secret token inside the overlap", oldTok.JWT, oldTok.ID, stream)
	peWantAllowed(t, env, "new-secret token", newTok.JWT, newTok.ID, stream)
	code, raw, hdr = env.REST(t, http.MethodPost, path, env.AdminToken, map[string]any{"overlap": "1h"})
	wantAstraError(t, "rotate again inside the overlap", code, raw, hdr, http.StatusConflict, 0, "still verifies")

	env.Clock.Advance(time.Hour)
	peWantRefused(t, env, "old-secret token after the overlap", oldTok.JWT, stream, "CREDENTIAL_INVALID")
	peWantAllowed(t, env, "new-secret token after the overlap", newTok.JWT, newTok.ID, stream)
	if k := peFetchKeys(t, env, "plain").m; k["previousTokenSecretKey"] != "" {
		t.Errorf("token-keys after the overlap still shows the previous secret")
	}
	// Over gRPC, without overlap: the previous secret stops at once.
	gr, err := env.Pulsar.RotateTenantSecret(env.GRPCCtx(env.AdminToken), &tbv1.RotateTenantSecretRequest{Tenant: "plain"})
	if err != nil {
		t.Fatalf("gRPC RotateTenantSecret: %v", err)
	}
	if gr.GetTokenSecretKey() == newSecret || gr.GetPreviousSecretRetiresOn() != nil {
		t.Errorf("gRPC rotate answer %v", gr)
	}
	peWantRefused(t, env, "token of the replaced secret", newTok.JWT, stream, "CREDENTIAL_INVALID")
}

// TestRevokeTokensAnswerIsBounded: revoking more tokens than one answer
// lists revokes every one and answers their count, the first of them in
// client-ID order and clientsTruncated; a dry run answers the same. The
// first revocation (1,150 tokens of one role) is cut at 1,000 tokens, the
// second (1,100 tokens of 50 roles each, about 2 KB apiece, whose full
// list would be over 2 MB) at 1 MiB, far below a gRPC client's 4 MiB
// receive limit. Every revoked token has its audit event, the complete
// record the answer points to. (The tokens are seeded into the store:
// 2,250 creates through the API would only be slower.)
func TestRevokeTokensAnswerIsBounded(t *testing.T) {
	env := servertest.Start(t)
	org := "drn:astra:org:" + env.OrgID
	newRole := func(name string) string {
		r, err := env.Tokens.CreateRole(env.GRPCCtx(env.AdminToken), &tbv1.CreateRoleRequest{Name: name,
			Policy: &tbv1.Policy{Resources: []string{org}, Actions: []string{"org-read"}, Effect: "allow"}})
		if err != nil {
			t.Fatal(err)
		}
		return r.GetRole().GetId()
	}
	single := newRole("bulk")
	var wide []string
	for i := range 50 {
		wide = append(wide, newRole(fmt.Sprintf("wide-%02d", i)))
	}
	const nSingle, nWide = 1150, 1100
	singleIDs := seededIDs("Bulk"+strings.Repeat("a", 14), nSingle)
	wideIDs := seededIDs("Wide"+strings.Repeat("a", 14), nWide)
	seedStore(t, env, func(ctx context.Context, s store.Store) {
		seedTokens(t, env, ctx, s, singleIDs, []string{single})
		seedTokens(t, env, ctx, s, wideIDs, wide)
	})
	roleTokens := func(role string) []string {
		return getUnpaged(t, env, restList{path: "/v2/clientIdSecrets", field: "clients", key: "clientId", members: []string{"clients"}}, "role="+role)
	}
	wantAnswer := func(what string, resp *tbv1.RevokeTokensResponse, all []string, maxListed int) {
		t.Helper()
		got := make([]string, 0, len(resp.GetClients()))
		for _, c := range resp.GetClients() {
			got = append(got, c.GetClientId())
		}
		if int(resp.GetRevokedCount()) != len(all) || !resp.GetClientsTruncated() || len(got) == 0 || len(got) > maxListed ||
			!slices.Equal(got, all[:len(got)]) {
			t.Fatalf("%s: revokedCount %d, clientsTruncated %v, %d clients (the first %v); want %d, true, and the first (at most %d) of them in client-ID order",
				what, resp.GetRevokedCount(), resp.GetClientsTruncated(), len(got), got[:min(len(got), 2)], len(all), maxListed)
		}
		if size := gproto.Size(resp); size > 1<<20+4096 {
			t.Fatalf("%s: the answer encodes to %d bytes, want at most about 1 MiB", what, size)
		}
	}

	// One role: cut at 1,000 tokens; the dry run revokes nothing.
	dry, err := env.Tokens.RevokeTokens(env.GRPCCtx(env.AdminToken), &tbv1.RevokeTokensRequest{Role: single, DryRun: true})
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	wantAnswer("dry run", dry, singleIDs, 1000)
	if len(dry.GetClients()) != 1000 || !dry.GetDryRun() {
		t.Fatalf("dry run listed %d tokens (dryRun %v), want 1,000", len(dry.GetClients()), dry.GetDryRun())
	}
	if got := roleTokens(single); !slices.Equal(got, singleIDs) {
		t.Fatalf("after the dry run the role lists %d tokens, want all %d", len(got), nSingle)
	}
	code, raw, _ := env.REST(t, http.MethodPost, lcRevokePath, env.AdminToken, map[string]any{"role": single})
	wantStatus(t, "revoke 1,150 tokens", code, raw, http.StatusOK)
	var rest tbv1.RevokeTokensResponse
	if err := protojson.Unmarshal(raw, &rest); err != nil {
		t.Fatalf("revoke answer: %v", err)
	}
	wantAnswer("REST revocation", &rest, singleIDs, 1000)
	if m := object(t, raw); string(m["revokedCount"]) != "1150" || string(m["clientsTruncated"]) != "true" {
		t.Fatalf("REST members: revokedCount %s, clientsTruncated %s", m["revokedCount"], m["clientsTruncated"])
	}
	if got := roleTokens(single); len(got) != 0 {
		t.Fatalf("%d tokens of the role left after the revocation", len(got))
	}

	// Fifty roles each: cut by size, long before 1,000.
	gr, err := env.Tokens.RevokeTokens(env.GRPCCtx(env.AdminToken), &tbv1.RevokeTokensRequest{Role: wide[0]})
	if err != nil {
		t.Fatalf("revoke 1,100 tokens of 50 roles: %v", err)
	}
	wantAnswer("gRPC revocation of wide tokens", gr, wideIDs, 999)
	if got := roleTokens(wide[0]); len(got) != 0 {
		t.Fatalf("%d tokens of the role left after the revocation", len(got))
	}

	// The audit log: an event per revoked token.
	audited := map[string]bool{}
	for token := ""; ; {
		page, err := env.Audit.ListAuditEvents(env.GRPCCtx(env.AdminToken), &tbv1.ListAuditEventsRequest{PageSize: 1000, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page.GetEvents() {
			if e.GetAction() == "TokenService.RevokeTokens" && e.GetOutcome() == "success" {
				audited[e.GetTargetId()] = true
			}
		}
		if token = page.GetNextPageToken(); token == "" {
			break
		}
	}
	for _, id := range append(slices.Clone(singleIDs), wideIDs...) {
		if !audited[id] {
			t.Fatalf("revoked token %s has no audit event (%d audited)", id, len(audited))
		}
	}
}

// TestRevokeTokensAnswerOutlastsWriteTimeout: a REST revocation that runs
// longer than the listener's write timeout (shortened here to 1 ms; 200
// deletes, each its own committed store write, take far longer) still
// delivers its answer: the deadline is set when the answer is written, not
// when the request arrived. (With the default 30 s, about 30,000 tokens
// revoked on this machine's disk lost their answer so, after the store had
// deleted them all.)
func TestRevokeTokensAnswerOutlastsWriteTimeout(t *testing.T) {
	env := servertest.Start(t, servertest.WithConfig(func(c *server.Config) { c.HTTPWriteTimeout = time.Millisecond }))
	r, err := env.Tokens.CreateRole(env.GRPCCtx(env.AdminToken), &tbv1.CreateRoleRequest{Name: "bulk",
		Policy: &tbv1.Policy{Resources: []string{"drn:astra:org:" + env.OrgID}, Actions: []string{"org-read"}, Effect: "allow"}})
	if err != nil {
		t.Fatal(err)
	}
	role := r.GetRole().GetId()
	const n = 200
	seedStore(t, env, func(ctx context.Context, s store.Store) {
		seedTokens(t, env, ctx, s, seededIDs("Slow"+strings.Repeat("a", 14), n), []string{role})
	})
	code, raw, _ := env.REST(t, http.MethodPost, lcRevokePath, env.AdminToken, map[string]any{"role": role})
	wantStatus(t, "revoke 200 tokens", code, raw, http.StatusOK)
	if m := object(t, raw); string(m["revokedCount"]) != "200" {
		t.Fatalf("revokedCount %s, want 200", m["revokedCount"])
	}
}
