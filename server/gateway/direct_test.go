package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	tbv1 "github.com/tokenbroker/tokenbroker/gen/tokenbroker/v1"
)

// genericDecode reads body into a CheckRequest the way the generated
// handler does (the gateway's marshaler; io.EOF is an empty request).
func genericDecode(t testing.TB, body string) (*tbv1.CheckRequest, error) {
	t.Helper()
	_, m := newMux(nil)
	req := &tbv1.CheckRequest{}
	if err := m.NewDecoder(strings.NewReader(body)).Decode(req); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return req, nil
}

// checkBodies are request bodies and whether the direct route decodes them
// itself (true) or leaves them to protojson (false).
var checkBodies = []struct {
	body   string
	direct bool
}{
	{`{"credential":"AstraCS:abc:def","action":"db-table-select","resource":"drn:astra:org:o:db:d"}`, true},
	{`{"action":"db-table-select","resource":"drn:astra:org:o:db:d"}`, true},
	{`{"resource":"r","action":"a"}`, true},
	{" \t\r\n{ \"action\" : \"a\" ,\n\"resource\":\"r\" } \n", true},
	{`{}`, true},
	{` { } `, true},
	{`{"credential":"","action":"","resource":""}`, true},
	{`{"action":"a b <c> & 'd'"}`, true},
	{``, false},     // generic: an empty request
	{`   `, false},  // the same
	{`null`, false}, // generic: protojson refuses it
	{`{"action":null}`, false},
	{`{"action":"a","action":"b"}`, false}, // protojson: duplicate field
	{`{"credential":"","credential":""}`, false},
	{`{"action":"\u0041"}`, false},
	{`{"action":"a\"b"}`, false},
	{`{"action":"é"}`, false},
	{"{\"action\":\"a\tb\"}", false}, // a raw control character: invalid JSON
	{`{"action":1}`, false},
	{`{"action":true}`, false},
	{`{"action":["a"]}`, false},
	{`{"action":{"a":1}}`, false},
	{`{"Action":"a"}`, false},  // not a field name: protojson discards it
	{`{"unknown":"x"}`, false}, // the same
	{`{"unknown":{"deep":[1,2]}}`, false},
	{`{"action":"a"} trailing`, false}, // generic: decodes the first value
	{`{"action":"a"}{"action":"b"}`, false},
	{`{"action":"a",}`, false},
	{`{"action":"a"`, false},
	{`{"action" "a"}`, false},
	{`{action:"a"}`, false},
	{`[]`, false},
	{`"a"`, false},
	{`{"action":"a"]`, false},
}

func TestDecodeCheckRequestAgreesWithProtojson(t *testing.T) {
	for _, c := range checkBodies {
		got, ok := decodeCheckRequest(c.body)
		if ok != c.direct {
			t.Errorf("decodeCheckRequest(%q) ok = %v, want %v", c.body, ok, c.direct)
		}
		if !ok {
			continue
		}
		want, err := genericDecode(t, c.body)
		if err != nil {
			t.Errorf("%q: decoded directly, but the generic path refuses it: %v", c.body, err)
			continue
		}
		if !proto.Equal(got, want) {
			t.Errorf("%q: direct %v, generic %v", c.body, got, want)
		}
	}
}

// FuzzDecodeCheckRequest: whatever the direct decoder accepts, protojson
// reads as the same message.
func FuzzDecodeCheckRequest(f *testing.F) {
	for _, c := range checkBodies {
		f.Add(c.body)
	}
	f.Fuzz(func(t *testing.T, body string) {
		got, ok := decodeCheckRequest(body)
		if !ok {
			return
		}
		want, err := genericDecode(t, body)
		if err != nil {
			t.Fatalf("%q: decoded directly, but the generic path refuses it: %v", body, err)
		}
		if !proto.Equal(got, want) {
			t.Fatalf("%q: direct %v, generic %v", body, got, want)
		}
	})
}

var checkResponses = []*tbv1.CheckResponse{
	{},
	{Allowed: true},
	{Reason: "CREDENTIAL_INVALID"},
	{Reason: "PERMISSION_DENIED", Principal: &tbv1.Principal{Kind: "application-token", Id: "AbcDef", OrgId: "o", Roles: []string{"r1"}, CredentialType: "application-token"}},
	{Allowed: true, Principal: &tbv1.Principal{Kind: "user", Id: "u", OrgId: "o", Roles: []string{"r1", "r2", "r3"}, CredentialType: "auth-token"}},
	{Allowed: true, Principal: &tbv1.Principal{}},
	{Allowed: true, Principal: &tbv1.Principal{Roles: []string{""}}},
	{Reason: "a <b> & 'c' / d"},
}

