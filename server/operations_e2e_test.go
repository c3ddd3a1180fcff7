package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	tbv1 "github.com/tokenbroker/tokenbroker/gen/tokenbroker/v1"
	"github.com/tokenbroker/tokenbroker/server"
	"github.com/tokenbroker/tokenbroker/server/policy"
	"github.com/tokenbroker/tokenbroker/server/servertest"
)

// scrape returns every sample of GET /metrics as "name{labels}" → value.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

func TestMetricsMoveWithTraffic(t *testing.T) {
	env := servertest.Start(t)
	url := env.HTTPBase + "/metrics"
	before := scrape(t, url)
	for _, series := range []string{
		`tokenbroker_check_total{credential="application-token",outcome="allowed"}`,
		`tokenbroker_login_total{outcome="throttled"}`,
		`tokenbroker_throttled_total{limiter="login"}`,
		`grpc_server_handled_total{grpc_code="OK",grpc_method="Check",grpc_service="tokenbroker.v1.AuthService",grpc_type="unary"}`,
	} {
		if _, ok := before[series]; !ok {
			t.Errorf("series %s missing before any traffic (series must exist at zero)", series)
		}
	}

	app := env.CreateToken(t, env.AdminToken, policy.RWSvcAcctID)
	resource := policy.DatabaseDRN(env.OrgID, "db1") + ":keyspace:ks:table:t"
	ctx := context.Background()
	check := func(cred string) {
		if _, err := env.Auth.Check(ctx, &tbv1.CheckRequest{Credential: cred, Action: "db-table-select", Resource: resource}); err != nil {
			t.Fatal(err)
		}
	}
	check(app.Token)
	check(app.Token)
	check("AstraCS:nosuchclientidnosuchcli:" + strings.Repeat("0", 64))
	authTok := env.Login(t, app.ClientId, app.Secret)
	check(authTok)
	// Spend the login throttle's budget for one username, then one more.
	var throttled bool
	for i := 0; i < 50 && !throttled; i++ {
		_, err := env.Auth.CreateAuthToken(ctx, &tbv1.CreateAuthTokenRequest{Username: "nobody", Password: "wrong password"})
		throttled = status.Code(err) == codes.ResourceExhausted
	}
	if !throttled {
		t.Fatal("logins were never throttled")
	}

	after := scrape(t, url)
	delta := func(series string) float64 { return after[series] - before[series] }
	for series, want := range map[string]float64{
		`tokenbroker_check_total{credential="application-token",outcome="allowed"}`:                                                 2,
		`tokenbroker_check_total{credential="application-token",outcome="credential_invalid"}`:                                      1,
		`tokenbroker_check_total{credential="auth-token",outcome="allowed"}`:                                                        1,
		`tokenbroker_login_total{outcome="success"}`:                                                                                1,
		`tokenbroker_login_total{outcome="throttled"}`:                                                                              1,
		`tokenbroker_throttled_total{limiter="login"}`:                                                                              1,
		`grpc_server_handled_total{grpc_code="OK",grpc_method="Check",grpc_service="tokenbroker.v1.AuthService",grpc_type="unary"}`: 4,
		`grpc_server_handling_seconds_count{grpc_method="Check",grpc_service="tokenbroker.v1.AuthService",grpc_type="unary"}`:       4,
	} {
		if got := delta(series); got != want {
			t.Errorf("%s moved by %v, want %v", series, got, want)
		}
	}
	if refused := delta(`tokenbroker_login_total{outcome="refused"}`); refused < 5 {
		t.Errorf("refused logins moved by %v", refused)
	}
	if delta(`tokenbroker_store_commit_duration_seconds_count`) < 2 || delta(`tokenbroker_store_commit_batch_size_sum`) < 2 {
		t.Errorf("store commit series did not move: %v commits", delta(`tokenbroker_store_commit_duration_seconds_count`))
	}
	// Record counts: the bootstrap token and app (cached up to 15 s, but the
	// first scrape computed them after bootstrap, so ≥ 1).
	if n := after[`tokenbroker_stored_records{kind="application_token"}`]; n < 1 {
		t.Errorf("stored application tokens = %v", n)
	}
	found := false
	for k, v := range after {
		if strings.HasPrefix(k, "tokenbroker_build_info{") && v == 1 {
			found = true
		}
	}
	if !found {
		t.Error("no tokenbroker_build_info sample")
	}
}

