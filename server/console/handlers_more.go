package console

import (
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tokenbroker/tokenbroker/server/policy"
)

// ---- roles ----

type actionGroup struct {
	Name    string
	Actions []actionChoice
}

type actionChoice struct {
	Name    string
	Checked bool
}

type rolesData struct {
	Roles   []roleJSON
	Role    *roleJSON
	Groups  []actionGroup
	Form    struct{ Name, Description, Resources string }
	Editing bool
}

func (c *Console) roles(w http.ResponseWriter, r *http.Request, s *session) {
	p := c.newPage(s, "Roles", "roles")
	d := &rolesData{}
	if err := c.call(r, s.credential, http.MethodGet, "/v2/organizations/roles", nil, &d.Roles); err != nil {
		if c.expired(w, r, err) {
			return
		}
		p.Error = err.Error()
	}
	sort.SliceStable(d.Roles, func(i, j int) bool {
		if d.Roles[i].Type != d.Roles[j].Type {
			return d.Roles[i].Type == "custom"
		}
		return strings.ToLower(d.Roles[i].Name) < strings.ToLower(d.Roles[j].Name)
	})
	if n := r.URL.Query().Get("deleted"); n != "" {
		p.Notice = "Role deleted."
	}
	p.Data = d
	c.render(w, "roles", http.StatusOK, p)
}

func (c *Console) role(w http.ResponseWriter, r *http.Request, s *session) {
	p := c.newPage(s, "Role", "roles")
	var ro roleJSON
	err := c.call(r, s.credential, http.MethodGet, "/v2/organizations/roles/"+url.PathEscape(r.PathValue("id")), nil, &ro)
	if c.expired(w, r, err) {
		return
	}
	code := http.StatusOK
	if err != nil {
		p.Error, code = err.Error(), status(err)
	} else {
		p.Title = "Role " + ro.Name
		p.Data = &rolesData{Role: &ro}
	}
	if r.URL.Query().Get("saved") != "" {
		p.Notice = "Role saved."
	}
	c.render(w, "role", code, p)
}

func actionGroups(checked map[string]bool) []actionGroup {
	groups := []actionGroup{{Name: "Organization"}, {Name: "Databases (org-db-*)"}, {Name: "Keyspaces"}, {Name: "Tables"}, {Name: "APIs and other"}}
	for _, a := range policy.Actions() {
		i := 4
		switch {
		case strings.HasPrefix(a, "org-db-"):
			i = 1
		case strings.HasPrefix(a, "org-"):
			i = 0
		case strings.Contains(a, "keyspace"):
			i = 2
		case strings.HasPrefix(a, "db-table-"):
			i = 3
		}
		groups[i].Actions = append(groups[i].Actions, actionChoice{Name: a, Checked: checked[a]})
	}
	return groups
}

func (c *Console) roleForm(w http.ResponseWriter, r *http.Request, s *session) {
	p := c.newPage(s, "New role", "roles")
	d := &rolesData{}
	checked := map[string]bool{}
	if id := r.PathValue("id"); id != "" {
		var ro roleJSON
		err := c.call(r, s.credential, http.MethodGet, "/v2/organizations/roles/"+url.PathEscape(id), nil, &ro)
		if c.expired(w, r, err) {
			return
		}
		if err != nil {
			p.Error = err.Error()
			c.render(w, "role", status(err), p)
			return
		}
		p.Title, d.Role, d.Editing = "Edit role "+ro.Name, &ro, true
		d.Form.Name, d.Form.Description = ro.Name, ro.Policy.Description
		d.Form.Resources = strings.Join(ro.Policy.Resources, "\n")
		for _, a := range ro.Policy.Actions {
			checked[a] = true
		}
	} else {
		d.Form.Resources = policy.OrgDRN(s.orgID)
	}
	d.Groups = actionGroups(checked)
	p.Data = d
	c.render(w, "roleform", http.StatusOK, p)
}

