package policy

import (
	"crypto/sha1"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/tokenbroker/tokenbroker/store"
)

const testOrg = "dccb8c32-1b1a-4c5e-9d3a-0a1b2c3d4e5f"

func TestValidateResource(t *testing.T) {
	long := strings.Repeat("k", 129)
	tests := []struct {
		in   string
		want string // "" for valid; else the exact message
	}{
		// Accepted.
		{"drn:astra:org:" + testOrg, ""},
		{"drn:astra:org:*", ""},
		{"drn:astra:org:__ORG_ID__", ""},
		{"drn:astra:org:__ORG_ID__:db:*", ""},
		{"drn:astra:org:__ORG_ID__:db:*:keyspace:*", ""},
		{"drn:astra:org:__ORG_ID__:db:*:keyspace:*:table:*", ""},
		{"drn:astra:org:" + testOrg + ":db:b5285f63-8da5-4c6e-afd8-ade371a48795:keyspace:system_schema:table:peers_v2", ""},
		{"drn:astra:org:" + testOrg + ":db:my.db-1:keyspace:*", ""},
		{"drn:astra:org:__ORG_ID__:stream:*", ""},
		{"drn:astra:org:__ORG_ID__:stream:my-tenant", ""},
		{"drn:astra:org:__ORG_ID__:role:*", ""},
		{"drn:astra:org:__ORG_ID__:role:" + AdminUserID, ""},
		{"drn:astra:org:*:db:__ORG_ID__", ""},                  // a plain identifier outside the org position
		{"drn:astra:org:*:db:" + strings.Repeat("k", 128), ""}, // longest value

		// Rejected.
		{"", `resource "": must start with "drn:astra:org:"`},
		{"drn:astra", `resource "drn:astra": must start with "drn:astra:org:"`},
		{"DRN:astra:org:*", `resource "DRN:astra:org:*": must start with "drn:astra:org:"`},
		{"drn:astra:organization:*", `resource "drn:astra:organization:*": must start with "drn:astra:org:"`},
		{" drn:astra:org:*", `resource " drn:astra:org:*": must start with "drn:astra:org:"`},
		{"drn:astra:org", `resource "drn:astra:org": missing organization id after "org"`},
		{"drn:astra:org:", `resource "drn:astra:org:": trailing colon`},
		{"drn:astra:org:*:db:", `resource "drn:astra:org:*:db:": trailing colon`},
		{"drn:astra:org:x:db", `resource "drn:astra:org:x:db": invalid organization id "x": want a UUID, "*" or "__ORG_ID__"`},
		{"drn:astra:org:*:db", `resource "drn:astra:org:*:db": missing database id after "db"`},
		{"drn:astra:org::db:*", `resource "drn:astra:org::db:*": empty organization id`},
		{"drn:astra:org:__org_id__", `resource "drn:astra:org:__org_id__": invalid organization id "__org_id__": want a UUID, "*" or "__ORG_ID__"`},
		{"drn:astra:org:" + strings.ToUpper(testOrg), `resource "drn:astra:org:` + strings.ToUpper(testOrg) + `": organization id "` + strings.ToUpper(testOrg) + `": UUID must be lowercase`},
		{"drn:astra:org:dccb*", `resource "drn:astra:org:dccb*": organization id "dccb*": a wildcard must be the whole segment "*"`},
		{"drn:astra:org:*:db:ab*", `resource "drn:astra:org:*:db:ab*": database id "ab*": a wildcard must be the whole segment "*"`},
		{"drn:astra:org:*:db:**", `resource "drn:astra:org:*:db:**": database id "**": a wildcard must be the whole segment "*"`},
		{"drn:astra:org:*:db::keyspace:k", `resource "drn:astra:org:*:db::keyspace:k": empty database id`},
		{"drn:astra:org:*::db:x", `resource "drn:astra:org:*::db:x": empty segment after organization id`},
		{"drn:astra:org:*:DB:x", `resource "drn:astra:org:*:DB:x": unknown resource type "DB" after organization id: keywords are lowercase`},
		{"drn:astra:org:*:database:x", `resource "drn:astra:org:*:database:x": unknown resource type "database" after organization id: want "db", "stream" or "role"`},
		{"drn:astra:org:*:keyspace:x", `resource "drn:astra:org:*:keyspace:x": unknown resource type "keyspace" after organization id: want "db", "stream" or "role"`},
		{"drn:astra:org:*:db:x:keyspace", `resource "drn:astra:org:*:db:x:keyspace": missing keyspace name after "keyspace"`},
		{"drn:astra:org:*:db:x:table:t", `resource "drn:astra:org:*:db:x:table:t": unexpected "table" after database id: want "keyspace"`},
		{"drn:astra:org:*:db:x:keyspace:k:table", `resource "drn:astra:org:*:db:x:keyspace:k:table": missing table name after "table"`},
		{"drn:astra:org:*:db:x:keyspace:k:view:v", `resource "drn:astra:org:*:db:x:keyspace:k:view:v": unexpected "view" after keyspace name: want "table"`},
		{"drn:astra:org:*:db:x:keyspace:k:table:t:col", `resource "drn:astra:org:*:db:x:keyspace:k:table:t:col": unexpected "col" after table name: a table is the deepest level`},
		{"drn:astra:org:*:db:x:keyspace:my ks", `resource "drn:astra:org:*:db:x:keyspace:my ks": keyspace name "my ks": invalid character ' ' (allowed: letters, digits, "_", "." and "-")`},
		{"drn:astra:org:*:db:x:keyspace:" + long, `resource "drn:astra:org:*:db:x:keyspace:` + long + `": keyspace name is longer than 128 characters`},
		{"drn:astra:org:*:db:é", `resource "drn:astra:org:*:db:é": database id "é": invalid character 'é' (allowed: letters, digits, "_", "." and "-")`},
		{"drn:astra:org:*:stream", `resource "drn:astra:org:*:stream": missing tenant name after "stream"`},
		{"drn:astra:org:*:stream:t:db:x", `resource "drn:astra:org:*:stream:t:db:x": unexpected "db" after tenant name`},
		{"drn:astra:org:*:role", `resource "drn:astra:org:*:role": missing role id after "role"`},
		{"drn:astra:org:*:role:r/1", `resource "drn:astra:org:*:role:r/1": role id "r/1": invalid character '/' (allowed: letters, digits, "_", "." and "-")`},
	}
	for _, tt := range tests {
		err := ValidateResource(tt.in)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("ValidateResource(%q)\n got: %s\nwant: %s", tt.in, got, tt.want)
		}
	}
}

