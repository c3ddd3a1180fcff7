// Package pulsarjwt signs and verifies the tokens a stock Apache Pulsar
// broker accepts: RS256 tokens (verifiable with a public key or through OIDC
// discovery + JWKS) and the plain HS256 shared-secret format that
// `bin/pulsar tokens create` emits.
//
// JWS serialization, parsing and signature checks are go-jose's
// (github.com/go-jose/go-jose/v4), always called with an explicit list of
// algorithms. This package adds what a token broker needs on top: the
// claims in a fixed byte order (Pulsar's plain format must be byte-exact),
// claim types checked strictly, and a verification API that cannot be
// steered by the token's header.
//
// # Choosing the verification method
//
// Callers MUST choose between [Token.VerifyRS256] and [Token.VerifyHS256]
// from their own record of the token or tenant (for example "tenant acme
// signs with RSA key <kid>"), NEVER from the token's header. [Token.Alg] is
// reported for listing and diagnostics only. Letting the header pick the
// method is the classic algorithm-confusion attack: an attacker signs an
// HS256 token using the (public!) RSA key bytes as the HMAC secret, and a
// verifier that feeds "the tenant's key" to whichever method the header names
// accepts it. Here each method only accepts its own algorithm
// ([Token.VerifyRS256] fails on an HS256 token whatever the key), takes a
// typed key (*rsa.PublicKey vs []byte), and [Token.VerifyHS256] additionally
// refuses secrets that look like a public key.
//
// # Verification order
//
// [Parse] only decodes; nothing in a [Token] is trustworthy until a Verify
// method succeeded. Then call [Claims.ValidateTime], then check iss, aud and
// sub against the caller's expectations.
//
// Errors never contain the token or any part of it, so they are safe to log.
package pulsarjwt

import (
	"crypto/rsa"
	"errors"
	"strconv"
	"unicode/utf8"

	jose "github.com/go-jose/go-jose/v4"
)

// Algorithms this package signs and verifies. Pulsar's CLI picks the
// algorithm from the key size; the broker (AuthenticationProviderToken)
// verifies whatever the header names with its configured key, and the OIDC
// provider accepts RS256, so RS256 + HS256 cover both broker modes.
const (
	algRS256 = string(jose.RS256)
	algHS256 = string(jose.HS256)
)

// parseAlgs is the explicit algorithm list every parse passes to go-jose.
var parseAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.HS256}

const (
	// maxTokenLen bounds the work Parse does on untrusted input. Broker
	// tokens are a few hundred bytes; an RS256 token with a 4096-bit key and
	// every claim stays far below this.
	maxTokenLen = 8 << 10
	// minHMACSecret: jjwt refuses HS256 keys shorter than 256 bits
	// (WeakKeyException), and so do we, for signing and verifying.
	minHMACSecret = 32
	// RSA modulus bounds. 2048 is Pulsar's RS256 size and the floor for
	// anything we trust; the ceiling keeps an attacker-supplied public key
	// from turning verification into a CPU sink.
	minRSABits = 2048
	maxRSABits = 8192
)

// Errors. They are unexported so the package API stays as specified; the
// messages are fixed strings (never token content) so they are safe to log.
var (
	errMalformed      = errors.New("pulsarjwt: malformed token")
	errAlg            = errors.New("pulsarjwt: unsupported or missing alg")
	errAlgMismatch    = errors.New("pulsarjwt: token alg does not match the verification method")
	errSignature      = errors.New("pulsarjwt: invalid signature")
	errExpired        = errors.New("pulsarjwt: token expired")
	errNotYetValid    = errors.New("pulsarjwt: token not valid yet")
	errIssuedInFuture = errors.New("pulsarjwt: token issued in the future")
	errWeakSecret     = errors.New("pulsarjwt: HMAC secret shorter than 32 bytes")
	errSecretIsPubKey = errors.New("pulsarjwt: HMAC secret looks like a public key")
	errKey            = errors.New("pulsarjwt: unsupported RSA key")
)

// Claims of a broker-issued token. Zero-valued fields are omitted from the JSON.
//
// Because zero means "absent", [Parse] rejects tokens that carry an explicit
// 0 (or a negative value) in iat, nbf or exp: "exp":0 would otherwise read as
// "never expires" here while meaning "expired in 1970" to everyone else.
type Claims struct {
	Sub     string // Pulsar role
	Iss     string
	Aud     string
	Iat     int64 // unix seconds
	Nbf     int64
	Exp     int64  // 0: never expires
	TokenID string // JSON "tokenid" (as Astra's tokens)
}

// SignRS256 returns a compact JWS with the protected header
// {"alg":"RS256","kid":"<kid>","typ":"JWT"} (go-jose writes header members
// in lexicographic order) and the claims serialized in this fixed key order:
// sub, iss, aud, iat, nbf, exp, tokenid (deterministic output for tests).
//
// kid and Sub are required (the OIDC provider looks keys up by kid, and a
// token without a role authenticates as a null role in Pulsar). Time claims
// must be zero (omitted) or positive. The key must be 2048–8192 bits.
// RSASSA-PKCS1-v1_5 is deterministic, so equal inputs give equal tokens.
func SignRS256(key *rsa.PrivateKey, kid string, c Claims) (string, error) {
	if key == nil || checkRSASize(&key.PublicKey) != nil {
		return "", errKey
	}
	if kid == "" {
		return "", errors.New("pulsarjwt: kid is required")
	}
	// The kid goes through the same check as claim strings (no control
	// characters, valid UTF-8), so every header we emit is plain JSON.
	if _, err := appendString(nil, "kid", kid); err != nil {
		return "", err
	}
	payload, err := c.marshal()
	if err != nil {
		return "", err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", errors.New("pulsarjwt: RS256 signer: " + err.Error())
	}
	return sign(signer, payload, "RS256")
}

