package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxParamBytes bounds a path or query parameter. No identifier, month or
// enum value of the API comes near it; longer input is refused before it
// reaches a handler.
const MaxParamBytes = 1024

// paramPattern is one path of the OpenAPI document, split into segments;
// a segment "{name}" is a parameter.
type paramPattern []string

// patternsFrom reads the path templates of an OpenAPI (swagger 2) document.
// They only name parameters in error messages, so a document that does not
// parse yields none (and messages fall back to "path").
func patternsFrom(doc []byte) []paramPattern {
	var d struct {
		Paths map[string]json.RawMessage `json:"paths"`
	}
	if json.Unmarshal(doc, &d) != nil {
		return nil
	}
	out := make([]paramPattern, 0, len(d.Paths))
	for p := range d.Paths {
		out = append(out, strings.Split(strings.TrimPrefix(p, "/"), "/"))
	}
	return out
}

// paramName names segment i of a request path split into segs: the
// parameter of the first pattern whose literal segments all match, or
// "path" when none does.
func paramName(patterns []paramPattern, segs []string, i int) string {
	for _, p := range patterns {
		if len(p) != len(segs) || !isParam(p[i]) {
			continue
		}
		match := true
		for j, s := range p {
			if !isParam(s) && s != segs[j] {
				match = false
				break
			}
		}
		if match {
			return strings.Trim(p[i], "{}")
		}
	}
	return "path"
}

func isParam(seg string) bool { return strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") }

// textProblem says what is wrong with a parameter value, or "" if nothing:
// it must be valid UTF-8 (protobuf strings must be), free of control
// characters (NUL included), and at most MaxParamBytes long.
func textProblem(v string) string {
	switch {
	case len(v) > MaxParamBytes:
		return fmt.Sprintf("must be at most %d bytes, got %d", MaxParamBytes, len(v))
	case !utf8.ValidString(v):
		return "must be valid UTF-8"
	case strings.IndexFunc(v, unicode.IsControl) >= 0:
		return "must not contain control characters"
	}
	return ""
}

// badRequest is a refused request: the status and a message naming the
// parameter.
type badRequest struct {
	code int
	id   int // Astra error ID; 0 = the status
	msg  string
}

// credentialHeaders carry credentials: a bad one is a malformed credential
// (401, Astra's 340012), not a bad request.
var credentialHeaders = []string{"Authorization", "X-Cassandra-Token"}

// checkRequest validates what grpc-gateway would copy into a protobuf
// message or into gRPC metadata: path segments, query parameters, and the
// forwarded headers (dropping an unusable request-ID header). grpc refuses to marshal a string field holding invalid
// UTF-8 (the client would get a 500), and metadata must be printable ASCII.
func checkRequest(patterns []paramPattern, r *http.Request) *badRequest {
	path := strings.TrimPrefix(r.URL.EscapedPath(), "/")
	// Segment by segment without splitting (no allocation on the good
	// path); the split is made only to name the parameter of a bad one.
	for i, rest := 0, path; ; i++ {
		raw, tail, more := strings.Cut(rest, "/")
		seg, err := url.PathUnescape(raw)
		if err != nil {
			return &badRequest{code: http.StatusBadRequest, msg: fmt.Sprintf("%s: malformed percent-encoding", paramName(patterns, strings.Split(path, "/"), i))}
		}
		if p := textProblem(seg); p != "" {
			return &badRequest{code: http.StatusBadRequest, msg: paramName(patterns, strings.Split(path, "/"), i) + ": " + p}
		}
		if !more {
			break
		}
		rest = tail
	}
	if len(r.URL.RawQuery) > 0 {
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			return &badRequest{code: http.StatusBadRequest, msg: "query: malformed query string"}
		}
		for k, vals := range q {
			if p := textProblem(k); p != "" {
				return &badRequest{code: http.StatusBadRequest, msg: "query parameter name: " + p}
			}
			for _, v := range vals {
				if p := textProblem(v); p != "" {
					return &badRequest{code: http.StatusBadRequest, msg: k + ": " + p}
				}
			}
		}
	}
	// The header names here are canonical, so the map is read directly
	// (Header.Values would canonicalize each name again).
	for _, h := range credentialHeaders {
		for _, v := range r.Header[h] {
			if !printableASCII(v) {
				return &badRequest{code: http.StatusUnauthorized, id: 340012, msg: h + ": malformed credential"}
			}
		}
	}
	for h := range forwardedHeaders {
		for _, v := range r.Header[h] {
			if printableASCII(v) {
				continue
			}
			if requestIDHeaders[h] {
				// A request ID is only a label: an unusable one is dropped
				// (the server makes its own), as a too-long one is ignored.
				r.Header.Del(h)
				break
			}
			return &badRequest{code: http.StatusBadRequest, msg: h + " header: must be printable ASCII"}
		}
	}
	return nil
}

// requestIDHeaders are the forwarded headers that only label a call.
var requestIDHeaders = map[string]bool{"X-Request-Id": true, "X-Cassandra-Request-Id": true}

// printableASCII reports whether v may be sent as gRPC metadata.
func printableASCII(v string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return false
		}
	}
	return true
}

// validateParams refuses requests whose parameters checkRequest rejects,
// with the error body of the path's API; nothing reaches a handler.
func validateParams(patterns []paramPattern, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if bad := checkRequest(patterns, r); bad != nil {
			writeError(w, r, bad.code, bad.id, bad.msg, 0)
			return
		}
		next.ServeHTTP(w, r)
	})
}
