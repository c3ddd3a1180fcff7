// Package credential owns the format of Astra application tokens
// (AstraCS:<clientId>:<hex(sha256(secret))>): generating them, parsing them,
// and the keyed MAC that is the only form in which they are stored.
//
// The token's hex part is itself a bearer credential (anyone holding it holds
// the token), and the secret derives it, so neither is ever stored: the store
// keeps HMAC-SHA256(key, token) where the key lives outside the database file.
// Tokens have >= 256 bits of entropy, so a per-token salt adds nothing; the
// key makes an offline dictionary attack on a stolen database impossible.
package credential

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"hash"
	"sync"
	"time"
)

const (
	// Prefix starts every application token.
	Prefix = "AstraCS:"
	// ClientIDLen is the length of a client ID (ASCII letters), as Astra's.
	ClientIDLen = 24
	// TokenLen is the length of a whole token: prefix, client ID, ':' and 64 hex digits.
	TokenLen = len(Prefix) + ClientIDLen + 1 + sha256.Size*2
	// secretBytes of randomness make the secret: 384 bits, above the 256 required.
	secretBytes = 48
)

// ErrMalformed: the string is not shaped like an application token.
var ErrMalformed = errors.New("invalid token format")

// Issued is a freshly generated credential. Secret and Token are shown once
// and then forgotten.
type Issued struct {
	ClientID string
	Secret   string
	Token    string
}

const letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// New generates a client ID (see newClientID), a secret (48 random bytes,
// base64url) and the token derived from them.
func New() (Issued, error) {
	id, err := newClientID(time.Now())
	if err != nil {
		return Issued{}, err
	}
	raw := make([]byte, secretBytes)
	if _, err := rand.Read(raw); err != nil {
		return Issued{}, err
	}
	secret := base64.RawURLEncoding.EncodeToString(raw)
	return Issued{ClientID: id, Secret: secret, Token: TokenFor(id, secret)}, nil
}

// TokenFor derives the bearer token from a client ID and secret, as Astra
// does: AstraCS:<clientId>:<hex(sha256(secret))>.
func TokenFor(clientID, secret string) string {
	sum := sha256.Sum256([]byte(secret))
	buf := make([]byte, 0, TokenLen)
	buf = append(buf, Prefix...)
	buf = append(buf, clientID...)
	buf = append(buf, ':')
	buf = hex.AppendEncode(buf, sum[:])
	return string(buf)
}

// Parse checks the token's shape and returns its client ID. It never echoes
// the token in its error.
func Parse(token string) (clientID string, err error) {
	if len(token) != TokenLen || token[:len(Prefix)] != Prefix {
		return "", ErrMalformed
	}
	id := token[len(Prefix) : len(Prefix)+ClientIDLen]
	if !ValidClientID(id) || token[len(Prefix)+ClientIDLen] != ':' {
		return "", ErrMalformed
	}
	for _, c := range []byte(token[len(Prefix)+ClientIDLen+1:]) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return "", ErrMalformed
		}
	}
	return id, nil
}

// ValidClientID reports whether s has the client-ID shape (24 ASCII letters).
func ValidClientID(s string) bool {
	if len(s) != ClientIDLen {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// MAC computes and verifies the keyed MAC under which tokens are stored.
type MAC struct {
	pool sync.Pool // of *macState; HMAC setup is the costly part on the hot path
}

// macState is one pooled HMAC with scratch space, so that a Verify on the
// hot path allocates nothing: the token's bytes and the sum would each
// escape to the heap through the hash.Hash interface otherwise.
type macState struct {
	h   hash.Hash
	in  []byte
	sum [sha256.Size]byte
}

// NewMAC returns a MAC keyed with key (at least 32 bytes).
func NewMAC(key []byte) (*MAC, error) {
	if len(key) < 32 {
		return nil, errors.New("credential: MAC key shorter than 32 bytes")
	}
	k := append([]byte(nil), key...)
	m := &MAC{}
	m.pool.New = func() any { return &macState{h: hmac.New(sha256.New, k)} }
	return m, nil
}

// compute returns the MAC of token, in st.sum.
func (st *macState) compute(token string) []byte {
	st.h.Reset()
	st.in = append(st.in[:0], token...)
	st.h.Write(st.in)
	if cap(st.in) > 4096 { // do not keep a huge input alive in the pool
		st.in = nil
	}
	return st.h.Sum(st.sum[:0])
}

// Sum returns HMAC-SHA256(key, token).
func (m *MAC) Sum(token string) []byte {
	st := m.pool.Get().(*macState)
	out := append(make([]byte, 0, sha256.Size), st.compute(token)...)
	m.pool.Put(st)
	return out
}

// Verify reports, in constant time, whether mac is the MAC of token.
func (m *MAC) Verify(token string, mac []byte) bool {
	st := m.pool.Get().(*macState)
	ok := hmac.Equal(st.compute(token), mac)
	m.pool.Put(st)
	return ok
}

// Client IDs are time-ordered: clientIDTimeLetters letters of milliseconds
// since clientIDEpoch (base 52, most significant first), then random
// letters. The letters are in byte order ("A" < "Z" < "a" < "z"), so IDs
// sort by creation time. WHY: the store keys tokens and the role index by
// client ID; with uniformly random IDs every create of a group commit lands
// on its own leaf page of each, so a commit of 32 creates rewrote ~64 4 KiB
// pages and creation slowed as tokens accumulated (0.6x at 100k stored,
// store/bolt BenchmarkCreateTokenAsServed). Ordered IDs append to the
// right-most pages: a few pages per commit whatever the store holds, as
// UUIDv7 does for database indexes. The client ID is not a secret (it is
// printed in the token and in lists); 16 random letters (~91 bits) keep
// IDs unguessable and collisions (retried by the broker) negligible even
// within one millisecond. The price: an ID reveals its creation time to
// the millisecond, which the token's generatedOn already states.
const (
	clientIDTimeLetters = 8             // 52^8 ms: about 1,700 years
	clientIDEpoch       = 1577836800000 // 2020-01-01T00:00:00Z in Unix ms
)

// newClientID returns a time-ordered client ID for the instant now.
func newClientID(now time.Time) (string, error) {
	random, err := randomLetters(ClientIDLen - clientIDTimeLetters)
	if err != nil {
		return "", err
	}
	ms := max(now.UnixMilli()-clientIDEpoch, 0)
	var b [ClientIDLen]byte
	for i := clientIDTimeLetters - 1; i >= 0; i-- {
		b[i] = letters[ms%52]
		ms /= 52
	}
	copy(b[clientIDTimeLetters:], random)
	return string(b[:]), nil
}

// randomLetters returns n uniformly random ASCII letters (rejection sampling
// keeps the distribution uniform: 52 does not divide 256).
func randomLetters(n int) (string, error) {
	out := make([]byte, 0, n)
	buf := make([]byte, 2*n)
	for len(out) < n {
		if _, err := rand.Read(buf); err != nil {
			return "", err
		}
		for _, b := range buf {
			if b >= 52*4 { // 208: largest multiple of 52 below 256
				continue
			}
			out = append(out, letters[b%52])
			if len(out) == n {
				break
			}
		}
	}
	return string(out), nil
}
