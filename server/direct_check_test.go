package server

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	tbv1 "github.com/tokenbroker/tokenbroker/gen/tokenbroker/v1"
	"github.com/tokenbroker/tokenbroker/server/gateway"
	"github.com/tokenbroker/tokenbroker/server/policy"
)

// routeRecorder is the in-process channel, noting for each Check whether it
// came through grpc-gateway's generic handler (whose AnnotateContext names
// the RPC in the context) or through the direct route (which does not).
type routeRecorder struct {
	grpc.ClientConnInterface
	mu     sync.Mutex
	routes []string
}

func (r *routeRecorder) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	if method == tbv1.AuthService_Check_FullMethodName {
		route := "direct"
		if _, ok := runtime.RPCMethod(ctx); ok {
			route = "generic"
		}
		r.mu.Lock()
		r.routes = append(r.routes, route)
		r.mu.Unlock()
	}
	return r.ClientConnInterface.Invoke(ctx, method, args, reply, opts...)
}

func (r *routeRecorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.routes
	r.routes = nil
	return out
}

// serveREST serves h on a loopback listener the way the server serves its
// gateway (console, size limit) and returns its base URL.
func serveREST(t *testing.T, s *Server, gw http.Handler) string {
	t.Helper()
	h, err := s.restHandler(gw)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: s.http.MaxHeaderBytes}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + lis.Addr().String()
}

