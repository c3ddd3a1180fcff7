package cli_test

import (
	"encoding/json"
	"net"
	"strings"
	"sync"
	"testing"

	tbv1 "github.com/tokenbroker/tokenbroker/gen/tokenbroker/v1"
	"github.com/tokenbroker/tokenbroker/server/policy"
	"github.com/tokenbroker/tokenbroker/server/servertest"
)

type createdToken struct {
	ClientID string   `json:"clientId"`
	Secret   string   `json:"secret"`
	Token    string   `json:"token"`
	OrgID    string   `json:"orgId"`
	Roles    []string `json:"roles"`
}

type checkAnswer struct {
	Allowed   bool   `json:"allowed"`
	Reason    string `json:"reason"`
	Principal *struct {
		Kind string `json:"kind"`
		ID   string `json:"id"`
	} `json:"principal"`
}

// TestTokenLifecycle is the operator's first use: create a token by role
// name (secret printed once, with a warning), list it as JSON, check it,
// delete it, and see it refused.
func TestTokenLifecycle(t *testing.T) {
	env := servertest.Start(t)
	r := newRunner(t, env)

	// Table output: the token on stdout, the warning on stderr.
	res := r.ok("token", "create", "--role", "R/W Svc Acct", "--description", "service A")
	if !strings.Contains(res.stdout, "AstraCS:") || !strings.Contains(res.stdout, policy.RWSvcAcctID) {
		t.Fatalf("token create output lacks the token or its role:\n%s", res.stdout)
	}
	if !strings.Contains(res.stderr, "WARNING") || !strings.Contains(res.stderr, "only this once") {
		t.Fatalf("token create warned nothing on stderr: %q", res.stderr)
	}

	var tok createdToken
	res = r.jsonOf(&tok, "token", "create", "--role", "r/w svc acct") // names match ignoring case
	if !strings.HasPrefix(tok.Token, "AstraCS:"+tok.ClientID+":") || tok.Secret == "" || tok.OrgID != env.OrgID {
		t.Fatalf("token create -o json = %+v", tok)
	}
	if len(tok.Roles) != 1 || tok.Roles[0] != policy.RWSvcAcctID {
		t.Fatalf("roles = %v, want [%s]", tok.Roles, policy.RWSvcAcctID)
	}

	var list struct {
		Clients []struct {
			ClientID    string   `json:"clientId"`
			Roles       []string `json:"roles"`
			Description string   `json:"description"`
		} `json:"clients"`
	}
	res = r.jsonOf(&list, "token", "list")
	if strings.Contains(res.stdout, tok.Secret) || strings.Contains(res.stdout, tok.Token) {
		t.Fatal("token list shows a secret")
	}
	found := false
	for _, c := range list.Clients {
		found = found || c.ClientID == tok.ClientID
	}
	if !found || len(list.Clients) != 3 {
		t.Fatalf("token list = %+v, want the admin token and two new ones including %s", list.Clients, tok.ClientID)
	}
	// JSON output is byte-stable between runs (scripts diff it).
	if again := r.ok("token", "list", "-o", "json"); again.stdout != res.stdout {
		t.Fatalf("token list -o json changed between runs:\n%s\n%s", res.stdout, again.stdout)
	}
	// Table output names the roles.
	if res := r.ok("token", "list"); !strings.Contains(res.stdout, "R/W Svc Acct") || !strings.Contains(res.stdout, "CLIENT ID") {
		t.Fatalf("token list table:\n%s", res.stdout)
	}

	resource := "drn:astra:org:" + env.OrgID + ":db:d1:keyspace:ks:table:t"
	var ans checkAnswer
	r.jsonOf(&ans, "check", tok.Token, "--action", "db-table-select", "--resource", resource)
	if !ans.Allowed || ans.Principal == nil || ans.Principal.ID != tok.ClientID {
		t.Fatalf("check of a live token = %+v", ans)
	}
	// The credential from stdin ("-"), kept out of the process list.
	fromStdin := r.with()
	fromStdin.stdin = tok.Token + "\n"
	fromStdin.jsonOf(&ans, "check", "-", "--action", "db-table-select", "--resource", resource)
	if !ans.Allowed {
		t.Fatalf("check - (stdin) = %+v", ans)
	}
	// Denied: exit 1 with the answer printed.
	res = r.run("check", tok.Token, "--action", "org-token-write", "--resource", "drn:astra:org:"+env.OrgID)
	if res.code != 1 || !strings.Contains(res.stdout, "PERMISSION_DENIED") {
		t.Fatalf("check of a missing permission: exit %d, stdout %q", res.code, res.stdout)
	}

	res = r.ok("token", "delete", tok.ClientID)
	if !strings.Contains(res.stdout, "deleted token "+tok.ClientID) {
		t.Fatalf("token delete: %q", res.stdout)
	}
	res = r.run("check", tok.Token, "--action", "db-table-select", "--resource", resource)
	if res.code != 1 || !strings.Contains(res.stdout, "CREDENTIAL_INVALID") {
		t.Fatalf("check of a deleted token: exit %d, stdout %q", res.code, res.stdout)
	}
	r.fails(1, "NotFound", "token", "delete", tok.ClientID)
	// The deleted token is refused as a CLI credential too.
	r.with("TOKENBROKER_TOKEN", tok.Token).fails(1, "Unauthenticated", "token", "list")
}

