package pulsarjwt

import (
	"bytes"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	jose "github.com/go-jose/go-jose/v4"
	josejson "github.com/go-jose/go-jose/v4/json"
)

// maxJSONDepth bounds nesting inside the payload. Pulsar tokens are flat; a
// little nesting is tolerated so foreign claims can still be listed.
const maxJSONDepth = 16

// Token is a parsed, NOT yet verified JWS.
//
// Alg, Kid, Typ and Claims are attacker-controlled until VerifyRS256 or
// VerifyHS256 returned nil. Never use Alg to decide how to verify (see the
// package documentation).
type Token struct {
	Alg, Kid, Typ string
	Claims        Claims
	Raw           map[string]any // all claims, for listing (json.Number for numbers)
	jws           *jose.JSONWebSignature
	// alg is the header's alg as parsed, kept apart from the exported field
	// so that a caller mutating t.Alg cannot steer the Verify methods.
	alg string
}

// Header members that would name or carry a key. The broker picks the key
// from its own record, so a token that tries to supply one is refused
// outright rather than half-understood; crit and b64 would change how the
// signature is computed (RFC 7797), which no Pulsar token does.
var refusedHeaders = []jose.HeaderKey{"crit", "b64", "jku", "x5u", "x5t", "x5t#S256"}

// Parse decodes a compact JWS with go-jose, allowing exactly RS256 and HS256
// (so "none", "HS512", "RS384", lower-case "rs256", a missing alg ... are
// refused), and then holds header and claims to a strict profile. Errors
// never include the token.
//
// Before go-jose sees the token, each part must be canonical unpadded
// base64url (no '=', no other alphabet, no CR/LF, which Go's decoder would
// skip, no stray trailing bits), so one token has exactly one spelling, and
// header and payload must be valid UTF-8 (JSON decoders replace invalid
// bytes instead of refusing them). go-jose refuses duplicate JSON keys
// (also after unescaping: "s\u0075b" duplicates "sub") and trailing data.
// On top of that: crit, b64 and key-naming headers (jwk, jku, x5u, x5t)
// are refused (go-jose itself refuses an x5c that is not a certificate
// chain, and the broker never reads one); kid and typ must be strings; sub, iss, aud, tokenid
// must be strings when present (so an array-valued aud is refused rather
// than half-understood); iat, nbf and exp must be positive integers (see
// [Claims]); an HS256 signature must be 32 bytes; the payload nests at most
// 16 levels.
func Parse(token string) (*Token, error) {
	if len(token) > maxTokenLen {
		return nil, errors.New("pulsarjwt: token longer than 8 KiB")
	}
	if err := checkCompact(token); err != nil {
		return nil, err
	}
	jws, err := jose.ParseSigned(token, parseAlgs)
	if err != nil {
		var unexpected *jose.ErrUnexpectedSignatureAlgorithm
		if errors.As(err, &unexpected) {
			return nil, errAlg
		}
		return nil, errors.New("pulsarjwt: not a compact JWS with a strict JSON header")
	}
	if len(jws.Signatures) != 1 {
		return nil, errMalformed
	}
	sig := jws.Signatures[0]
	h := sig.Protected
	alg := h.Algorithm
	if alg != algRS256 && alg != algHS256 {
		return nil, errAlg // go-jose checked already; belt and braces
	}
	if h.JSONWebKey != nil {
		return nil, errors.New("pulsarjwt: keys in the header are not accepted")
	}
	for _, k := range refusedHeaders {
		if _, ok := h.ExtraHeaders[k]; ok {
			return nil, errors.New("pulsarjwt: header " + string(k) + " not supported")
		}
	}
	t := &Token{Kid: h.KeyID}
	if typ, ok := h.ExtraHeaders[jose.HeaderType]; ok {
		s, isString := typ.(string)
		if !isString {
			return nil, errors.New("pulsarjwt: typ must be a string")
		}
		t.Typ = s
	}
	if alg == algHS256 && len(sig.Signature) != sha256.Size {
		return nil, errors.New("pulsarjwt: HS256 signature must be 32 bytes")
	}
	t.Raw, err = decodeClaims(jws.UnsafePayloadWithoutVerification())
	if err != nil {
		return nil, err
	}
	if t.Claims, err = claimsFrom(t.Raw); err != nil {
		return nil, err
	}
	t.Alg, t.alg, t.jws = alg, alg, jws
	return t, nil
}

// VerifyRS256 checks the signature with pub; fails unless t.Alg == "RS256".
//
// The alg check uses the header as parsed, not the (mutable) exported field.
// pub must be 2048–8192 bits.
func (t *Token) VerifyRS256(pub *rsa.PublicKey) error {
	if t == nil || t.jws == nil {
		return errMalformed
	}
	if t.alg != algRS256 {
		return errAlgMismatch
	}
	if pub == nil || checkRSASize(pub) != nil {
		return errKey
	}
	if _, err := t.jws.Verify(pub); err != nil {
		return errSignature
	}
	return nil
}

// VerifyHS256 checks the HMAC with secret (go-jose compares in constant
// time); fails unless t.Alg == "HS256".
//
// Secrets shorter than 32 bytes, or that look like a public key (DER
// SubjectPublicKeyInfo or PEM), are refused before any comparison.
func (t *Token) VerifyHS256(secret []byte) error {
	if t == nil || t.jws == nil {
		return errMalformed
	}
	if t.alg != algHS256 {
		return errAlgMismatch
	}
	if err := checkHMACSecret(secret); err != nil {
		return err
	}
	if _, err := t.jws.Verify(secret); err != nil {
		return errSignature
	}
	return nil
}

