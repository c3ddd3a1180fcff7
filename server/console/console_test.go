package console_test

// Console tests over plain HTTP (no browser): they run everywhere.

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/server"
	"github.com/tokenbroker/tokenbroker/server/servertest"
)

type client struct {
	t    *testing.T
	base string
	http *http.Client
}

func newClient(t *testing.T, base string) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: t, base: base, http: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (c *client) do(method, path string, form url.Values, hdr map[string]string) (*http.Response, string) {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, html string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(html)
	if m == nil {
		t.Fatal("no CSRF field in the page")
	}
	return m[1]
}

func (c *client) signIn(form url.Values) *http.Response {
	c.t.Helper()
	_, page := c.do(http.MethodGet, "/ui/signin", nil, nil)
	form.Set("csrf", csrfOf(c.t, page))
	resp, _ := c.do(http.MethodPost, "/ui/signin", form, map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "null"})
	return resp
}

func TestSecurityHeadersAndCookie(t *testing.T) {
	env := servertest.Start(t)
	c := newClient(t, env.HTTPBase)
	resp, page := c.do(http.MethodGet, "/ui/signin", nil, nil)
	h := resp.Header
	for k, want := range map[string]string{
		"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	csp := h.Get("Content-Security-Policy")
	for _, d := range []string{"default-src 'self'", "script-src 'self'", "object-src 'none'", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'self'"} {
		if !strings.Contains(csp, d) {
			t.Errorf("CSP %q lacks %q", csp, d)
		}
	}
	if strings.Contains(page, "<script>") || strings.Contains(page, "style=") || strings.Contains(page, " on") && regexp.MustCompile(`\son[a-z]+=`).MatchString(page) {
		t.Error("the page has inline script or style")
	}

	resp = c.signIn(url.Values{"mode": {"token"}, "token": {env.AdminToken}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/tokens" {
		t.Fatalf("sign in: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	var sess *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "tb_session" {
			sess = ck
		}
	}
	if sess == nil || !sess.HttpOnly || sess.SameSite != http.SameSiteStrictMode || sess.Path != "/ui/" || sess.Secure {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/ui/, not Secure without TLS", sess)
	}
	if strings.Contains(sess.Value, env.AdminClientID) || strings.Contains(sess.Value, "AstraCS") {
		t.Fatal("the session cookie carries the credential")
	}
}

func TestCSRFRefused(t *testing.T) {
	env := servertest.Start(t)
	victim := env.CreateToken(t, env.AdminToken, "b4ed0e9e-67e8-47b6-8b58-c6629be961a9")
	c := newClient(t, env.HTTPBase)
	c.signIn(url.Values{"mode": {"token"}, "token": {env.AdminToken}})
	_, page := c.do(http.MethodGet, "/ui/tokens", nil, nil)
	token := csrfOf(t, page)
	path := "/ui/tokens/" + victim.ClientId + "/delete"

	for name, tc := range map[string]struct {
		form url.Values
		hdr  map[string]string
	}{
		"no token":         {url.Values{}, nil},
		"wrong token":      {url.Values{"csrf": {"x" + token}}, nil},
		"cross-site":       {url.Values{"csrf": {token}}, map[string]string{"Sec-Fetch-Site": "cross-site"}},
		"same-site":        {url.Values{"csrf": {token}}, map[string]string{"Sec-Fetch-Site": "same-site"}},
		"foreign origin":   {url.Values{"csrf": {token}}, map[string]string{"Origin": "http://evil.example"}},
		"null origin only": {url.Values{"csrf": {token}}, map[string]string{"Origin": "null"}},
	} {
		if resp, body := c.do(http.MethodPost, path, tc.form, tc.hdr); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %d %s, want 403", name, resp.StatusCode, body)
		}
	}
	if a := check(t, env, victim.Token, "db-table-select", "drn:astra:org:"+env.OrgID+":db:x:keyspace:k:table:t"); !a.Allowed {
		t.Fatal("a refused CSRF attempt deleted the token")
	}
	// A sign-in form posted without its pre-session token is refused too.
	if resp, _ := newClient(t, env.HTTPBase).do(http.MethodPost, "/ui/signin", url.Values{"mode": {"token"}, "token": {env.AdminToken}}, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("sign-in without CSRF token: %d", resp.StatusCode)
	}
	// The real thing works.
	if resp, _ := c.do(http.MethodPost, path, url.Values{"csrf": {token}}, map[string]string{"Sec-Fetch-Site": "same-origin"}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("delete with the CSRF token: %d", resp.StatusCode)
	}
	if a := check(t, env, victim.Token, "db-table-select", "drn:astra:org:"+env.OrgID+":db:x:keyspace:k:table:t"); a.Allowed {
		t.Fatal("token still valid after the console deleted it")
	}
}

func TestPasswordSessionAndNavigation(t *testing.T) {
	env := servertest.Start(t)
	// A UI View Only user: no tokens, roles, streaming or audit pages.
	env.CreateUser(t, env.AdminToken, "viewer", "a long password 1", "71cdcd84-c6d9-55d7-b8cd-a6a6969e530a")
	c := newClient(t, env.HTTPBase)
	if resp := c.signIn(url.Values{"mode": {"password"}, "username": {"viewer"}, "password": {"wrong password 12"}}); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", resp.StatusCode)
	}
	resp := c.signIn(url.Values{"mode": {"password"}, "username": {"viewer"}, "password": {"a long password 1"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/databases" {
		t.Fatalf("sign in: %d → %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	_, page := c.do(http.MethodGet, "/ui/databases", nil, nil)
	for _, hidden := range []string{`href="/ui/tokens"`, `href="/ui/roles"`, `href="/ui/streaming"`, `href="/ui/audit"`} {
		if strings.Contains(page, hidden) {
			t.Errorf("page offers %s to a UI View Only user", hidden)
		}
	}
	// Forcing the way to a refused page shows the API's message.
	_, page = c.do(http.MethodGet, "/ui/tokens", nil, nil)
	if !strings.Contains(page, `id="api-error"`) || !strings.Contains(page, "org-token-read") {
		t.Fatalf("refused page does not show the API's message: %.400s", page)
	}
	// Sign out revokes the session's auth token (audited as a revocation).
	if resp, _ := c.do(http.MethodPost, "/ui/signout", url.Values{"csrf": {csrfOf(t, page)}}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign out: %d", resp.StatusCode)
	}
	code, body, _ := env.REST(t, http.MethodGet, "/v2/audit/events?pageSize=1000", env.AdminToken, nil)
	if code != http.StatusOK || !regexp.MustCompile(`"action":"AuthService.RevokeAuthToken"[^}]*"outcome":"success"`).MatchString(string(body)) {
		t.Fatalf("no successful RevokeAuthToken in the audit log: %d %.600s", code, body)
	}
	if resp, _ := c.do(http.MethodGet, "/ui/databases", nil, nil); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/signin" {
		t.Fatalf("after sign out: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestUIOff(t *testing.T) {
	env := servertest.Start(t, servertest.WithConfig(func(c *server.Config) { c.DisableUI = true }))
	code, _, _ := env.REST(t, http.MethodGet, "/ui/signin", "", nil)
	if code != http.StatusNotFound {
		t.Fatalf("GET /ui/signin with the console off: %d, want 404", code)
	}
	if code, _, _ := env.REST(t, http.MethodGet, "/v2/clientIdSecrets", env.AdminToken, nil); code != http.StatusOK {
		t.Fatalf("API with the console off: %d", code)
	}
}

func TestRoleCreateEditThroughConsole(t *testing.T) {
	env := servertest.Start(t)
	c := newClient(t, env.HTTPBase)
	c.signIn(url.Values{"mode": {"token"}, "token": {env.AdminToken}})
	_, page := c.do(http.MethodGet, "/ui/roles/new", nil, nil)
	tok := csrfOf(t, page)
	same := map[string]string{"Sec-Fetch-Site": "same-origin"}
	org := "drn:astra:org:" + env.OrgID

	// A bad DRN: the API's 400 message is shown and nothing is created.
	resp, body := c.do(http.MethodPost, "/ui/roles/new", url.Values{"csrf": {tok}, "name": {"r1"}, "resources": {org + ":db"}, "action": {"org-db-view"}}, same)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "missing database id") {
		t.Fatalf("bad DRN: %d %.300s", resp.StatusCode, body)
	}
	resp, _ = c.do(http.MethodPost, "/ui/roles/new", url.Values{"csrf": {tok}, "name": {"r1"}, "description": {"d"}, "resources": {org + "\n" + org + ":db:*"}, "action": {"org-db-view", "db-cql"}}, same)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/ui/roles/") {
		t.Fatalf("create role: %d %s", resp.StatusCode, loc)
	}
	id := strings.TrimSuffix(strings.TrimPrefix(loc, "/ui/roles/"), "?saved=1")
	resp, _ = c.do(http.MethodPost, "/ui/roles/"+id+"/edit", url.Values{"csrf": {tok}, "name": {"r2"}, "resources": {org + ":db:*"}, "action": {"db-rest"}}, same)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("edit role: %d", resp.StatusCode)
	}
	code, raw, _ := env.REST(t, http.MethodGet, "/v2/organizations/roles/"+id, env.AdminToken, nil)
	if code != http.StatusOK || !strings.Contains(string(raw), `"Name":"r2"`) || !strings.Contains(string(raw), `"actions":["db-rest"]`) {
		t.Fatalf("role after edit: %d %s", code, raw)
	}
}
