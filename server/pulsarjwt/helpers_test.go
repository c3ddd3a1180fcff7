package pulsarjwt

import (
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"sync"
	"testing"
)

// RSA key generation takes a while (much longer under -race), so the tests
// share two keys.
var (
	testKey  = sync.OnceValue(func() *rsa.PrivateKey { return mustKey() })
	otherKey = sync.OnceValue(func() *rsa.PrivateKey { return mustKey() })
)

func mustKey() *rsa.PrivateKey {
	k, err := GenerateRSAKey()
	if err != nil {
		panic(err)
	}
	return k
}

// vectorSecret is the reference's HS256 test key: bytes 00..1f.
func vectorSecret() []byte {
	b := make([]byte, 32)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

func enc(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// mk assembles a compact JWS from raw header/payload JSON and signature bytes.
func mk(header, payload string, sig []byte) string {
	return enc(header) + "." + enc(payload) + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// hsSign produces an HS256 token over arbitrary header/payload JSON, like an
// attacker or a foreign library would.
func hsSign(secret []byte, header, payload string) string {
	input := enc(header) + "." + enc(payload)
	return input + "." + base64.RawURLEncoding.EncodeToString(hmacSHA256(secret, input))
}

func decodePart(t *testing.T, tok string, i int) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatalf("part %d: %v", i, err)
	}
	return string(b)
}

// assertNoLeak checks that an error message contains no piece of the token.
func assertNoLeak(t *testing.T, err error, tok string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, p := range strings.Split(tok, ".") {
		if len(p) >= 8 && strings.Contains(err.Error(), p) {
			t.Errorf("error %q leaks token content %q", err, p)
		}
	}
}

func hmacSHA256(secret []byte, input string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(input))
	return m.Sum(nil)
}