// ValidateTime: exp (if set) must be after now, nbf (if set) at or before now, iat not in the future beyond leeway.
//
// The leeway (whole seconds; a negative leeway is an error) applies to all
// three, like Pulsar's tokenAllowedClockSkewSeconds /
// openIDAcceptedTimeLeewaySeconds. Boundaries follow RFC 7519 and jjwt:
// with zero leeway a token is expired from the second exp names onwards.
func (c Claims) ValidateTime(now time.Time, leeway time.Duration) error {
	if leeway < 0 {
		return errors.New("pulsarjwt: negative leeway")
	}
	// Claims are integers, so comparing against the floored Unix second is
	// exact: now < exp ⇔ floor(now) < exp. Subtracting/adding the leeway on
	// the "now" side keeps huge claim values from overflowing.
	n := now.Unix()
	lw := int64(leeway / time.Second)
	if c.Exp != 0 && n-lw >= c.Exp {
		return errExpired
	}
	if c.Nbf != 0 && c.Nbf > n+lw {
		return errNotYetValid
	}
	if c.Iat != 0 && c.Iat > n+lw {
		return errIssuedInFuture
	}
	return nil
}

// checkCompact enforces what go-jose's decoding leaves open: three
// non-empty parts, each canonical unpadded base64url, and UTF-8 header and
// payload. It only inspects; go-jose does the parsing.
func checkCompact(token string) error {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return errors.New("pulsarjwt: token must have exactly 3 parts")
	}
	names := [3]string{"header", "payload", "signature"}
	for i, p := range parts {
		if p == "" {
			return errors.New("pulsarjwt: token has an empty part")
		}
		for j := 0; j < len(p); j++ {
			c := p[j]
			if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return errors.New("pulsarjwt: " + names[i] + " is not canonical unpadded base64url")
			}
		}
		// Strict() refuses non-zero trailing bits: one byte string, one spelling.
		b, err := base64.RawURLEncoding.Strict().DecodeString(p)
		if err != nil || (i < 2 && !utf8.Valid(b)) {
			return errors.New("pulsarjwt: " + names[i] + " is not canonical unpadded base64url UTF-8")
		}
	}
	return nil
}

// decodeClaims decodes the payload into a map with go-jose's JSON decoder,
// which refuses duplicate keys at every level (encoding/json silently keeps
// the last one, which is how two parsers end up disagreeing about a
// token's claims). Numbers stay json.Number. Trailing data and nesting
// beyond maxJSONDepth are refused.
func decodeClaims(payload []byte) (map[string]any, error) {
	bad := errors.New("pulsarjwt: payload is not a strict JSON object")
	r := bytes.NewReader(payload)
	dec := josejson.NewDecoder(r)
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, bad
	}
	// Nothing but whitespace may follow the object: what the decoder has
	// buffered beyond it, and what it has not read yet.
	rest, _ := io.ReadAll(io.MultiReader(dec.Buffered(), r))
	if len(bytes.TrimLeft(rest, " \t\r\n")) != 0 {
		return nil, bad
	}
	out, d := standardNumbers(m)
	if d > maxJSONDepth {
		return nil, bad
	}
	return out.(map[string]any), nil
}

// standardNumbers returns v with go-jose's json.Number values as
// encoding/json's (what callers of Raw expect), and how deeply v nests
// objects and arrays (a flat object is 1).
func standardNumbers(v any) (any, int) {
	d := 0
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			var ed int
			x[k], ed = standardNumbers(e)
			d = max(d, ed)
		}
		return x, d + 1
	case []any:
		for i, e := range x {
			var ed int
			x[i], ed = standardNumbers(e)
			d = max(d, ed)
		}
		return x, d + 1
	case josejson.Number:
		return json.Number(x), 0
	default:
		return v, 0
	}
}

// optString returns m[name] if it is a string, "" if absent, an error for
// any other type. Exact key match only.
func optString(m map[string]any, name string) (string, error) {
	v, ok := m[name]
	if !ok {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", errors.New("pulsarjwt: " + name + " must be a string")
	}
	return s, nil
}

// optTime returns a NumericDate claim: absent → 0; otherwise a positive
// integer (no fraction, no exponent, fits int64).
func optTime(m map[string]any, name string) (int64, error) {
	v, ok := m[name]
	if !ok {
		return 0, nil
	}
	n, ok := v.(json.Number)
	if !ok {
		return 0, errors.New("pulsarjwt: " + name + " must be a number")
	}
	i, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil || i <= 0 {
		return 0, errors.New("pulsarjwt: " + name + " must be a positive integer")
	}
	return i, nil
}

func claimsFrom(m map[string]any) (Claims, error) {
	var c Claims
	var err error
	for _, f := range []struct {
		name string
		dst  *string
	}{{"sub", &c.Sub}, {"iss", &c.Iss}, {"aud", &c.Aud}, {"tokenid", &c.TokenID}} {
		if *f.dst, err = optString(m, f.name); err != nil {
			return Claims{}, err
		}
	}
	for _, f := range []struct {
		name string
		dst  *int64
	}{{"iat", &c.Iat}, {"nbf", &c.Nbf}, {"exp", &c.Exp}} {
		if *f.dst, err = optTime(m, f.name); err != nil {
			return Claims{}, err
		}
	}
	return c, nil
}
