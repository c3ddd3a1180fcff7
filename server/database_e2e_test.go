package server_test

// End-to-end tests of DatabaseService (docs/databases.md): the registry,
// the per-database token and its scope, termination, and usage metering
// from Check, over REST and gRPC against a real server with a fake clock.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	tbv1 "github.com/tokenbroker/tokenbroker/gen/tokenbroker/v1"
	"github.com/tokenbroker/tokenbroker/server"
	"github.com/tokenbroker/tokenbroker/server/policy"
	"github.com/tokenbroker/tokenbroker/server/servertest"
)

const (
	dbePath      = "/v2/databases"
	dbeCheckPath = "/v1/auth/check"
)

// ---- helpers -------------------------------------------------------------

// dbeCreated is a CreateDatabase answer.
type dbeCreated struct {
	ID, RoleID, ClientID, Secret, Token string
}

// dbeCreate creates a database over REST as bearer and checks the 201
// answer: Location and the exact body shape.
func dbeCreate(t *testing.T, env *servertest.Env, bearer string, body any) dbeCreated {
	t.Helper()
	code, raw, hdr := env.REST(t, http.MethodPost, dbePath, bearer, body)
	wantStatus(t, "create database", code, raw, http.StatusCreated)
	m := object(t, raw)
	wantKeys(t, "create database answer", m, "id", "roleId", "clientId", "secret", "token")
	c := dbeCreated{ID: str(t, m["id"]), RoleID: str(t, m["roleId"]), ClientID: str(t, m["clientId"]),
		Secret: str(t, m["secret"]), Token: str(t, m["token"])}
	if _, err := uuid.Parse(c.ID); err != nil || len(c.ID) != 36 {
		t.Errorf("database id %q is not a UUID", c.ID)
	}
	if _, err := uuid.Parse(c.RoleID); err != nil {
		t.Errorf("roleId %q is not a UUID", c.RoleID)
	}
	if loc := hdr.Get("Location"); loc != c.ID { // the bare ID, as Astra's clients read it
		t.Errorf("Location %q, want %q", loc, c.ID)
	}
	if !clientIDRE.MatchString(c.ClientID) {
		t.Errorf("clientId %q is not 24 letters", c.ClientID)
	}
	if !strings.HasPrefix(c.Token, "AstraCS:"+c.ClientID+":") {
		t.Errorf("token %q is not AstraCS:<clientId>:...", c.Token)
	}
	if c.Secret == "" {
		t.Error("empty secret")
	}
	return c
}

// dbeGet does "track monthly usage": GET /v2/databases/<id> with
// Accept: application/json, as the seed's curl does.
func dbeGet(t *testing.T, env *servertest.Env, bearer, id string) (int, []byte, http.Header) {
	t.Helper()
	req := env.NewRequest(t, http.MethodGet, dbePath+"/"+id, bearer, nil)
	req.Header.Set("Accept", "application/json")
	return env.Do(t, req)
}

// dbeGetOK is dbeGet requiring 200 and returning the database object.
func dbeGetOK(t *testing.T, env *servertest.Env, bearer, id string) map[string]json.RawMessage {
	t.Helper()
	code, raw, _ := dbeGet(t, env, bearer, id)
	wantStatus(t, "GET database "+id, code, raw, http.StatusOK)
	return object(t, raw)
}

// dbeNumber decodes a JSON number, failing on anything else (a string in
// particular, as protojson writes 64-bit integers).
func dbeNumber(t *testing.T, what string, raw json.RawMessage) float64 {
	t.Helper()
	if len(raw) == 0 || raw[0] == '"' {
		t.Fatalf("%s: %s is not a JSON number", what, raw)
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatalf("%s: %s is not a JSON number: %v", what, raw, err)
	}
	return f
}

type dbeCounts struct{ reads, writes, errors float64 }

func (c dbeCounts) String() string {
	return fmt.Sprintf("reads %v, writes %v, errors %v", c.reads, c.writes, c.errors)
}

// dbeMetrics returns a database object's metrics, checking their shape.
func dbeMetrics(t *testing.T, what string, db map[string]json.RawMessage) dbeCounts {
	t.Helper()
	m := object(t, db["metrics"])
	wantKeys(t, what+": metrics", m, "readRequestsTotalCount", "writeRequestsTotalCount", "errorsTotalCount")
	return dbeCounts{
		dbeNumber(t, what+": readRequestsTotalCount", m["readRequestsTotalCount"]),
		dbeNumber(t, what+": writeRequestsTotalCount", m["writeRequestsTotalCount"]),
		dbeNumber(t, what+": errorsTotalCount", m["errorsTotalCount"]),
	}
}

// dbeWantTime checks an RFC 3339 time field: "" when want is zero, else a
// time within prec below want (the store keeps at least microseconds).
func dbeWantTime(t *testing.T, what, got string, want time.Time, prec time.Duration) {
	t.Helper()
	if want.IsZero() {
		if got != "" {
			t.Errorf("%s: %q, want \"\"", what, got)
		}
		return
	}
	ts, err := time.Parse(time.RFC3339Nano, got)
	if err != nil {
		t.Errorf("%s: %q is not RFC 3339: %v", what, got, err)
		return
	}
	if ts.After(want) || want.Sub(ts) >= prec {
		t.Errorf("%s: %q, want %s", what, got, want.UTC().Format(time.RFC3339Nano))
	}
}

func dbeTable(env *servertest.Env, dbID, keyspace, table string) string {
	return policy.DatabaseDRN(env.OrgID, dbID) + ":keyspace:" + keyspace + ":table:" + table
}

