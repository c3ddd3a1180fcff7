package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tokenbroker/tokenbroker/gen/openapiv2"
	"github.com/tokenbroker/tokenbroker/server/broker"
	"github.com/tokenbroker/tokenbroker/server/rpcerr"
)

var docPatterns = patternsFrom(openapiv2.Document)

func cleanParam(v string) bool {
	return len(v) <= MaxParamBytes && utf8.ValidString(v) && strings.IndexFunc(v, unicode.IsControl) < 0
}

// TestParamNames: every path parameter of the OpenAPI document is named in
// the message about it.
func TestParamNames(t *testing.T) {
	if len(docPatterns) < 20 {
		t.Fatalf("read %d path patterns from the OpenAPI document", len(docPatterns))
	}
	for _, p := range docPatterns {
		for i, seg := range p {
			if !isParam(seg) {
				continue
			}
			segs := append([]string(nil), p...)
			segs[i] = "%FF"
			r := httptest.NewRequest(http.MethodGet, "/"+strings.Join(segs, "/"), nil)
			bad := checkRequest(docPatterns, r)
			want := strings.Trim(seg, "{}") + ": must be valid UTF-8"
			if bad == nil || bad.code != http.StatusBadRequest || bad.msg != want {
				t.Errorf("/%s: got %+v, want 400 %q", strings.Join(segs, "/"), bad, want)
			}
		}
	}
}

// FuzzCheckRequest: the parameter validator lets through exactly the
// parameters a protobuf string and gRPC metadata can carry, names the
// parameter it refuses, and its answer is a well-formed error body.
func FuzzCheckRequest(f *testing.F) {
	for _, s := range []string{"", "ok", "\xff", "\x00", "a\x00b", "%FF", strings.Repeat("x", 5000), "é", "a/b", "\u0085", "..", "{roleId}"} {
		f.Add(s, "pageToken", s)
		f.Add("0b7c7b9e-62a4-4a1f-9f3a-1c6d0e2b1a11", s, "v")
	}
	f.Fuzz(func(t *testing.T, seg, key, value string) {
		target := "/v2/organizations/roles/" + url.PathEscape(seg)
		if key != "" || value != "" {
			target += "?" + url.QueryEscape(key) + "=" + url.QueryEscape(value)
		}
		r := httptest.NewRequest(http.MethodGet, target, nil)
		bad := checkRequest(docPatterns, r)
		clean := cleanParam(seg) && cleanParam(key) && cleanParam(value) && !strings.Contains(seg, "/")
		if clean && key != "" && bad != nil {
			t.Fatalf("%q refused: %+v", target, bad)
		}
		if bad == nil {
			if !cleanParam(seg) || !cleanParam(key) || !cleanParam(value) {
				t.Fatalf("%q let through", target)
			}
			return
		}
		if bad.code != http.StatusBadRequest {
			t.Fatalf("%q: status %d, want 400", target, bad.code)
		}
		if !strings.HasPrefix(bad.msg, "roleId: ") && !strings.HasPrefix(bad.msg, "query") && !strings.HasPrefix(bad.msg, key+": ") && !strings.HasPrefix(bad.msg, "path: ") {
			t.Fatalf("%q: message %q names no parameter", target, bad.msg)
		}
		w := httptest.NewRecorder()
		writeError(w, r, bad.code, bad.id, bad.msg, 0)
		var body astraError
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || len(body.Errors) != 1 || body.Errors[0].ID != 400 {
			t.Fatalf("%q: error body %q (%v)", target, w.Body.String(), err)
		}
	})
}

// FuzzErrorHandler: whatever status a call fails with, the REST answer is
// the path family's JSON error body with a valid status, and an internal
// error's text never reaches the client.
func FuzzErrorHandler(f *testing.F) {
	for _, s := range []string{"", "grpc: error while marshaling: string field contains invalid UTF-8", "\xff\x00", "<script>", strings.Repeat("m", 5000)} {
		for _, c := range []uint32{0, 2, 3, 5, 7, 8, 9, 13, 16, 99} {
			f.Add(c, s, "/v2/organizations/roles/x")
			f.Add(c, s, "/admin/v2/stats/namespaces/t")
			f.Add(c, s, "/v1/auth")
		}
	}
	h := errorHandler(nil)
	f.Fuzz(func(t *testing.T, code uint32, msg, path string) {
		if code == 0 {
			code = 2
		}
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.URL.Path = path
		w := httptest.NewRecorder()
		h(context.Background(), nil, nil, w, r, status.Error(codes.Code(code), msg))
		if w.Code < 400 || w.Code > 599 {
			t.Fatalf("status %d for code %d", w.Code, code)
		}
		var body map[string]json.RawMessage
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || len(body) != 1 {
			t.Fatalf("body %q is not a one-key JSON object (%v)", w.Body.String(), err)
		}
		if c := codes.Code(code); c == codes.Internal || c == codes.Unknown {
			generic := httptest.NewRecorder()
			writeError(generic, r, w.Code, 0, "internal error", 0)
			if w.Body.String() != generic.Body.String() {
				t.Fatalf("internal error answered %q, want the generic %q", w.Body.String(), generic.Body.String())
			}
		}
	})
}

// TestTransportLimitIsNot429: a ResourceExhausted raised by the transport
// (a message-size limit) is the server's failure, answered as a generic
// internal error; the broker's own limits (with a retry delay or a reason)
// stay 429.
func TestTransportLimitIsNot429(t *testing.T) {
	h := errorHandler(nil)
	call := func(err error) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h(context.Background(), nil, nil, w, httptest.NewRequest(http.MethodGet, "/v2/clientIdSecrets", nil), err)
		return w
	}
	w := call(status.Error(codes.ResourceExhausted, "grpc: received message larger than max (15946390 vs. 4194304)"))
	if w.Code != http.StatusInternalServerError || strings.Contains(w.Body.String(), "larger than max") {
		t.Errorf("size limit: %d %s, want 500 with a generic message", w.Code, w.Body.String())
	}
	limited := rpcerr.ToStatus(context.Background(), nil, &broker.Error{Kind: broker.KindExhausted, Msg: "too many failed checks", RetryAfter: time.Second})
	if w := call(limited); w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "1" {
		t.Errorf("rate limit: %d %v, want 429 with Retry-After", w.Code, w.Header())
	}
}

// TestHeaderNamesAreCanonical: checkRequest and the direct route read these
// headers from the request's map by name, which finds them only in
// canonical form (as net/http's server stores them).
func TestHeaderNamesAreCanonical(t *testing.T) {
	names := append([]string{"Authorization"}, credentialHeaders...)
	for h := range forwardedHeaders {
		names = append(names, h)
	}
	for h := range requestIDHeaders {
		names = append(names, h)
	}
	for _, h := range names {
		if c := http.CanonicalHeaderKey(h); c != h {
			t.Errorf("header name %q is not canonical (%q)", h, c)
		}
	}
}
