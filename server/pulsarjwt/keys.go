package pulsarjwt

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"errors"

	jose "github.com/go-jose/go-jose/v4"
)

// GenerateRSAKey returns a fresh 2048-bit key: the size for which both jjwt
// (Pulsar's CLI) and the OIDC provider use RS256.
func GenerateRSAKey() (*rsa.PrivateKey, error) {
	return rsa.GenerateKey(rand.Reader, minRSABits)
}

// MarshalPrivateKey returns the PKCS#8 DER encoding, the format
// `pulsar tokens create-key-pair` writes and the CLI's -pk option reads.
func MarshalPrivateKey(k *rsa.PrivateKey) ([]byte, error) {
	if k == nil || checkRSASize(&k.PublicKey) != nil {
		return nil, errKey
	}
	return x509.MarshalPKCS8PrivateKey(k)
}

// ParsePrivateKey parses PKCS#8 DER holding an RSA key of 2048–8192 bits.
// x509 validates the key; trailing data after the DER structure (which
// x509.ParsePKCS8PrivateKey ignores) is rejected, so one key has one encoding.
func ParsePrivateKey(der []byte) (*rsa.PrivateKey, error) {
	if rest, err := asn1.Unmarshal(der, &asn1.RawValue{}); err != nil || len(rest) != 0 {
		return nil, errors.New("pulsarjwt: not a PKCS#8 private key")
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, errors.New("pulsarjwt: not a PKCS#8 private key")
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok || checkRSASize(&rk.PublicKey) != nil {
		return nil, errKey
	}
	return rk, nil
}

// PublicDER returns the X.509 SubjectPublicKeyInfo DER encoding (what Pulsar's tokenPublicKey file holds:
// "key files must be DER-encoded").
func PublicDER(pub *rsa.PublicKey) ([]byte, error) {
	if pub == nil || checkRSASize(pub) != nil {
		return nil, errKey
	}
	return x509.MarshalPKIXPublicKey(pub)
}

// ParsePublicDER parses X.509 SubjectPublicKeyInfo DER holding an RSA key of
// 2048–8192 bits.
func ParsePublicDER(der []byte) (*rsa.PublicKey, error) {
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, errors.New("pulsarjwt: not a SubjectPublicKeyInfo public key")
	}
	rk, ok := k.(*rsa.PublicKey)
	if !ok || checkRSASize(rk) != nil {
		return nil, errKey
	}
	return rk, nil
}

// PublicPEM wraps SubjectPublicKeyInfo DER in a "-----BEGIN PUBLIC KEY-----"
// block, for humans and tools that want PEM (the broker itself wants DER).
func PublicPEM(der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// DataURL returns "data:;base64,<std base64>", the inline KEYREF form that
// Pulsar's tokenSecretKey / tokenPublicKey settings and the CLI accept.
func DataURL(b []byte) string {
	return "data:;base64," + base64.StdEncoding.EncodeToString(b)
}

// KeyID returns the RFC 7638 JWK thumbprint (SHA-256, base64url) of pub. It
// is derived from the key alone, so it is stable across restarts and
// re-imports and needs no registry, and it changes whenever the key does —
// which is what JWKS consumers caching by kid rely on.
func KeyID(pub *rsa.PublicKey) (string, error) {
	if pub == nil || pub.N == nil || pub.E <= 0 {
		return "", errKey
	}
	jwk := jose.JSONWebKey{Key: pub}
	sum, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", errKey
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}

// PublicJWK returns the JWK for pub: kty RSA, use sig, alg RS256 (Pulsar's
// OIDC provider requires the JWK's alg, when present, to equal the token's),
// n and e as unpadded base64url of their minimal big-endian bytes
// (RFC 7518 §6.3.1), as go-jose writes them.
func PublicJWK(kid string, pub *rsa.PublicKey) jose.JSONWebKey {
	return jose.JSONWebKey{Key: pub, KeyID: kid, Algorithm: algRS256, Use: "sig"}
}

// JWKS returns the key set document ({"keys":[…]}) for the given keys, in
// the order given; never nil keys, so it marshals as [] when empty.
func JWKS(keys ...jose.JSONWebKey) jose.JSONWebKeySet {
	return jose.JSONWebKeySet{Keys: append([]jose.JSONWebKey{}, keys...)}
}

func checkRSASize(pub *rsa.PublicKey) error {
	if pub.N == nil {
		return errKey
	}
	if b := pub.N.BitLen(); b < minRSABits || b > maxRSABits {
		return errKey
	}
	return nil
}

// looksLikePublicKey reports whether b is a PEM block (any armor) or DER
// holding a SubjectPublicKeyInfo, a PKCS#1 RSA public key or a certificate:
// every form in which a verifier might store "the tenant's key".
func looksLikePublicKey(b []byte) bool {
	if bytes.Contains(b, []byte("-----BEGIN ")) {
		return true
	}
	// Cheap pre-check: DER SEQUENCE tag. Most random secrets stop here.
	if len(b) == 0 || b[0] != 0x30 {
		return false
	}
	if _, err := x509.ParsePKIXPublicKey(b); err == nil {
		return true
	}
	if _, err := x509.ParsePKCS1PublicKey(b); err == nil {
		return true
	}
	_, err := x509.ParseCertificate(b)
	return err == nil
}