func TestDRNHelpers(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{OrgDRN(testOrg), "drn:astra:org:" + testOrg},
		{DatabaseDRN(testOrg, "db1"), "drn:astra:org:" + testOrg + ":db:db1"},
		{StreamDRN(testOrg, "t1"), "drn:astra:org:" + testOrg + ":stream:t1"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
		if err := ValidateResource(tt.got); err != nil {
			t.Errorf("helper output invalid: %v", err)
		}
	}
}

func TestMatch(t *testing.T) {
	org := "drn:astra:org:" + testOrg
	tests := []struct {
		pattern, resource string
		want              bool
	}{
		{org, org, true},
		{"drn:astra:org:*", org, true},
		{org, "drn:astra:org:other", false},
		// Exact depth: a parent does not imply its children, nor the reverse.
		{org, org + ":db:1", false},
		{org + ":db:*", org, false},
		{org + ":db:*", org + ":db:1", true},
		{org + ":db:*", org + ":db:1:keyspace:k", false},
		{org + ":db:*:keyspace:*", org + ":db:1:keyspace:k", true},
		{org + ":db:1:keyspace:*", org + ":db:2:keyspace:k", false},
		{org + ":db:*:keyspace:k", org + ":db:2:keyspace:k", true},
		{org + ":db:*:keyspace:k", org + ":db:2:keyspace:kk", false},
		{org + ":db:*:keyspace:*:table:*", org + ":db:1:keyspace:k:table:t", true},
		{"drn:astra:org:*:db:*", org + ":db:1", true},
		// Keyword segments are compared too.
		{org + ":db:*", org + ":stream:1", false},
		{org + ":stream:*", org + ":stream:t", true},
		{org + ":role:*", org + ":role:" + AdminUserID, true},
		// Whole-segment wildcard only; no prefix matching.
		{org + ":db:ab*", org + ":db:abc", false},
		{org + ":db:ab*", org + ":db:ab*", true}, // literal comparison
		// Placeholder is literal in Match; Compile substitutes it.
		{"drn:astra:org:__ORG_ID__", org, false},
		{"drn:astra:org:__ORG_ID__:db:*", org + ":db:1", false},
		{"drn:astra:org:__ORG_ID__", "drn:astra:org:__ORG_ID__", true},
		// A "*" in the resource is covered only by "*".
		{org + ":db:*", org + ":db:*", true},
		{org + ":db:1", org + ":db:*", false},
		// Empty segments never match.
		{org + ":db:*", org + ":db:", false},
		{org + ":db:", org + ":db:", false},
		{"", "", false},
		{"*", "", false},
		{org, org + ":", false},
	}
	for _, tt := range tests {
		if got := Match(tt.pattern, tt.resource); got != tt.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tt.pattern, tt.resource, got, tt.want)
		}
		// Compiled patterns must agree with Match wherever the pattern is
		// valid (and has no placeholder, which only Compile substitutes).
		if c, ok := compilePattern(testOrg, tt.pattern); ok && !strings.Contains(tt.pattern, OrgPlaceholder) {
			s := &Set{orgID: testOrg, byAction: map[string][]compiled{"a": {c}}}
			if got := s.Allows("a", tt.resource); got != tt.want {
				t.Errorf("Allows via %q on %q = %v, want %v", tt.pattern, tt.resource, got, tt.want)
			}
		}
	}
}