func (c *Console) saveRole(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	p := c.newPage(s, "New role", "roles")
	if err := r.ParseForm(); err != nil {
		c.refuse(w, r, http.StatusBadRequest, "Bad form.")
		return
	}
	d := &rolesData{Editing: id != ""}
	d.Form.Name, d.Form.Description, d.Form.Resources = r.PostForm.Get("name"), r.PostForm.Get("description"), r.PostForm.Get("resources")
	actions := r.PostForm["action"]
	checked := map[string]bool{}
	for _, a := range actions {
		checked[a] = true
	}
	var resources []string
	for _, line := range strings.Split(d.Form.Resources, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			resources = append(resources, line)
		}
	}
	body := map[string]any{"name": d.Form.Name, "policy": map[string]any{
		"description": d.Form.Description, "resources": resources, "actions": actions, "effect": "allow",
	}}
	method, path := http.MethodPost, "/v2/organizations/roles"
	if id != "" {
		method, path = http.MethodPut, path+"/"+url.PathEscape(id)
		p.Title = "Edit role"
		d.Role = &roleJSON{ID: id, Name: d.Form.Name}
	}
	var out roleJSON
	if err := c.call(r, s.credential, method, path, body, &out); err != nil {
		if c.expired(w, r, err) {
			return
		}
		p.Error = err.Error()
		d.Groups = actionGroups(checked)
		p.Data = d
		c.render(w, "roleform", status(err), p)
		return
	}
	http.Redirect(w, r, "/ui/roles/"+url.PathEscape(out.ID)+"?saved=1", http.StatusSeeOther)
}

func (c *Console) confirmDeleteRole(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	p := c.newPage(s, "Delete role", "roles")
	p.Data = confirmData{What: "role", ID: id, Action: "/ui/roles/" + url.PathEscape(id) + "/delete",
		Cancel: "/ui/roles/" + url.PathEscape(id), Button: "Delete role",
		Warning: "A role still held by a live token cannot be deleted: delete those tokens first."}
	c.render(w, "confirm", http.StatusOK, p)
}

func (c *Console) deleteRole(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	if err := c.call(r, s.credential, http.MethodDelete, "/v2/organizations/roles/"+url.PathEscape(id), nil, nil); err != nil {
		if c.expired(w, r, err) {
			return
		}
		p := c.newPage(s, "Delete role", "roles")
		p.Error = err.Error()
		p.Data = confirmData{What: "role", ID: id, Action: "/ui/roles/" + url.PathEscape(id) + "/delete",
			Cancel: "/ui/roles/" + url.PathEscape(id), Button: "Delete role"}
		c.render(w, "confirm", status(err), p)
		return
	}
	http.Redirect(w, r, "/ui/roles?deleted=1", http.StatusSeeOther)
}

// ---- streaming ----

type tenantJSON struct {
	TenantName       string `json:"tenantName"`
	ClusterName      string `json:"clusterName"`
	WebServiceURL    string `json:"webServiceUrl"`
	BrokerServiceURL string `json:"brokerServiceUrl"`
	Status           string `json:"status"`
	TokenFormat      string `json:"tokenFormat"`
	PulsarToken      string `json:"pulsarToken"`
}

type pulsarCreated struct {
	ID       string `json:"id"`
	Rolename string `json:"rolename"`
	Token    string `json:"token"`
}

type tokenKeys struct {
	TokenFormat    string `json:"tokenFormat"`
	TokenPublicKey string `json:"tokenPublicKey"`
	PublicKeyPem   string `json:"publicKeyPem"`
	TokenPublicAlg string `json:"tokenPublicAlg"`
	Kid            string `json:"kid"`
	Issuer         string `json:"issuer"`
	Audience       string `json:"audience"`
	TokenSecretKey string `json:"tokenSecretKey"`
}

type streamingData struct {
	Tenants []tenantJSON
	Tenant  *tenantJSON
	Tokens  []map[string]any
	Keys    *tokenKeys
	JWKS    string
	OIDC    string
	Created *pulsarCreated
	// CreatedTenant is a new tenant's first token, shown once.
	CreatedTenant *tenantJSON
	Expirations   []string
	Exp           string
}

var expirations = []string{"7d", "30d", "90d", "1y", "never"}