// TestDirectCheckMatchesGateway sends a table of Check requests (and near
// misses) to three REST handlers over the same in-process channel: the one
// the server serves, the same built over a recorder, and grpc-gateway's
// generic handler alone (gateway.NewGeneric), each on its own loopback
// listener. Status, headers (but Date) and body bytes must be equal, no
// answer may be a 5xx, and each request must have taken the route its row
// says: the direct one for what clients send, the generic one for the rest.
func TestDirectCheckMatchesGateway(t *testing.T) {
	s := startInternal(t)
	ctx := context.Background()
	conn, err := grpc.NewClient(s.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	admin := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+s.Bootstrap().Token)
	tokens := tbv1.NewTokenServiceClient(conn)
	app, err := tokens.CreateToken(admin, &tbv1.CreateTokenRequest{Roles: []string{policy.RWSvcAcctID}})
	if err != nil {
		t.Fatal(err)
	}
	login, err := tbv1.NewAuthServiceClient(conn).CreateAuthToken(ctx, &tbv1.CreateAuthTokenRequest{Username: app.ClientId, Password: app.Secret})
	if err != nil {
		t.Fatal(err)
	}
	revoked, err := tokens.CreateToken(admin, &tbv1.CreateTokenRequest{Roles: []string{policy.RWSvcAcctID}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tokens.DeleteToken(admin, &tbv1.DeleteTokenRequest{ClientId: revoked.ClientId}); err != nil {
		t.Fatal(err)
	}

	rec := &routeRecorder{ClientConnInterface: s.inproc}
	direct, err := gateway.New(ctx, rec, s.cfg.Logger, s.gatewayRoutes()...)
	if err != nil {
		t.Fatal(err)
	}
	generic, err := gateway.NewGeneric(ctx, s.inproc, s.cfg.Logger, s.gatewayRoutes()...)
	if err != nil {
		t.Fatal(err)
	}
	targets := map[string]string{
		"served":  "http://" + s.HTTPAddr(),
		"direct":  serveREST(t, s, direct),
		"generic": serveREST(t, s, generic),
	}

	org := s.broker.Org().ID
	resource := policy.DatabaseDRN(org, "db1") + ":keyspace:ks:table:t"
	body := func(fields ...string) string { // alternating names and values
		var b strings.Builder
		b.WriteString("{")
		for i := 0; i < len(fields); i += 2 {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString(`"` + fields[i] + `":"` + fields[i+1] + `"`)
		}
		return b.String() + "}"
	}
	check := body("action", "db-table-select", "resource", resource)
	bearer := [][2]string{{"Authorization", "Bearer " + app.Token}}
	xct := [][2]string{{"X-Cassandra-Token", login.AuthToken}}

	type row struct {
		name    string
		method  string // default POST
		path    string // default /v1/auth/check
		headers [][2]string
		body    string
		route   string // "direct", "generic" or "none" (no Check call)
		status  int
	}
	rows := []row{
		// What clients send: the direct route.
		{name: "credential in the body", body: body("credential", app.Token, "action", "db-table-select", "resource", resource), route: "direct", status: 200},
		{name: "auth token in the body", body: body("credential", login.AuthToken, "action", "db-table-select", "resource", resource), route: "direct", status: 200},
		{name: "X-Cassandra-Token", headers: xct, body: check, route: "direct", status: 200},
		{name: "Authorization Bearer", headers: bearer, body: check, route: "direct", status: 200},
		{name: "Authorization bearer, lower case", headers: [][2]string{{"Authorization", "bearer " + app.Token}}, body: check, route: "direct", status: 200},
		{name: "Authorization without a scheme", headers: [][2]string{{"Authorization", app.Token}}, body: check, route: "direct", status: 200},
		{name: "two Authorization headers", headers: [][2]string{{"Authorization", "Bearer " + app.Token}, {"Authorization", "Bearer x"}}, body: check, route: "direct", status: 200},
		{name: "both headers", headers: append(slices.Clone(bearer), xct...), body: check, route: "direct", status: 200},
		{name: "body credential over the header", headers: [][2]string{{"Authorization", "Bearer AstraCS:nope:nope"}}, body: body("credential", app.Token, "action", "db-table-select", "resource", resource), route: "direct", status: 200},
		{name: "whitespace", headers: bearer, body: "\n {\t\"resource\" :\r\n\"" + resource + "\" , \"action\":\"db-table-select\" }\n", route: "direct", status: 200},
		{name: "request IDs", headers: append([][2]string{{"X-Request-Id", "rid-1"}, {"X-Cassandra-Request-Id", "rid-2"}}, bearer...), body: check, route: "direct", status: 200},
		{name: "an unusable request ID", headers: append([][2]string{{"X-Request-Id", "é"}}, bearer...), body: check, route: "direct", status: 200},
		{name: "other forwarded headers", headers: append([][2]string{{"X-Datastax-Pulsar-Cluster", "c1"}, {"X-Datastax-Current-Org", org}}, bearer...), body: check, route: "direct", status: 200},
		{name: "no content type", headers: append([][2]string{{"Content-Type", ""}}, bearer...), body: check, route: "direct", status: 200},
		{name: "text content type, XML accepted", headers: append([][2]string{{"Content-Type", "text/plain"}, {"Accept", "application/xml"}}, bearer...), body: check, route: "direct", status: 200},
		{name: "accept *", headers: append([][2]string{{"Accept", "*"}}, bearer...), body: check, route: "direct", status: 200},
		{name: "unknown action", headers: bearer, body: body("action", "db-table-nope", "resource", resource), route: "direct", status: 400},
		{name: "bad resource DRN", headers: bearer, body: body("action", "db-table-select", "resource", "drn:nope"), route: "direct", status: 400},
		{name: "empty resource", headers: bearer, body: body("action", "db-table-select"), route: "direct", status: 400},
		{name: "permission denied", headers: bearer, body: body("action", "org-role-delete", "resource", "drn:astra:org:"+org), route: "direct", status: 200},
		{name: "unknown application token", headers: [][2]string{{"Authorization", "Bearer AstraCS:AbCdEfGhIjKlMnOpQrStUvWx:0000000000000000000000000000000000000000000000000000000000000000"}}, body: check, route: "direct", status: 200},
		{name: "unknown auth token", headers: [][2]string{{"X-Cassandra-Token", "6f1c5f7e-2d35-4b8e-9a43-0c7f3b1d2e4a"}}, body: check, route: "direct", status: 200},
		{name: "revoked token", headers: [][2]string{{"Authorization", "Bearer " + revoked.Token}}, body: check, route: "direct", status: 200},
		{name: "garbage credential", headers: [][2]string{{"X-Cassandra-Token", "not a token"}}, body: check, route: "direct", status: 200},
		{name: "JWT-shaped credential", body: body("credential", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", "action", "", "resource", "persistent://t/ns/topic"), route: "direct", status: 400},
		{name: "missing credential", body: check, route: "direct", status: 400},
		{name: "empty object", body: `{}`, route: "direct", status: 400},
		{name: "empty strings", headers: bearer, body: body("credential", "", "action", "", "resource", ""), route: "direct", status: 400},
		{name: "markup in a value", headers: bearer, body: body("action", "<db-table-select>&", "resource", resource), route: "direct", status: 400},

		// Everything else: the generic route, through protojson.
		{name: "empty body", headers: bearer, route: "generic", status: 400},
		{name: "blank body", headers: bearer, body: " \n", route: "generic", status: 400},
		{name: "null body", headers: bearer, body: "null", route: "none", status: 400},
		{name: "bad JSON", headers: bearer, body: `{"action":`, route: "none", status: 400},
		{name: "not an object", headers: bearer, body: `["db-table-select"]`, route: "none", status: 400},
		{name: "trailing data", headers: bearer, body: check + ` {"action":"x"}`, route: "generic", status: 200},
		{name: "unknown field", headers: bearer, body: `{"extra":"x","action":"db-table-select","resource":"` + resource + `"}`, route: "generic", status: 200},
		{name: "unknown nested field", headers: bearer, body: `{"extra":{"a":[1,null,{}]},"action":"db-table-select","resource":"` + resource + `"}`, route: "generic", status: 200},
		{name: "field name in another case", headers: bearer, body: `{"Action":"db-table-select","resource":"` + resource + `"}`, route: "generic", status: 400},
		{name: "number", headers: bearer, body: `{"action":1,"resource":"` + resource + `"}`, route: "none", status: 400},
		{name: "boolean", headers: bearer, body: `{"action":"db-table-select","resource":true}`, route: "none", status: 400},
		{name: "array", headers: bearer, body: `{"credential":["x"],"action":"db-table-select","resource":"` + resource + `"}`, route: "none", status: 400},
		{name: "object", headers: bearer, body: `{"action":{"a":"b"},"resource":"` + resource + `"}`, route: "none", status: 400},
		{name: "null values", headers: bearer, body: `{"credential":null,"action":"db-table-select","resource":"` + resource + `"}`, route: "generic", status: 200},
		{name: "all null", headers: bearer, body: `{"credential":null,"action":null,"resource":null}`, route: "generic", status: 400},
		{name: "duplicate field", headers: bearer, body: `{"action":"db-table-select","action":"db-table-select","resource":"` + resource + `"}`, route: "none", status: 400},
		{name: "escape in a value", headers: bearer, body: `{"action":"db-table-\u0073elect","resource":"` + resource + `"}`, route: "generic", status: 200},
		{name: "escaped quote", headers: bearer, body: `{"action":"db-\"table","resource":"` + resource + `"}`, route: "generic", status: 400},
		{name: "non-ASCII value", headers: bearer, body: body("action", "db-table-select", "resource", resource+"é"), route: "generic", status: 400},
		{name: "invalid UTF-8", headers: bearer, body: body("action", "db-table-select", "resource", resource+"\xff"), route: "none", status: 400},
		{name: "control character", headers: bearer, body: "{\"action\":\"db-table-select\",\"resource\":\"a\x01\"}", route: "none", status: 400},
		{name: "long body", headers: bearer, body: `{"extra":"` + strings.Repeat("x", 8<<10) + `","action":"db-table-select","resource":"` + resource + `"}`, route: "generic", status: 200},
		{name: "long resource", headers: bearer, body: body("action", "db-table-select", "resource", resource+strings.Repeat("x", 5<<10)), route: "generic", status: 400},
		{name: "oversize body", headers: bearer, body: `{"extra":"` + strings.Repeat("x", 1<<20) + `"}`, route: "none", status: 400},
		{name: "query string", path: "/v1/auth/check?action=x", headers: bearer, body: check, route: "generic", status: 200},
		{name: "escaped path", path: "/v1/auth/%63heck", headers: bearer, body: check, route: "generic", status: 200},
		{name: "trailers accepted", headers: append([][2]string{{"TE", "trailers"}}, bearer...), body: check, route: "generic", status: 200},
		{name: "gRPC timeout", headers: append([][2]string{{"Grpc-Timeout", "10S"}}, bearer...), body: check, route: "generic", status: 200},
		{name: "bad gRPC timeout", headers: append([][2]string{{"Grpc-Timeout", "soon"}}, bearer...), body: check, route: "none", status: 400},
		{name: "X-Forwarded-For", headers: append([][2]string{{"X-Forwarded-For", "192.0.2.7"}}, bearer...), body: check, route: "generic", status: 200},
		{name: "X-Forwarded-Host", headers: append([][2]string{{"X-Forwarded-Host", "elsewhere"}}, bearer...), body: check, route: "generic", status: 200},

		// Refused before any route.
		{name: "GET", method: http.MethodGet, headers: bearer, route: "none", status: 405},
		{name: "trailing slash", path: "/v1/auth/check/", headers: bearer, body: check, route: "none", status: 404},
		{name: "non-ASCII credential header", headers: [][2]string{{"X-Cassandra-Token", "é"}}, body: check, route: "none", status: 401},
	}

	client := &http.Client{Timeout: 30 * time.Second}
	send := func(t *testing.T, base string, r row) (int, http.Header, []byte) {
		t.Helper()
		method, path := r.method, r.path
		if method == "" {
			method = http.MethodPost
		}
		if path == "" {
			path = "/v1/auth/check"
		}
		var rd io.Reader
		if r.body != "" {
			rd = strings.NewReader(r.body)
		}
		req, err := http.NewRequest(method, base+path, rd)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		for _, h := range r.headers {
			if h[1] == "" {
				req.Header.Del(h[0])
				continue
			}
			req.Header.Add(h[0], h[1])
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		resp.Header.Del("Date")
		return resp.StatusCode, resp.Header, b
	}

	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			rec.take()
			wantCode, wantHdr, wantBody := send(t, targets["generic"], r)
			t.Logf("%d %.200s", wantCode, wantBody)
			if wantCode >= 500 {
				t.Errorf("generic: %d %s", wantCode, wantBody)
			}
			if wantCode != r.status {
				t.Errorf("generic: %d %s, the row expects %d", wantCode, wantBody, r.status)
			}
			for _, name := range []string{"served", "direct"} {
				code, hdr, b := send(t, targets[name], r)
				if code != wantCode || !bytes.Equal(b, wantBody) {
					t.Errorf("%s: %d %s\ngeneric: %d %s", name, code, b, wantCode, wantBody)
				}
				if !headersEqual(hdr, wantHdr) {
					t.Errorf("%s headers %v\ngeneric headers %v", name, hdr, wantHdr)
				}
			}
			want := []string{r.route}
			if r.route == "none" {
				want = nil
			}
			if got := rec.take(); !slices.Equal(got, want) {
				t.Errorf("the recorded Check took the route %v, the row says %v", got, want)
			}
		})
	}
}

func headersEqual(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}
