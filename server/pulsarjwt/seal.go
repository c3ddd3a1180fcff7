package pulsarjwt

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
)

// Sealed format, version 1:
//
//	0x01 || nonce (12 random bytes) || AES-256-GCM ciphertext || tag (16)
//
// The GCM additional data is the version byte followed by the caller's aad,
// so the version byte is authenticated too and cannot be swapped to steer a
// future decoder. Random 96-bit nonces are safe for far more than the
// number of secrets a broker will ever seal under one key (NIST's bound is
// 2^32 messages per key).
const (
	sealVersion  = 0x01
	sealNonceLen = 12
	sealTagLen   = 16
	sealKeyLen   = 32
)

var errOpen = errors.New("pulsarjwt: cannot open sealed data")

// Seal encrypts plaintext (an HS256 tenant secret, an RSA private key's
// PKCS#8 DER) for storage at rest with AES-256-GCM. aad binds the result to
// its purpose and owner, e.g. "tenant-secret:<name>", so a sealed value
// copied to another record does not open there.
func Seal(key, plaintext, aad []byte) ([]byte, error) {
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+sealNonceLen, 1+sealNonceLen+len(plaintext)+sealTagLen)
	out[0] = sealVersion
	nonce := out[1 : 1+sealNonceLen]
	if _, err := rand.Read(nonce); err != nil {
		return nil, errors.New("pulsarjwt: no randomness for nonce")
	}
	return aead.Seal(out, nonce, plaintext, sealAAD(aad)), nil
}

// Open reverses Seal. Wrong key, wrong aad, unknown version, truncation or
// any modified byte all give the same error, which reveals nothing about
// which check failed.
func Open(key, sealed, aad []byte) ([]byte, error) {
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	if len(sealed) < 1+sealNonceLen+sealTagLen || sealed[0] != sealVersion {
		return nil, errOpen
	}
	nonce := sealed[1 : 1+sealNonceLen]
	pt, err := aead.Open(nil, nonce, sealed[1+sealNonceLen:], sealAAD(aad))
	if err != nil {
		return nil, errOpen
	}
	return pt, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	if len(key) != sealKeyLen {
		return nil, errors.New("pulsarjwt: seal key must be 32 bytes")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// sealAAD prefixes the version byte; the prefix has fixed length, so the
// concatenation is unambiguous.
func sealAAD(aad []byte) []byte {
	return append([]byte{sealVersion}, aad...)
}
