package server_test

// Compatibility with the clients Astra users already run, pointed at the
// broker by their base-URL option and otherwise unmodified: the Go DevOps
// client github.com/datastax/astra-client-go/v2 (and the Terraform provider
// built on it) and the TypeScript @datastax/astra-db-ts admin API. Each
// table row is a request in the shape such a client sends and the JSON
// fields that client then reads, with their types. The clients are not
// vendored; what they read is written down in docs/databases.md and
// docs/api.md.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/server"
	"github.com/tokenbroker/tokenbroker/server/policy"
	"github.com/tokenbroker/tokenbroker/server/servertest"
)

// Kinds of JSON values a client reads.
const (
	kString = "string"
	kNumber = "number"
	kArray  = "array"  // of anything
	kObject = "object" // a JSON object
	kTime   = "time"   // an RFC 3339 string after year 1 (Date / time.Time parse it)
	kUUID   = "uuid"
	kAbsent = "absent" // the key must not be there
)

var compatUUIDRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// compatCall is one client call and what the client reads from the answer.
type compatCall struct {
	client string // who sends it
	method string
	path   string
	body   any
	status int
	// fields maps a path into the JSON answer ("info.datacenters[0].region",
	// "[0].id" for an array answer) to the kind the client expects there.
	fields map[string]string
}

// compatLookup follows a path like "a.b[0].c" through decoded JSON.
func compatLookup(v any, path string) (any, bool) {
	for path != "" {
		switch {
		case path[0] == '.':
			path = path[1:]
		case path[0] == '[':
			end := strings.IndexByte(path, ']')
			i, err := strconv.Atoi(path[1:end])
			arr, ok := v.([]any)
			if err != nil || !ok || i >= len(arr) {
				return nil, false
			}
			v, path = arr[i], path[end+1:]
		default:
			end := strings.IndexAny(path, ".[")
			if end < 0 {
				end = len(path)
			}
			obj, ok := v.(map[string]any)
			if !ok {
				return nil, false
			}
			if v, ok = obj[path[:end]]; !ok {
				return nil, false
			}
			path = path[end:]
		}
	}
	return v, true
}

func compatCheckKind(t *testing.T, what, path, kind string, v any, present bool) {
	t.Helper()
	if kind == kAbsent {
		if present {
			t.Errorf("%s: %s is %v, want it absent", what, path, v)
		}
		return
	}
	if !present {
		t.Errorf("%s: %s is missing (a %s)", what, path, kind)
		return
	}
	ok := false
	switch kind {
	case kString:
		_, ok = v.(string)
	case kNumber:
		_, ok = v.(float64)
	case kArray:
		_, ok = v.([]any)
	case kObject:
		_, ok = v.(map[string]any)
	case kUUID:
		s, _ := v.(string)
		ok = compatUUIDRE.MatchString(s)
	case kTime:
		s, _ := v.(string)
		ts, err := time.Parse(time.RFC3339Nano, s)
		ok = err == nil && ts.Year() > 1
	}
	if !ok {
		t.Errorf("%s: %s = %#v, want a %s", what, path, v, kind)
	}
}

// compatNoUnknownTimes fails on any key holding "" or the zero time where
// a time is expected: keys ending in Time, At, On or Created.
func compatNoUnknownTimes(t *testing.T, what string, v any, at string) {
	t.Helper()
	switch x := v.(type) {
	case map[string]any:
		for k, sub := range x {
			// A default role's LastUpdateDateTime is "" as Astra shows it
			// (docs/api.md); the Go client does not decode that key.
			if s, ok := sub.(string); ok && k != "LastUpdateDateTime" && (strings.HasSuffix(k, "Time") || strings.HasSuffix(k, "Created") || strings.HasSuffix(k, "At")) {
				if s == "" || strings.HasPrefix(s, "0001-01-01") {
					t.Errorf("%s: %s%s = %q: an unknown time must be absent", what, at, k, s)
				}
			}
			compatNoUnknownTimes(t, what, sub, at+k+".")
		}
	case []any:
		for i, sub := range x {
			compatNoUnknownTimes(t, what, sub, fmt.Sprintf("%s[%d].", at, i))
		}
	}
}