// TestExitCodes pins the exit codes scripts rely on: 2 for a wrong command
// line (nothing sent), 1 for a failure from or reaching the broker.
func TestExitCodes(t *testing.T) {
	env := servertest.Start(t)
	r := newRunner(t, env)
	ro := env.CreateToken(t, env.AdminToken, policy.ROSvcAcctID)

	usage := [][]string{
		{"token", "create"},             // --role missing
		{"token", "create", "--nope"},   // unknown flag
		{"token", "frobnicate"},         // unknown subcommand
		{"token"},                       // bare group
		{"frobnicate"},                  // unknown command
		{"token", "list", "-o", "yaml"}, // bad --output
		{"token", "list", "extra"},      // extra argument
		{"role", "get"},                 // missing argument
		{"token", "create", "--role", "x", "--expires-in", "-5m"},
		{"audit", "list", "--from", "yesterday"}, // bad time
		{"check", "--action", "db-cql"},          // --resource missing
		{"token", "list", "--cert", "c.pem"},     // --cert without --key
		{"restore", "--data", "", "b.tbbak"},
	}
	for _, args := range usage {
		res := r.run(args...)
		if res.code != 2 {
			t.Errorf("tokenbroker %s: exit %d, want 2 (usage); stderr %q", strings.Join(args, " "), res.code, res.stderr)
		}
		if res.stdout != "" && !strings.Contains(res.stdout, "Usage:") {
			t.Errorf("tokenbroker %s printed %q on stdout", strings.Join(args, " "), res.stdout)
		}
	}
	// No token anywhere: a usage error.
	r.with("TOKENBROKER_TOKEN", "").fails(2, "no token", "token", "list")

	// Refused by the broker: 1, with the gRPC code named.
	r.with("TOKENBROKER_TOKEN", ro.Token).fails(1, "PermissionDenied", "token", "list")
	r.with("TOKENBROKER_TOKEN", "AstraCS:nope:nope").fails(1, "Unauthenticated", "token", "list")
	r.fails(1, "no role named", "token", "create", "--role", "No Such Role")
	// A role name needs ListRoles: the failure says so, with the gRPC code.
	r.with("TOKENBROKER_TOKEN", ro.Token).fails(1, `look up role "R/W Svc Acct" by name (give its ID to skip the lookup): PermissionDenied:`, "token", "create", "--role", "R/W Svc Acct")
	r.fails(1, "InvalidArgument", "role", "create", "bad", "--action", "not-an-action")

	// Nothing listening: 1, with a hint.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	r.fails(1, "Unavailable", "token", "list", "--server", dead, "--timeout", "5s")
}

