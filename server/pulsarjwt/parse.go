package pulsarjwt

import (
	"bytes"
	"crypto"
	"crypto/hmac"
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
)

// maxJSONDepth bounds nesting inside header and payload. Pulsar tokens are
// flat; a little nesting is tolerated so foreign claims can still be listed.
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
	signingInput  string
	sig           []byte
	// alg is the header's alg as parsed, kept apart from the exported field
	// so that a caller mutating t.Alg cannot steer the Verify methods.
	alg string
}

// Parse splits and decodes strictly: exactly 3 non-empty parts, base64url WITHOUT padding (reject '='/non-url
// alphabet), header and payload JSON objects (max 8 KiB token), alg must be "RS256" or "HS256" (reject "none",
// "HS512", "RS384", lower-case "rs256", missing alg ...), crit header rejected, duplicate JSON keys rejected if
// practical, numeric claims must be integers. Errors never include the token.
//
// Further strictness, each closing a known ambiguity between JWT libraries:
// base64 must be canonical (no stray trailing bits, no embedded CR/LF, which
// Go's decoder would otherwise skip); header and payload must be valid UTF-8;
// duplicate keys are rejected at every nesting level and after unescaping
// ("s\u0075b" duplicates "sub"); trailing data after the JSON object is
// rejected; sub, iss, aud, tokenid, kid and typ must be strings when present
// (so an array-valued aud is refused rather than half-understood); iat, nbf
// and exp must be positive integers (see [Claims]); an HS256 signature must
// be 32 bytes.
func Parse(token string) (*Token, error) {
	if len(token) > maxTokenLen {
		return nil, errors.New("pulsarjwt: token longer than 8 KiB")
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, errors.New("pulsarjwt: token must have exactly 3 parts")
	}
	for _, p := range parts {
		if p == "" {
			return nil, errors.New("pulsarjwt: token has an empty part")
		}
	}
	hdrJSON, err := decodeSegment(parts[0])
	if err != nil {
		return nil, errors.New("pulsarjwt: header is not canonical unpadded base64url")
	}
	payJSON, err := decodeSegment(parts[1])
	if err != nil {
		return nil, errors.New("pulsarjwt: payload is not canonical unpadded base64url")
	}
	sig, err := decodeSegment(parts[2])
	if err != nil {
		return nil, errors.New("pulsarjwt: signature is not canonical unpadded base64url")
	}

	hdr, err := decodeObject(hdrJSON)
	if err != nil {
		return nil, errors.New("pulsarjwt: header is not a strict JSON object")
	}
	t := &Token{}
	// alg: exact, case-sensitive match against the two supported values.
	alg, ok := hdr["alg"].(string)
	if !ok || (alg != algRS256 && alg != algHS256) {
		return nil, errAlg
	}
	// crit lists extensions the verifier must understand; we understand
	// none, so any crit (even empty, which RFC 7515 forbids) is fatal.
	if _, ok := hdr["crit"]; ok {
		return nil, errors.New("pulsarjwt: crit header not supported")
	}
	if t.Kid, err = optString(hdr, "kid"); err != nil {
		return nil, err
	}
	if t.Typ, err = optString(hdr, "typ"); err != nil {
		return nil, err
	}
	if alg == algHS256 && len(sig) != sha256.Size {
		return nil, errors.New("pulsarjwt: HS256 signature must be 32 bytes")
	}

	t.Raw, err = decodeObject(payJSON)
	if err != nil {
		return nil, errors.New("pulsarjwt: payload is not a strict JSON object")
	}
	if t.Claims, err = claimsFrom(t.Raw); err != nil {
		return nil, err
	}
	t.Alg, t.alg = alg, alg
	t.signingInput = token[:len(parts[0])+1+len(parts[1])]
	t.sig = sig
	return t, nil
}

// VerifyRS256 checks the signature with pub; fails unless t.Alg == "RS256".
//
// The alg check uses the header as parsed, not the (mutable) exported field.
// pub must be 2048–8192 bits.
func (t *Token) VerifyRS256(pub *rsa.PublicKey) error {
	if t == nil || t.signingInput == "" {
		return errMalformed
	}
	if t.alg != algRS256 {
		return errAlgMismatch
	}
	if pub == nil || checkRSASize(pub) != nil {
		return errKey
	}
	digest := sha256.Sum256([]byte(t.signingInput))
	if rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], t.sig) != nil {
		return errSignature
	}
	return nil
}

// VerifyHS256 checks the HMAC with secret in constant time; fails unless t.Alg == "HS256".
//
// Secrets shorter than 32 bytes, or that look like a public key (DER
// SubjectPublicKeyInfo or PEM), are refused before any comparison.
func (t *Token) VerifyHS256(secret []byte) error {
	if t == nil || t.signingInput == "" {
		return errMalformed
	}
	if t.alg != algHS256 {
		return errAlgMismatch
	}
	if err := checkHMACSecret(secret); err != nil {
		return err
	}
	if !hmac.Equal(hmacSHA256(secret, t.signingInput), t.sig) {
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

// decodeSegment decodes one unpadded base64url part. The explicit alphabet
// check matters: encoding/base64 silently skips '\r' and '\n', which would
// let many distinct strings decode to one token. Strict() additionally
// rejects non-zero padding bits, so each byte string has one encoding.
func decodeSegment(s string) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return nil, errMalformed
		}
	}
	return base64.RawURLEncoding.Strict().DecodeString(s)
}

// decodeObject decodes a JSON object into map[string]any (numbers as
// json.Number), rejecting invalid UTF-8, duplicate keys at any depth, excess
// nesting and trailing data. It walks the token stream itself because
// json.Unmarshal silently keeps the last of duplicate keys, which is how
// two parsers end up disagreeing about a token's claims.
func decodeObject(data []byte) (map[string]any, error) {
	if !utf8.Valid(data) {
		return nil, errMalformed
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return nil, errMalformed
	}
	m, err := readObject(dec, 1)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errMalformed
	}
	return m, nil
}

// readObject reads members after the opening '{' up to and including '}'.
func readObject(dec *json.Decoder, depth int) (map[string]any, error) {
	if depth > maxJSONDepth {
		return nil, errMalformed
	}
	m := make(map[string]any)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, errMalformed
		}
		k, ok := tok.(string)
		if !ok {
			return nil, errMalformed
		}
		if _, dup := m[k]; dup {
			return nil, errMalformed
		}
		if m[k], err = readValue(dec, depth); err != nil {
			return nil, err
		}
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, errMalformed
	}
	return m, nil
}

func readValue(dec *json.Decoder, depth int) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, errMalformed
	}
	switch v := tok.(type) {
	case json.Delim:
		switch v {
		case '{':
			return readObject(dec, depth+1)
		case '[':
			if depth+1 > maxJSONDepth {
				return nil, errMalformed
			}
			arr := []any{}
			for dec.More() {
				e, err := readValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				arr = append(arr, e)
			}
			if tok, err := dec.Token(); err != nil || tok != json.Delim(']') {
				return nil, errMalformed
			}
			return arr, nil
		}
		return nil, errMalformed
	case string, json.Number, bool, nil:
		return v, nil
	}
	return nil, errMalformed
}

// optString returns m[name] if it is a string, "" if absent, an error for
// any other type. Exact key match only (encoding/json's struct decoding
// would also accept "SUB" or "Sub").
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