func role(id string, actions []string, resources ...string) store.Role {
	return store.Role{ID: id, Name: id, Actions: actions, Resources: resources, Effect: EffectAllow}
}

func TestCompileAllows(t *testing.T) {
	org := OrgDRN(testOrg)
	db1 := DatabaseDRN(testOrg, "db1")
	db2 := DatabaseDRN(testOrg, "db2")
	ks := db1 + ":keyspace:ks"
	roles := []store.Role{
		role("placeholder", []string{"org-db-view"}, "drn:astra:org:__ORG_ID__", "drn:astra:org:__ORG_ID__:db:*"),
		role("scoped", []string{"db-table-select"}, db1+":keyspace:*:table:*"),
		role("other-org", []string{"org-token-read"}, "drn:astra:org:b5285f63-8da5-4c6e-afd8-ade371a48795"),
		role("any-org", []string{"org-read"}, "drn:astra:org:*"),
		role("invalid-pattern", []string{"org-write"}, org+":db:ab*", org+":"),
		{ID: "deny", Actions: []string{"org-role-write"}, Resources: []string{org}, Effect: "deny"},
		{ID: "Allow-case", Actions: []string{"org-role-write"}, Resources: []string{org}, Effect: "Allow"},
		role("unknown-action", []string{"no-such-action"}, org),
	}
	s := Compile(testOrg, roles)
	tests := []struct {
		action, resource string
		want             bool
	}{
		{"org-db-view", org, true},
		{"org-db-view", db1, true},
		{"org-db-view", db2, true},
		{"org-db-view", ks, false},                         // db:* does not reach keyspaces
		{"org-db-view", "drn:astra:org:__ORG_ID__", false}, // substituted, not literal
		{"org-db-create", org, false},
		{"db-table-select", ks + ":table:t", true},
		{"db-table-select", db2 + ":keyspace:ks:table:t", false},
		{"db-table-select", ks, false},
		{"org-token-read", org, false}, // role for another org
		{"org-token-read", "drn:astra:org:b5285f63-8da5-4c6e-afd8-ade371a48795", true},
		{"org-read", org, true},
		{"org-write", org + ":db:abc", false}, // invalid pattern dropped
		{"org-write", org + ":db:ab*", false},
		{"org-role-write", org, false}, // non-allow effects grant nothing
		{"no-such-action", org, true},
		{"", org, false},
		{"org-db-view", "", false},
	}
	for _, tt := range tests {
		if got := s.Allows(tt.action, tt.resource); got != tt.want {
			t.Errorf("Allows(%q, %q) = %v, want %v", tt.action, tt.resource, got, tt.want)
		}
	}

	var nilSet *Set
	if nilSet.Allows("org-read", org) {
		t.Error("nil Set allows")
	}
	if Compile(testOrg, nil).Allows("org-read", org) {
		t.Error("empty Set allows")
	}
}

func TestCompileBadOrgID(t *testing.T) {
	// The placeholder must not be replaced by something that widens or
	// reshapes the pattern; such patterns grant nothing.
	roles := []store.Role{role("r", []string{"org-read"}, "drn:astra:org:__ORG_ID__", "drn:astra:org:__ORG_ID__:db:*")}
	for _, org := range []string{"", "*", "a:db", "x y"} {
		s := Compile(org, roles)
		for _, res := range []string{"drn:astra:org:" + org, "drn:astra:org:anything", "drn:astra:org:a:db:x", "drn:astra:org::db:x"} {
			if s.Allows("org-read", res) {
				t.Errorf("Compile(%q): allows %q", org, res)
			}
		}
		if _, _, ok := s.Covers(roles[0]); ok {
			t.Errorf("Compile(%q): covers a placeholder role", org)
		}
	}
	// A plain non-UUID org ID (as in other packages' tests) still works.
	if !Compile("org1", roles).Allows("org-read", "drn:astra:org:org1:db:x") {
		t.Error(`Compile("org1") does not substitute`)
	}
}