// TestTokenSources: --token wins over TOKENBROKER_TOKEN, which wins over
// ASTRA_DB_APPLICATION_TOKEN, which Astra users already export.
func TestTokenSources(t *testing.T) {
	env := servertest.Start(t)
	ro := env.CreateToken(t, env.AdminToken, policy.ROSvcAcctID)
	r := newRunner(t, env).with("TOKENBROKER_TOKEN", "")

	r.with("ASTRA_DB_APPLICATION_TOKEN", env.AdminToken).ok("token", "list")
	r.with("ASTRA_DB_APPLICATION_TOKEN", env.AdminToken, "TOKENBROKER_TOKEN", ro.Token).fails(1, "PermissionDenied", "token", "list")
	r.with("TOKENBROKER_TOKEN", ro.Token).ok("token", "list", "--token", env.AdminToken)
}

// TestRoles: create, get by name and by ID, update, use by name, delete.
func TestRoles(t *testing.T) {
	env := servertest.Start(t)
	r := newRunner(t, env)

	var created struct {
		Role struct {
			ID     string `json:"ID"`
			Name   string `json:"Name"`
			Policy struct {
				Resources []string `json:"resources"`
				Actions   []string `json:"actions"`
			} `json:"Policy"`
		} `json:"role"`
	}
	r.jsonOf(&created, "role", "create", "keyspaceRole", "--action", "db-all-keyspace-create", "--action", "db-all-keyspace-describe")
	if created.Role.Name != "keyspaceRole" || len(created.Role.Policy.Actions) != 2 ||
		len(created.Role.Policy.Resources) != 1 || created.Role.Policy.Resources[0] != "drn:astra:org:"+env.OrgID {
		t.Fatalf("role create = %+v", created.Role)
	}
	if res := r.ok("role", "get", "keyspaceRole"); !strings.Contains(res.stdout, created.Role.ID) || !strings.Contains(res.stdout, "db-all-keyspace-describe") {
		t.Fatalf("role get by name:\n%s", res.stdout)
	}
	if res := r.ok("role", "list"); !strings.Contains(res.stdout, "keyspaceRole") || !strings.Contains(res.stdout, "Organization Administrator") {
		t.Fatalf("role list:\n%s", res.stdout)
	}

	r.ok("role", "update", "keyspaceRole", "--name", "keyspaceReaders", "--action", "db-all-keyspace-describe")
	var got struct {
		Role struct {
			Name   string `json:"Name"`
			Policy struct {
				Resources []string `json:"resources"`
				Actions   []string `json:"actions"`
			} `json:"Policy"`
		} `json:"role"`
	}
	r.jsonOf(&got, "role", "get", created.Role.ID)
	if got.Role.Name != "keyspaceReaders" || len(got.Role.Policy.Actions) != 1 || len(got.Role.Policy.Resources) != 1 {
		t.Fatalf("after update: %+v (resources must be kept)", got.Role)
	}
	r.fails(2, "nothing to change", "role", "update", "keyspaceReaders")
	r.fails(1, "", "role", "update", "Organization Administrator", "--name", "x") // default roles are immutable

	var tok createdToken
	r.jsonOf(&tok, "token", "create", "--role", "keyspaceReaders", "--role", policy.ROSvcAcctID)
	if len(tok.Roles) != 2 || tok.Roles[0] != created.Role.ID {
		t.Fatalf("token with a custom role by name: roles %v", tok.Roles)
	}
	r.fails(1, "FailedPrecondition", "role", "delete", "keyspaceReaders") // a live token holds it
	r.ok("token", "delete", tok.ClientID)
	if res := r.ok("role", "delete", "keyspaceReaders"); !strings.Contains(res.stdout, "deleted role "+created.Role.ID) {
		t.Fatalf("role delete: %q", res.stdout)
	}
	r.fails(1, "no role named", "role", "get", "keyspaceReaders")
}

