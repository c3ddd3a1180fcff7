package gateway

import (
	tbv1 "github.com/tokenbroker/tokenbroker/gen/tokenbroker/v1"
)

// The direct Check route reads and writes the two small messages of Check
// itself, for the one shape clients send, and hands everything else to
// protojson (via the generic gateway handler): the decoder accepts a JSON
// object of plain strings under the three field names, nothing more, so
// whatever it accepts protojson reads as the same message; the encoder
// writes what protojson (EmitUnpopulated, lowerCamel names, declaration
// order) writes after compaction, and declines any string it would have to
// escape. Tests compare both with protojson on generated and fuzzed input.

// decodeCheckRequest reads body as a CheckRequest if it is a JSON object
// whose members are all "credential", "action" or "resource", each at most
// once, with a plain string value (see plainString), with JSON whitespace
// anywhere between tokens and nothing after the object. ok is false for
// anything else (null, escapes, other fields, duplicates, other types,
// trailing data, an empty body), which the caller leaves to protojson.
func decodeCheckRequest(body string) (req *tbv1.CheckRequest, ok bool) {
	req = &tbv1.CheckRequest{}
	var seen [3]bool
	i := skipSpace(body, 0)
	if i == len(body) || body[i] != '{' {
		return nil, false
	}
	i = skipSpace(body, i+1)
	if i < len(body) && body[i] == '}' {
		return req, skipSpace(body, i+1) == len(body)
	}
	for {
		var key, val string
		if key, i, ok = plainString(body, i); !ok {
			return nil, false
		}
		if i = skipSpace(body, i); i == len(body) || body[i] != ':' {
			return nil, false
		}
		if val, i, ok = plainString(body, skipSpace(body, i+1)); !ok {
			return nil, false
		}
		var field int
		switch key {
		case "credential":
			field, req.Credential = 0, val
		case "action":
			field, req.Action = 1, val
		case "resource":
			field, req.Resource = 2, val
		default:
			return nil, false
		}
		if seen[field] { // protojson refuses a repeated field
			return nil, false
		}
		seen[field] = true
		if i = skipSpace(body, i); i == len(body) {
			return nil, false
		}
		switch body[i] {
		case ',':
			i = skipSpace(body, i+1)
		case '}':
			return req, skipSpace(body, i+1) == len(body)
		default:
			return nil, false
		}
	}
}

// skipSpace returns the index of the first byte at or after i that is not
// JSON whitespace (which is exactly these four bytes).
func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

// plainString reads the JSON string starting at s[i] if it holds only
// printable ASCII other than '"' and '\\' (no escapes: its bytes are its
// value) and returns its value and the index after its closing quote.
func plainString(s string, i int) (string, int, bool) {
	if i == len(s) || s[i] != '"' {
		return "", i, false
	}
	for j := i + 1; j < len(s); j++ {
		switch c := s[j]; {
		case c == '"':
			return s[i+1 : j], j + 1, true
		case !plainByte(c):
			return "", i, false
		}
	}
	return "", i, false
}

// plainByte reports whether c stands for itself in a JSON string as both
// encoding/json and protojson write it: printable ASCII except the quote
// and the backslash.
func plainByte(c byte) bool { return c >= 0x20 && c <= 0x7e && c != '"' && c != '\\' }

// appendCheckResponse appends m as the gateway's marshaler writes it:
// {"allowed":…,"reason":…,"principal":null|{"kind":…,"id":…,"orgId":…,
// "roles":[…],"credentialType":…}}. ok is false when a string is not plain
// (protojson would escape it, or refuse invalid UTF-8); the caller then
// discards b and uses the marshaler.
func appendCheckResponse(b []byte, m *tbv1.CheckResponse) (_ []byte, ok bool) {
	e := plainEncoder{b: b}
	e.raw(`{"allowed":`)
	if m.GetAllowed() {
		e.raw("true")
	} else {
		e.raw("false")
	}
	e.raw(`,"reason":`)
	e.str(m.GetReason())
	e.raw(`,"principal":`)
	if p := m.GetPrincipal(); p == nil {
		e.raw("null")
	} else {
		e.raw(`{"kind":`)
		e.str(p.GetKind())
		e.raw(`,"id":`)
		e.str(p.GetId())
		e.raw(`,"orgId":`)
		e.str(p.GetOrgId())
		e.raw(`,"roles":[`)
		for i, r := range p.GetRoles() {
			if i > 0 {
				e.raw(",")
			}
			e.str(r)
		}
		e.raw(`],"credentialType":`)
		e.str(p.GetCredentialType())
		e.raw("}")
	}
	e.raw("}")
	return e.b, !e.escaped
}

// plainEncoder appends JSON text whose strings need no escape, and notes
// when one would.
type plainEncoder struct {
	b       []byte
	escaped bool // a string held a byte that is not plain
}

func (e *plainEncoder) raw(s string) { e.b = append(e.b, s...) }

func (e *plainEncoder) str(s string) {
	for i := 0; i < len(s); i++ {
		if !plainByte(s[i]) {
			e.escaped = true
		}
	}
	e.b = append(e.b, '"')
	e.b = append(e.b, s...)
	e.b = append(e.b, '"')
}
