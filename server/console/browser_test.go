package console_test

// End-to-end tests of the console in a real browser: headless Chromium
// driven over the DevTools protocol (chromedp) against a real broker
// (servertest: real gRPC and REST listeners over a bbolt file). They skip
// when no Chromium is installed; CI installs Debian's chromium.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/tokenbroker/tokenbroker/server/servertest"
)

// chromiumPath finds a Chromium binary, or "".
func chromiumPath() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	return ""
}

// screenshotDir is where the tests save one PNG per page: the directory
// in CONSOLE_SCREENSHOT_DIR, else a fresh temporary one (logged).
// CONSOLE_UPDATE_DOCS=1 also writes docs/console/<page>.png.
func screenshotDir(t *testing.T) string {
	if d := os.Getenv("CONSOLE_SCREENSHOT_DIR"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	d, err := os.MkdirTemp("", "tokenbroker-console-screenshots-")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

type browser struct {
	t       *testing.T
	ctx     context.Context
	base    string
	shots   string
	docs    bool
	timeout time.Duration
}

func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		t.Skip("no chromium binary found (install Debian's chromium package, or set CHROMIUM); skipping the browser tests")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b := &browser{t: t, ctx: ctx, base: base, shots: screenshotDir(t), docs: os.Getenv("CONSOLE_UPDATE_DOCS") != "", timeout: 20 * time.Second}
	t.Logf("screenshots: %s", b.shots)
	// The first run starts the browser; no timeout on it (it would bound
	// the browser's life), the later steps each get one.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return b
}

// do runs steps with a bounded timeout, failing the test on error.
func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		ctx, cancel := context.WithTimeout(b.ctx, b.timeout)
		err = chromedp.Do(ctx, steps...)
		cancel()
		// Right after a navigation the protocol's DOM view can still name
		// the old page's nodes; the action did not happen, so retry it.
		if err == nil || !strings.Contains(err.Error(), "No node with given id") && !strings.Contains(err.Error(), "Could not find node") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		b.t.Fatalf("%s: %v (at %s)", what, err, b.location())
	}
}

func (b *browser) location() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	l, _ := chromedp.Run(ctx, chromedp.Location())
	txt, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText.slice(0, 200).replace(/\s+/g, " ") : ""`))
	return l + " showing: " + txt
}

// text returns the trimmed textContent of the first element matching sel
// (read by script, so it never names a stale protocol node).
func (b *browser) text(sel string) string {
	b.t.Helper()
	q, _ := json.Marshal(sel)
	ctx, cancel := context.WithTimeout(b.ctx, b.timeout)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(function(){var e=document.querySelector(`+string(q)+`); if(!e){throw new Error("no element "+`+string(q)+`)} return e.textContent})()`))
	if err != nil {
		b.t.Fatalf("text of %s: %v (at %s)", sel, err, b.location())
	}
	return strings.TrimSpace(s)
}

func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, b.timeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("evaluate %q: %v", expr, err)
	}
	return v
}

// waitFor evaluates a JS condition until it is true, bounded by the
// timeout. Errors while a navigation replaces the page are retried.
func (b *browser) waitFor(what, cond string) {
	b.t.Helper()
	deadline := time.Now().Add(b.timeout)
	var lastErr error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](cond))
		cancel()
		if err == nil && ok {
			return
		}
		lastErr = err
		time.Sleep(50 * time.Millisecond)
	}
	b.t.Fatalf("wait for %s (%s): not true within %v (last error %v, at %s)", what, cond, b.timeout, lastErr, b.location())
}

// loaded waits for a finished page at path (after a form post, a redirect
// or a script's navigation).
func (b *browser) loaded(path string) {
	b.t.Helper()
	b.waitFor("page "+path, fmt.Sprintf(`document.readyState === "complete" && location.pathname === %q && !!document.querySelector("main")`, path))
}