// TestUsers: a generated password printed once and usable for login, a
// password from stdin, lookup by username, reset, delete.
func TestUsers(t *testing.T) {
	env := servertest.Start(t)
	r := newRunner(t, env)

	var created struct {
		User struct {
			UserID   string `json:"UserID"`
			Username string `json:"Username"`
		} `json:"user"`
		GeneratedPassword string `json:"generatedPassword"`
	}
	res := r.jsonOf(&created, "user", "create", "app1", "--role", "R/W User")
	if created.User.Username != "app1" || len(created.GeneratedPassword) < 20 || !strings.Contains(res.stderr, "WARNING") {
		t.Fatalf("user create = %+v, stderr %q", created, res.stderr)
	}
	if env.Login(t, "app1", created.GeneratedPassword) == "" {
		t.Fatal("no auth token for the generated password")
	}

	withPw := r.with()
	withPw.stdin = "a long chosen password\n"
	withPw.ok("user", "create", "app2", "--role", "RO User", "--password-stdin")
	env.Login(t, "app2", "a long chosen password")

	if res := r.ok("user", "list"); !strings.Contains(res.stdout, "app1") || !strings.Contains(res.stdout, "app2") {
		t.Fatalf("user list:\n%s", res.stdout)
	}
	if res := r.ok("user", "get", "app1"); !strings.Contains(res.stdout, created.User.UserID) || !strings.Contains(res.stdout, "R/W User") {
		t.Fatalf("user get:\n%s", res.stdout)
	}
	reset := r.with()
	reset.stdin = "another long password\n"
	reset.ok("user", "reset-password", "app1", "--password-stdin")
	env.Login(t, "app1", "another long password")

	r.ok("user", "delete", "app1")
	r.fails(1, "no user named", "user", "get", "app1")
	empty := r.with()
	empty.stdin = ""
	empty.fails(2, "stdin held no password", "user", "create", "app3", "--role", "RO User", "--password-stdin")
}

// TestTenantsAndPulsarTokens: create a tenant (its first token printed
// once), read its keys, issue, list and delete Pulsar tokens.
func TestTenantsAndPulsarTokens(t *testing.T) {
	env := servertest.Start(t)
	r := newRunner(t, env)

	var tenant struct {
		Tenant struct {
			TenantName  string `json:"tenantName"`
			PulsarToken string `json:"pulsarToken"`
		} `json:"tenant"`
	}
	res := r.jsonOf(&tenant, "tenant", "create", "acme", "--cluster", "pulsar-local")
	if tenant.Tenant.TenantName != "acme" || strings.Count(tenant.Tenant.PulsarToken, ".") != 2 || !strings.Contains(res.stderr, "WARNING") {
		t.Fatalf("tenant create = %+v, stderr %q", tenant, res.stderr)
	}
	if res := r.ok("tenant", "list"); !strings.Contains(res.stdout, "acme") || !strings.Contains(res.stdout, "pulsar-local") {
		t.Fatalf("tenant list:\n%s", res.stdout)
	}
	if res := r.ok("tenant", "keys", "acme"); !strings.Contains(res.stdout, "data:;base64,") {
		t.Fatalf("tenant keys:\n%s", res.stdout)
	}

	var pt struct {
		ID       string `json:"id"`
		Rolename string `json:"rolename"`
		Token    string `json:"token"`
	}
	r.jsonOf(&pt, "pulsar-token", "create", "acme", "--exp", "30d", "--type", "non-admin", "--role", "app1")
	if pt.Rolename != "app1" || strings.Count(pt.Token, ".") != 2 {
		t.Fatalf("pulsar-token create = %+v", pt)
	}
	res = r.ok("pulsar-token", "list", "acme")
	if !strings.Contains(res.stdout, pt.ID) || strings.Contains(res.stdout, pt.Token) {
		t.Fatalf("pulsar-token list (must show the ID, never the token):\n%s", res.stdout)
	}
	r.ok("pulsar-token", "delete", "acme", pt.ID)
	if res := r.ok("pulsar-token", "list", "acme"); strings.Contains(res.stdout, pt.ID) {
		t.Fatalf("deleted Pulsar token still listed:\n%s", res.stdout)
	}
	r.fails(2, "want 2 argument(s)", "pulsar-token", "delete", "acme")
	r.ok("tenant", "delete", "acme")
	r.fails(1, "NotFound", "tenant", "get", "acme")
}