func TestCompileReduce(t *testing.T) {
	roles := DefaultRoles(testOrg)
	s := Compile(testOrg, append(roles, role("narrow", []string{"org-db-view"}, DatabaseDRN(testOrg, "db1"))))
	// Many default roles grant org-db-view on the same patterns; duplicates
	// and the narrower db1 pattern must be gone.
	if got := len(s.byAction["org-db-view"]); got != 6 { // org, db, ks, table, stream, role
		var raws []string
		for _, c := range s.byAction["org-db-view"] {
			raws = append(raws, c.raw)
		}
		t.Errorf("org-db-view patterns: %d %v, want 6", got, raws)
	}
}

func TestCovers(t *testing.T) {
	org := OrgDRN(testOrg)
	held := Compile(testOrg, []store.Role{
		role("h1", []string{"org-db-view", "db-table-select"}, org, org+":db:*", org+":db:db1:keyspace:*:table:*"),
		role("h2", []string{"org-read"}, "drn:astra:org:__ORG_ID__"),
	})
	tests := []struct {
		name           string
		r              store.Role
		wantA, wantRes string
		wantOK         bool
	}{
		{"same", role("x", []string{"org-db-view"}, org, org+":db:*"), "", "", true},
		{"narrower db", role("x", []string{"org-db-view"}, org+":db:db7"), "", "", true},
		{"narrower table", role("x", []string{"db-table-select"}, org+":db:db1:keyspace:ks:table:t"), "", "", true},
		{"placeholder substituted", role("x", []string{"org-read"}, "drn:astra:org:__ORG_ID__"), "", "", true},
		{"literal org vs placeholder", role("x", []string{"org-read"}, org), "", "", true},
		{"missing action", role("x", []string{"org-db-view", "org-token-write"}, org), "org-token-write", org, false},
		{"wider wildcard", role("x", []string{"db-table-select"}, org+":db:*:keyspace:*:table:*"),
			"db-table-select", org + ":db:*:keyspace:*:table:*", false},
		{"deeper than held", role("x", []string{"org-db-view"}, org+":db:*:keyspace:*"),
			"org-db-view", org + ":db:*:keyspace:*", false},
		{"other org", role("x", []string{"org-read"}, "drn:astra:org:*"), "org-read", "drn:astra:org:*", false},
		{"first missing in order", role("x", []string{"org-read", "org-db-view"}, org, org+":db:1", org+":stream:*"),
			"org-read", org + ":db:1", false},
		{"invalid pattern fails closed", role("x", []string{"org-db-view"}, org+":db:ab*"), "org-db-view", org + ":db:ab*", false},
		{"non-allow grants nothing", store.Role{Actions: []string{"org-token-write"}, Resources: []string{org}, Effect: "deny"}, "", "", true},
		{"no actions", role("x", nil, org), "", "", true},
		{"no resources", role("x", []string{"org-token-write"}), "", "", true},
	}
	for _, tt := range tests {
		a, res, ok := held.Covers(tt.r)
		if a != tt.wantA || res != tt.wantRes || ok != tt.wantOK {
			t.Errorf("%s: Covers = (%q, %q, %v), want (%q, %q, %v)", tt.name, a, res, ok, tt.wantA, tt.wantRes, tt.wantOK)
		}
		// The same answer from the role compiled once, as the view keeps it.
		a, res, ok = held.CoversSet(Compile(testOrg, []store.Role{tt.r}))
		if a != tt.wantA || res != tt.wantRes || ok != tt.wantOK {
			t.Errorf("%s: CoversSet = (%q, %q, %v), want (%q, %q, %v)", tt.name, a, res, ok, tt.wantA, tt.wantRes, tt.wantOK)
		}
	}
	var nilSet *Set
	if _, _, ok := nilSet.Covers(role("x", []string{"org-read"}, org)); ok {
		t.Error("nil Set covers a role")
	}
	if _, _, ok := nilSet.CoversSet(Compile(testOrg, []store.Role{role("x", []string{"org-read"}, org)})); ok {
		t.Error("nil Set covers a compiled role")
	}
	if _, _, ok := held.CoversSet(nil); !ok {
		t.Error("a nil compiled role (nothing granted) is not covered")
	}

	// A set of several roles is covered when each of them is; the first
	// role not covered is reported.
	two := Compile(testOrg, []store.Role{
		role("a", []string{"org-db-view"}, org+":db:7"),
		role("b", []string{"org-read", "org-token-write"}, org),
	})
	if a, res, ok := held.CoversSet(two); ok || a != "org-token-write" || res != org {
		t.Errorf("two roles: CoversSet = (%q, %q, %v), want (org-token-write, %q, false)", a, res, ok, org)
	}

	// A role compiled for another organization: its placeholder names that
	// organization, so nothing of it is covered.
	other := Compile("0b6a3a7e-1c7b-4f0e-8e1f-3a1b2c3d4e5f", []store.Role{role("x", []string{"org-read"}, "drn:astra:org:__ORG_ID__")})
	if _, _, ok := held.CoversSet(other); ok {
		t.Error("a role compiled for another organization is covered")
	}
}

