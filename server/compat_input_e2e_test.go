package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"

	tbv1 "github.com/tokenbroker/tokenbroker/gen/tokenbroker/v1"
	"github.com/tokenbroker/tokenbroker/server/policy"
	"github.com/tokenbroker/tokenbroker/server/servertest"
)

// compatErrorFamily names the error body a path answers with (docs/api.md):
// Stargate's {"description"} on the auth API, {"reason"} on the streaming
// stats reads, Astra's {"errors":[...]} everywhere else.
func compatErrorFamily(method, path string) string {
	switch {
	case path == "/v1/auth" || strings.HasPrefix(path, "/v1/auth/") || strings.HasPrefix(path, "/api/rest/v1/auth"):
		return "description"
	case strings.HasPrefix(path, "/admin/v2/") || (method == http.MethodGet && strings.HasPrefix(path, "/v2/stats/namespaces/")):
		return "reason"
	}
	return "errors"
}

// compatWantErrorBody checks that raw is exactly the family's error body.
func compatWantErrorBody(t *testing.T, what, family string, raw []byte) {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || len(m) != 1 || m[family] == nil {
		t.Errorf("%s: body %s, want a {%q: ...} error body", what, raw, family)
		return
	}
	if family == "errors" {
		var items []struct {
			ID      *int    `json:"ID"`
			Message *string `json:"message"`
		}
		if json.Unmarshal(m["errors"], &items) != nil || len(items) != 1 || items[0].ID == nil || items[0].Message == nil || *items[0].Message == "" {
			t.Errorf("%s: body %s, want {\"errors\":[{\"ID\":…,\"message\":…}]}", what, raw)
		}
	}
}

// compatRoute is one operation of the OpenAPI document.
type compatRoute struct {
	method, path string
	pathParams   []string
	queryParams  []string
}