func (c *Console) tenantsPage(w http.ResponseWriter, r *http.Request, s *session, code int, p page, d *streamingData) {
	if err := c.call(r, s.credential, http.MethodGet, "/v2/streaming/tenants", nil, &d.Tenants); err != nil {
		if c.expired(w, r, err) {
			return
		}
		if p.Error == "" {
			p.Error = err.Error()
		}
	}
	p.Data = d
	c.render(w, "streaming", code, p)
}

func (c *Console) tenants(w http.ResponseWriter, r *http.Request, s *session) {
	c.tenantsPage(w, r, s, http.StatusOK, c.newPage(s, "Streaming", "streaming"), &streamingData{})
}

func (c *Console) createTenant(w http.ResponseWriter, r *http.Request, s *session) {
	p := c.newPage(s, "Streaming", "streaming")
	d := &streamingData{}
	body := map[string]string{"tenantName": r.PostFormValue("tenantName"), "clusterName": r.PostFormValue("clusterName")}
	if f := r.PostFormValue("tokenFormat"); f != "" {
		body["tokenFormat"] = f
	}
	var out tenantJSON
	if err := c.call(r, s.credential, http.MethodPost, "/v2/streaming/tenants", body, &out); err != nil {
		if c.expired(w, r, err) {
			return
		}
		p.Error = err.Error()
		c.tenantsPage(w, r, s, status(err), p, d)
		return
	}
	d.CreatedTenant = &out
	c.tenantsPage(w, r, s, http.StatusOK, p, d)
}

func (c *Console) tenantPage(w http.ResponseWriter, r *http.Request, s *session, code int, p page, d *streamingData) {
	name := r.PathValue("tenant")
	base := "/v2/streaming/tenants/" + url.PathEscape(name)
	var t tenantJSON
	if err := c.call(r, s.credential, http.MethodGet, base, nil, &t); err != nil {
		if c.expired(w, r, err) {
			return
		}
		p.Error = err.Error()
		c.render(w, "tenant", status(err), p)
		return
	}
	d.Tenant = &t
	p.Title = "Tenant " + t.TenantName
	if err := c.call(r, s.credential, http.MethodGet, base+"/tokens", nil, &d.Tokens); err != nil && p.Error == "" {
		p.Error = err.Error()
	}
	sort.SliceStable(d.Tokens, func(i, j int) bool { return num(d.Tokens[i]["iat"]) > num(d.Tokens[j]["iat"]) })
	var k tokenKeys
	if err := c.call(r, s.credential, http.MethodGet, base+"/token-keys", nil, &k); err == nil {
		d.Keys = &k
	}
	var jwks any
	if err := c.call(r, "", http.MethodGet, "/.well-known/jwks.json", nil, &jwks); err == nil {
		d.JWKS = prettyJSON(jwks)
	}
	d.OIDC = strings.TrimSuffix(k.Issuer, "/") + "/.well-known/openid-configuration"
	d.Expirations = expirations
	if d.Exp == "" {
		d.Exp = "30d"
	}
	p.Data = d
	c.render(w, "tenant", code, p)
}

func num(v any) float64 {
	switch n := v.(type) {
	case float64:
		return n
	case string:
		f, _ := strconv.ParseFloat(n, 64)
		return f
	}
	return 0
}

func (c *Console) tenant(w http.ResponseWriter, r *http.Request, s *session) {
	p := c.newPage(s, "Tenant", "streaming")
	if r.URL.Query().Get("deleted") != "" {
		p.Notice = "Pulsar token deleted."
	}
	c.tenantPage(w, r, s, http.StatusOK, p, &streamingData{})
}

func (c *Console) createPulsarToken(w http.ResponseWriter, r *http.Request, s *session) {
	p := c.newPage(s, "Tenant", "streaming")
	exp := r.PostFormValue("exp")
	d := &streamingData{Exp: exp}
	if !containsString(expirations, exp) {
		p.Error = fmt.Sprintf("Expiration: choose one of %s.", strings.Join(expirations, ", "))
		c.tenantPage(w, r, s, http.StatusBadRequest, p, d)
		return
	}
	var out pulsarCreated
	path := "/v3/streaming/tenants/" + url.PathEscape(r.PathValue("tenant")) + "/tokens"
	if err := c.call(r, s.credential, http.MethodPost, path, map[string]string{"exp": exp, "type": "admin"}, &out); err != nil {
		if c.expired(w, r, err) {
			return
		}
		p.Error = err.Error()
		c.tenantPage(w, r, s, status(err), p, d)
		return
	}
	d.Created = &out
	c.tenantPage(w, r, s, http.StatusOK, p, d)
}