// TestDatabases: create (scoped token printed once), list, get, usage,
// terminate.
func TestDatabases(t *testing.T) {
	env := servertest.Start(t)
	r := newRunner(t, env)

	var db struct {
		ID       string `json:"id"`
		ClientID string `json:"clientId"`
		Token    string `json:"token"`
	}
	res := r.jsonOf(&db, "db", "create", "hi", "--keyspace", "ks1", "--cloud-provider", "GCP", "--region", "us-east1")
	if db.ID == "" || !strings.HasPrefix(db.Token, "AstraCS:") || !strings.Contains(res.stderr, "WARNING") {
		t.Fatalf("db create = %+v", db)
	}
	if res := r.ok("db", "list"); !strings.Contains(res.stdout, db.ID) || !strings.Contains(res.stdout, "ACTIVE") {
		t.Fatalf("db list:\n%s", res.stdout)
	}
	if res := r.ok("db", "get", db.ID); !strings.Contains(res.stdout, "ks1") {
		t.Fatalf("db get:\n%s", res.stdout)
	}
	var usage struct {
		DatabaseID string `json:"databaseId"`
		Month      string `json:"month"`
	}
	r.jsonOf(&usage, "db", "usage", db.ID, "--month", "2040-01")
	if usage.DatabaseID != db.ID || usage.Month != "2040-01" {
		t.Fatalf("db usage = %+v", usage)
	}
	r.ok("db", "terminate", db.ID)
	if res := r.ok("db", "get", db.ID); !strings.Contains(res.stdout, "TERMINATED") {
		t.Fatalf("db get after terminate:\n%s", res.stdout)
	}
}

// TestAudit: list shows the changes made through the CLI; follow prints
// recorded events and stops after --limit.
func TestAudit(t *testing.T) {
	env := servertest.Start(t)
	r := newRunner(t, env)
	var tok createdToken
	r.jsonOf(&tok, "token", "create", "--role", "RO Svc Acct")

	res := r.ok("audit", "list")
	if !strings.Contains(res.stdout, "TokenService.CreateToken") || !strings.Contains(res.stdout, "token:"+tok.ClientID) {
		t.Fatalf("audit list:\n%s", res.stdout)
	}
	var page struct {
		Events []struct {
			Seq    string `json:"seq"`
			Action string `json:"action"`
		} `json:"events"`
		NextPageToken string `json:"nextPageToken"`
	}
	r.jsonOf(&page, "audit", "list", "--limit", "1")
	if len(page.Events) != 1 {
		t.Fatalf("audit list --limit 1 = %+v", page)
	}

	// Follow from an explicit point: the events after it are printed, and
	// --limit ends the stream.
	r.ok("token", "create", "--role", "RO Svc Acct")
	res = r.ok("audit", "follow", "--after-seq", page.Events[0].Seq, "-n", "1")
	lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "SEQ") || !strings.Contains(lines[1], "TokenService.CreateToken") {
		t.Fatalf("audit follow -n 1:\n%s", res.stdout)
	}
	res = r.ok("audit", "follow", "--after-seq", page.Events[0].Seq, "-n", "1", "-o", "json")
	if !strings.HasPrefix(res.stdout, `{"event":{`) || strings.Count(res.stdout, "\n") != 1 {
		t.Fatalf("audit follow -o json:\n%s", res.stdout)
	}
}