func defaultByName(t testing.TB) map[string]store.Role {
	t.Helper()
	m := map[string]store.Role{}
	for _, r := range DefaultRoles(testOrg) {
		m[r.Name] = r
	}
	return m
}

func TestDefaultRoleInvariants(t *testing.T) {
	roles := defaultByName(t)
	compiled := func(name string) *Set { return Compile(testOrg, []store.Role{roles[name]}) }

	orgAdmin := compiled("Organization Administrator")
	for name, r := range roles {
		if _, _, ok := orgAdmin.Covers(r); !ok {
			t.Errorf("Organization Administrator does not cover %s", name)
		}
	}

	dbAdmin := compiled("Database Administrator")
	for _, name := range []string{"R/W User", "RO User", "R/W Svc Acct", "RO Svc Acct",
		"API R/W User", "API RO User", "API R/W Svc Acct", "API RO Svc Acct"} {
		if a, res, ok := dbAdmin.Covers(roles[name]); !ok {
			t.Errorf("Database Administrator does not cover %s: missing %s on %s", name, a, res)
		}
	}
	if _, _, ok := dbAdmin.Covers(roles["Organization Administrator"]); ok {
		t.Error("Database Administrator covers Organization Administrator")
	}

	// Token and role management (reference §8).
	for name, r := range roles {
		wantToken := name == "Organization Administrator" || name == "Database Administrator"
		if got := slices.Contains(r.Actions, "org-token-write"); got != wantToken {
			t.Errorf("%s: has org-token-write = %v, want %v", name, got, wantToken)
		}
		if got := slices.Contains(r.Actions, "org-role-write"); got != (name == "Organization Administrator") {
			t.Errorf("%s: has org-role-write = %v", name, got)
		}
		wantStream := map[string]bool{"Organization Administrator": true, "Admin Svc Acct": true,
			"API Admin User": true, "API Admin Svc Acct": true}[name]
		if got := slices.Contains(r.Actions, "org-stream-manage"); got != wantStream {
			t.Errorf("%s: has org-stream-manage = %v, want %v", name, got, wantStream)
		}
		// A role with org-stream-manage must be able to use it.
		if got := slices.Contains(r.Resources, "drn:astra:org:__ORG_ID__:stream:*"); got != wantStream {
			t.Errorf("%s: has stream:* = %v, want %v", name, got, wantStream)
		}
		// "API" roles have no CQL (reference §2.6).
		if strings.HasPrefix(name, "API ") && slices.Contains(r.Actions, "db-cql") {
			t.Errorf("%s has db-cql", name)
		}
	}

	// Compiled org-level checks as the token service will make them.
	org := OrgDRN(testOrg)
	if !orgAdmin.Allows("org-role-write", org+":role:"+AdminUserID) || !orgAdmin.Allows("org-token-write", org) {
		t.Error("Organization Administrator cannot manage roles or tokens")
	}
	if !dbAdmin.Allows("org-token-write", org) || dbAdmin.Allows("org-role-write", org) {
		t.Error("Database Administrator token/role permissions wrong")
	}
}

