// Package password hashes and verifies the passwords of database users with
// argon2id, stored as PHC strings:
//
//	$argon2id$v=19$m=19456,t=2,p=1$<base64 salt>$<base64 hash>
//
// (standard base64 alphabet without padding, as the reference implementation
// and libsodium write it, so hashes are portable in both directions).
//
// # Cost
//
// DefaultParams is m=19 MiB, t=2, p=1, 16-byte salt, 32-byte hash: the
// first (minimum) argon2id configuration of the OWASP Password Storage Cheat
// Sheet. It is the cheapest setting OWASP accepts, chosen because every login
// pays it on the request path and a broker is sized for many logins, while
// still forcing an offline attacker to spend 19 MiB of memory-hard work per
// guess. On the 2-core development machine (AMD EPYC "Turin" VM, Go 1.26,
// golang.org/x/crypto v0.58.0 amd64 assembly) one Verify with DefaultParams
// takes 24-26 ms of one core and allocates 19 MiB (BenchmarkVerify); with
// both cores busy the machine sustains about 70 verifications per second
// (BenchmarkVerifyParallel: 14 ms per verification).
//
// # Floor
//
// Params.Validate refuses anything weaker than the OWASP table: (Memory, Time)
// must be at least one of its rows, all with p=1:
//
//	m ≥ 46 MiB (47104 KiB), t ≥ 1
//	m ≥ 19 MiB (19456 KiB), t ≥ 2
//	m ≥ 12 MiB (12288 KiB), t ≥ 3
//	m ≥  9 MiB  (9216 KiB), t ≥ 4
//	m ≥  7 MiB  (7168 KiB), t ≥ 5
//
// (more lanes do not lower the work per guess, so Threads only has to be
// between 1 and MaxThreads), and values that would turn a login into a
// denial of service: Memory above 1 GiB, Time above 10. Salts are 16 to 64
// bytes, hashes 16 to 64 bytes.
//
// Verify is more lenient with stored hashes than Validate is with new
// parameters: it uses each hash's own parameters, so a hash made under an
// older, cheaper policy still verifies (and NeedsRehash says to replace it on
// that successful login). It only refuses what cannot be a sound argon2id
// hash (a salt under 8 bytes or a hash under 16 bytes, which could collide
// by chance) or what would exceed the same memory/time ceilings.
//
// # Concurrency
//
// Each hash or verification holds Memory KiB for its whole duration, so a
// Hasher admits at most a fixed number of them at once (WithMaxConcurrent,
// default 2×GOMAXPROCS, i.e. 4×19 MiB = 76 MiB on a 2-core machine); the
// others wait, and give up with the context's error when it is done. With
// hashes made under older parameters the bound is that count times the
// largest Memory among them.
package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id cost parameters.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes over memory
	Threads uint8  // lanes
	SaltLen uint32 // bytes of random salt
	KeyLen  uint32 // bytes of derived hash
}

// DefaultParams is OWASP's minimum argon2id configuration: m=19 MiB, t=2, p=1.
// See the package comment for its cost.
var DefaultParams = Params{Memory: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}

// Ceilings beyond which parameters are absurd (a login would cost seconds or
// gigabytes), for new parameters and stored hashes alike.
const (
	MaxMemory  = 1 << 20 // KiB (1 GiB)
	MaxTime    = 10
	MaxThreads = 16
	MaxSaltLen = 64
	MaxKeyLen  = 64
)

// Floors for new parameters.
const (
	MinSaltLen = 16 // RFC 9106 §3.1: 128 bits suffice for password hashing
	MinKeyLen  = 16
)

// Floors for stored hashes (see the package comment).
const (
	minStoredSaltLen = 8 // RFC 9106 minimum; the reference test vectors use 8
	minStoredKeyLen  = 16
	maxPHCLen        = 512 // a maximal legitimate hash is about 230 bytes
)

// Validate reports why p is unfit for hashing new passwords: weaker than every
// OWASP configuration, absurdly expensive, or malformed.
func (p Params) Validate() error {
	switch {
	case p.Memory > MaxMemory:
		return fmt.Errorf("password: argon2id memory %d KiB exceeds the maximum of %d KiB (1 GiB)", p.Memory, MaxMemory)
	case p.Time > MaxTime:
		return fmt.Errorf("password: argon2id time %d exceeds the maximum of %d passes", p.Time, MaxTime)
	case p.Threads < 1 || p.Threads > MaxThreads:
		return fmt.Errorf("password: argon2id threads %d is outside 1..%d", p.Threads, MaxThreads)
	case p.SaltLen < MinSaltLen || p.SaltLen > MaxSaltLen:
		return fmt.Errorf("password: salt length %d bytes is outside %d..%d", p.SaltLen, MinSaltLen, MaxSaltLen)
	case p.KeyLen < MinKeyLen || p.KeyLen > MaxKeyLen:
		return fmt.Errorf("password: key length %d bytes is outside %d..%d", p.KeyLen, MinKeyLen, MaxKeyLen)
	}
	// The OWASP Password Storage Cheat Sheet's equivalent argon2id
	// configurations (all p=1).
	owaspFloor := [...]struct{ memory, time uint32 }{
		{47104, 1}, {19456, 2}, {12288, 3}, {9216, 4}, {7168, 5},
	}
	for _, f := range owaspFloor {
		if p.Memory >= f.memory && p.Time >= f.time {
			return nil
		}
	}
	return fmt.Errorf("password: argon2id memory %d KiB with time %d is below the OWASP minimum "+
		"(need m≥47104,t≥1 or m≥19456,t≥2 or m≥12288,t≥3 or m≥9216,t≥4 or m≥7168,t≥5)", p.Memory, p.Time)
}

