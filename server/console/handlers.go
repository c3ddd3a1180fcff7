package console

import (
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/tokenbroker/tokenbroker/server/policy"
)

// page is what every template receives.
type page struct {
	Title     string
	Active    string
	Nav       navigation
	Principal string
	OrgID     string
	CSRF      string
	Error     string // the API's message for a refused or failed action
	Notice    string
	Data      any
}

type handler func(w http.ResponseWriter, r *http.Request, s *session)

func (c *Console) routes() {
	m := c.mux
	m.HandleFunc("GET /ui/{$}", c.home)
	m.HandleFunc("GET /ui/signin", c.signinForm)
	m.HandleFunc("POST /ui/signin", c.signin)
	m.HandleFunc("POST /ui/signout", c.authed(c.signout))

	m.HandleFunc("GET /ui/tokens", c.authed(c.tokens))
	m.HandleFunc("POST /ui/tokens", c.authed(c.createToken))
	m.HandleFunc("GET /ui/tokens/{id}/delete", c.authed(c.confirmDeleteToken))
	m.HandleFunc("POST /ui/tokens/{id}/delete", c.authed(c.deleteToken))

	m.HandleFunc("GET /ui/roles", c.authed(c.roles))
	m.HandleFunc("GET /ui/roles/new", c.authed(c.roleForm))
	m.HandleFunc("POST /ui/roles/new", c.authed(c.saveRole))
	m.HandleFunc("GET /ui/roles/{id}", c.authed(c.role))
	m.HandleFunc("GET /ui/roles/{id}/edit", c.authed(c.roleForm))
	m.HandleFunc("POST /ui/roles/{id}/edit", c.authed(c.saveRole))
	m.HandleFunc("GET /ui/roles/{id}/delete", c.authed(c.confirmDeleteRole))
	m.HandleFunc("POST /ui/roles/{id}/delete", c.authed(c.deleteRole))

	m.HandleFunc("GET /ui/streaming", c.authed(c.tenants))
	m.HandleFunc("POST /ui/streaming", c.authed(c.createTenant))
	m.HandleFunc("GET /ui/streaming/{tenant}", c.authed(c.tenant))
	m.HandleFunc("POST /ui/streaming/{tenant}/tokens", c.authed(c.createPulsarToken))
	m.HandleFunc("GET /ui/streaming/{tenant}/tokens/{id}/delete", c.authed(c.confirmDeletePulsarToken))
	m.HandleFunc("POST /ui/streaming/{tenant}/tokens/{id}/delete", c.authed(c.deletePulsarToken))

	m.HandleFunc("GET /ui/databases", c.authed(c.databases))
	m.HandleFunc("GET /ui/databases/{id}", c.authed(c.database))

	m.HandleFunc("GET /ui/audit", c.authed(c.audit))
}

// authed resolves the session cookie (signing in otherwise) and, for
// state-changing requests, checks the session's CSRF token.
func (c *Console) authed(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var s *session
		if ck, err := r.Cookie(cookieName); err == nil {
			s = c.sessions.get(ck.Value)
		}
		if s == nil {
			if r.Method != http.MethodGet {
				c.refuse(w, r, http.StatusForbidden, "No session: sign in first.")
				return
			}
			http.Redirect(w, r, "/ui/signin", http.StatusSeeOther)
			return
		}
		if r.Method != http.MethodGet {
			tok := r.Header.Get("X-CSRF-Token")
			if tok == "" {
				tok = r.PostFormValue("csrf")
			}
			if !s.validCSRF(tok) {
				c.refuse(w, r, http.StatusForbidden, "Missing or invalid CSRF token.")
				return
			}
		}
		h(w, r, s)
	}
}

func (c *Console) newPage(s *session, title, active string) page {
	p := page{Title: title, Active: active}
	if s != nil {
		p.Nav, p.Principal, p.CSRF, p.OrgID = s.nav, s.principal, s.csrf, s.orgID
	}
	return p
}

