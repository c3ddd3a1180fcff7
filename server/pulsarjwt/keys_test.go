package pulsarjwt

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
)

// RFC 7638 §3.1 example key and its thumbprint.
const (
	rfc7638N = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
	rfc7638E = "AQAB"
	rfc7638T = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
)

func rfc7638Key(t *testing.T) *rsa.PublicKey {
	t.Helper()
	n, err := base64.RawURLEncoding.DecodeString(rfc7638N)
	if err != nil {
		t.Fatal(err)
	}
	e, err := base64.RawURLEncoding.DecodeString(rfc7638E)
	if err != nil {
		t.Fatal(err)
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
}

func TestKeyIDRFC7638Example(t *testing.T) {
	pub := rfc7638Key(t)
	got, err := KeyID(pub)
	if err != nil {
		t.Fatal(err)
	}
	if got != rfc7638T {
		t.Fatalf("KeyID = %s, want %s", got, rfc7638T)
	}
	// PublicJWK reproduces the RFC's n and e exactly.
	if j := jwkFields(t, PublicJWK(got, pub)); j["n"] != rfc7638N || j["e"] != rfc7638E {
		t.Errorf("JWK n/e = %s / %s", j["n"], j["e"])
	}
	// Stable across DER round trip.
	der, err := PublicDER(pub)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParsePublicDER(der)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := KeyID(back); again != rfc7638T {
		t.Errorf("KeyID after DER round trip = %s", again)
	}
}

func TestKeyRoundTripsAndKeyIDStability(t *testing.T) {
	key := testKey()
	if key.N.BitLen() != 2048 {
		t.Fatalf("GenerateRSAKey: %d bits", key.N.BitLen())
	}
	kid, err := KeyID(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	privDER, err := MarshalPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	// It is PKCS#8, as `pulsar tokens create-key-pair` writes.
	if _, err := x509.ParsePKCS8PrivateKey(privDER); err != nil {
		t.Fatalf("not PKCS#8: %v", err)
	}
	priv2, err := ParsePrivateKey(privDER)
	if err != nil {
		t.Fatal(err)
	}
	if !priv2.Equal(key) {
		t.Fatal("private key round trip changed the key")
	}
	pubDER, err := PublicDER(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pub2, err := ParsePublicDER(pubDER)
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string]*rsa.PublicKey{"from private DER": &priv2.PublicKey, "from public DER": pub2} {
		if k, _ := KeyID(p); k != kid {
			t.Errorf("KeyID %s = %s, want %s", name, k, kid)
		}
	}
	if k2, _ := KeyID(&otherKey().PublicKey); k2 == kid {
		t.Error("two keys share a KeyID")
	}
	// A token signed with the re-parsed private key verifies with the
	// re-parsed public key.
	s, err := SignRS256(priv2, kid, Claims{Sub: "r"})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	if err := tok.VerifyRS256(pub2); err != nil {
		t.Fatal(err)
	}

	// PEM and data: URL wrappers.
	p := PublicPEM(pubDER)
	if !strings.HasPrefix(p, "-----BEGIN PUBLIC KEY-----\n") {
		t.Errorf("PEM = %q", p)
	}
	blk, rest := pem.Decode([]byte(p))
	if blk == nil || blk.Type != "PUBLIC KEY" || !bytes.Equal(blk.Bytes, pubDER) || len(rest) != 0 {
		t.Error("PEM does not round-trip")
	}
	du := DataURL(pubDER)
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(du, "data:;base64,"))
	if !strings.HasPrefix(du, "data:;base64,") || err != nil || !bytes.Equal(raw, pubDER) {
		t.Errorf("DataURL = %q", du)
	}
}

// jwkFields returns a JWK's JSON members as go-jose writes them.
func jwkFields(t *testing.T, j any) map[string]string {
	t.Helper()
	b, err := json.Marshal(j)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestPublicJWK(t *testing.T) {
	pub := &testKey().PublicKey
	j := jwkFields(t, PublicJWK("kid-1", pub))
	if len(j) != 6 || j["kty"] != "RSA" || j["kid"] != "kid-1" || j["use"] != "sig" || j["alg"] != "RS256" || j["e"] != "AQAB" {
		t.Errorf("JWK JSON %v", j)
	}
	n, err := base64.RawURLEncoding.DecodeString(j["n"])
	if err != nil || strings.ContainsAny(j["n"], "=+/") {
		t.Fatalf("n not unpadded base64url: %v", err)
	}
	if len(n) != 256 || n[0] == 0 || new(big.Int).SetBytes(n).Cmp(pub.N) != 0 {
		t.Error("n is not the minimal big-endian modulus")
	}
	// An empty set marshals as {"keys":[]}, never null.
	if b, _ := json.Marshal(JWKS()); string(b) != `{"keys":[]}` {
		t.Errorf("empty JWKS = %s", b)
	}
}

func TestKeyParsingRejects(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	smallPriv, _ := x509.MarshalPKCS8PrivateKey(small)
	smallPub, _ := x509.MarshalPKIXPublicKey(&small.PublicKey)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecPriv, _ := x509.MarshalPKCS8PrivateKey(ec)
	ecPub, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	key := testKey()
	pkcs1Priv := x509.MarshalPKCS1PrivateKey(key)
	pkcs1Pub := x509.MarshalPKCS1PublicKey(&key.PublicKey)
	goodPriv, _ := MarshalPrivateKey(key)
	goodPub, _ := PublicDER(&key.PublicKey)

	for _, tc := range []struct {
		name string
		der  []byte
	}{
		{"garbage", []byte("not a key")},
		{"empty", nil},
		{"1024-bit", smallPriv},
		{"EC", ecPriv},
		{"PKCS#1", pkcs1Priv},
		{"public key", goodPub},
		{"trailing byte", append(append([]byte{}, goodPriv...), 0)},
	} {
		if _, err := ParsePrivateKey(tc.der); err == nil {
			t.Errorf("ParsePrivateKey(%s) accepted", tc.name)
		}
	}
	for _, tc := range []struct {
		name string
		der  []byte
	}{
		{"garbage", []byte("not a key")},
		{"empty", nil},
		{"1024-bit", smallPub},
		{"EC", ecPub},
		{"PKCS#1", pkcs1Pub},
		{"PEM instead of DER", []byte(PublicPEM(goodPub))},
		{"private key", goodPriv},
		{"trailing byte", append(append([]byte{}, goodPub...), 0)},
	} {
		if _, err := ParsePublicDER(tc.der); err == nil {
			t.Errorf("ParsePublicDER(%s) accepted", tc.name)
		}
	}
	if _, err := MarshalPrivateKey(nil); err == nil {
		t.Error("MarshalPrivateKey(nil) accepted")
	}
	if _, err := MarshalPrivateKey(small); err == nil {
		t.Error("MarshalPrivateKey(1024-bit) accepted")
	}
	if _, err := PublicDER(nil); err == nil {
		t.Error("PublicDER(nil) accepted")
	}
	if _, err := KeyID(nil); !errors.Is(err, errKey) {
		t.Errorf("KeyID(nil) = %v", err)
	}
	// PKCS#1 public key bytes are also refused as an HMAC secret.
	if err := checkHMACSecret(pkcs1Pub); !errors.Is(err, errSecretIsPubKey) {
		t.Errorf("PKCS#1 public key as HMAC secret: %v", err)
	}
}