func (b *browser) open(path string) {
	b.t.Helper()
	b.do("open "+path, chromedp.Navigate(b.base+path))
}

// choose selects an option and fires change, as a user's pick would.
func (b *browser) choose(sel, value string) {
	b.t.Helper()
	eval[bool](b, fmt.Sprintf(`(function(){var s=document.querySelector(%q); s.value=%q; s.dispatchEvent(new Event("change",{bubbles:true})); return s.value===%q})()`, sel, value, value))
}

func (b *browser) shot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, b.timeout)
	defer cancel()
	eval[bool](b, `window.scrollTo(0, 0), true`)
	shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(b.shots, name+".png"), shot, 0o644); err != nil {
		b.t.Fatal(err)
	}
	if b.docs && docPages[name] {
		writeDocPNG(b.t, filepath.Join("..", "..", "docs", "console", name+".png"), shot)
	}
}

// docPages are the screenshots committed under docs/console/ (one per
// page); CONSOLE_UPDATE_DOCS=1 rewrites them.
var docPages = map[string]bool{
	"signin": true, "tokens": true, "token-details": true, "token-delete": true, "roles": true, "role-edit": true,
	"streaming-tenants": true, "streaming": true, "databases": true, "database": true, "audit": true, "phone-tokens": true,
}

// writeDocPNG re-encodes a screenshot at the best PNG compression, to
// keep the committed files small.
func writeDocPNG(t *testing.T, path string, raw []byte) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	if buf.Len() > len(raw) {
		buf.Reset()
		buf.Write(raw)
	}
	if buf.Len() > 150<<10 {
		t.Logf("docs screenshot %s is %d KB", path, buf.Len()>>10)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (b *browser) signIn(token string) {
	b.t.Helper()
	b.open("/ui/")
	b.loaded("/ui/signin")
	b.do("sign in",
		chromedp.SendKeys(chromedp.CSS("#token"), token),
		chromedp.Click(chromedp.CSS("#panel-token button[type=submit]")),
	)
}

type checkAnswer struct {
	Allowed bool   `json:"allowed"`
	Reason  string `json:"reason"`
}

func check(t *testing.T, env *servertest.Env, cred, action, resource string) checkAnswer {
	t.Helper()
	code, body, _ := env.REST(t, http.MethodPost, "/v1/auth/check", "", map[string]string{"credential": cred, "action": action, "resource": resource})
	if code != http.StatusOK {
		t.Fatalf("check: %d %s", code, body)
	}
	var a checkAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		t.Fatal(err)
	}
	return a
}

const rwSvcAcct = "b4ed0e9e-67e8-47b6-8b58-c6629be961a9"