func (c *Console) render(w http.ResponseWriter, name string, code int, p page) {
	t, ok := c.pages[name]
	if !ok {
		http.Error(w, "no such page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	if err := t.Execute(w, p); err != nil {
		c.log.Warn("console: render page", "page", name, "err", err)
	}
}

// expired handles a 401 from the API mid-session (auth token idle too
// long, token deleted): the session is useless, so end it.
func (c *Console) expired(w http.ResponseWriter, r *http.Request, err error) bool {
	if status(err) != http.StatusUnauthorized {
		return false
	}
	if ck, e := r.Cookie(cookieName); e == nil {
		c.sessions.remove(ck.Value)
	}
	clearCookie(w, r, cookieName)
	http.Redirect(w, r, "/ui/signin?expired=1", http.StatusSeeOther)
	return true
}

func (c *Console) home(w http.ResponseWriter, r *http.Request) {
	var s *session
	if ck, err := r.Cookie(cookieName); err == nil {
		s = c.sessions.get(ck.Value)
	}
	if s == nil {
		http.Redirect(w, r, "/ui/signin", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, landing(s.nav), http.StatusSeeOther)
}

func landing(n navigation) string {
	switch {
	case n.Tokens:
		return "/ui/tokens"
	case n.Roles:
		return "/ui/roles"
	case n.Streaming:
		return "/ui/streaming"
	case n.Audit && !n.Databases:
		return "/ui/audit"
	default:
		return "/ui/databases"
	}
}

// ---- sign in / out ----

type signinData struct {
	LoginCSRF string
	Mode      string
	Username  string
}

func (c *Console) signinForm(w http.ResponseWriter, r *http.Request) {
	p := c.newPage(nil, "Sign in", "signin")
	if r.URL.Query().Get("expired") != "" {
		p.Notice = "Your session ended. Sign in again."
	}
	c.renderSignin(w, r, http.StatusOK, p, signinData{Mode: "token"})
}

// renderSignin issues a fresh pre-session CSRF token (cookie + hidden
// field), so a cross-site page cannot sign a victim into its own account.
func (c *Console) renderSignin(w http.ResponseWriter, r *http.Request, code int, p page, d signinData) {
	d.LoginCSRF = randomToken()
	setCookie(w, r, loginCookieName, d.LoginCSRF)
	p.Data = d
	c.render(w, "signin", code, p)
}

type checkResponse struct {
	Allowed   bool   `json:"allowed"`
	Reason    string `json:"reason"`
	Principal *struct {
		Kind  string `json:"kind"`
		ID    string `json:"id"`
		OrgID string `json:"orgId"`
	} `json:"principal"`
}

func (c *Console) signin(w http.ResponseWriter, r *http.Request) {
	p := c.newPage(nil, "Sign in", "signin")
	mode := r.PostFormValue("mode")
	d := signinData{Mode: mode}
	ck, err := r.Cookie(loginCookieName)
	if err != nil || !(&session{csrf: ck.Value}).validCSRF(r.PostFormValue("csrf")) {
		c.refuse(w, r, http.StatusForbidden, "Missing or invalid CSRF token.")
		return
	}
	s := &session{}
	switch mode {
	case "password":
		d.Username = r.PostFormValue("username")
		var out struct {
			AuthToken string `json:"authToken"`
		}
		body := map[string]string{"username": d.Username, "password": r.PostFormValue("password")}
		if err := c.call(r, "", http.MethodPost, "/v1/auth", body, &out); err != nil {
			p.Error = err.Error()
			c.renderSignin(w, r, http.StatusUnauthorized, p, d)
			return
		}
		s.credential, s.kind = out.AuthToken, kindAuthToken
	default:
		d.Mode = "token"
		s.credential, s.kind = strings.TrimSpace(r.PostFormValue("token")), kindAppToken
		if s.credential == "" {
			p.Error = "Enter an application token (AstraCS:…)."
			c.renderSignin(w, r, http.StatusBadRequest, p, d)
			return
		}
	}
	// Check validates the credential and names its principal; it is the
	// facade's public, throttled call, so guessing tokens here costs what
	// it costs against the API.
	var chk checkResponse
	err = c.call(r, "", http.MethodPost, "/v1/auth/check", map[string]string{
		"credential": s.credential, "action": "org-read", "resource": "drn:astra:org:*",
	}, &chk)
	if err == nil && chk.Principal == nil {
		err = &apiError{Status: http.StatusUnauthorized, Message: "Unknown, expired or revoked token."}
	}
	if err != nil {
		p.Error = err.Error()
		c.renderSignin(w, r, http.StatusUnauthorized, p, d)
		return
	}
	s.principal = chk.Principal.Kind + " " + chk.Principal.ID
	s.orgID = chk.Principal.OrgID
	s.nav = c.probe(r, s.credential)
	id := c.sessions.add(s)
	setCookie(w, r, cookieName, id)
	clearCookie(w, r, loginCookieName)
	http.Redirect(w, r, landing(s.nav), http.StatusSeeOther)
}

// probe finds the pages the credential may use by trying each page's
// list call once: only a 401/403 hides a page (other errors are shown on
// the page itself).
func (c *Console) probe(r *http.Request, cred string) navigation {
	ok := func(path string) bool {
		st := status(c.call(r, cred, http.MethodGet, path, nil, nil))
		return st != http.StatusForbidden && st != http.StatusUnauthorized
	}
	return navigation{
		Tokens:    ok("/v2/clientIdSecrets"),
		Roles:     ok("/v2/organizations/roles"),
		Streaming: ok("/v2/streaming/tenants"),
		Databases: ok("/v2/databases"),
		Audit:     ok("/v2/audit/events?pageSize=1"),
	}
}

func (c *Console) signout(w http.ResponseWriter, r *http.Request, s *session) {
	if s.kind == kindAuthToken {
		// Revoke the auth token: a copy of the session (there is none
		// outside this process) would be useless too.
		if err := c.callHeaders(r, "", http.MethodDelete, "/v1/auth", nil, nil,
			map[string]string{"X-Cassandra-Token": s.credential}); err != nil && status(err) != http.StatusUnauthorized {
			c.log.Warn("console: revoke auth token at sign-out", "status", status(err))
		}
	}
	if ck, err := r.Cookie(cookieName); err == nil {
		c.sessions.remove(ck.Value)
	}
	clearCookie(w, r, cookieName)
	http.Redirect(w, r, "/ui/signin", http.StatusSeeOther)
}

func setCookie(w http.ResponseWriter, r *http.Request, name, value string) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: Prefix, HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
	})
}