func TestLastOrgAdminTokenCannotBeDeleted(t *testing.T) {
	env := servertest.Start(t)
	// The only Organization Administrator token deleting itself: refused.
	code, body, _ := env.REST(t, "DELETE", "/v2/clientIdSecrets/"+env.AdminClientID, env.AdminToken, nil)
	if code != http.StatusConflict || !bytes.Contains(body, []byte("tokenbroker admin recover --data PATH")) {
		t.Fatalf("deleting the last admin token: %d %s", code, body)
	}
	// Still works.
	if code, _, _ := env.REST(t, "GET", "/v2/currentOrg", env.AdminToken, nil); code != 200 {
		t.Fatalf("admin token after refused delete: %d", code)
	}
	// With a second one, either may go, but not both.
	second := env.CreateToken(t, env.AdminToken, policy.OrganizationAdministratorID)
	if code, body, _ := env.REST(t, "DELETE", "/v2/clientIdSecrets/"+env.AdminClientID, second.Token, nil); code != 200 {
		t.Fatalf("deleting one of two admin tokens: %d %s", code, body)
	}
	if code, _, _ := env.REST(t, "DELETE", "/v2/clientIdSecrets/"+second.ClientId, second.Token, nil); code != http.StatusConflict {
		t.Fatalf("deleting the remaining admin token: %d", code)
	}
	// Tokens of other roles are unaffected.
	other := env.CreateToken(t, second.Token, policy.RWSvcAcctID)
	if code, _, _ := env.REST(t, "DELETE", "/v2/clientIdSecrets/"+other.ClientId, second.Token, nil); code != 200 {
		t.Fatalf("deleting a service token: %d", code)
	}
	// A bulk revocation of the role by a user (whose own credential is no
	// such token) would delete every one: refused before deleting any.
	third := env.CreateToken(t, second.Token, policy.OrganizationAdministratorID)
	env.CreateUser(t, second.Token, "org.admin", "org-Admin-Passw0rd", policy.OrganizationAdministratorID)
	user := env.Login(t, "org.admin", "org-Admin-Passw0rd")
	code, body, _ = env.REST(t, "POST", "/v2/clientIdSecrets/revoke", user, map[string]any{"role": policy.OrganizationAdministratorID})
	if code != http.StatusConflict || !bytes.Contains(body, []byte("nothing was revoked")) {
		t.Fatalf("revoking every admin token in bulk: %d %s", code, body)
	}
	for _, tok := range []string{second.Token, third.Token} {
		if code, _, _ := env.REST(t, "GET", "/v2/currentOrg", tok, nil); code != 200 {
			t.Fatalf("admin token after a refused bulk revocation: %d", code)
		}
	}
	// Revoked by one of them, the others go and the caller's stays.
	code, body, _ = env.REST(t, "POST", "/v2/clientIdSecrets/revoke", third.Token, map[string]any{"role": policy.OrganizationAdministratorID})
	if code != 200 || !bytes.Contains(body, []byte(second.ClientId)) {
		t.Fatalf("revoking the other admin tokens: %d %s", code, body)
	}
}

func TestRESTJSONIsCompact(t *testing.T) {
	env := servertest.Start(t)
	env.CreateToken(t, env.AdminToken, policy.RWSvcAcctID)
	for _, path := range []string{"/v2/clientIdSecrets", "/v2/organizations/roles", "/v2/currentOrg"} {
		code, body, _ := env.REST(t, "GET", path, env.AdminToken, nil)
		if code != 200 {
			t.Fatalf("%s: %d", path, code)
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, body); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if !bytes.Equal(bytes.TrimSpace(body), compact.Bytes()) {
			t.Fatalf("%s: body is not compact:\n%s", path, body)
		}
	}
}

func TestOpenAPIDocumentNamesTheProject(t *testing.T) {
	env := servertest.Start(t)
	code, body, _ := env.REST(t, "GET", "/openapi.json", "", nil)
	var doc struct {
		Swagger string
		Info    struct{ Title, Version string }
		Paths   map[string]any
	}
	if code != 200 || json.Unmarshal(body, &doc) != nil {
		t.Fatalf("openapi: %d", code)
	}
	if doc.Info.Title != "tokenbroker REST API" || doc.Info.Version == "" || doc.Info.Version == "version not set" || doc.Swagger != "2.0" {
		t.Fatalf("info = %+v", doc.Info)
	}
	if _, ok := doc.Paths["/v2/clientIdSecrets"]; !ok {
		t.Fatal("paths lost")
	}
}

func TestStartRefusesBadSettings(t *testing.T) {
	dir := t.TempDir()
	base := func() server.Config {
		return server.Config{
			GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
			DataPath: filepath.Join(dir, "d", "tb.db"), Logger: slog.New(slog.DiscardHandler), BootstrapOut: io.Discard,
		}
	}
	for name, tc := range map[string]struct {
		adjust func(*server.Config)
		want   string
	}{
		"negative TTL":      {func(c *server.Config) { c.AuthTokenTTL = -time.Minute }, "auth token TTL"},
		"negative limit":    {func(c *server.Config) { c.PulsarTokenLimit = -1 }, "pulsar token limit"},
		"relative issuer":   {func(c *server.Config) { c.IssuerURL = "broker.example.com" }, "issuer URL"},
		"issuer with query": {func(c *server.Config) { c.IssuerURL = "https://b.example.com/?x=1" }, "issuer URL"},
		"cert without key":  {func(c *server.Config) { c.TLS.Cert = "x.pem" }, "--tls-key"},
		"client CA only":    {func(c *server.Config) { c.TLS.ClientCA = "ca.pem" }, "--tls-client-ca"},
		"existing bootstrap file": {func(c *server.Config) {
			c.BootstrapFile = filepath.Join(dir, "stale-admin.json")
			os.WriteFile(c.BootstrapFile, []byte("{}"), 0o600)
		}, "already exists"},
		"non-bbolt data file": {func(c *server.Config) {
			c.DataPath = filepath.Join(dir, "notdb", "tb.db")
			os.MkdirAll(filepath.Dir(c.DataPath), 0o700)
			os.WriteFile(c.DataPath, bytes.Repeat([]byte("not a database\n"), 2000), 0o600)
		}, "not a usable tokenbroker database"},
	} {
		cfg := base()
		tc.adjust(&cfg)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		srv, err := server.Start(ctx, cfg)
		cancel()
		if err == nil {
			srv.Shutdown(context.Background())
			t.Errorf("%s: started", name)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q does not mention %q", name, err, tc.want)
		}
	}
	// The stale bootstrap file was left as it was.
	if b, _ := os.ReadFile(filepath.Join(dir, "stale-admin.json")); string(b) != "{}" {
		t.Errorf("stale bootstrap file changed: %q", b)
	}
}