func TestConsoleInBrowser(t *testing.T) {
	if chromiumPath() == "" {
		t.Skip("no chromium binary found (install Debian's chromium package, or set CHROMIUM); skipping the browser tests")
	}
	env := servertest.Start(t)
	dbID := seedUsage(t, env)
	b := newBrowser(t, env.HTTPBase)

	// Sign-in page, then sign in with the bootstrap token.
	b.open("/ui/signin")
	b.loaded("/ui/signin")
	b.shot("signin")
	b.signIn(env.AdminToken)
	b.loaded("/ui/tokens")
	if who := b.text(".who"); !strings.Contains(who, env.AdminClientID) {
		t.Fatalf("header shows %q, want the admin client ID", who)
	}

	// Generate: the role's permissions are shown before generating; the
	// description is an XSS attempt.
	const xss = `<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>"'&`
	b.choose("#role", rwSvcAcct)
	b.waitFor("role permissions", `!document.querySelector('[data-role-perms="`+rwSvcAcct+`"]').hidden`)
	if perms := b.text(`[data-role-perms="` + rwSvcAcct + `"]`); !strings.Contains(perms, "db-table-select") || !strings.Contains(perms, "drn:astra:org:__ORG_ID__") {
		t.Fatalf("role permissions shown: %q", perms)
	}
	b.do("generate", chromedp.SendKeys(chromedp.CSS("#description"), xss), chromedp.Click(chromedp.CSS("#generate")))
	b.waitFor("token dialog", `!!document.querySelector("#secret-dialog[open]")`)
	clientID, secret, token := b.text("#secret-clientId"), b.text("#secret-secret"), b.text("#secret-token")
	if !strings.HasPrefix(token, "AstraCS:"+clientID+":") || len(secret) != 64 {
		t.Fatalf("dialog shows clientId %q secret %q token %q", clientID, secret, token)
	}
	b.shot("token-details")

	// The downloads carry the same details (the JSON and CSV the page builds).
	eval[bool](b, `(function(){var o=URL.createObjectURL; window.__blobs=[]; URL.createObjectURL=function(x){window.__blobs.push(x); return o.call(URL,x)}; return true})()`)
	b.do("download JSON", chromedp.Click(chromedp.CSS(`[data-download="json"]`)))
	b.do("download CSV", chromedp.Click(chromedp.CSS(`[data-download="csv"]`)))
	downloaded := eval[[]string](b, `Promise.all(window.__blobs.map(function(x){return x.text()}))`)
	if len(downloaded) != 2 {
		t.Fatalf("downloads: %d, want 2", len(downloaded))
	}
	var dj map[string]string
	if err := json.Unmarshal([]byte(downloaded[0]), &dj); err != nil || dj["token"] != token || dj["secret"] != secret || dj["clientId"] != clientID {
		t.Fatalf("JSON download %q (%v)", downloaded[0], err)
	}
	if !strings.Contains(downloaded[1], `"`+token+`"`) || !strings.HasPrefix(downloaded[1], `"clientId","secret","token"`) {
		t.Fatalf("CSV download %q", downloaded[1])
	}

	// The token works against the API.
	tableDRN := "drn:astra:org:" + env.OrgID + ":db:" + dbID + ":keyspace:ks1:table:t"
	if a := check(t, env, token, "db-table-select", tableDRN); !a.Allowed {
		t.Fatalf("Check of the new token: %+v", a)
	}
	if code, body, _ := env.REST(t, http.MethodGet, "/v2/databases", token, nil); code != http.StatusOK {
		t.Fatalf("GET /v2/databases with the new token: %d %s", code, body)
	}

	// Closing the dialog wipes the secret: the page that follows is a plain
	// GET without it.
	b.do("close dialog", chromedp.Click(chromedp.CSS("#secret-close")))
	b.waitFor("dialog gone", `!document.querySelector("#secret-dialog")`)
	b.loaded("/ui/tokens")
	if html := eval[string](b, `document.documentElement.outerHTML`); strings.Contains(html, secret) || strings.Contains(html, token) {
		t.Fatal("the secret is still in the page after the dialog closed")
	}
	if eval[bool](b, `window.localStorage.length > 0 || window.sessionStorage.length > 0`) {
		t.Fatal("the console wrote to web storage")
	}
	// The description is shown literally, nothing ran.
	if got := b.text(`tr[data-client-id="` + clientID + `"] td.desc`); got != xss {
		t.Fatalf("description shown as %q, want %q literally", got, xss)
	}
	if eval[bool](b, `window.__xss !== undefined || document.querySelector("td.desc img, td.desc script") !== null`) {
		t.Fatal("XSS in a description was not escaped")
	}
	b.shot("tokens")

	// The session cookie is HttpOnly: page script cannot read it.
	if c := eval[string](b, `document.cookie`); c != "" {
		t.Fatalf("document.cookie = %q, want no script-visible cookie", c)
	}

	// A CSRF attempt from another origin: a page on another port posts a
	// delete of the new token to the console. Refused; the token lives.
	evil := evilSite(t, env.HTTPBase+"/ui/tokens/"+clientID+"/delete")
	b.do("open the other site", chromedp.Navigate(evil+"/"))
	b.waitFor("cross-site post answered", `location.pathname.indexOf("/ui/tokens/") === 0 && document.readyState === "complete"`)
	if body := eval[string](b, `document.body.innerText`); !strings.Contains(body, "refused") && !strings.Contains(body, "No session") {
		t.Fatalf("cross-site delete answered %q", body)
	}
	// Same origin but without the session's CSRF token: refused too.
	b.open("/ui/tokens")
	b.loaded("/ui/tokens")
	if st := eval[float64](b, `fetch("/ui/tokens/`+clientID+`/delete", {method: "POST", body: new URLSearchParams({csrf: "forged"})}).then(function(r){return r.status})`); st != http.StatusForbidden {
		t.Fatalf("same-origin post with a forged CSRF token: %v, want 403", st)
	}
	if a := check(t, env, token, "db-table-select", tableDRN); !a.Allowed {
		t.Fatalf("the token was deleted by a CSRF attempt: %+v", a)
	}

	// Delete with confirmation; Check refuses the token right after.
	b.do("delete", chromedp.Click(chromedp.CSS(`tr[data-client-id="`+clientID+`"] a.danger-outline`)))
	b.loaded("/ui/tokens/" + clientID + "/delete")
	b.shot("token-delete")
	b.do("confirm delete", chromedp.Click(chromedp.CSS("#confirm-delete")))
	b.waitFor("deleted notice", `!!document.querySelector("#notice")`)
	if a := check(t, env, token, "db-table-select", tableDRN); a.Allowed || a.Reason != "CREDENTIAL_INVALID" {
		t.Fatalf("Check after deleting in the console: %+v, want CREDENTIAL_INVALID", a)
	}
	if n := eval[float64](b, `document.querySelectorAll('tr[data-client-id="`+clientID+`"]').length`); n != 0 {
		t.Fatal("deleted token still listed")
	}

	// A refused action shows the API's message: an expiry in the past.
	b.choose("#role", rwSvcAcct)
	b.do("expiry in the past", chromedp.SetValue(chromedp.CSS("#expiry"), "2001-01-01T00:00"), chromedp.Click(chromedp.CSS("#generate")))
	b.waitFor("API error", `!!document.querySelector("#api-error")`)
	if msg := b.text("#api-error"); !strings.Contains(msg, "tokenExpiry") {
		t.Fatalf("refusal shown as %q", msg)
	}

	testRoles(t, b, env)
	testStreaming(t, b, env)
	testDatabasesAndAudit(t, b, env, dbID)

	// Phone width: no page is wider than the viewport.
	b.do("phone viewport", chromedp.EmulateViewport(390, 844))
	for _, path := range []string{"/ui/roles", "/ui/roles/new", "/ui/streaming", "/ui/streaming/acme", "/ui/databases", "/ui/databases/" + dbID, "/ui/audit", "/ui/tokens"} {
		b.open(path)
		b.loaded(path)
		if w := eval[float64](b, `document.documentElement.scrollWidth`); w > 390 {
			wide := eval[[]string](b, `Array.from(document.querySelectorAll("body *")).filter(function(e){return e.getBoundingClientRect().right > 392 && !e.closest(".table-wrap")}).slice(0,8).map(function(e){return e.tagName+"."+e.className+"#"+e.id})`)
			t.Fatalf("%s is %v px wide at a 390 px viewport: %v", path, w, wide)
		}
	}
	b.shot("phone-tokens")
	b.do("desktop viewport", chromedp.EmulateViewport(1280, 900))

	// Sign out ends the session: the next page asks to sign in.
	b.do("sign out", chromedp.Click(chromedp.CSS(".signout button")))
	b.loaded("/ui/signin")
	b.open("/ui/tokens")
	b.loaded("/ui/signin")
}