func clearCookie(w http.ResponseWriter, r *http.Request, name string) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: "", Path: Prefix, HttpOnly: true, MaxAge: -1,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
	})
}

// ---- application tokens ----

type policyJSON struct {
	Description string   `json:"description"`
	Resources   []string `json:"resources"`
	Actions     []string `json:"actions"`
	Effect      string   `json:"effect"`
}

type roleJSON struct {
	ID                 string     `json:"ID"`
	Name               string     `json:"Name"`
	Policy             policyJSON `json:"Policy"`
	LastUpdateDateTime string     `json:"LastUpdateDateTime"`
	LastUpdateUserID   string     `json:"LastUpdateUserID"`
	Type               string     `json:"Type"`
}

type tokenInfo struct {
	ClientID    string   `json:"clientId"`
	Roles       []string `json:"roles"`
	GeneratedOn *string  `json:"generatedOn"`
	Description string   `json:"description"`
	TokenExpiry *string  `json:"tokenExpiry"`
	LastUsedOn  *string  `json:"lastUsedOn"`
}

type createdToken struct {
	ClientID    string   `json:"clientId"`
	Secret      string   `json:"secret"`
	OrgID       string   `json:"orgId"`
	Roles       []string `json:"roles"`
	Token       string   `json:"token"`
	GeneratedOn string   `json:"generatedOn"`
	Description string   `json:"description"`
	TokenExpiry *string  `json:"tokenExpiry"`
}

type tokensData struct {
	Tokens      []tokenInfo
	Roles       []roleJSON
	RoleNames   map[string]string
	RolesListed bool // false: the role list was refused; the picker offers the default roles
	Created     *createdToken
	Form        struct{ Role, Description, Expiry string }
}

// roleChoices lists the roles for the picker: the API's list when the
// caller may read roles, else the default roles (public, documented
// constants; the API still decides whether the caller may grant them).
func (c *Console) roleChoices(r *http.Request, s *session) ([]roleJSON, bool, error) {
	var roles []roleJSON
	err := c.call(r, s.credential, http.MethodGet, "/v2/organizations/roles", nil, &roles)
	if err == nil {
		return roles, true, nil
	}
	if status(err) != http.StatusForbidden {
		return nil, false, err
	}
	for _, d := range policy.DefaultRoles(policy.OrgPlaceholder) {
		roles = append(roles, roleJSON{ID: d.ID, Name: d.Name, Type: "default", Policy: policyJSON{
			Description: d.Description, Resources: d.Resources, Actions: d.Actions, Effect: d.Effect,
		}})
	}
	return roles, false, nil
}