// TestTokenRotateAndRevoke rotates a token with no grace (the old one is
// refused at once, the new one works), then revokes a role's tokens in bulk
// after a dry run that revokes nothing.
func TestTokenRotateAndRevoke(t *testing.T) {
	env := servertest.Start(t)
	r := newRunner(t, env)
	resource := "drn:astra:org:" + env.OrgID + ":db:d1:keyspace:ks:table:t"
	check := func(token string) checkAnswer {
		t.Helper()
		var ans checkAnswer
		res := r.run("check", token, "--action", "db-table-select", "--resource", resource, "-o", "json")
		if err := json.Unmarshal([]byte(res.stdout), &ans); err != nil {
			t.Fatalf("check output %q: %v", res.stdout, err)
		}
		return ans
	}

	var old createdToken
	r.jsonOf(&old, "token", "create", "--role", "R/W Svc Acct", "--description", "to rotate")
	var rotated struct {
		Token            createdToken `json:"token"`
		PreviousClientID string       `json:"previousClientId"`
	}
	res := r.jsonOf(&rotated, "token", "rotate", old.ClientID)
	if rotated.PreviousClientID != old.ClientID || !strings.HasPrefix(rotated.Token.Token, "AstraCS:") || rotated.Token.ClientID == old.ClientID {
		t.Fatalf("token rotate -o json = %+v", rotated)
	}
	if !strings.Contains(res.stderr, "WARNING") {
		t.Fatalf("token rotate warned nothing on stderr: %q", res.stderr)
	}
	if ans := check(old.Token); ans.Allowed {
		t.Fatalf("the rotated-out token (no grace) is still allowed: %+v", ans)
	}
	if ans := check(rotated.Token.Token); !ans.Allowed {
		t.Fatalf("the new token is refused: %+v", ans)
	}
	r.fails(2, "CLIENT_ID", "token", "rotate")

	r.fails(2, "--role is required", "token", "revoke")
	var revoked struct {
		Clients []struct {
			ClientID string `json:"clientId"`
		} `json:"clients"`
		DryRun bool `json:"dryRun"`
	}
	r.jsonOf(&revoked, "token", "revoke", "--role", "R/W Svc Acct", "--dry-run")
	listed := false
	for _, c := range revoked.Clients {
		listed = listed || c.ClientID == rotated.Token.ClientID
	}
	if !revoked.DryRun || !listed {
		t.Fatalf("token revoke --dry-run = %+v, want the new token listed", revoked)
	}
	if ans := check(rotated.Token.Token); !ans.Allowed {
		t.Fatalf("a dry run revoked the token: %+v", ans)
	}
	res = r.ok("token", "revoke", "--role", "R/W Svc Acct")
	if !strings.Contains(res.stdout, "revoked ") || !strings.Contains(res.stdout, rotated.Token.ClientID) {
		t.Fatalf("token revoke: %q", res.stdout)
	}
	if ans := check(rotated.Token.Token); ans.Allowed {
		t.Fatalf("a revoked token is still allowed: %+v", ans)
	}
}

// TestTokenRevokeMany: a revocation of more tokens than its answer lists
// prints their count, the first 1,000, and where the rest are: the token
// list with the same filter for a dry run, the audit log afterwards.
func TestTokenRevokeMany(t *testing.T) {
	env := servertest.Start(t)
	r := newRunner(t, env)
	ctx := env.GRPCCtx(env.AdminToken)
	role, err := env.Tokens.CreateRole(ctx, &tbv1.CreateRoleRequest{Name: "many",
		Policy: &tbv1.Policy{Resources: []string{"drn:astra:org:" + env.OrgID}, Actions: []string{"org-read"}, Effect: "allow"}})
	if err != nil {
		t.Fatal(err)
	}
	const n = 1001
	var wg sync.WaitGroup
	jobs, errs := make(chan int), make(chan error, n)
	for range 8 { // concurrent creates share the store's commits
		wg.Go(func() {
			for range jobs {
				_, err := env.Tokens.CreateToken(ctx, &tbv1.CreateTokenRequest{Roles: []string{role.GetRole().GetId()}})
				errs <- err
			}
		})
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	res := r.ok("token", "revoke", "--role", "many", "--dry-run")
	if !strings.HasPrefix(res.stdout, "would revoke 1001 token(s):\n") ||
		!strings.HasSuffix(res.stdout, "(the first 1000 of 1001 listed; every one: tokenbroker token list --role \"many\")\n") {
		t.Fatalf("token revoke --dry-run of 1,001 tokens: %.200s … %s", res.stdout, res.stdout[max(0, len(res.stdout)-200):])
	}
	var revoked struct {
		Clients          []json.RawMessage `json:"clients"`
		RevokedCount     int               `json:"revokedCount"`
		ClientsTruncated bool              `json:"clientsTruncated"`
	}
	r.jsonOf(&revoked, "token", "revoke", "--role", "many")
	if len(revoked.Clients) != 1000 || revoked.RevokedCount != n || !revoked.ClientsTruncated {
		t.Fatalf("token revoke -o json: %d clients, revokedCount %d, clientsTruncated %v", len(revoked.Clients), revoked.RevokedCount, revoked.ClientsTruncated)
	}
	res = r.ok("token", "revoke", "--role", "many")
	if !strings.HasPrefix(res.stdout, "revoked 0 token(s):\n") {
		t.Fatalf("token revoke again: %q", res.stdout)
	}
}