// compatDo runs one call and checks the fields; it returns the decoded
// answer and the headers.
func compatDo(t *testing.T, env *servertest.Env, bearer string, c compatCall) (any, http.Header) {
	t.Helper()
	what := fmt.Sprintf("%s: %s %s", c.client, c.method, c.path)
	code, raw, hdr := env.REST(t, c.method, c.path, bearer, c.body)
	if code != c.status {
		t.Fatalf("%s: HTTP %d, want %d; body %s", what, code, c.status, raw)
	}
	var v any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatalf("%s: body is not JSON: %v: %s", what, err, raw)
		}
	}
	for path, kind := range c.fields {
		got, ok := compatLookup(v, path)
		compatCheckKind(t, what, path, kind, got, ok)
	}
	compatNoUnknownTimes(t, what, v, "")
	return v, hdr
}

// compatDatabaseFields is what the clients read from a database object:
// the Terraform provider's flattenDatabase (id, orgId, ownerId, status,
// info.name/keyspace/additionalKeyspaces/cloudProvider/region,
// info.datacenters[].region and .id, storage.*, the URL fields) and
// astra-db-ts' buildAstraDatabaseAdminInfo (info.datacenters[].region and
// .dateCreated, info.keyspaces, creationTime, lastUsageTime, status).
func compatDatabaseFields(prefix string, urls bool) map[string]string {
	f := map[string]string{
		"id": kUUID, "orgId": kUUID, "ownerId": kString, "status": kString, "creationTime": kTime,
		"info": kObject, "info.name": kString, "info.keyspace": kString, "info.keyspaces": kArray,
		"info.additionalKeyspaces": kArray, "info.cloudProvider": kString, "info.tier": kString,
		"info.capacityUnits": kNumber, "info.region": kString,
		"info.datacenters[0].id": kString, "info.datacenters[0].name": kString,
		"info.datacenters[0].tier": kString, "info.datacenters[0].status": kString,
		"info.datacenters[0].cloudProvider": kString, "info.datacenters[0].region": kString,
		"info.datacenters[0].capacityUnits": kNumber, "info.datacenters[0].dateCreated": kTime,
		"storage.nodeCount": kNumber, "storage.replicationFactor": kNumber, "storage.totalStorage": kNumber,
		"availableActions": kArray,
	}
	urlKind := kAbsent
	if urls {
		urlKind = kString
	}
	for _, k := range []string{"cqlshUrl", "graphqlUrl", "dataEndpointUrl",
		"info.datacenters[0].cqlshUrl", "info.datacenters[0].graphqlUrl", "info.datacenters[0].dataEndpointUrl"} {
		f[k] = urlKind
	}
	out := make(map[string]string, len(f))
	for k, v := range f {
		out[prefix+k] = v
	}
	return out
}