func containsString(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func (c *Console) confirmDeletePulsarToken(w http.ResponseWriter, r *http.Request, s *session) {
	tenant, id := r.PathValue("tenant"), r.PathValue("id")
	p := c.newPage(s, "Delete Pulsar token", "streaming")
	p.Data = confirmData{What: "Pulsar token", ID: id,
		Action: "/ui/streaming/" + url.PathEscape(tenant) + "/tokens/" + url.PathEscape(id) + "/delete",
		Cancel: "/ui/streaming/" + url.PathEscape(tenant), Button: "Delete token",
		Warning: "Applications using this token will no longer be able to connect to the tenant " + tenant + "."}
	c.render(w, "confirm", http.StatusOK, p)
}

func (c *Console) deletePulsarToken(w http.ResponseWriter, r *http.Request, s *session) {
	tenant, id := r.PathValue("tenant"), r.PathValue("id")
	path := "/v2/streaming/tenants/" + url.PathEscape(tenant) + "/tokens/" + url.PathEscape(id)
	if err := c.call(r, s.credential, http.MethodDelete, path, nil, nil); err != nil {
		if c.expired(w, r, err) {
			return
		}
		p := c.newPage(s, "Tenant", "streaming")
		p.Error = err.Error()
		c.tenantPage(w, r, s, status(err), p, &streamingData{})
		return
	}
	http.Redirect(w, r, "/ui/streaming/"+url.PathEscape(tenant)+"?deleted=1", http.StatusSeeOther)
}

// ---- databases ----

type databaseJSON struct {
	ID           string `json:"id"`
	CreationTime string `json:"creationTime"`
	LastUsage    string `json:"lastUsageTime"`
	Status       string `json:"status"`
	Info         struct {
		Name          string `json:"name"`
		Keyspace      string `json:"keyspace"`
		CloudProvider string `json:"cloudProvider"`
		Tier          string `json:"tier"`
		Region        string `json:"region"`
	} `json:"info"`
	Metrics struct {
		Reads  float64 `json:"readRequestsTotalCount"`
		Writes float64 `json:"writeRequestsTotalCount"`
		Errors float64 `json:"errorsTotalCount"`
	} `json:"metrics"`
}

type usageJSON struct {
	Month  string  `json:"month"`
	Reads  float64 `json:"readRequestsCount"`
	Writes float64 `json:"writeRequestsCount"`
	Errors float64 `json:"errorsCount"`
}

type databasesData struct {
	Databases []databaseJSON
	Database  *databaseJSON
	Usage     []usageJSON
	Chart     chart
}

func (c *Console) databases(w http.ResponseWriter, r *http.Request, s *session) {
	p := c.newPage(s, "Databases", "databases")
	d := &databasesData{}
	if err := c.call(r, s.credential, http.MethodGet, "/v2/databases", nil, &d.Databases); err != nil {
		if c.expired(w, r, err) {
			return
		}
		p.Error = err.Error()
	}
	p.Data = d
	c.render(w, "databases", http.StatusOK, p)
}

// usageMonths is how many months the usage chart shows.
const usageMonths = 6

func (c *Console) database(w http.ResponseWriter, r *http.Request, s *session) {
	p := c.newPage(s, "Database", "databases")
	id := r.PathValue("id")
	var db databaseJSON
	if err := c.call(r, s.credential, http.MethodGet, "/v2/databases/"+url.PathEscape(id), nil, &db); err != nil {
		if c.expired(w, r, err) {
			return
		}
		p.Error = err.Error()
		c.render(w, "database", status(err), p)
		return
	}
	p.Title = "Database " + db.Info.Name
	d := &databasesData{Database: &db}
	now := c.now().UTC()
	first := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	for i := usageMonths - 1; i >= 0; i-- {
		m := first.AddDate(0, -i, 0).Format("2006-01")
		u := usageJSON{Month: m}
		if err := c.call(r, s.credential, http.MethodGet, "/v2/databases/"+url.PathEscape(id)+"/usage?month="+m, nil, &u); err != nil && p.Error == "" {
			p.Error = err.Error()
		}
		u.Month = m
		d.Usage = append(d.Usage, u)
	}
	d.Chart = usageChart(d.Usage)
	p.Data = d
	c.render(w, "database", http.StatusOK, p)
}

// ---- audit ----

type auditEvent struct {
	Seq        any    `json:"seq"`
	Time       string `json:"time"`
	RequestID  string `json:"requestId"`
	ActorKind  string `json:"actorKind"`
	ActorID    string `json:"actorId"`
	Action     string `json:"action"`
	TargetKind string `json:"targetKind"`
	TargetID   string `json:"targetId"`
	Outcome    string `json:"outcome"`
	Detail     string `json:"detail"`
}

type auditData struct {
	Events      []auditEvent
	Next        string // query string of the next page, "" when none
	From, To, Q string
	Outcome     string
	PageSize    int
	Scanned     int
	Filtered    bool
}

// auditScanLimit bounds how many events one filtered page reads.
const auditScanLimit = 2000

func (c *Console) audit(w http.ResponseWriter, r *http.Request, s *session) {
	p := c.newPage(s, "Audit log", "audit")
	q := r.URL.Query()
	d := &auditData{From: q.Get("from"), To: q.Get("to"), Q: strings.TrimSpace(q.Get("q")), Outcome: q.Get("outcome"), PageSize: 50}
	if n, err := strconv.Atoi(q.Get("pageSize")); err == nil && n >= 1 && n <= 500 {
		d.PageSize = n
	}
	d.Filtered = d.Q != "" || d.Outcome != ""
	api := url.Values{}
	for _, f := range []struct{ name, v string }{{"from", d.From}, {"to", d.To}} {
		if f.v == "" {
			continue
		}
		t, err := parseLocal(f.v)
		if err != nil {
			p.Error = f.name + ": " + err.Error()
			p.Data = d
			c.render(w, "audit", http.StatusBadRequest, p)
			return
		}
		api.Set(f.name, t.Format(time.RFC3339))
	}
	token := q.Get("pageToken")
	// Without a filter one API page is one console page. With one, pages
	// are read until enough events match or the scan bound is reached.
	for {
		v := url.Values{}
		for k, vals := range api {
			v[k] = vals
		}
		v.Set("pageSize", strconv.Itoa(d.PageSize))
		if token != "" {
			v.Set("pageToken", token)
		}
		var out struct {
			Events        []auditEvent `json:"events"`
			NextPageToken string       `json:"nextPageToken"`
		}
		if err := c.call(r, s.credential, http.MethodGet, "/v2/audit/events?"+v.Encode(), nil, &out); err != nil {
			if c.expired(w, r, err) {
				return
			}
			p.Error = err.Error()
			break
		}
		d.Scanned += len(out.Events)
		for _, e := range out.Events {
			if d.matches(e) {
				d.Events = append(d.Events, e)
			}
		}
		token = out.NextPageToken
		if !d.Filtered || token == "" || len(d.Events) >= d.PageSize || d.Scanned >= auditScanLimit {
			break
		}
	}
	if token != "" {
		next := url.Values{}
		for k, v := range q {
			next[k] = v
		}
		next.Set("pageToken", token)
		d.Next = "/ui/audit?" + next.Encode()
	}
	p.Data = d
	c.render(w, "audit", http.StatusOK, p)
}

func (d *auditData) matches(e auditEvent) bool {
	if d.Outcome != "" && e.Outcome != d.Outcome {
		return false
	}
	if d.Q == "" {
		return true
	}
	q := strings.ToLower(d.Q)
	for _, f := range []string{e.Action, e.ActorKind, e.ActorID, e.TargetKind, e.TargetID, e.Detail, e.RequestID} {
		if strings.Contains(strings.ToLower(f), q) {
			return true
		}
	}
	return false
}