func (c *Console) tokensPage(w http.ResponseWriter, r *http.Request, s *session, code int, p page, d *tokensData) {
	var list struct {
		Clients []tokenInfo `json:"clients"`
	}
	if err := c.call(r, s.credential, http.MethodGet, "/v2/clientIdSecrets", nil, &list); err != nil {
		if c.expired(w, r, err) {
			return
		}
		if p.Error == "" {
			p.Error = err.Error()
		}
	}
	// Newest first (parsed: RFC 3339 strings with trimmed fractions do not
	// sort as text).
	created := func(t tokenInfo) time.Time { v, _ := time.Parse(time.RFC3339Nano, deref(t.GeneratedOn)); return v }
	sort.SliceStable(list.Clients, func(i, j int) bool { return created(list.Clients[i]).After(created(list.Clients[j])) })
	d.Tokens = list.Clients
	roles, listed, err := c.roleChoices(r, s)
	if err != nil && p.Error == "" {
		p.Error = err.Error()
	}
	sort.SliceStable(roles, func(i, j int) bool { return strings.ToLower(roles[i].Name) < strings.ToLower(roles[j].Name) })
	d.Roles, d.RolesListed = roles, listed
	d.RoleNames = map[string]string{}
	for _, ro := range roles {
		d.RoleNames[ro.ID] = ro.Name
	}
	p.Data = d
	c.render(w, "tokens", code, p)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func (c *Console) tokens(w http.ResponseWriter, r *http.Request, s *session) {
	p := c.newPage(s, "Application tokens", "tokens")
	if id := r.URL.Query().Get("deleted"); id != "" {
		p.Notice = "Token " + id + " deleted."
	}
	c.tokensPage(w, r, s, http.StatusOK, p, &tokensData{})
}

func (c *Console) createToken(w http.ResponseWriter, r *http.Request, s *session) {
	p := c.newPage(s, "Application tokens", "tokens")
	d := &tokensData{}
	d.Form.Role, d.Form.Description, d.Form.Expiry = r.PostFormValue("role"), r.PostFormValue("description"), r.PostFormValue("expiry")
	body := map[string]any{"roles": []string{d.Form.Role}, "description": d.Form.Description}
	if d.Form.Expiry != "" {
		t, err := parseLocal(d.Form.Expiry)
		if err != nil {
			p.Error = "Expiry: " + err.Error()
			c.tokensPage(w, r, s, http.StatusBadRequest, p, d)
			return
		}
		body["tokenExpiry"] = t.Format(time.RFC3339)
	}
	var out createdToken
	if err := c.call(r, s.credential, http.MethodPost, "/v2/clientIdSecrets", body, &out); err != nil {
		if c.expired(w, r, err) {
			return
		}
		p.Error = err.Error()
		c.tokensPage(w, r, s, status(err), p, d)
		return
	}
	d.Created = &out
	d.Form.Description, d.Form.Expiry = "", ""
	c.tokensPage(w, r, s, http.StatusOK, p, d)
}

// parseLocal reads an <input type=datetime-local> value, taken as UTC.
func parseLocal(v string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", time.RFC3339} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, errors.New("want a date and time such as 2026-12-31T23:59 (UTC)")
}

type confirmData struct {
	What, ID, Action, Cancel, Warning, Button string
}

func (c *Console) confirmDeleteToken(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	p := c.newPage(s, "Delete token", "tokens")
	p.Data = confirmData{What: "application token", ID: id, Action: "/ui/tokens/" + url.PathEscape(id) + "/delete",
		Cancel: "/ui/tokens", Button: "Delete token",
		Warning: "Applications using this token stop working at once. This cannot be undone."}
	c.render(w, "confirm", http.StatusOK, p)
}

func (c *Console) deleteToken(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	p := c.newPage(s, "Application tokens", "tokens")
	if err := c.call(r, s.credential, http.MethodDelete, "/v2/clientIdSecrets/"+url.PathEscape(id), nil, nil); err != nil {
		if c.expired(w, r, err) {
			return
		}
		p.Error = err.Error()
		c.tokensPage(w, r, s, status(err), p, &tokensData{})
		return
	}
	http.Redirect(w, r, "/ui/tokens?deleted="+url.QueryEscape(id), http.StatusSeeOther)
}