func compatRoutes(t *testing.T, env *servertest.Env) []compatRoute {
	t.Helper()
	code, raw, _ := env.REST(t, http.MethodGet, "/openapi.json", "", nil)
	if code != http.StatusOK {
		t.Fatalf("GET /openapi.json: HTTP %d", code)
	}
	var doc struct {
		Paths map[string]map[string]struct {
			Parameters []struct{ Name, In string } `json:"parameters"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	var out []compatRoute
	for path, ops := range doc.Paths {
		for method, op := range ops {
			r := compatRoute{method: strings.ToUpper(method), path: path}
			for _, p := range op.Parameters {
				switch p.In {
				case "path":
					r.pathParams = append(r.pathParams, p.Name)
				case "query":
					r.queryParams = append(r.queryParams, p.Name)
				}
			}
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path+out[i].method < out[j].path+out[j].method })
	return out
}

// TestRESTParameterSweep sends every route of the OpenAPI document invalid
// UTF-8, a NUL and a 5,000-character value in each of its path and query
// parameters (and an unknown query parameter), with and without a
// credential: never a 5xx; every refusal is a 400 naming the parameter, in
// the path family's error body.
func TestRESTParameterSweep(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	routes := compatRoutes(t, env)
	if len(routes) < 35 {
		t.Fatalf("only %d routes in the OpenAPI document", len(routes))
	}
	bad := map[string]string{"invalid UTF-8": "%FF", "NUL": "%00", "5000 characters": strings.Repeat("a", 5000), "C1 control": "%C2%85"}
	fill := func(r compatRoute, bad, value string) string {
		p := r.path
		for _, name := range r.pathParams {
			v := "x"
			if name == bad {
				v = value
			}
			p = strings.Replace(p, "{"+name+"}", v, 1)
		}
		return p
	}
	var sent int
	for _, r := range routes {
		var cases []struct{ param, path string }
		for _, name := range r.pathParams {
			for label, v := range bad {
				cases = append(cases, struct{ param, path string }{name + " (" + label + ")", fill(r, name, v)})
			}
		}
		for _, name := range append(slices.Clone(r.queryParams), "unknownParam") {
			for label, v := range bad {
				cases = append(cases, struct{ param, path string }{name + " (" + label + ")", fill(r, "", "") + "?" + name + "=" + v})
			}
		}
		for _, c := range cases {
			for _, bearer := range []string{env.AdminToken, ""} {
				what := fmt.Sprintf("%s %s, bad %s, credential %v", r.method, r.path, c.param, bearer != "")
				var body any
				if r.method == http.MethodPost || r.method == http.MethodPut {
					body = map[string]any{}
				}
				code, raw, _ := env.REST(t, r.method, c.path, bearer, body)
				sent++
				if code >= 500 {
					t.Errorf("%s: HTTP %d %s", what, code, raw)
					continue
				}
				if code != http.StatusBadRequest {
					t.Errorf("%s: HTTP %d, want 400; body %s", what, code, raw)
					continue
				}
				family := compatErrorFamily(r.method, r.path)
				compatWantErrorBody(t, what, family, raw)
				param, _, _ := strings.Cut(c.param, " ")
				if !strings.Contains(string(raw), param) {
					t.Errorf("%s: message %s does not name %q", what, raw, param)
				}
			}
		}
	}
	// Bodies: invalid UTF-8 and NUL inside JSON strings, on every route
	// that takes one.
	for _, r := range routes {
		if r.method != http.MethodPost && r.method != http.MethodPut {
			continue
		}
		for _, body := range []string{
			"{\"name\":\"\xff\",\"description\":\"\xff\",\"username\":\"\xff\",\"tenantName\":\"\xff\",\"roles\":[\"\xff\"]}",
			`{"name":"a\u0000b","description":"a\u0000b","username":"a\u0000b","password":"a\u0000b","tenantName":"a\u0000b","role":"a\u0000b"}`,
			`{"policy":{"resources":["\u0000"],"actions":["\u0000"]},"stats":[{"tenant":"\u0000"}]}`,
		} {
			code, raw, _ := env.REST(t, r.method, fill(r, "", ""), env.AdminToken, []byte(body))
			sent++
			if code >= 500 {
				t.Errorf("%s %s with body %q: HTTP %d %s", r.method, r.path, body, code, raw)
			}
		}
	}
	t.Logf("%d requests over %d routes", sent, len(routes))

	// The issue's own example, and headers the gateway forwards as metadata.
	code, raw, hdr := env.REST(t, http.MethodGet, "/v2/organizations/roles/%FF", "", nil)
	wantAstraError(t, "GET /v2/organizations/roles/%FF without a credential", code, raw, hdr, http.StatusBadRequest, 0, "roleId: must be valid UTF-8")
	req := env.NewRequest(t, http.MethodPost, "/v2/streaming/tenants", env.AdminToken, map[string]any{"tenantName": "t1", "clusterName": "c"})
	req.Header.Set("X-DataStax-Pulsar-Cluster", "\xff")
	code, raw, hdr = env.Do(t, req)
	wantAstraError(t, "invalid UTF-8 in X-DataStax-Pulsar-Cluster", code, raw, hdr, http.StatusBadRequest, 0, "X-Datastax-Pulsar-Cluster header")
	req = env.NewRequest(t, http.MethodGet, "/v2/currentOrg", env.AdminToken, nil)
	req.Header.Set("X-Request-Id", "id-\xff")
	code, raw, _ = env.Do(t, req)
	wantStatus(t, "invalid UTF-8 in X-Request-Id (dropped)", code, raw, http.StatusOK)
	req = env.NewRequest(t, http.MethodGet, "/v2/currentOrg", "", nil)
	req.Header.Set("Authorization", "Bearer \xff")
	code, raw, hdr = env.Do(t, req)
	wantAstraError(t, "invalid UTF-8 in Authorization", code, raw, hdr, http.StatusUnauthorized, idMissingOrMalformed, "malformed credential")
}

// TestFreeTextRefusesControlCharacters: a control character (NUL, newline,
// DEL, C1) in any free-text field is a 400 naming the field, and nothing is
// stored.
func TestFreeTextRefusesControlCharacters(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	org := policy.OrgDRN(env.OrgID)
	rolePolicy := func(desc string) map[string]any {
		return map[string]any{"description": desc, "resources": []string{org}, "actions": []string{"org-db-view"}, "effect": "allow"}
	}
	for _, bad := range []string{"a\x00b", "line\nbreak", "del\x7f", "c1\u0085"} {
		for _, c := range []struct {
			what, method, path, field string
			body                      map[string]any
		}{
			{"token description", http.MethodPost, "/v2/clientIdSecrets", "description", map[string]any{"roles": []string{policy.RWSvcAcctID}, "description": bad}},
			{"token description (/v2/tokens)", http.MethodPost, "/v2/tokens", "description", map[string]any{"roles": []string{policy.RWSvcAcctID}, "description": bad}},
			{"database name", http.MethodPost, "/v2/databases", "name", map[string]any{"name": bad, "cloudProvider": "GCP", "region": "us-east1", "tier": "serverless"}},
			{"role name", http.MethodPost, rolesPath, "name", map[string]any{"name": bad, "policy": rolePolicy("ok")}},
			{"role description", http.MethodPost, rolesPath, "policy.description", map[string]any{"name": "ok-role", "policy": rolePolicy(bad)}},
			{"tenant cluster name", http.MethodPost, "/v2/streaming/tenants", "clusterName", map[string]any{"tenantName": "t1", "clusterName": bad}},
		} {
			code, raw, hdr := env.REST(t, c.method, c.path, env.AdminToken, c.body)
			wantAstraError(t, fmt.Sprintf("%s %q", c.what, bad), code, raw, hdr, http.StatusBadRequest, 0, c.field+": must not contain control characters")
		}
	}
	// Nothing was stored.
	if resp, err := env.Tokens.ListTokens(env.GRPCCtx(env.AdminToken), &tbv1.ListTokensRequest{}); err != nil || len(resp.GetClients()) != 1 {
		t.Errorf("tokens after refused creates: %v (%v), want only the bootstrap token", resp.GetClients(), err)
	}
	if resp, err := env.Databases.ListDatabases(env.GRPCCtx(env.AdminToken), &tbv1.ListDatabasesRequest{Include: "all"}); err != nil || len(resp.GetDatabases()) != 0 {
		t.Errorf("databases after refused creates: %v (%v)", resp.GetDatabases(), err)
	}
	if resp, err := env.Tokens.ListRoles(env.GRPCCtx(env.AdminToken), &tbv1.ListRolesRequest{}); err != nil || len(resp.GetRoles()) != 16 {
		t.Errorf("roles after refused creates: %d (%v), want the 16 default roles", len(resp.GetRoles()), err)
	}
	// Printable Unicode stays accepted.
	code, raw, _ := env.REST(t, http.MethodPost, "/v2/clientIdSecrets", env.AdminToken, map[string]any{"roles": []string{policy.RWSvcAcctID}, "description": "Dienst für Zürich ✓"})
	wantStatus(t, "printable Unicode description", code, raw, http.StatusOK)
}

// TestDefaultRolesCreateDatabases: every default role holding
// org-db-create can create a database, and the database's own token reads
// it and uses its data; the token holds the database actions its creator
// holds (no db-cql for the "API" roles), per docs/roles.md.
func TestDefaultRolesCreateDatabases(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	var tried int
	for _, role := range policy.DefaultRoles(env.OrgID) {
		if !slices.Contains(role.Actions, "org-db-create") {
			continue
		}
		tried++
		creator := env.CreateToken(t, env.AdminToken, role.ID)
		code, raw, hdr := env.REST(t, http.MethodPost, "/v2/databases", creator.GetToken(),
			map[string]any{"name": "db of " + role.Name, "keyspace": "ks", "cloudProvider": "GCP", "region": "us-east1", "tier": "serverless"})
		if code != http.StatusCreated {
			t.Errorf("%s: create database: HTTP %d %s", role.Name, code, raw)
			continue
		}
		var created struct{ ID, Token string }
		if err := json.Unmarshal(raw, &created); err != nil || hdr.Get("Location") != created.ID {
			t.Fatalf("%s: create answer %s, Location %q", role.Name, raw, hdr.Get("Location"))
		}
		code, raw, _ = env.REST(t, http.MethodGet, "/v2/databases/"+created.ID, created.Token, nil)
		if code != http.StatusOK {
			t.Errorf("%s: the database's token reads it: HTTP %d %s", role.Name, code, raw)
		}
		dbDRN := policy.DatabaseDRN(env.OrgID, created.ID)
		for _, action := range []string{"db-rest", "db-table-select", "db-table-modify", "db-cql"} {
			want := slices.Contains(role.Actions, action)
			resp, err := env.Auth.Check(context.Background(), &tbv1.CheckRequest{Credential: created.Token, Action: action, Resource: dbDRN + ":keyspace:ks:table:t"})
			if err != nil {
				t.Fatalf("%s: Check %s: %v", role.Name, action, err)
			}
			if resp.GetAllowed() != want {
				t.Errorf("%s: the database token's %s on its table: allowed %v, want %v (as the creator holds it)", role.Name, action, resp.GetAllowed(), want)
			}
		}
	}
	if tried < 5 {
		t.Fatalf("only %d default roles hold org-db-create", tried)
	}
}

// TestDefaultRoleNeverChangeable: PUT on a default role is 400 whoever
// asks, whatever the policy (also one the caller could not grant), and the
// role is unchanged.
func TestDefaultRoleNeverChangeable(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	org := policy.OrgDRN(env.OrgID)
	// A role writer that holds little: it could not grant most policies.
	code, raw, _ := env.REST(t, http.MethodPost, rolesPath, env.AdminToken, map[string]any{"name": "role-writer",
		"policy": map[string]any{"description": "", "resources": []string{org, org + ":role:*"}, "actions": []string{"org-role-write", "org-role-read"}, "effect": "allow"}})
	wantStatus(t, "create role-writer", code, raw, http.StatusCreated)
	var writerRole struct{ ID string }
	_ = json.Unmarshal(raw, &writerRole)
	writer := env.CreateToken(t, env.AdminToken, writerRole.ID)
	for _, role := range policy.DefaultRoles(env.OrgID) {
		for who, bearer := range map[string]string{"Organization Administrator": env.AdminToken, "role writer": writer.GetToken()} {
			for label, pol := range map[string]map[string]any{
				"grantable":   {"description": "x", "resources": []string{org}, "actions": []string{"org-role-read"}, "effect": "allow"},
				"ungrantable": {"description": "x", "resources": []string{org + ":db:*"}, "actions": []string{"org-db-terminate"}, "effect": "allow"},
				"invalid":     {"resources": []string{"nope"}, "actions": []string{"nope"}, "effect": "deny"},
			} {
				code, raw, hdr := env.REST(t, http.MethodPut, rolesPath+"/"+role.ID, bearer, map[string]any{"name": "renamed", "policy": pol})
				wantAstraError(t, fmt.Sprintf("%s PUTs %s (%s policy)", who, role.Name, label), code, raw, hdr, http.StatusBadRequest, 0, "default role")
			}
		}
	}
	resp, err := env.Tokens.GetRole(env.GRPCCtx(env.AdminToken), &tbv1.GetRoleRequest{RoleId: policy.APIAdminUserID})
	if err != nil || resp.GetRole().GetName() != "API Admin User" {
		t.Errorf("API Admin User after the PUTs: %v (%v)", resp.GetRole(), err)
	}
}
