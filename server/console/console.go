// Package console serves the token console: server-rendered pages under
// /ui/ on the REST listener. The console is a client of the REST facade,
// never a side door: every page's data and every action is an in-process
// call through the facade's own http.Handler with the signed-in user's
// credential, so it passes the same authentication, authorization table,
// audit log and throttling as curl would. See docs/console.md.
package console

import (
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Prefix is where the console is mounted.
const Prefix = "/ui/"

// Session bounds.
const (
	maxSessions     = 1000
	sessionIdle     = 30 * time.Minute
	sessionLifetime = 12 * time.Hour
	cookieName      = "tb_session"
	loginCookieName = "tb_login"
)

// securityHeaders are set on every console response. The CSP forbids
// inline script and style, plugins, framing, <base> and foreign form
// targets: an injected value cannot run, restyle the page or post
// elsewhere.
var securityHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
		"object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
	"X-Frame-Options":              "DENY",
	"X-Content-Type-Options":       "nosniff",
	"Referrer-Policy":              "no-referrer",
	"Cache-Control":                "no-store",
	"Cross-Origin-Opener-Policy":   "same-origin",
	"Cross-Origin-Resource-Policy": "same-origin",
}

// Config configures the console.
type Config struct {
	// API is the REST facade's handler; every call goes through it.
	API http.Handler
	// Now is the clock for sessions and the usage chart's months.
	Now    func() time.Time
	Logger *slog.Logger
}

// Console is the /ui/ handler.
type Console struct {
	api      http.Handler
	now      func() time.Time
	log      *slog.Logger
	sessions *sessions
	pages    map[string]*template.Template
	mux      *http.ServeMux
}

// New builds the console.
func New(cfg Config) (*Console, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	c := &Console{
		api: cfg.API, now: cfg.Now, log: cfg.Logger,
		sessions: newSessions(maxSessions, sessionIdle, sessionLifetime, cfg.Now),
		pages:    map[string]*template.Template{},
		mux:      http.NewServeMux(),
	}
	if err := c.parseTemplates(); err != nil {
		return nil, err
	}
	static, _ := fs.Sub(staticFS, "static")
	c.mux.Handle("GET /ui/static/", http.StripPrefix("/ui/static/", http.FileServerFS(static)))
	c.routes()
	return c, nil
}

func (c *Console) parseTemplates() error {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return err
	}
	funcs := template.FuncMap{
		"fmtTime":  fmtTime,
		"pathEsc":  url.PathEscape,
		"join":     strings.Join,
		"split":    strings.Fields,
		"roleName": func(m map[string]string, id string) string { return roleLabel(m, id) },
	}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return err
		}
		c.pages[base] = t
	}
	return nil
}

// ServeHTTP sets the security headers and dispatches.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	for k, v := range securityHeaders {
		h.Set(k, v)
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead && !sameOrigin(r) {
		c.refuse(w, r, http.StatusForbidden, "Cross-site request refused.")
		return
	}
	c.mux.ServeHTTP(w, r)
}

// sameOrigin is the first CSRF barrier (the synchronizer token is the
// second): a state-changing request must come from a page of this origin,
// as browsers state in Sec-Fetch-Site and Origin. Clients that send
// neither (not browsers) still need the session's CSRF token.
func sameOrigin(r *http.Request) bool {
	sfs := r.Header.Get("Sec-Fetch-Site")
	if sfs != "" && sfs != "same-origin" {
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" || (o == "null" && sfs == "same-origin") {
		// Under Referrer-Policy: no-referrer, browsers send "Origin: null"
		// on form posts; Sec-Fetch-Site then vouches for the origin.
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

// refuse answers a request the console itself rejects (not the API).
func (c *Console) refuse(w http.ResponseWriter, r *http.Request, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(msg + "\n"))
}

func fmtTime(v any) string {
	var s string
	switch t := v.(type) {
	case string:
		s = t
	case *string:
		if t == nil {
			return "—"
		}
		s = *t
	case time.Time:
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	case float64:
		if t == 0 {
			return "—"
		}
		return time.Unix(int64(t), 0).UTC().Format("2006-01-02 15:04 UTC")
	default:
		return "—"
	}
	if s == "" {
		return "—"
	}
	tt, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return s
	}
	if tt.IsZero() || tt.Year() <= 1 {
		return "—"
	}
	return tt.UTC().Format("2006-01-02 15:04 UTC")
}

func roleLabel(m map[string]string, id string) string {
	if n, ok := m[id]; ok {
		return n
	}
	return id
}

// Mount returns a handler serving the console under /ui/ and everything
// else with api, the REST facade, which the console itself calls.
func Mount(api http.Handler, now func() time.Time, log *slog.Logger) (http.Handler, error) {
	c, err := New(Config{API: api, Now: now, Logger: log})
	if err != nil {
		return nil, err
	}
	// A plain prefix switch, not a ServeMux: the facade keeps seeing paths
	// exactly as sent (a ServeMux would clean and redirect them).
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/ui":
			http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
		case strings.HasPrefix(r.URL.Path, Prefix):
			c.ServeHTTP(w, r)
		default:
			api.ServeHTTP(w, r)
		}
	}), nil
}