func TestDefaultRoles(t *testing.T) {
	wantNames := []string{"Organization Administrator", "Database Administrator", "Billing Admin", "UI View Only",
		"Admin User", "R/W User", "RO User", "Admin Svc Acct", "R/W Svc Acct", "RO Svc Acct",
		"API Admin User", "API R/W User", "API RO User", "API Admin Svc Acct", "API R/W Svc Acct", "API RO Svc Acct"}
	wantCounts := []int{56, 35, 4, 3, 39, 11, 10, 35, 9, 8, 35, 10, 9, 33, 8, 7}
	wantIDs := []string{OrganizationAdministratorID, DatabaseAdministratorID, BillingAdminID, UIViewOnlyID,
		AdminUserID, RWUserID, ROUserID, AdminSvcAcctID, RWSvcAcctID, ROSvcAcctID,
		APIAdminUserID, APIRWUserID, APIROUserID, APIAdminSvcAcctID, APIRWSvcAcctID, APIROSvcAcctID}

	roles := DefaultRoles(testOrg)
	if len(roles) != 16 {
		t.Fatalf("%d default roles, want 16", len(roles))
	}
	seen := map[string]bool{}
	for i, r := range roles {
		if r.Name != wantNames[i] || r.ID != wantIDs[i] {
			t.Errorf("role %d = %q %s, want %q %s", i, r.Name, r.ID, wantNames[i], wantIDs[i])
		}
		if len(r.Actions) != wantCounts[i] {
			t.Errorf("%s: %d actions, want %d", r.Name, len(r.Actions), wantCounts[i])
		}
		if !isLowerUUID(r.ID) || seen[r.ID] {
			t.Errorf("%s: ID %q not a unique lowercase UUID", r.Name, r.ID)
		}
		seen[r.ID] = true
		if !IsDefaultRoleID(r.ID) {
			t.Errorf("IsDefaultRoleID(%s) = false", r.ID)
		}
		if !r.Builtin || r.OrgID != testOrg || r.Effect != EffectAllow || r.Description == "" {
			t.Errorf("%s: Builtin=%v OrgID=%q Effect=%q Description=%q", r.Name, r.Builtin, r.OrgID, r.Effect, r.Description)
		}
		if err := ValidateRoleSpec(r.Name, r.Description, r.Resources, r.Actions, r.Effect); err != nil {
			t.Errorf("%s: %v", r.Name, err)
		}
		if !slices.IsSorted(r.Actions) || len(slices.Compact(slices.Clone(r.Actions))) != len(r.Actions) {
			t.Errorf("%s: actions not sorted and unique", r.Name)
		}
		for _, res := range r.Resources {
			if !strings.HasPrefix(res, "drn:astra:org:__ORG_ID__") {
				t.Errorf("%s: resource %q does not keep the placeholder", r.Name, res)
			}
		}
		base := []string{"drn:astra:org:__ORG_ID__", "drn:astra:org:__ORG_ID__:db:*",
			"drn:astra:org:__ORG_ID__:db:*:keyspace:*", "drn:astra:org:__ORG_ID__:db:*:keyspace:*:table:*"}
		if !slices.Equal(r.Resources[:4], base) {
			t.Errorf("%s: resources %v do not start with every data level", r.Name, r.Resources)
		}
	}
	for _, id := range []string{"", "21ef3576-0197-415a-b167-d510af12ecf0", strings.ToUpper(AdminUserID)} {
		if IsDefaultRoleID(id) {
			t.Errorf("IsDefaultRoleID(%q) = true", id)
		}
	}

	// Callers get copies.
	roles[0].Actions[0] = "mutated"
	roles[0].Resources[0] = "mutated"
	if again := DefaultRoles(testOrg); again[0].Actions[0] == "mutated" || again[0].Resources[0] == "mutated" {
		t.Error("DefaultRoles shares slices between calls")
	}
}

// TestGeneratedRoleIDs pins the derivation of the default role IDs that the
// reference does not give, so that a typo in a constant is caught.
func TestGeneratedRoleIDs(t *testing.T) {
	observed := map[string]bool{OrganizationAdministratorID: true, AdminUserID: true, RWSvcAcctID: true,
		ROSvcAcctID: true, APIAdminUserID: true, APIAdminSvcAcctID: true}
	for _, r := range DefaultRoles(testOrg) {
		if observed[r.ID] {
			continue
		}
		h := sha1.Sum([]byte("tokenbroker default role:" + r.Name))
		b := h[:16]
		b[6] = b[6]&0x0f | 0x50
		b[8] = b[8]&0x3f | 0x80
		want := fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
		if r.ID != want {
			t.Errorf("%s: ID %s, derivation gives %s", r.Name, r.ID, want)
		}
	}
	if len(observed) != 6 {
		t.Fatal("observed IDs not distinct")
	}
}

func TestActions(t *testing.T) {
	a := Actions()
	if len(a) != 56 {
		t.Errorf("%d actions, want 56 (43 spec + 12 observed + org-db-readpeering)", len(a))
	}
	if !slices.IsSorted(a) || len(slices.Compact(slices.Clone(a))) != len(a) {
		t.Error("catalogue not sorted and unique")
	}
	for _, x := range a {
		if !KnownAction(x) {
			t.Errorf("KnownAction(%q) = false", x)
		}
	}
	for _, x := range []string{"", "org-foo", "ORG-READ", "org-read ", "*"} {
		if KnownAction(x) {
			t.Errorf("KnownAction(%q) = true", x)
		}
	}
	a[0] = "mutated"
	if Actions()[0] == "mutated" {
		t.Error("Actions returns the shared slice")
	}
}