// ErrMalformedHash wraps every reason a stored hash cannot be verified. The
// message names the defect but never repeats the hash.
var ErrMalformedHash = errors.New("password: malformed argon2id hash")

// Option configures a Hasher.
type Option func(*Hasher) error

// WithMaxConcurrent bounds how many hash or verify computations run at once
// (default 2×GOMAXPROCS at NewHasher). Each holds Params.Memory KiB.
func WithMaxConcurrent(n int) Option {
	return func(h *Hasher) error {
		if n < 1 {
			return fmt.Errorf("password: max concurrent %d must be at least 1", n)
		}
		h.sem = make(chan struct{}, n)
		return nil
	}
}

// Hasher hashes new passwords with its Params and verifies stored hashes with
// theirs. It is safe for concurrent use.
type Hasher struct {
	p     Params
	sem   chan struct{} // one token per running computation
	dummy string        // a well-formed hash no password matches, for DummyVerify
	// kdf is argon2.IDKey; tests substitute it to observe concurrency.
	kdf func(password, salt []byte, time, memory uint32, threads uint8, keyLen uint32) []byte
}

// NewHasher returns a Hasher for p, which must pass Validate.
func NewHasher(p Params, opts ...Option) (*Hasher, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	h := &Hasher{p: p, kdf: argon2.IDKey}
	for _, o := range opts {
		if err := o(h); err != nil {
			return nil, err
		}
	}
	if h.sem == nil {
		h.sem = make(chan struct{}, 2*runtime.GOMAXPROCS(0))
	}
	// The dummy is random bytes in place of a hash: verifying against it does
	// exactly the work of verifying against a real hash with these
	// parameters, and matches no password (but with probability 2^-8·KeyLen).
	salt, key := make([]byte, p.SaltLen), make([]byte, p.KeyLen)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	h.dummy = encode(p, salt, key)
	return h, nil
}

// Params returns the parameters new hashes are made with.
func (h *Hasher) Params() Params { return h.p }

// MaxConcurrent returns how many computations may run at once.
func (h *Hasher) MaxConcurrent() int { return cap(h.sem) }

// Hash returns the PHC string of password under a fresh random salt. It
// enforces no password rule (see ValidatePassword). It fails only with
// ctx.Err() if ctx is done before a computation slot frees up.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	salt := make([]byte, h.p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key, err := h.derive(ctx, password, salt, h.p)
	if err != nil {
		return "", err
	}
	return encode(h.p, salt, key), nil
}