// SignHS256Plain returns Pulsar's plain shared-secret format, byte-compatible with `bin/pulsar tokens create`
// (jjwt): header exactly {"alg":"HS256"}, payload {"sub":"<sub>"} or {"sub":"<sub>","exp":<exp>} — it must reproduce
// the reference's test vectors byte for byte. Rejects secrets shorter than 32 bytes.
//
// exp 0 means no expiry (the CLI without -e). Byte compatibility caveat: the
// CLI lets jjwt pick the algorithm from the key size, so for a secret of 48
// or more bytes it would emit HS384/HS512 instead; the broker still accepts
// this HS256 token with such a key (it verifies the header's alg with its
// configured key), only the bytes differ from the CLI's.
func SignHS256Plain(secret []byte, sub string, exp int64) (string, error) {
	if err := checkHMACSecret(secret); err != nil {
		return "", err
	}
	if sub == "" {
		return "", errors.New("pulsarjwt: sub is required")
	}
	if exp < 0 {
		return "", errors.New("pulsarjwt: exp must not be negative")
	}
	payload := make([]byte, 0, 32+len(sub))
	payload = append(payload, `{"sub":`...)
	payload, err := appendString(payload, "sub", sub)
	if err != nil {
		return "", err
	}
	if exp != 0 {
		payload = append(payload, `,"exp":`...)
		payload = strconv.AppendInt(payload, exp, 10)
	}
	payload = append(payload, '}')

	// With a bare []byte key and no options go-jose's protected header is
	// exactly {"alg":"HS256"}, as jjwt writes it (checked by the vectors).
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: secret}, nil)
	if err != nil {
		return "", errors.New("pulsarjwt: HS256 signer: " + err.Error())
	}
	return sign(signer, payload, "HS256")
}

func sign(signer jose.Signer, payload []byte, alg string) (string, error) {
	obj, err := signer.Sign(payload)
	if err != nil {
		return "", errors.New("pulsarjwt: " + alg + " signing failed")
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		return "", errors.New("pulsarjwt: " + alg + " serialization failed")
	}
	return out, nil
}

// marshal writes the claims in the documented fixed order, omitting zero
// values. Hand-written rather than encoding/json because the order is part
// of the contract and encoding/json would HTML-escape <, > and & (valid JSON,
// but not what Jackson/jjwt would emit).
func (c Claims) marshal() ([]byte, error) {
	if c.Sub == "" {
		return nil, errors.New("pulsarjwt: sub is required")
	}
	out := make([]byte, 0, 128)
	sep := byte('{')
	var err error
	str := func(name, v string) {
		if v == "" || err != nil {
			return
		}
		out = append(out, sep, '"')
		out = append(out, name...)
		out = append(out, '"', ':')
		out, err = appendString(out, name, v)
		sep = ','
	}
	num := func(name string, v int64) {
		if v == 0 || err != nil {
			return
		}
		if v < 0 {
			err = errors.New("pulsarjwt: claim " + name + " must not be negative")
			return
		}
		out = append(out, sep, '"')
		out = append(out, name...)
		out = append(out, '"', ':')
		out = strconv.AppendInt(out, v, 10)
		sep = ','
	}
	str("sub", c.Sub)
	str("iss", c.Iss)
	str("aud", c.Aud)
	num("iat", c.Iat)
	num("nbf", c.Nbf)
	num("exp", c.Exp)
	str("tokenid", c.TokenID)
	if err != nil {
		return nil, err
	}
	return append(out, '}'), nil
}

// appendString appends s as a JSON string. Only '"' and '\' need escaping
// because control characters are refused outright: they have no business in a
// role, issuer, audience or key id, and refusing them sidesteps the question
// of how each JSON library would escape them (so our bytes equal jjwt's).
// Non-ASCII is written as raw UTF-8, as Jackson does; invalid UTF-8 is refused.
func appendString(dst []byte, name, s string) ([]byte, error) {
	if !utf8.ValidString(s) {
		return nil, errors.New("pulsarjwt: " + name + " is not valid UTF-8")
	}
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c == 0x7f:
			return nil, errors.New("pulsarjwt: " + name + " contains a control character")
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"'), nil
}

// checkHMACSecret enforces jjwt's 256-bit floor and refuses to use a public
// key as a shared secret (the alg-confusion attack's key). A random secret
// essentially never parses as DER SubjectPublicKeyInfo or starts with a PEM
// armor line, so this costs legitimate users nothing.
func checkHMACSecret(secret []byte) error {
	if len(secret) < minHMACSecret {
		return errWeakSecret
	}
	if looksLikePublicKey(secret) {
		return errSecretIsPubKey
	}
	return nil
}