// dbeCheck makes one Check, over REST (credential in the body) or gRPC.
func dbeCheck(t *testing.T, env *servertest.Env, overREST bool, cred, action, resource string) *tbv1.CheckResponse {
	t.Helper()
	what := fmt.Sprintf("Check(%s on %s)", action, resource)
	if !overREST {
		res, err := env.Auth.Check(context.Background(), &tbv1.CheckRequest{Credential: cred, Action: action, Resource: resource})
		if err != nil {
			t.Fatalf("%s over gRPC: %v", what, err)
		}
		return res
	}
	code, raw, _ := env.REST(t, http.MethodPost, dbeCheckPath, "", map[string]string{"credential": cred, "action": action, "resource": resource})
	wantStatus(t, what+" over REST", code, raw, http.StatusOK)
	var m struct {
		Allowed bool   `json:"allowed"`
		Reason  string `json:"reason"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s: decode %s: %v", what, raw, err)
	}
	return &tbv1.CheckResponse{Allowed: m.Allowed, Reason: m.Reason}
}

// dbeWantCheck makes a Check and requires its answer ("" reason = allowed).
func dbeWantCheck(t *testing.T, env *servertest.Env, overREST bool, cred, action, resource, reason string) {
	t.Helper()
	res := dbeCheck(t, env, overREST, cred, action, resource)
	if res.GetAllowed() != (reason == "") || res.GetReason() != reason {
		t.Errorf("Check(%s on %s, REST=%v): allowed=%v reason=%q, want reason %q",
			action, resource, overREST, res.GetAllowed(), res.GetReason(), reason)
	}
}

// dbeNotFound requires the hidden/unknown-database answer and returns the
// body with id replaced by "<id>", so answers for different IDs compare.
func dbeNotFound(t *testing.T, what string, code int, raw []byte, hdr http.Header, id string) string {
	t.Helper()
	wantAstraError(t, what, code, raw, hdr, http.StatusNotFound, 0, fmt.Sprintf("database %q not found", id))
	return strings.ReplaceAll(string(raw), id, "<id>")
}

// dbeUsage GETs a month's usage and checks its shape.
func dbeUsage(t *testing.T, env *servertest.Env, bearer, id, month string) (string, dbeCounts, string) {
	t.Helper()
	path := dbePath + "/" + id + "/usage"
	if month != "" {
		path += "?month=" + month
	}
	code, raw, _ := env.REST(t, http.MethodGet, path, bearer, nil)
	wantStatus(t, "GET "+path, code, raw, http.StatusOK)
	m := object(t, raw)
	// lastUsageTime is absent (never "") in a month without use.
	want := []string{"databaseId", "month", "readRequestsCount", "writeRequestsCount", "errorsCount"}
	last := ""
	if raw, ok := m["lastUsageTime"]; ok {
		want = append(want, "lastUsageTime")
		if last = str(t, raw); last == "" {
			t.Errorf("usage lastUsageTime is \"\": an unknown time must be absent")
		}
	}
	wantKeys(t, "usage", m, want...)
	if got := str(t, m["databaseId"]); got != id {
		t.Errorf("usage databaseId %q, want %q", got, id)
	}
	return str(t, m["month"]), dbeCounts{
		dbeNumber(t, "readRequestsCount", m["readRequestsCount"]),
		dbeNumber(t, "writeRequestsCount", m["writeRequestsCount"]),
		dbeNumber(t, "errorsCount", m["errorsCount"]),
	}, last
}

func dbeList(t *testing.T, env *servertest.Env, bearer string, query ...string) (raw []byte, ids []string) {
	t.Helper()
	code, raw, _ := env.REST(t, http.MethodGet, dbePath+strings.Join(query, ""), bearer, nil)
	wantStatus(t, "list databases", code, raw, http.StatusOK)
	var list []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil || list == nil {
		t.Fatalf("list databases: want a JSON array, got %s (%v)", raw, err)
	}
	for _, db := range list {
		ids = append(ids, str(t, db["id"]))
	}
	return raw, ids
}

// ---- 1. create and shape ---------------------------------------------------

// TestDatabaseCreateAndShape: POST /v2/databases answers 201 with Location
// and the token; GET answers reference §4's shape; bad input is a 400.
func TestDatabaseCreateAndShape(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	created := env.Clock.Now()
	c := dbeCreate(t, env, env.AdminToken, map[string]any{
		"name": "hi", "keyspace": "ks_one", "cloudProvider": "GCP", "tier": "serverless", "capacityUnits": 3, "region": "us-east1"})

	code, raw, hdr := dbeGet(t, env, env.AdminToken, c.ID)
	wantStatus(t, "GET database", code, raw, http.StatusOK)
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	db := object(t, raw)
	// Unknown times (not terminated, never used) are absent, never "" or
	// the zero time; without a data API URL template there are no URLs.
	wantKeys(t, "database", db, "id", "orgId", "ownerId", "creationTime",
		"info", "status", "metrics", "availableActions", "storage")
	for field, want := range map[string]string{
		"id": c.ID, "orgId": env.OrgID, "ownerId": env.AdminClientID, "status": "ACTIVE",
		"creationTime": created.UTC().Truncate(time.Second).Format(time.RFC3339),
	} {
		if got := str(t, db[field]); got != want {
			t.Errorf("%s: %q, want %q", field, got, want)
		}
	}
	if _, err := time.Parse(time.RFC3339, str(t, db["creationTime"])); err != nil {
		t.Errorf("creationTime is not RFC 3339: %v", err)
	}
	info := object(t, db["info"])
	wantKeys(t, "info", info, "name", "keyspace", "keyspaces", "additionalKeyspaces", "cloudProvider", "tier", "capacityUnits", "region", "datacenters")
	for field, want := range map[string]string{"name": "hi", "keyspace": "ks_one", "cloudProvider": "GCP", "tier": "serverless", "region": "us-east1"} {
		if got := str(t, info[field]); got != want {
			t.Errorf("info.%s: %q, want %q", field, got, want)
		}
	}
	if cu := dbeNumber(t, "info.capacityUnits", info["capacityUnits"]); cu != 3 {
		t.Errorf("info.capacityUnits %v, want 3", cu)
	}
	var ks []string
	if err := json.Unmarshal(info["keyspaces"], &ks); err != nil || !slices.Equal(ks, []string{"ks_one"}) {
		t.Errorf("info.keyspaces %s, want [\"ks_one\"]", info["keyspaces"])
	}
	if m := dbeMetrics(t, "new database", db); m != (dbeCounts{}) {
		t.Errorf("metrics of a new database: %v, want zeros", m)
	}
	if got := string(db["availableActions"]); canon(t, []byte(got)) != `["terminate"]` {
		t.Errorf("availableActions %s, want [\"terminate\"]", got)
	}

	// gRPC answers the same database.
	g, err := env.Databases.GetDatabase(env.GRPCCtx(env.AdminToken), &tbv1.GetDatabaseRequest{DatabaseId: c.ID})
	if err != nil {
		t.Fatalf("gRPC GetDatabase: %v", err)
	}
	if d := g.GetDatabase(); d.GetId() != c.ID || d.GetOwnerId() != env.AdminClientID || d.GetInfo().GetCapacityUnits() != 3 || d.GetStatus() != "ACTIVE" {
		t.Errorf("gRPC GetDatabase: %v", d)
	}

	// Defaults: keyspace default_keyspace, capacityUnits 1 (also for 0).
	for _, body := range []map[string]any{{"name": "defaults"}, {"name": "zero-cu", "capacityUnits": 0}} {
		d := dbeGetOK(t, env, env.AdminToken, dbeCreate(t, env, env.AdminToken, body).ID)
		info := object(t, d["info"])
		if got := str(t, info["keyspace"]); got != "default_keyspace" {
			t.Errorf("%v: keyspace %q, want default_keyspace", body, got)
		}
		if cu := dbeNumber(t, "capacityUnits", info["capacityUnits"]); cu != 1 {
			t.Errorf("%v: capacityUnits %v, want 1", body, cu)
		}
	}
	// Bounds that are valid.
	dbeCreate(t, env, env.AdminToken, map[string]any{"name": strings.Repeat("n", 128), "capacityUnits": 100, "keyspace": strings.Repeat("k", 48)})

	for _, c := range []struct {
		name string
		body any
	}{
		{"no body fields", map[string]any{}},
		{"empty name", map[string]any{"name": ""}},
		{"name too long", map[string]any{"name": strings.Repeat("n", 129)}},
		{"capacityUnits 101", map[string]any{"name": "x", "capacityUnits": 101}},
		{"capacityUnits -1", map[string]any{"name": "x", "capacityUnits": -1}},
		{"keyspace with a dash", map[string]any{"name": "x", "keyspace": "bad-ks"}},
		{"keyspace with a colon", map[string]any{"name": "x", "keyspace": "ks:table"}},
		{"keyspace too long", map[string]any{"name": "x", "keyspace": strings.Repeat("k", 49)}},
		{"region too long", map[string]any{"name": "x", "region": strings.Repeat("r", 65)}},
		{"unknown dbType", map[string]any{"name": "x", "dbType": "graph"}},
	} {
		code, raw, hdr := env.REST(t, http.MethodPost, dbePath, env.AdminToken, c.body)
		wantAstraError(t, c.name, code, raw, hdr, http.StatusBadRequest, 0, "")
	}
	_, err = env.Databases.CreateDatabase(env.GRPCCtx(env.AdminToken), &tbv1.CreateDatabaseRequest{Name: "x", CapacityUnits: 101})
	wantGRPC(t, "gRPC create with capacityUnits 101", err, codes.InvalidArgument, "capacityUnits")

	// Nothing was created by the rejected calls: 1 + 2 + 1 databases.
	if _, ids := dbeList(t, env, env.AdminToken); len(ids) != 4 {
		t.Errorf("%d databases listed, want 4: %v", len(ids), ids)
	}
}

// ---- 2. usage metering ("track monthly usage") -------------------------------

// TestDatabaseUsageMetering: the seed's curl (GET with the database's own
// token) returns counters equal to the Checks made against the database, both
// from memory before any flush and after a graceful restart.
func TestDatabaseUsageMetering(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t, servertest.WithConfig(func(c *server.Config) { c.UsageFlushInterval = 24 * time.Hour }))
	a := dbeCreate(t, env, env.AdminToken, map[string]any{"name": "metered", "keyspace": "ks"})
	b := dbeCreate(t, env, env.AdminToken, map[string]any{"name": "other", "keyspace": "ks"})
	table := dbeTable(env, a.ID, "ks", "t")
	garbage, _ := unknownToken()

	var lastAllowed time.Time
	allowed := func(overREST bool, cred, action, resource string) {
		t.Helper()
		env.Clock.Advance(1*time.Second + 7*time.Nanosecond)
		dbeWantCheck(t, env, overREST, cred, action, resource, "")
		lastAllowed = env.Clock.Now()
	}
	refused := func(overREST bool, cred, action, resource, reason string) {
		t.Helper()
		env.Clock.Advance(time.Second)
		dbeWantCheck(t, env, overREST, cred, action, resource, reason)
	}

	// N = 5 reads.
	allowed(true, a.Token, "db-table-select", table)
	allowed(false, a.Token, "db-table-select", table)
	allowed(true, a.Token, "db-cql", policy.DatabaseDRN(env.OrgID, a.ID))
	allowed(false, a.Token, "db-keyspace-describe", policy.DatabaseDRN(env.OrgID, a.ID)+":keyspace:ks")
	allowed(true, env.AdminToken, "db-table-select", table) // any credential's Check counts
	// M = 3 writes.
	allowed(false, a.Token, "db-table-modify", table)
	allowed(true, a.Token, "db-table-modify", table)
	allowed(false, env.AdminToken, "db-table-drop", table)
	// K = 3 errors (after the last allowed Check: lastUsageTime stays).
	refused(true, a.Token, "db-table-drop", table, "PERMISSION_DENIED")
	refused(false, a.Token, "db-table-drop", table, "PERMISSION_DENIED")
	refused(false, garbage, "db-table-select", table, "CREDENTIAL_INVALID")
	// Not database a's: the other database, the org, an unknown database.
	dbeWantCheck(t, env, false, b.Token, "db-table-select", dbeTable(env, b.ID, "ks", "t"), "")
	dbeWantCheck(t, env, true, a.Token, "db-table-select", dbeTable(env, b.ID, "ks", "t"), "PERMISSION_DENIED")
	dbeWantCheck(t, env, false, env.AdminToken, "org-db-view", policy.OrgDRN(env.OrgID), "")
	dbeWantCheck(t, env, true, env.AdminToken, "db-table-select", dbeTable(env, uuid.NewString(), "ks", "t"), "")
	env.Clock.Advance(time.Hour)

	wantA := dbeCounts{reads: 5, writes: 3, errors: 3}
	wantB := dbeCounts{reads: 1, errors: 1}
	check := func(when string, prec time.Duration) {
		t.Helper()
		db := dbeGetOK(t, env, a.Token, a.ID) // the seed's curl
		if got := dbeMetrics(t, when, db); got != wantA {
			t.Errorf("%s: database metrics %v, want %v", when, got, wantA)
		}
		dbeWantTime(t, when+": lastUsageTime", str(t, db["lastUsageTime"]), lastAllowed, prec)
		if got := dbeMetrics(t, when+" (b)", dbeGetOK(t, env, env.AdminToken, b.ID)); got != wantB {
			t.Errorf("%s: other database's metrics %v, want %v", when, got, wantB)
		}
		// gRPC and the list agree.
		g, err := env.Databases.GetDatabase(env.GRPCCtx(a.Token), &tbv1.GetDatabaseRequest{DatabaseId: a.ID})
		if err != nil {
			t.Fatalf("%s: gRPC GetDatabase: %v", when, err)
		}
		if m := g.GetDatabase().GetMetrics(); (dbeCounts{m.GetReadRequestsTotalCount(), m.GetWriteRequestsTotalCount(), m.GetErrorsTotalCount()}) != wantA {
			t.Errorf("%s: gRPC metrics %v, want %v", when, m, wantA)
		}
		l, err := env.Databases.ListDatabases(env.GRPCCtx(env.AdminToken), &tbv1.ListDatabasesRequest{})
		if err != nil {
			t.Fatalf("%s: ListDatabases: %v", when, err)
		}
		for _, d := range l.GetDatabases() {
			m := d.GetMetrics()
			got := dbeCounts{m.GetReadRequestsTotalCount(), m.GetWriteRequestsTotalCount(), m.GetErrorsTotalCount()}
			if want := map[string]dbeCounts{a.ID: wantA, b.ID: wantB}[d.GetId()]; got != want {
				t.Errorf("%s: listed metrics of %s: %v, want %v", when, d.GetId(), got, want)
			}
		}
		month, u, last := dbeUsage(t, env, a.Token, a.ID, "")
		if month != lastAllowed.UTC().Format("2006-01") || u != wantA {
			t.Errorf("%s: usage of %s: %v, want %v", when, month, u, wantA)
		}
		dbeWantTime(t, when+": usage lastUsageTime", last, lastAllowed, prec)
	}
	check("before any flush", time.Nanosecond)

	env.Restart(t) // Shutdown flushes
	check("after restart", time.Microsecond)

	// Persisted counts and new in-memory ones add up; a second restart
	// persists only the new ones (no double count).
	allowed(true, a.Token, "db-table-select", table)
	wantA.reads++
	check("after restart and one more read", time.Nanosecond)
	env.Restart(t)
	check("after a second restart", time.Microsecond)
	env.Restart(t)
	check("after a third restart with no use", time.Microsecond)
}

// TestDatabaseCountersDuringFlush: with a flush every millisecond, every
// GET /v2/databases/{id} must report a count between the Checks completed
// before it was sent and those started before it answered: the persisted
// counts and the pending ones are merged without gaps or overlaps.
func TestDatabaseCountersDuringFlush(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t, servertest.WithConfig(func(c *server.Config) { c.UsageFlushInterval = time.Millisecond }))
	a := dbeCreate(t, env, env.AdminToken, map[string]any{"name": "busy", "keyspace": "ks"})
	table := dbeTable(env, a.ID, "ks", "t")

	var started, done atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				started.Add(1)
				res, err := env.Auth.Check(context.Background(), &tbv1.CheckRequest{Credential: a.Token, Action: "db-table-select", Resource: table})
				if err != nil || !res.GetAllowed() {
					t.Errorf("Check: %v %v", res, err)
					return
				}
				done.Add(1)
			}
		})
	}
	var bad []string
	deadline := time.Now().Add(2 * time.Second)
	gets := 0
	for time.Now().Before(deadline) && len(bad) < 5 {
		lo := done.Load()
		g, err := env.Databases.GetDatabase(env.GRPCCtx(env.AdminToken), &tbv1.GetDatabaseRequest{DatabaseId: a.ID})
		hi := started.Load()
		if err != nil {
			t.Fatalf("GetDatabase: %v", err)
		}
		gets++
		if n := int64(g.GetDatabase().GetMetrics().GetReadRequestsTotalCount()); n < lo || n > hi {
			bad = append(bad, fmt.Sprintf("reads %d outside [%d, %d]", n, lo, hi))
		}
	}
	close(stop)
	wg.Wait()
	if len(bad) > 0 {
		t.Errorf("%d of %d GETs while flushing reported counts that do not match the Checks made: %v", len(bad), gets, bad)
	}
	// At rest, the count is exact.
	if n := dbeMetrics(t, "at rest", dbeGetOK(t, env, a.Token, a.ID)).reads; int64(n) != done.Load() {
		t.Errorf("at rest: reads %v, want %d", n, done.Load())
	}
}

// ---- 3. scope of a database's token ----------------------------------------

// TestDatabaseTokenScope: a database's token reads its database and nothing
// else (another database answers exactly like an unknown one), manages
// nothing, and its Checks reach its keyspace and the system keyspaces only.
func TestDatabaseTokenScope(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	a := dbeCreate(t, env, env.AdminToken, map[string]any{"name": "a", "keyspace": "ks"})
	b := dbeCreate(t, env, env.AdminToken, map[string]any{"name": "b", "keyspace": "ks"})

	if got := str(t, dbeGetOK(t, env, a.Token, a.ID)["id"]); got != a.ID {
		t.Errorf("own database: id %q", got)
	}
	unknown := uuid.NewString()
	code, raw, hdr := dbeGet(t, env, a.Token, b.ID)
	other := dbeNotFound(t, "token a GETs database b", code, raw, hdr, b.ID)
	code, raw, hdr = dbeGet(t, env, a.Token, unknown)
	missing := dbeNotFound(t, "token a GETs an unknown database", code, raw, hdr, unknown)
	code, raw, hdr = dbeGet(t, env, env.AdminToken, unknown)
	adminMissing := dbeNotFound(t, "admin GETs an unknown database", code, raw, hdr, unknown)
	if other != missing || missing != adminMissing {
		t.Errorf("another database and an unknown one answer differently:\n  other:   %s\n  unknown: %s\n  admin:   %s", other, missing, adminMissing)
	}
	code, raw, hdr = dbeGet(t, env, a.Token, "not-a-uuid")
	dbeNotFound(t, "malformed id", code, raw, hdr, "not-a-uuid")

	// Usage of another database: hidden the same way.
	code, raw, hdr = env.REST(t, http.MethodGet, dbePath+"/"+b.ID+"/usage", a.Token, nil)
	u1 := dbeNotFound(t, "token a GETs b's usage", code, raw, hdr, b.ID)
	code, raw, hdr = env.REST(t, http.MethodGet, dbePath+"/"+unknown+"/usage", a.Token, nil)
	if u2 := dbeNotFound(t, "token a GETs an unknown database's usage", code, raw, hdr, unknown); u1 != u2 {
		t.Errorf("usage: another database %s, unknown %s", u1, u2)
	}
	// gRPC: NotFound with the same message.
	_, errB := env.Databases.GetDatabase(env.GRPCCtx(a.Token), &tbv1.GetDatabaseRequest{DatabaseId: b.ID})
	_, errU := env.Databases.GetDatabase(env.GRPCCtx(a.Token), &tbv1.GetDatabaseRequest{DatabaseId: unknown})
	wantGRPC(t, "gRPC: token a GETs b", errB, codes.NotFound, b.ID)
	wantGRPC(t, "gRPC: token a GETs unknown", errU, codes.NotFound, unknown)
	if mb, mu := strings.ReplaceAll(status.Convert(errB).Message(), b.ID, "<id>"), strings.ReplaceAll(status.Convert(errU).Message(), unknown, "<id>"); mb != mu {
		t.Errorf("gRPC messages differ: %q vs %q", mb, mu)
	}

	// No management: plain 403s.
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{http.MethodPost, dbePath, map[string]any{"name": "escalate"}},
		{http.MethodGet, tokensPath, nil},
		{http.MethodPost, tokensPath, map[string]any{"roles": []string{a.RoleID}}},
		{http.MethodDelete, tokensPath + "/" + b.ClientID, nil},
		{http.MethodGet, rolesPath, nil},
	} {
		code, raw, hdr := env.REST(t, c.method, c.path, a.Token, c.body)
		wantAstraError(t, "token a: "+c.method+" "+c.path, code, raw, hdr, http.StatusForbidden, 0, "")
	}
	_, err := env.Databases.CreateDatabase(env.GRPCCtx(a.Token), &tbv1.CreateDatabaseRequest{Name: "escalate"})
	wantGRPC(t, "gRPC: token a creates a database", err, codes.PermissionDenied, "")

	// The list holds its own database only.
	if _, ids := dbeList(t, env, a.Token); !slices.Equal(ids, []string{a.ID}) {
		t.Errorf("token a lists %v, want [%s]", ids, a.ID)
	}
	if _, ids := dbeList(t, env, env.AdminToken); len(ids) != 2 {
		t.Errorf("admin lists %v, want both databases", ids)
	}

	// Checks.
	for i, c := range []struct {
		action, resource, reason string
	}{
		{"db-table-select", dbeTable(env, a.ID, "ks", "t"), ""},
		{"db-table-modify", dbeTable(env, a.ID, "ks", "t"), ""},
		{"db-table-select", dbeTable(env, a.ID, "system_schema", "tables"), ""},
		{"db-table-select", dbeTable(env, a.ID, "system", "local"), ""},
		{"db-table-select", dbeTable(env, a.ID, "system_virtual_schema", "keyspaces"), ""},
		{"db-cql", policy.DatabaseDRN(env.OrgID, a.ID), ""},
		{"db-table-select", dbeTable(env, b.ID, "ks", "t"), "PERMISSION_DENIED"},
		{"db-table-select", dbeTable(env, b.ID, "system_schema", "tables"), "PERMISSION_DENIED"},
		{"db-cql", policy.DatabaseDRN(env.OrgID, b.ID), "PERMISSION_DENIED"},
		{"db-table-select", dbeTable(env, a.ID, "other_ks", "t"), "PERMISSION_DENIED"},
		{"db-keyspace-describe", policy.DatabaseDRN(env.OrgID, a.ID) + ":keyspace:other_ks", "PERMISSION_DENIED"},
		{"db-table-drop", dbeTable(env, a.ID, "ks", "t"), "PERMISSION_DENIED"},
		{"db-table-select", dbeTable(env, uuid.NewString(), "ks", "t"), "PERMISSION_DENIED"},
	} {
		dbeWantCheck(t, env, i%2 == 0, a.Token, c.action, c.resource, c.reason)
	}
}

// ---- 4. terminate ------------------------------------------------------------

// TestDatabaseTerminate: 202 with an empty body, TERMINATED with its time and
// no actions, 409 the second time, hidden (404) from a token lacking
// org-db-terminate; the database's token keeps working.
func TestDatabaseTerminate(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	a := dbeCreate(t, env, env.AdminToken, map[string]any{"name": "doomed"})
	unknown := uuid.NewString()

	// The database's own token has no org-db-terminate: hidden.
	code, raw, hdr := env.REST(t, http.MethodPost, dbePath+"/"+a.ID+"/terminate", a.Token, nil)
	own := dbeNotFound(t, "database token terminates its database", code, raw, hdr, a.ID)
	code, raw, hdr = env.REST(t, http.MethodPost, dbePath+"/"+unknown+"/terminate", env.AdminToken, nil)
	if u := dbeNotFound(t, "terminate an unknown database", code, raw, hdr, unknown); u != own {
		t.Errorf("hidden terminate %s, unknown %s", own, u)
	}
	_, err := env.Databases.TerminateDatabase(env.GRPCCtx(a.Token), &tbv1.TerminateDatabaseRequest{DatabaseId: a.ID})
	wantGRPC(t, "gRPC: database token terminates", err, codes.NotFound, a.ID)
	if got := str(t, dbeGetOK(t, env, env.AdminToken, a.ID)["status"]); got != "ACTIVE" {
		t.Fatalf("after refused terminations: status %q", got)
	}

	env.Clock.Advance(90 * time.Minute)
	at := env.Clock.Now()
	code, raw, _ = env.REST(t, http.MethodPost, dbePath+"/"+a.ID+"/terminate", env.AdminToken, nil)
	wantStatus(t, "terminate", code, raw, http.StatusAccepted)
	if len(raw) != 0 {
		t.Errorf("terminate: body %q, want empty", raw)
	}
	db := dbeGetOK(t, env, a.Token, a.ID) // the token survives termination
	if got := str(t, db["status"]); got != "TERMINATED" {
		t.Errorf("status %q, want TERMINATED", got)
	}
	if got, want := str(t, db["terminationTime"]), at.UTC().Truncate(time.Second).Format(time.RFC3339); got != want {
		t.Errorf("terminationTime %q, want %q", got, want)
	}
	if got := canon(t, db["availableActions"]); got != `[]` {
		t.Errorf("availableActions %s, want []", got)
	}

	code, raw, hdr = env.REST(t, http.MethodPost, dbePath+"/"+a.ID+"/terminate", env.AdminToken, nil)
	wantAstraError(t, "terminate again", code, raw, hdr, http.StatusConflict, 0, "terminated")
	_, err = env.Databases.TerminateDatabase(env.GRPCCtx(env.AdminToken), &tbv1.TerminateDatabaseRequest{DatabaseId: a.ID})
	wantGRPC(t, "gRPC: terminate again", err, codes.FailedPrecondition, "")

	// Still listed with include=all or terminated (as Astra keeps them),
	// not by default (include=nonterminated); the termination persists.
	for _, q := range []string{"?include=all", "?include=terminated", "?include=TERMINATED"} {
		if _, ids := dbeList(t, env, env.AdminToken, q); !slices.Equal(ids, []string{a.ID}) {
			t.Errorf("listed %s: %v, want [%s]", q, ids, a.ID)
		}
	}
	for _, q := range []string{"", "?include=nonterminated", "?include=active"} {
		if _, ids := dbeList(t, env, env.AdminToken, q); len(ids) != 0 {
			t.Errorf("listed %q: %v, want none", q, ids)
		}
	}
	env.Restart(t)
	db = dbeGetOK(t, env, a.Token, a.ID)
	if str(t, db["status"]) != "TERMINATED" || str(t, db["terminationTime"]) == "0001-01-01T00:00:00Z" {
		t.Errorf("after restart: status %s, terminationTime %s", db["status"], db["terminationTime"])
	}
}

// ---- 5. monthly usage ---------------------------------------------------------

// TestDatabaseMonthlyUsage: Checks are counted in the calendar month (UTC)
// of the fake clock; ?month= selects one, default the current month.
func TestDatabaseMonthlyUsage(t *testing.T) {
	t.Parallel()
	start := time.Date(2040, time.January, 31, 22, 30, 0, 250, time.UTC)
	env := servertest.Start(t, servertest.WithClockStart(start),
		servertest.WithConfig(func(c *server.Config) { c.UsageFlushInterval = 24 * time.Hour }))
	a := dbeCreate(t, env, env.AdminToken, map[string]any{"name": "monthly", "keyspace": "ks"})
	table := dbeTable(env, a.ID, "ks", "t")

	// January: 2 reads, 1 write, 1 error.
	dbeWantCheck(t, env, true, a.Token, "db-table-select", table, "")
	dbeWantCheck(t, env, false, a.Token, "db-table-modify", table, "")
	env.Clock.Advance(time.Minute)
	dbeWantCheck(t, env, false, a.Token, "db-table-select", table, "")
	lastJan := env.Clock.Now()
	dbeWantCheck(t, env, true, a.Token, "db-table-drop", table, "PERMISSION_DENIED")

	// February (the clock crosses midnight UTC of the 1st): 3 reads, 2 errors.
	env.Clock.Advance(2 * time.Hour)
	dbeWantCheck(t, env, false, a.Token, "db-table-select", table, "")
	dbeWantCheck(t, env, true, a.Token, "db-table-select", table, "")
	dbeWantCheck(t, env, true, a.Token, "db-table-drop", table, "PERMISSION_DENIED")
	env.Clock.Advance(time.Minute)
	dbeWantCheck(t, env, false, a.Token, "db-cql", policy.DatabaseDRN(env.OrgID, a.ID), "")
	lastFeb := env.Clock.Now()
	dbeWantCheck(t, env, false, a.Token, "db-table-select", dbeTable(env, a.ID, "nope", "t"), "PERMISSION_DENIED")

	months := func(when string, prec time.Duration) {
		t.Helper()
		for _, c := range []struct {
			query, month string
			want         dbeCounts
			last         time.Time
		}{
			{"", "2040-02", dbeCounts{3, 0, 2}, lastFeb},
			{"2040-02", "2040-02", dbeCounts{3, 0, 2}, lastFeb},
			{"2040-01", "2040-01", dbeCounts{2, 1, 1}, lastJan},
			{"2040-03", "2040-03", dbeCounts{}, time.Time{}},
			{"2039-12", "2039-12", dbeCounts{}, time.Time{}},
		} {
			month, got, last := dbeUsage(t, env, a.Token, a.ID, c.query)
			if month != c.month || got != c.want {
				t.Errorf("%s: usage ?month=%q: %s %v, want %s %v", when, c.query, month, got, c.month, c.want)
			}
			dbeWantTime(t, fmt.Sprintf("%s: ?month=%q lastUsageTime", when, c.query), last, c.last, prec)
		}
		db := dbeGetOK(t, env, a.Token, a.ID)
		if got, want := dbeMetrics(t, when, db), (dbeCounts{5, 1, 3}); got != want {
			t.Errorf("%s: totals %v, want %v", when, got, want)
		}
		dbeWantTime(t, when+": lastUsageTime", str(t, db["lastUsageTime"]), lastFeb, prec)
		g, err := env.Databases.GetDatabaseUsage(env.GRPCCtx(env.AdminToken), &tbv1.GetDatabaseUsageRequest{DatabaseId: a.ID, Month: "2040-01"})
		if err != nil || g.GetReadRequestsCount() != 2 || g.GetWriteRequestsCount() != 1 || g.GetErrorsCount() != 1 || g.GetMonth() != "2040-01" {
			t.Errorf("%s: gRPC usage of 2040-01: %v %v", when, g, err)
		}
	}
	months("in memory", time.Nanosecond)
	env.Restart(t)
	months("after restart", time.Microsecond)

	for _, bad := range []string{"2040-13", "2040-1", "2040-00", "Jan", "2040-01-01", "204001", "%20"} {
		code, raw, hdr := env.REST(t, http.MethodGet, dbePath+"/"+a.ID+"/usage?month="+bad, env.AdminToken, nil)
		wantAstraError(t, "usage ?month="+bad, code, raw, hdr, http.StatusBadRequest, 0, "month")
	}
	unknown := uuid.NewString()
	code, raw, hdr := env.REST(t, http.MethodGet, dbePath+"/"+unknown+"/usage", env.AdminToken, nil)
	dbeNotFound(t, "usage of an unknown database", code, raw, hdr, unknown)
	code, raw, hdr = env.REST(t, http.MethodGet, dbePath+"/"+unknown+"/usage?month=2040-01", env.AdminToken, nil)
	dbeNotFound(t, "usage of an unknown database in a month", code, raw, hdr, unknown)
}

// ---- 6. default roles -------------------------------------------------------------

// TestDatabasePermissions: R/W User may view databases, R/W Svc Acct (no
// org-db-view) sees none, Database Administrator creates them, and creating
// needs every permission of the database's role (no escalation).
func TestDatabasePermissions(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	dba := env.CreateToken(t, env.AdminToken, policy.DatabaseAdministratorID)
	rwUser := env.CreateToken(t, env.AdminToken, policy.RWUserID)
	rwSvc := env.CreateToken(t, env.AdminToken, policy.RWSvcAcctID)

	a := dbeCreate(t, env, dba.Token, map[string]any{"name": "by-dba", "keyspace": "ks"})
	if got := str(t, dbeGetOK(t, env, dba.Token, a.ID)["ownerId"]); got != dba.ClientId {
		t.Errorf("ownerId %q, want the DBA's client ID %q", got, dba.ClientId)
	}
	// The DBA's new token works on its database.
	dbeWantCheck(t, env, false, a.Token, "db-table-select", dbeTable(env, a.ID, "ks", "t"), "")
	// gRPC create by the DBA.
	g, err := env.Databases.CreateDatabase(env.GRPCCtx(dba.Token), &tbv1.CreateDatabaseRequest{Name: "grpc-by-dba"})
	if err != nil || !strings.HasPrefix(g.GetToken(), "AstraCS:"+g.GetClientId()+":") {
		t.Fatalf("gRPC create by DBA: %v %v", g, err)
	}

	if got := str(t, dbeGetOK(t, env, rwUser.Token, a.ID)["id"]); got != a.ID {
		t.Errorf("R/W User GET: id %q", got)
	}
	if _, ids := dbeList(t, env, rwUser.Token); len(ids) != 2 {
		t.Errorf("R/W User lists %v, want 2 databases", ids)
	}
	code, raw, hdr := env.REST(t, http.MethodPost, dbePath, rwUser.Token, map[string]any{"name": "nope"})
	wantAstraError(t, "R/W User creates", code, raw, hdr, http.StatusForbidden, 0, "")
	code, raw, hdr = env.REST(t, http.MethodPost, dbePath+"/"+a.ID+"/terminate", rwUser.Token, nil)
	dbeNotFound(t, "R/W User terminates", code, raw, hdr, a.ID)

	unknown := uuid.NewString()
	code, raw, hdr = dbeGet(t, env, rwSvc.Token, a.ID)
	hidden := dbeNotFound(t, "R/W Svc Acct GETs", code, raw, hdr, a.ID)
	code, raw, hdr = dbeGet(t, env, rwSvc.Token, unknown)
	if u := dbeNotFound(t, "R/W Svc Acct GETs unknown", code, raw, hdr, unknown); u != hidden {
		t.Errorf("R/W Svc Acct: hidden %s, unknown %s", hidden, u)
	}
	raw, ids := dbeList(t, env, rwSvc.Token)
	if len(ids) != 0 || canon(t, raw) != "[]" {
		t.Errorf("R/W Svc Acct lists %s, want []", raw)
	}
	// It can still use the data (its Checks are counted), though it cannot see it.
	dbeWantCheck(t, env, true, rwSvc.Token, "db-table-select", dbeTable(env, a.ID, "ks", "t"), "")

	// org-db-create alone is not enough: the new role would escalate.
	onlyCreate := createRole(t, env, "only-create", "org-db-create")
	tok := env.CreateToken(t, env.AdminToken, onlyCreate)
	code, raw, hdr = env.REST(t, http.MethodPost, dbePath, tok.Token, map[string]any{"name": "escalate"})
	wantAstraError(t, "create with org-db-create only", code, raw, hdr, http.StatusForbidden, 0, "")
	if _, ids := dbeList(t, env, env.AdminToken); len(ids) != 2 {
		t.Errorf("after refused creates the admin lists %v, want 2 databases", ids)
	}
}

// ---- 7. secrets at rest ---------------------------------------------------------

// TestDatabaseSecretsAtRest: the database tokens' secrets and tokens never
// reach the bbolt file (after a Shutdown that flushes everything).
func TestDatabaseSecretsAtRest(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	var creds []dbeCreated
	for i := range 2 {
		creds = append(creds, dbeCreate(t, env, env.AdminToken, map[string]any{"name": fmt.Sprintf("secret-%d", i)}))
	}
	g, err := env.Databases.CreateDatabase(env.GRPCCtx(env.AdminToken), &tbv1.CreateDatabaseRequest{Name: "secret-grpc"})
	if err != nil {
		t.Fatal(err)
	}
	creds = append(creds, dbeCreated{ID: g.GetId(), RoleID: g.GetRoleId(), ClientID: g.GetClientId(), Secret: g.GetSecret(), Token: g.GetToken()})
	for _, c := range creds {
		env.Clock.Advance(time.Second)
		dbeGetOK(t, env, c.Token, c.ID)
		dbeWantCheck(t, env, false, c.Token, "db-table-select", dbeTable(env, c.ID, "default_keyspace", "t"), "")
	}
	env.Shutdown()

	file := env.StoredData(t)
	lower := asciiLower(file)
	for _, c := range creds {
		for _, s := range []string{c.ID, c.ClientID, c.RoleID} { // controls: the scan sees plaintext
			if !bytes.Contains(file, []byte(s)) {
				t.Errorf("control failed: %q not found in the database file", s)
			}
		}
		for what, s := range map[string]string{
			"secret": c.Secret, "token": c.Token, "token hex": c.Token[len(c.Token)-64:],
		} {
			if bytes.Contains(lower, asciiLower([]byte(s))) {
				t.Errorf("database file contains the %s of database %s", what, c.ID)
			}
		}
	}
}