func compatWith(m map[string]string, kv ...string) map[string]string {
	out := make(map[string]string, len(m)+len(kv)/2)
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// TestCompatDatabases drives the database calls of the Terraform provider
// and astra-db-ts: create, poll the ID from Location until ACTIVE, list
// with include/provider, terminate.
func TestCompatDatabases(t *testing.T) {
	t.Parallel()
	const tmpl = "https://{id}-{region}.apps.example.internal"
	env := servertest.Start(t, servertest.WithConfig(func(c *server.Config) { c.DataAPIURLTemplate = tmpl }))

	// Terraform: astra.CreateDatabaseJSONRequestBody; astra-db-ts sends the
	// same keys (and dbType "vector", which the broker records and returns).
	create := compatCall{client: "terraform/astra-db-ts", method: http.MethodPost, path: "/v2/databases",
		body: map[string]any{"name": "compat", "keyspace": "ks1", "cloudProvider": "GCP", "tier": "serverless",
			"capacityUnits": 1, "region": "us-east1", "dbType": "vector"},
		status: http.StatusCreated, fields: map[string]string{"id": kUUID}}
	_, hdr := compatDo(t, env, env.AdminToken, create)
	id := hdr.Get("Location") // resp.HTTPResponse.Header.Get("location"); resp.headers.location
	if !compatUUIDRE.MatchString(id) {
		t.Fatalf("Location %q: both clients take it as the database ID", id)
	}
	// A second database on another provider, for the provider filter.
	create.body = map[string]any{"name": "aws-one", "cloudProvider": "AWS", "tier": "serverless", "capacityUnits": 1, "region": "us-east-2"}
	_, hdr = compatDo(t, env, env.AdminToken, create)
	awsID := hdr.Get("Location")

	dbFields := compatDatabaseFields("", true)
	got, _ := compatDo(t, env, env.AdminToken, compatCall{client: "terraform (wait for ACTIVE) / astra-db-ts dbInfo",
		method: http.MethodGet, path: "/v2/databases/" + url.PathEscape(id), status: http.StatusOK,
		fields: compatWith(dbFields, "terminationTime", kAbsent, "lastUsageTime", kAbsent)})
	if s, _ := compatLookup(got, "status"); s != "ACTIVE" {
		t.Errorf("status %v, want ACTIVE (both clients poll for it)", s)
	}
	for path, want := range map[string]string{
		"dbType":                              "vector", // terraform's db_type
		"info.dbType":                         "vector",
		"info.datacenters[0].region":          "us-east1",
		"info.datacenters[0].cloudProvider":   "GCP",
		"info.datacenters[0].dataEndpointUrl": "https://" + id + "-us-east1.apps.example.internal/api/rest",
		"dataEndpointUrl":                     "https://" + id + "-us-east1.apps.example.internal/api/rest",
		"graphqlUrl":                          "https://" + id + "-us-east1.apps.example.internal/api/graphql",
		"cqlshUrl":                            "https://" + id + "-us-east1.apps.example.internal/cqlsh",
	} {
		if v, _ := compatLookup(got, path); v != want {
			t.Errorf("%s = %v, want %q", path, v, want)
		}
	}

	// Lists: astra-db-ts listDatabases({include, provider, limit}); the
	// Terraform data source passes include and provider.
	listed := func(query string) []string {
		t.Helper()
		v, _ := compatDo(t, env, env.AdminToken, compatCall{client: "astra-db-ts listDatabases", method: http.MethodGet,
			path: "/v2/databases" + query, status: http.StatusOK, fields: compatDatabaseFields("[0].", true)})
		var ids []string
		for _, db := range v.([]any) {
			ids = append(ids, db.(map[string]any)["id"].(string))
		}
		slices.Sort(ids)
		return ids
	}
	both := []string{id, awsID}
	slices.Sort(both)
	for q, want := range map[string][]string{
		"": both, "?include=nonterminated": both, "?include=ACTIVE": both, "?provider=ALL&include=all": both,
		"?provider=GCP": {id}, "?provider=aws": {awsID}, "?limit=1&include=all": both[:1],
		"?starting_after=" + both[0]: both[1:],
	} {
		if got := listed(q); !slices.Equal(got, want) {
			t.Errorf("GET /v2/databases%s: %v, want %v", q, got, want)
		}
	}
	if v, _ := compatDo(t, env, env.AdminToken, compatCall{client: "terraform data source", method: http.MethodGet,
		path: "/v2/databases?provider=Azure", status: http.StatusOK}); len(v.([]any)) != 0 {
		t.Errorf("provider=Azure listed %v", v)
	}
	for _, q := range []string{"?include=bogus", "?provider=IBM", "?limit=0", "?limit=101", "?limit=x", "?starting_after=nope"} {
		compatDo(t, env, env.AdminToken, compatCall{client: "bad list query", method: http.MethodGet, path: "/v2/databases" + q,
			status: http.StatusBadRequest, fields: map[string]string{"errors[0].ID": kNumber, "errors[0].message": kString}})
	}

	// Terminate (both clients), then the object carries terminationTime.
	compatDo(t, env, env.AdminToken, compatCall{client: "terraform delete", method: http.MethodPost,
		path: "/v2/databases/" + id + "/terminate", status: http.StatusAccepted})
	got, _ = compatDo(t, env, env.AdminToken, compatCall{client: "terraform (wait for TERMINATED)", method: http.MethodGet,
		path: "/v2/databases/" + id, status: http.StatusOK, fields: compatWith(dbFields, "terminationTime", kTime)})
	if s, _ := compatLookup(got, "status"); s != "TERMINATED" {
		t.Errorf("status %v after terminate, want TERMINATED", s)
	}
	if got := listed(""); !slices.Equal(got, []string{awsID}) {
		t.Errorf("default list after terminate: %v, want only %s", got, awsID)
	}
	if got := listed("?include=terminated"); !slices.Equal(got, []string{id}) {
		t.Errorf("include=terminated: %v, want %s", got, id)
	}
}

// TestCompatDatabaseWithoutTemplate: without --data-api-url-template the
// URL fields are absent (never ""), the rest is the same.
func TestCompatDatabaseWithoutTemplate(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	_, hdr := compatDo(t, env, env.AdminToken, compatCall{client: "astra-db-ts createDatabase", method: http.MethodPost,
		path: "/v2/databases", body: map[string]any{"name": "plain", "cloudProvider": "GCP", "region": "us-east1", "tier": "serverless", "capacityUnits": 1},
		status: http.StatusCreated})
	compatDo(t, env, env.AdminToken, compatCall{client: "astra-db-ts dbInfo", method: http.MethodGet,
		path: "/v2/databases/" + hdr.Get("Location"), status: http.StatusOK, fields: compatDatabaseFields("", false)})
}

// TestCompatTokensRolesOrg: the DevOps client's token, role and
// organization calls and the fields it decodes.
func TestCompatTokensRolesOrg(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	for _, c := range []compatCall{
		{client: "astra-client-go GenerateTokenForClient", method: http.MethodPost, path: "/v2/clientIdSecrets",
			body: map[string]any{"roles": []string{policy.RWSvcAcctID}, "description": "compat"}, status: http.StatusOK,
			fields: map[string]string{"clientId": kString, "secret": kString, "orgId": kUUID, "roles": kArray, "token": kString, "generatedOn": kTime}},
		{client: "astra-client-go GetClientsForOrg", method: http.MethodGet, path: "/v2/clientIdSecrets", status: http.StatusOK,
			fields: map[string]string{"clients[0].clientId": kString, "clients[0].roles": kArray, "clients[0].generatedOn": kTime, "clients[0].secret": kAbsent}},
		{client: "astra-client-go ListOrganizationRoles", method: http.MethodGet, path: "/v2/organizations/roles", status: http.StatusOK,
			fields: map[string]string{"[0].ID": kUUID, "[0].Name": kString, "[0].Policy.actions": kArray, "[0].Policy.resources": kArray, "[0].Policy.effect": kString}},
		{client: "astra-client-go GetOrganizationRole", method: http.MethodGet, path: "/v2/organizations/roles/" + policy.RWSvcAcctID, status: http.StatusOK,
			fields: map[string]string{"ID": kUUID, "Name": kString, "Policy.description": kString}},
		{client: "astra-client-go GetCurrentOrganization", method: http.MethodGet, path: "/v2/currentOrg", status: http.StatusOK,
			fields: map[string]string{"id": kUUID, "name": kString}},
	} {
		compatDo(t, env, env.AdminToken, c)
	}
}

// TestCompatStreaming: the streaming client's token create (v2 and v3:
// tokenResponse{id, subject, token}) and namespace stats reads, for a
// tenant and for one namespace.
func TestCompatStreaming(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	compatDo(t, env, env.AdminToken, compatCall{client: "astra-client-go streaming CreateTenant", method: http.MethodPost,
		path: "/v2/streaming/tenants", body: map[string]any{"tenantName": "compat", "clusterName": "pulsar-local"}, status: http.StatusOK})
	for _, c := range []compatCall{
		{client: "streaming CreateTenantTokens (v2)", method: http.MethodPost, path: "/v2/streaming/tenants/compat/tokens?exp=1d", status: http.StatusCreated},
		{client: "streaming CreateTenantTokens (v3)", method: http.MethodPost, path: "/v3/streaming/tenants/compat/tokens",
			body: map[string]any{"exp": "30d", "role": "app1", "type": "non-admin"}, status: http.StatusCreated},
	} {
		c.fields = map[string]string{"id": kString, "subject": kString, "token": kString}
		v, _ := compatDo(t, env, env.AdminToken, c)
		sub, _ := compatLookup(v, "subject")
		role, _ := compatLookup(v, "rolename")
		if sub != role || sub == "" {
			t.Errorf("%s: subject %v, rolename %v: want the token's role in both", c.client, sub, role)
		}
	}

	report := func(ns string, in int) map[string]any {
		return map[string]any{"tenant": "compat", "namespace": ns, "messagesIn": in, "msgRateIn": 1.5, "storageSize": 10}
	}
	compatDo(t, env, env.AdminToken, compatCall{client: "data plane", method: http.MethodPost, path: "/v2/stats/namespaces",
		body: map[string]any{"stats": []any{report("ns1", 5), report("ns2", 7)}}, status: http.StatusOK})
	usage := func(key string) map[string]string {
		f := map[string]string{}
		for _, k := range []string{"name", "updatedAt"} {
			f[key+"."+k] = kString
		}
		f[key+".updatedAt"] = kTime
		for _, k := range []string{"totalMessagesIn", "totalMessagesOut", "totalBytesIn", "totalBytesOut", "msgRateIn", "msgRateOut",
			"throughputIn", "throughputOut", "subscriptionCount", "producerCount", "consumerCount", "subscriptionDelayed",
			"storageSize", "backlogStorageByteSize", "msgBacklogNumber"} {
			f[key+"."+k] = kNumber
		}
		return f
	}
	for _, path := range []string{"/admin/v2/stats/namespaces/compat/ns1", "/v2/stats/namespaces/compat/ns1"} {
		v, _ := compatDo(t, env, env.AdminToken, compatCall{client: "streaming GetNamespaceStats (one namespace)", method: http.MethodGet,
			path: path, status: http.StatusOK, fields: compatWith(usage("compat/ns1"), "compat/ns2", kAbsent)})
		if n, _ := compatLookup(v, "compat/ns1.totalMessagesIn"); n != 5.0 {
			t.Errorf("%s: totalMessagesIn %v, want 5", path, n)
		}
	}
	all := usage("compat/ns1")
	for k, v := range usage("compat/ns2") {
		all[k] = v
	}
	compatDo(t, env, env.AdminToken, compatCall{client: "streaming GetNamespaceStats (tenant)", method: http.MethodGet,
		path: "/admin/v2/stats/namespaces/compat", status: http.StatusOK, fields: all})
	// Unknown namespace: 404 in the stats reads' {"reason"} body.
	compatDo(t, env, env.AdminToken, compatCall{client: "streaming GetNamespaceStats", method: http.MethodGet,
		path: "/admin/v2/stats/namespaces/compat/nope", status: http.StatusNotFound, fields: map[string]string{"reason": kString}})
	compatDo(t, env, env.AdminToken, compatCall{client: "streaming GetNamespaceStats", method: http.MethodGet,
		path: "/admin/v2/stats/namespaces/compat/bad%20ns", status: http.StatusBadRequest, fields: map[string]string{"reason": kString}})
}