// seedUsage registers a database and makes Checks against it over four
// months, so the usage chart has something to draw.
func seedUsage(t *testing.T, env *servertest.Env) string {
	t.Helper()
	code, body, _ := env.REST(t, http.MethodPost, "/v2/databases", env.AdminToken, map[string]any{
		"name": "orders", "keyspace": "ks1", "cloudProvider": "GCP", "tier": "serverless", "region": "us-east1"})
	if code != http.StatusCreated {
		t.Fatalf("create database: %d %s", code, body)
	}
	var db struct{ ID, Token string }
	if err := json.Unmarshal(body, &db); err != nil {
		t.Fatal(err)
	}
	drn := "drn:astra:org:" + env.OrgID + ":db:" + db.ID + ":keyspace:ks1:table:t"
	env.Clock.Advance(-90 * 24 * time.Hour)
	for month := 0; month < 4; month++ {
		for i := 0; i < 4+month*3; i++ {
			check(t, env, db.Token, "db-table-select", drn)
		}
		for i := 0; i < 2+month; i++ {
			check(t, env, db.Token, "db-table-modify", drn)
		}
		check(t, env, db.Token, "db-table-drop", drn)
		if month < 3 {
			env.Clock.Advance(30 * 24 * time.Hour)
		}
	}
	return db.ID
}