// Verify reports whether password matches phc, recomputing the hash with the
// parameters recorded in phc (so raising the Hasher's cost does not break old
// hashes) and comparing in constant time. A malformed phc is a mismatch:
// false with an error wrapping ErrMalformedHash, for logging. If ctx is done
// while waiting for a computation slot, it returns false and ctx.Err().
func (h *Hasher) Verify(ctx context.Context, password, phc string) (ok bool, err error) {
	p, salt, want, err := decode(phc)
	if err != nil {
		return false, err
	}
	got, err := h.derive(ctx, password, salt, p)
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// DummyVerify does the work of a Verify against a hash made with the
// Hasher's parameters, and throws the answer away. Call it when the user does
// not exist, so that "no such user" costs the same time as "wrong password"
// and timing does not reveal which usernames exist. Like Verify it waits for
// a computation slot, and returns ctx.Err() if ctx is done first; otherwise
// nil. Answer it exactly as a failed Verify. Its cost matches hashes made
// with the current parameters; users whose hashes predate a cost change take
// a different time until NeedsRehash has had them rehashed.
func (h *Hasher) DummyVerify(ctx context.Context, password string) error {
	_, err := h.Verify(ctx, password, h.dummy)
	return err
}

// NeedsRehash reports whether phc was made with parameters other than the
// Hasher's (weaker or stronger), or cannot be parsed: after a successful
// Verify, replace it with a fresh Hash of the same password.
func (h *Hasher) NeedsRehash(phc string) bool {
	p, _, _, err := decode(phc)
	return err != nil || p != h.p
}

// derive runs argon2id under the concurrency bound.
func (h *Hasher) derive(ctx context.Context, password string, salt []byte, p Params) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	select {
	case h.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-h.sem }()
	return h.kdf([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen), nil
}

var b64 = base64.RawStdEncoding.Strict()

func encode(p Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// decode parses an argon2id PHC string strictly: the fields in the reference
// order, decimal numbers without sign or leading zeros, canonical unpadded
// base64. SaltLen and KeyLen of the result are the decoded lengths.
func decode(phc string) (p Params, salt, key []byte, err error) {
	bad := func(what string) (Params, []byte, []byte, error) {
		return Params{}, nil, nil, fmt.Errorf("%w: %s", ErrMalformedHash, what)
	}
	if len(phc) > maxPHCLen {
		return bad("too long")
	}
	f := strings.Split(phc, "$")
	if len(f) != 6 || f[0] != "" {
		return bad("not of the form $argon2id$v=19$m=,t=,p=$salt$hash")
	}
	if f[1] != "argon2id" {
		return bad("algorithm is not argon2id")
	}
	if f[2] != "v="+strconv.Itoa(argon2.Version) {
		return bad("version is not 19")
	}
	mtp := strings.Split(f[3], ",")
	if len(mtp) != 3 {
		return bad("parameters are not m=,t=,p=")
	}
	m, okM := field(mtp[0], "m=", MaxMemory)
	t, okT := field(mtp[1], "t=", MaxTime)
	th, okP := field(mtp[2], "p=", MaxThreads)
	switch {
	case !okM:
		return bad("memory is not a number in 1.." + strconv.Itoa(MaxMemory))
	case !okT:
		return bad("time is not a number in 1.." + strconv.Itoa(MaxTime))
	case !okP:
		return bad("parallelism is not a number in 1.." + strconv.Itoa(MaxThreads))
	case m < 8*th:
		return bad("memory is below 8 KiB per lane")
	}
	if salt, err = decodeB64(f[4]); err != nil || len(salt) < minStoredSaltLen || len(salt) > MaxSaltLen {
		return bad(fmt.Sprintf("salt is not %d..%d bytes of unpadded base64", minStoredSaltLen, MaxSaltLen))
	}
	if key, err = decodeB64(f[5]); err != nil || len(key) < minStoredKeyLen || len(key) > MaxKeyLen {
		return bad(fmt.Sprintf("hash is not %d..%d bytes of unpadded base64", minStoredKeyLen, MaxKeyLen))
	}
	p = Params{Memory: uint32(m), Time: uint32(t), Threads: uint8(th), SaltLen: uint32(len(salt)), KeyLen: uint32(len(key))}
	return p, salt, key, nil
}

// field parses "<name><decimal>" with the number in 1..max.
func field(s, name string, max uint64) (uint64, bool) {
	d, ok := strings.CutPrefix(s, name)
	if !ok || d == "" || len(d) > 10 || d[0] == '0' {
		return 0, false
	}
	for i := 0; i < len(d); i++ {
		if d[i] < '0' || d[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(d, 10, 64)
	return n, err == nil && n >= 1 && n <= max
}

// decodeB64 decodes canonical unpadded standard base64 (the decoder alone
// would skip embedded newlines).
func decodeB64(s string) ([]byte, error) {
	b, err := b64.DecodeString(s)
	if err != nil {
		return nil, err
	}
	if b64.EncodeToString(b) != s {
		return nil, errors.New("not canonical")
	}
	return b, nil
}

// Password rule for users choosing a password.
const (
	MinPasswordLen = 12  // bytes
	MaxPasswordLen = 256 // bytes
)

// ErrInvalidPassword wraps every refusal of ValidatePassword.
var ErrInvalidPassword = errors.New("invalid password")

// ValidatePassword enforces the rule for a new password: 12 to 256 bytes of
// valid UTF-8 with no NUL character. The error names the rule broken and
// never repeats the password.
func ValidatePassword(pw string) error {
	switch {
	case len(pw) < MinPasswordLen:
		return fmt.Errorf("%w: must be at least %d bytes long", ErrInvalidPassword, MinPasswordLen)
	case len(pw) > MaxPasswordLen:
		return fmt.Errorf("%w: must be at most %d bytes long", ErrInvalidPassword, MaxPasswordLen)
	case !utf8.ValidString(pw):
		return fmt.Errorf("%w: must be valid UTF-8", ErrInvalidPassword)
	case strings.IndexByte(pw, 0) >= 0:
		return fmt.Errorf("%w: must not contain NUL characters", ErrInvalidPassword)
	}
	return nil
}