func TestValidateRoleSpec(t *testing.T) {
	okRes := []string{"drn:astra:org:__ORG_ID__"}
	okAct := []string{"org-read"}
	many := func(n int, s string) []string { return slices.Repeat([]string{s}, n) }
	tests := []struct {
		name, desc string
		res, act   []string
		effect     string
		want       string
	}{
		{"keyspaceRole", "Create and describe keyspaces", okRes, []string{"db-all-keyspace-create", "db-all-keyspace-describe"}, "allow", ""},
		{"R/W User (copy)", "", okRes, okAct, "allow", ""},
		{strings.Repeat("é", 256), strings.Repeat("x", 1024), many(100, okRes[0]), many(200, okAct[0]), "allow", ""},
		{"", "", okRes, okAct, "allow", "name: must not be empty"},
		{" \t", "", okRes, okAct, "allow", "name: must not be empty"},
		{strings.Repeat("n", 257), "", okRes, okAct, "allow", "name: must be at most 256 characters, got 257"},
		{"a\nb", "", okRes, okAct, "allow", "name: must not contain control characters"},
		{"a\u0085b", "", okRes, okAct, "allow", "name: must not contain control characters"},
		{"a\xffb", "", okRes, okAct, "allow", "name: must be valid UTF-8"},
		{"n", strings.Repeat("d", 1025), okRes, okAct, "allow", "policy.description: must be at most 1024 characters, got 1025"},
		{"n", "d\xff", okRes, okAct, "allow", "policy.description: must be valid UTF-8"},
		{"n", "", nil, okAct, "allow", "policy.resources: at least one resource is required"},
		{"n", "", many(101, okRes[0]), okAct, "allow", "policy.resources: at most 100 resources are allowed, got 101"},
		{"n", "", []string{okRes[0], "drn:astra:org:x:db"}, okAct, "allow",
			`policy.resources[1]: resource "drn:astra:org:x:db": invalid organization id "x": want a UUID, "*" or "__ORG_ID__"`},
		{"n", "", []string{okRes[0], "drn:astra:org:*:db"}, okAct, "allow",
			`policy.resources[1]: resource "drn:astra:org:*:db": missing database id after "db"`},
		{"n", "", okRes, nil, "allow", "policy.actions: at least one action is required"},
		{"n", "", okRes, many(201, okAct[0]), "allow", "policy.actions: at most 200 actions are allowed, got 201"},
		{"n", "", okRes, []string{"org-read", "org-write", "org-foo"}, "allow", `policy.actions[2]: unknown action "org-foo"`},
		{"n", "", okRes, okAct, "Allow", `policy.effect: unsupported effect "Allow" (allowed values: "allow")`},
		{"n", "", okRes, okAct, "deny", `policy.effect: unsupported effect "deny" (allowed values: "allow")`},
		{"n", "", okRes, okAct, "", `policy.effect: unsupported effect "" (allowed values: "allow")`},
		// First problem wins: name before the rest.
		{"", strings.Repeat("d", 2000), nil, nil, "deny", "name: must not be empty"},
	}
	for _, tt := range tests {
		err := ValidateRoleSpec(tt.name, tt.desc, tt.res, tt.act, tt.effect)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("ValidateRoleSpec(%.20q, ...)\n got: %s\nwant: %s", tt.name, got, tt.want)
		}
	}
}

func TestAllowsConcurrent(t *testing.T) {
	s := Compile(testOrg, DefaultRoles(testOrg))
	res := DatabaseDRN(testOrg, "db1") + ":keyspace:ks:table:t"
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				if !s.Allows("db-table-select", res) {
					t.Error("denied")
					return
				}
				s.Covers(DefaultRoles(testOrg)[5])
			}
		})
	}
	wg.Wait()
}

func TestAllowsDoesNotAllocate(t *testing.T) {
	s := Compile(testOrg, DefaultRoles(testOrg))
	res := DatabaseDRN(testOrg, "db1") + ":keyspace:ks:table:t"
	org, db := OrgDRN(testOrg), DatabaseDRN(testOrg, "db1")
	if n := testing.AllocsPerRun(100, func() {
		s.Allows("db-table-select", res)
		s.Allows("org-token-write", org)
		s.Allows("no-such-action", res)
		Match("drn:astra:org:*:db:*", db)
	}); n != 0 {
		t.Errorf("Allows allocates: %v allocs/run", n)
	}
}

// TestValidateResourceDoesNotAllocate: Check validates its resource on
// every call, so a valid DRN must cost no allocation.
func TestValidateResourceDoesNotAllocate(t *testing.T) {
	res := DatabaseDRN(testOrg, "db1") + ":keyspace:ks:table:t"
	tenant := StreamDRN(testOrg, "acme")
	if n := testing.AllocsPerRun(100, func() {
		if ValidateResource(res) != nil || ValidateResource(tenant) != nil {
			t.Fatal("valid DRN refused")
		}
	}); n != 0 {
		t.Errorf("ValidateResource allocates: %v allocs/run", n)
	}
	if err := ValidateResource(strings.Repeat("drn:astra:org:"+testOrg, 4)); err == nil {
		t.Error("a DRN with too many segments was accepted")
	}
}