func TestAppendCheckResponseMatchesMarshaler(t *testing.T) {
	for _, m := range checkResponses {
		compareCheckResponse(t, m, true)
	}
	for _, s := range []string{`"`, `\`, "\n", "\x00", "\x7f", "é", "\u2028", "\xff"} {
		compareCheckResponse(t, &tbv1.CheckResponse{Reason: s}, false)
		compareCheckResponse(t, &tbv1.CheckResponse{Principal: &tbv1.Principal{Roles: []string{"a", s}}}, false)
		compareCheckResponse(t, &tbv1.CheckResponse{Principal: &tbv1.Principal{CredentialType: s}}, false)
	}
}

// compareCheckResponse checks that appendCheckResponse writes m as the
// marshaler does, or declines (wantOK false) to.
func compareCheckResponse(t testing.TB, m *tbv1.CheckResponse, wantOK bool) {
	t.Helper()
	_, marshaler := newMux(nil)
	got, ok := appendCheckResponse(nil, m)
	if ok != wantOK {
		t.Errorf("appendCheckResponse(%v) ok = %v, want %v", m, ok, wantOK)
	}
	if !ok {
		return
	}
	want, err := marshaler.Marshal(m)
	if err != nil {
		t.Fatalf("marshal %v: %v", m, err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("appendCheckResponse(%v):\n got %s\nwant %s", m, got, want)
	}
}

// FuzzAppendCheckResponse: whenever the direct encoder writes a response,
// it writes the marshaler's bytes; it declines only strings with a byte
// that is not plain.
func FuzzAppendCheckResponse(f *testing.F) {
	f.Add(true, "", true, "application-token", "id", "org", "r1,r2", "auth-token")
	f.Add(false, "CREDENTIAL_INVALID", false, "", "", "", "", "")
	f.Add(false, "x\"y", true, "k\\", "é", "\n", ",", "\x00")
	f.Fuzz(func(t *testing.T, allowed bool, reason string, hasPrincipal bool, kind, id, org, roles, ctype string) {
		m := &tbv1.CheckResponse{Allowed: allowed, Reason: reason}
		strs := []string{reason}
		if hasPrincipal {
			p := &tbv1.Principal{Kind: kind, Id: id, OrgId: org, CredentialType: ctype}
			if roles != "" {
				p.Roles = strings.Split(roles, ",")
			}
			m.Principal = p
			strs = append(strs, kind, id, org, ctype)
			strs = append(strs, p.Roles...)
		}
		plain := true
		for _, s := range strs {
			for i := 0; i < len(s); i++ {
				plain = plain && plainByte(s[i])
			}
		}
		compareCheckResponse(t, m, plain)
	})
}

func TestCompactJSONMatchesEncodingJSON(t *testing.T) {
	for _, in := range compactInputs {
		compareCompact(t, in)
	}
}

var compactInputs = []string{
	`{}`, ` { "a" : 1 , "b" : [ 1 , 2 ] } `, "{\n\t\"a\": \"x y\",\r\n \"b\": null}",
	`{"a":"with \" quote, space","b":"back\\slash ","c":"\\"}`, `[ "a\\\" b" , " " ]`,
	`{"allowed":true, "reason":"", "principal":{"kind":"a", "roles":["x", "y"]}}`,
	`"  "`, ` 12 `, `{"a":"\u00e9 é"}`,
}

func compareCompact(t testing.TB, in string) {
	t.Helper()
	var want bytes.Buffer
	if err := json.Compact(&want, []byte(in)); err != nil {
		t.Fatalf("json.Compact(%q): %v", in, err)
	}
	if got := compactJSON([]byte(in)); !bytes.Equal(got, want.Bytes()) {
		t.Errorf("compactJSON(%q) = %q, want %q", in, got, want.Bytes())
	}
}

// FuzzCompactJSON: on valid JSON (all the marshaler ever compacts),
// compactJSON gives json.Compact's bytes.
func FuzzCompactJSON(f *testing.F) {
	for _, in := range compactInputs {
		f.Add(in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		if json.Valid([]byte(in)) {
			compareCompact(t, in)
		}
	})
}

// TestOutgoingMetadataMatchesAnnotateContext: for every request the direct
// route takes, the metadata it passes on is what runtime.AnnotateContext
// builds with the gateway's mux options.
func TestOutgoingMetadataMatchesAnnotateContext(t *testing.T) {
	mux, _ := newMux(nil)
	cases := []struct {
		name    string
		headers [][2]string
		remote  string
		host    string
	}{
		{name: "none"},
		{name: "bearer", headers: [][2]string{{"Authorization", "Bearer AstraCS:x:y"}}},
		{name: "two authorizations", headers: [][2]string{{"Authorization", "Bearer a"}, {"Authorization", "b"}}},
		{name: "x-cassandra-token", headers: [][2]string{{"X-Cassandra-Token", "4b5c"}}},
		{name: "both credentials", headers: [][2]string{{"X-Cassandra-Token", "t"}, {"Authorization", "Bearer a"}}},
		{name: "every forwarded header", headers: [][2]string{
			{"X-Request-Id", "r1"}, {"X-Cassandra-Request-Id", "r2"}, {"X-Cassandra-Token", "t"},
			{"X-Datastax-Pulsar-Cluster", "c"}, {"X-Datastax-Current-Org", "o"}, {"X-Request-Id", "r3"},
		}},
		{name: "not forwarded", headers: [][2]string{
			{"User-Agent", "hey"}, {"Content-Type", "application/json"}, {"Grpc-Metadata-Foo", "x"},
			{"X-Tokenbroker-Client-Addr", "6.6.6.6"}, {"Cookie", "a=b"},
		}},
		{name: "non-printable values", headers: [][2]string{
			{"Authorization", "Bearer \x01"}, {"X-Cassandra-Token", "é"}, {"X-Request-Id", "ok"},
		}},
		{name: "ipv6 peer", remote: "[::1]:4000"},
		{name: "peer without port", remote: "10.0.0.1"},
		{name: "empty peer", remote: ""},
		{name: "empty host", host: "-"},
		{name: "host with port", host: "broker.internal:8080"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, checkPath, strings.NewReader("{}"))
			for _, h := range c.headers {
				r.Header.Add(h[0], h[1])
			}
			if c.remote != "" || c.name == "empty peer" {
				r.RemoteAddr = c.remote
			}
			switch c.host {
			case "":
			case "-":
				r.Host = ""
			default:
				r.Host = c.host
			}
			if !(&directCheck{}).takes(r) {
				t.Fatal("the direct route does not take this request")
			}
			ctx, err := runtime.AnnotateContext(context.Background(), mux, r, "/tokenbroker.v1.AuthService/Check", runtime.WithHTTPPathPattern(checkPath))
			if err != nil {
				t.Fatal(err)
			}
			want, _ := metadata.FromOutgoingContext(ctx)
			got := outgoingMetadata(r)
			if len(want) == 0 && len(got) == 0 {
				return
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("outgoingMetadata = %v\nAnnotateContext gives %v", got, want)
			}
		})
	}
}

func TestDirectCheckLeavesOtherRequests(t *testing.T) {
	base := func() *http.Request { return httptest.NewRequest(http.MethodPost, checkPath, strings.NewReader("{}")) }
	if !(&directCheck{}).takes(base()) {
		t.Fatal("the direct route does not take a plain Check")
	}
	for name, r := range map[string]*http.Request{
		"GET":            httptest.NewRequest(http.MethodGet, checkPath, nil),
		"query":          httptest.NewRequest(http.MethodPost, checkPath+"?action=a", strings.NewReader("{}")),
		"escaped path":   httptest.NewRequest(http.MethodPost, "/v1/auth/%63heck", strings.NewReader("{}")),
		"trailing slash": httptest.NewRequest(http.MethodPost, checkPath+"/", strings.NewReader("{}")),
		"other path":     httptest.NewRequest(http.MethodPost, "/v1/auth", strings.NewReader("{}")),
	} {
		if (&directCheck{}).takes(r) {
			t.Errorf("%s: taken", name)
		}
	}
	for _, h := range []string{"Grpc-Timeout", "Te", "X-Forwarded-For", "X-Forwarded-Host"} {
		r := base()
		r.Header.Set(h, "1")
		if (&directCheck{}).takes(r) {
			t.Errorf("with %s: taken", h)
		}
	}
}

// TestReadRequestReplaysTheBody: a body the direct route does not decode
// reaches the generic handler as it came: the same bytes, then the same end.
func TestReadRequestReplaysTheBody(t *testing.T) {
	long := `{"action":"` + strings.Repeat("a", 2*maxDirectBody) + `"}`
	boom := errors.New("boom")
	cases := []struct {
		name    string
		body    io.Reader
		want    string
		wantErr error
	}{
		{"not plain", strings.NewReader(`{"action":null}`), `{"action":null}`, nil},
		{"empty", strings.NewReader(""), "", nil},
		{"longer than the buffer", strings.NewReader(long), long, nil},
		{"exactly the buffer", strings.NewReader(long[:maxDirectBody]), long[:maxDirectBody], nil},
		{"one byte at a time", iotest.OneByteReader(strings.NewReader(`{"x":1}`)), `{"x":1}`, nil},
		{"read error", io.MultiReader(strings.NewReader(`{"action":`), iotest.ErrReader(boom)), `{"action":`, boom},
		{"read error with data", iotest.DataErrReader(strings.NewReader(`{"a":1}`)), `{"a":1}`, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, checkPath, nil)
			r.Body = io.NopCloser(c.body)
			if _, ok := (&directCheck{}).readRequest(r); ok {
				t.Fatal("decoded directly")
			}
			got, err := io.ReadAll(r.Body)
			if string(got) != c.want || !errors.Is(err, c.wantErr) && err != c.wantErr {
				t.Errorf("replayed %d bytes, %v; want %d bytes, %v", len(got), err, len(c.want), c.wantErr)
			}
			if c.wantErr != nil {
				if _, err := r.Body.Read(make([]byte, 1)); !errors.Is(err, c.wantErr) {
					t.Errorf("a read after the error = %v, want %v again", err, c.wantErr)
				}
			}
		})
	}
}