// evilSite serves a page on another origin that posts to target as soon
// as it loads (a CSRF attempt).
func evilSite(t *testing.T, target string) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<!doctype html><form id="f" method="post" action="%s"><input name="csrf" value="guess"></form><script>document.getElementById("f").submit()</script>`, target)
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + lis.Addr().String()
}

func testRoles(t *testing.T, b *browser, env *servertest.Env) {
	b.open("/ui/roles")
	b.loaded("/ui/roles")
	b.shot("roles")
	b.open("/ui/roles/new")
	b.loaded("/ui/roles/new")
	// Resources are checked against the DRN grammar as you type.
	b.do("bad DRN", chromedp.Clear(chromedp.CSS("#resources")), chromedp.SendKeys(chromedp.CSS("#resources"), "drn:astra:org:"+env.OrgID+":db"))
	b.waitFor("DRN problem shown", `document.querySelector("[data-drn-status]").textContent.indexOf("missing database id") >= 0`)
	b.do("good DRN", chromedp.SendKeys(chromedp.CSS("#resources"), ":*"))
	b.waitFor("DRN accepted", `document.querySelector("[data-drn-status]").textContent.indexOf("valid") >= 0 && document.querySelector("#resources").getAttribute("aria-invalid") === "false"`)
	b.do("fill role",
		chromedp.SendKeys(chromedp.CSS("#role-name"), `<b>ops</b> readers`),
		chromedp.SendKeys(chromedp.CSS("#role-description"), "reads databases"),
	)
	// Checkboxes are toggled with the keyboard (focus + space), which does
	// not depend on where the layout put them.
	for _, a := range []string{"org-db-view", "db-table-select"} {
		sel := `input[name=action][value="` + a + `"]`
		b.do("check "+a, chromedp.Focus(chromedp.CSS(sel)), chromedp.KeyEvent(" "))
		b.waitFor(a+" checked", `document.querySelector('`+sel+`').checked`)
	}
	b.shot("role-edit")
	b.do("save role", chromedp.Click(chromedp.CSS("#save-role")))
	b.waitFor("role saved", `location.pathname.indexOf("/ui/roles/") === 0 && !!document.querySelector("#notice")`)
	if h := b.text("h1"); !strings.Contains(h, "<b>ops</b> readers") {
		t.Fatalf("role page heading %q", h)
	}
	b.shot("role")
	// Delete it again through the confirmation page.
	b.do("delete role", chromedp.Click(chromedp.CSS("a.danger-outline")))
	b.waitFor("role confirm", `!!document.querySelector("#confirm-delete")`)
	b.do("confirm role delete", chromedp.Click(chromedp.CSS("#confirm-delete")))
	b.loaded("/ui/roles")
	if eval[bool](b, `document.querySelector("#roles-table").innerText.indexOf("ops</b> readers") >= 0`) {
		t.Fatal("deleted role still listed")
	}
}

func testStreaming(t *testing.T, b *browser, env *servertest.Env) {
	b.open("/ui/streaming")
	b.loaded("/ui/streaming")
	b.do("create tenant", chromedp.SendKeys(chromedp.CSS("#tenantName"), "acme"), chromedp.Click(chromedp.CSS("#newtenant-h ~ form button[type=submit]")))
	b.waitFor("tenant dialog", `!!document.querySelector("#secret-dialog[open]")`)
	b.do("close tenant dialog", chromedp.Click(chromedp.CSS("#secret-close")))
	b.loaded("/ui/streaming/acme")

	// One token with each expiration; "never" shows the warning first.
	created := map[string]string{}
	for _, exp := range []string{"7d", "30d", "90d", "1y", "never"} {
		b.choose("#exp", exp)
		warn := eval[bool](b, `!document.querySelector("#never-warning").hidden`)
		if warn != (exp == "never") {
			t.Fatalf("never-expires warning shown=%v for %s", warn, exp)
		}
		if exp == "never" {
			b.shot("streaming-tenant")
		}
		b.do("create pulsar token "+exp, chromedp.Click(chromedp.CSS("#create-pulsar-token")))
		b.waitFor("pulsar dialog", `!!document.querySelector("#secret-dialog[open]")`)
		id, jwt := b.text(`[data-field="id"]`), b.text("#secret-token")
		if strings.Count(jwt, ".") != 2 {
			t.Fatalf("pulsar token %q", jwt)
		}
		if exp == "7d" {
			b.shot("pulsar-token-details")
		}
		created[exp] = id + " " + jwt
		if exp == "30d" {
			// Keyboard: focus is in the dialog, Escape closes it.
			if !eval[bool](b, `document.querySelector("#secret-dialog").contains(document.activeElement)`) {
				t.Fatal("focus is not in the dialog")
			}
			b.do("escape closes the dialog", chromedp.KeyEvent(kb.Escape))
		} else {
			b.do("close pulsar dialog", chromedp.Click(chromedp.CSS("#secret-close")))
		}
		b.waitFor("dialog gone", `!document.querySelector("#secret-dialog")`)
		b.loaded("/ui/streaming/acme")
	}
	// The API agrees on each expiry.
	code, body, _ := env.REST(t, http.MethodGet, "/v2/streaming/tenants/acme/tokens", env.AdminToken, nil)
	if code != http.StatusOK {
		t.Fatalf("list pulsar tokens: %d %s", code, body)
	}
	var claims []map[string]any
	if err := json.Unmarshal(body, &claims); err != nil {
		t.Fatal(err)
	}
	want := map[string]time.Duration{"7d": 7 * 24 * time.Hour, "30d": 30 * 24 * time.Hour, "90d": 90 * 24 * time.Hour, "1y": 365 * 24 * time.Hour, "never": 0}
	for exp, d := range want {
		id := strings.Fields(created[exp])[0]
		var found map[string]any
		for _, c := range claims {
			if c["tokenid"] == id {
				found = c
			}
		}
		if found == nil {
			t.Fatalf("token %s (%s) not listed by the API", id, exp)
		}
		iat, _ := found["iat"].(float64)
		gotExp, has := found["exp"].(float64)
		switch {
		case d == 0 && has:
			t.Fatalf("never-expiring token has exp %v", gotExp)
		case d != 0 && time.Duration(gotExp-iat)*time.Second != d:
			t.Fatalf("%s token: exp-iat = %v, want %v", exp, time.Duration(gotExp-iat)*time.Second, d)
		}
	}
	if n := eval[float64](b, `document.querySelectorAll("#pulsar-tokens-table tbody tr").length`); n != 6 {
		t.Fatalf("%v Pulsar tokens listed, want 6 (the tenant's first and five)", n)
	}
	if !strings.Contains(b.text("#broker-conf"), "tokenPublicKey=data:;base64,") {
		t.Fatal("tokenPublicKey not shown")
	}
	b.shot("streaming")

	// Delete the 7-day token with the reminder; Check refuses it.
	parts := strings.Fields(created["7d"])
	id, jwt := parts[0], parts[1]
	resource := "drn:astra:org:" + env.OrgID + ":stream:acme"
	b.do("delete pulsar token", chromedp.Click(chromedp.CSS(`tr[data-token-id="`+id+`"] a.danger-outline`)))
	b.waitFor("reminder", `!!document.querySelector("#confirm-delete")`)
	if w := b.text(".alert.warning"); !strings.Contains(w, "no longer be able to connect") {
		t.Fatalf("delete reminder %q", w)
	}
	b.do("confirm", chromedp.Click(chromedp.CSS("#confirm-delete")))
	b.waitFor("deleted", `location.pathname === "/ui/streaming/acme" && !!document.querySelector("#notice")`)
	if a := check(t, env, jwt, "org-stream-manage", resource); a.Allowed {
		t.Fatalf("Check of a deleted Pulsar token: %+v", a)
	}
	b.open("/ui/streaming")
	b.loaded("/ui/streaming")
	b.shot("streaming-tenants")
}

func testDatabasesAndAudit(t *testing.T, b *browser, env *servertest.Env, dbID string) {
	b.open("/ui/databases")
	b.loaded("/ui/databases")
	b.shot("databases")
	b.open("/ui/databases/" + dbID)
	b.loaded("/ui/databases/" + dbID)
	if n := eval[float64](b, `document.querySelectorAll("#usage-chart rect.bar").length`); n != 18 {
		t.Fatalf("usage chart has %v bars, want 6 months × 3", n)
	}
	// The current month: 13 reads, 5 writes, 1 error from seedUsage, plus
	// the two allowed Checks and the refused one of the console's token.
	cells := eval[[]string](b, `Array.from(document.querySelectorAll("#usage-table tbody tr:last-child td")).map(function(c){return c.textContent})`)
	if strings.Join(cells[1:], " ") != "15 5 2" {
		t.Fatalf("current month row %q, want reads 15, writes 5, errors 2", cells)
	}
	b.shot("database")

	b.open("/ui/audit?pageSize=5")
	b.loaded("/ui/audit")
	if n := eval[float64](b, `document.querySelectorAll("#audit-table tbody tr").length`); n != 5 {
		t.Fatalf("%v audit rows on a page of 5", n)
	}
	first := b.text("#audit-table tbody tr td")
	b.do("next page", chromedp.Click(chromedp.CSS("#next-page")))
	b.waitFor("next page", `location.search.indexOf("pageToken") >= 0 && document.readyState === "complete"`)
	if next := b.text("#audit-table tbody tr td"); next == first {
		t.Fatal("next page shows the same events")
	}
	b.open("/ui/audit?q=DeleteToken")
	b.loaded("/ui/audit")
	rows := eval[[]string](b, `Array.from(document.querySelectorAll("#audit-table tbody tr")).map(function(r){return r.innerText})`)
	if len(rows) == 0 {
		t.Fatal("filter DeleteToken matched nothing")
	}
	for _, r := range rows {
		if !strings.Contains(r, "DeleteToken") {
			t.Fatalf("filtered row %q", r)
		}
	}
	b.do("shorter viewport", chromedp.EmulateViewport(1280, 760)) // keeps the committed PNG small
	b.open("/ui/audit?pageSize=12")
	b.loaded("/ui/audit")
	b.shot("audit")
	b.do("desktop viewport", chromedp.EmulateViewport(1280, 900))
}