// TestDocsInSync checks that docs/roles.md lists every default role with its
// current ID and action count, and every action.
func TestDocsInSync(t *testing.T) {
	b, err := os.ReadFile("../../docs/roles.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, r := range DefaultRoles(testOrg) {
		row := fmt.Sprintf("| %s | `%s` | %d |", r.Name, r.ID, len(r.Actions))
		if !strings.Contains(doc, row) {
			t.Errorf("docs/roles.md lacks the row %q", row)
		}
		list := fmt.Sprintf("### %s\n\n%s\n", r.Name, backquoted(r.Actions))
		if !strings.Contains(doc, list) {
			t.Errorf("docs/roles.md lacks or has a stale action list for %s; want:\n%s", r.Name, list)
		}
	}
	for _, a := range Actions() {
		if !strings.Contains(doc, "`"+a+"`") {
			t.Errorf("docs/roles.md does not mention %s", a)
		}
	}
}

// TestDatabaseRoleDocs checks the table of docs/roles.md that says which
// actions the token of a database created by each default role holding
// org-db-create gets: those of DatabaseTokenActions the role holds (its
// resources cover every level of the database).
func TestDatabaseRoleDocs(t *testing.T) {
	b, err := os.ReadFile("../../docs/roles.md")
	if err != nil {
		t.Fatal(err)
	}
	_, doc, ok := strings.Cut(string(b), "\n## Databases' own roles\n")
	if !ok {
		t.Fatal("docs/roles.md has no section \"Databases' own roles\"")
	}
	doc, _, _ = strings.Cut(doc, "\n## ")
	n := 0
	for _, r := range DefaultRoles(testOrg) {
		if !slices.Contains(r.Actions, "org-db-create") {
			if strings.Contains(doc, "| "+r.Name+" | `") {
				t.Errorf("docs/roles.md lists %s among the database creators, but it lacks org-db-create", r.Name)
			}
			continue
		}
		n++
		var held []string
		for _, a := range DatabaseTokenActions() {
			if slices.Contains(r.Actions, a) {
				held = append(held, a)
			}
		}
		row := fmt.Sprintf("| %s | %s |", r.Name, backquoted(held))
		if !strings.Contains(doc, row) {
			t.Errorf("docs/roles.md lacks the database-role row %q", row)
		}
	}
	if n == 0 {
		t.Fatal("no default role holds org-db-create")
	}
}

func backquoted(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = "`" + x + "`"
	}
	return strings.Join(q, ", ")
}

// BenchmarkCovers is the escalation check of a create that grants the R/W
// Svc Acct role, by an Organization Administrator: from the stored role
// (compiled on every call) and from the role's compiled set (what the view
// keeps).
func BenchmarkCovers(b *testing.B) {
	roles := defaultByName(b)
	caller := Compile(testOrg, []store.Role{roles["Organization Administrator"]})
	granted := roles["R/W Svc Acct"]
	b.Run("Role", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, ok := caller.Covers(granted); !ok {
				b.Fatal("not covered")
			}
		}
	})
	b.Run("CompiledSet", func(b *testing.B) {
		compiled := Compile(testOrg, []store.Role{granted})
		b.ReportAllocs()
		for b.Loop() {
			if _, _, ok := caller.CoversSet(compiled); !ok {
				b.Fatal("not covered")
			}
		}
	})
}

func BenchmarkAllows(b *testing.B) {
	// A caller with several roles, asking about a table: the deepest,
	// slowest case for the segment scan.
	roles := append(DefaultRoles(testOrg)[4:7],
		role("custom", []string{"db-table-select"}, DatabaseDRN(testOrg, "db1")+":keyspace:ks:table:*"))
	s := Compile(testOrg, roles)
	res := DatabaseDRN(testOrg, "b5285f63-8da5-4c6e-afd8-ade371a48795") + ":keyspace:system_schema:table:peers_v2"
	b.ReportAllocs()
	for b.Loop() {
		if !s.Allows("db-table-select", res) {
			b.Fatal("denied")
		}
	}
}

func BenchmarkValidateResource(b *testing.B) {
	const drn = "drn:astra:org:3f0c1a9e-5a2b-4c1d-9e8f-0a1b2c3d4e5f:db:db1:keyspace:ks:table:t"
	b.ReportAllocs()
	for b.Loop() {
		if err := ValidateResource(drn); err != nil {
			b.Fatal(err)
		}
	}
}
