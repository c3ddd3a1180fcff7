package password

import (
	"context"
	"errors"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/crypto/argon2"
)

func newHasher(t testing.TB, p Params, opts ...Option) *Hasher {
	t.Helper()
	h, err := NewHasher(p, opts...)
	if err != nil {
		t.Fatalf("NewHasher(%+v): %v", p, err)
	}
	return h
}

// kdfCall records the arguments one key derivation was asked for.
type kdfCall struct {
	password     string
	saltLen      int
	time, memory uint32
	threads      uint8
	keyLen       uint32
}

// recordKDF replaces h's key derivation by the real one, recording calls.
func recordKDF(h *Hasher) *[]kdfCall {
	var mu sync.Mutex
	calls := new([]kdfCall)
	h.kdf = func(pw, salt []byte, time, memory uint32, threads uint8, keyLen uint32) []byte {
		mu.Lock()
		*calls = append(*calls, kdfCall{password: string(pw), saltLen: len(salt), time: time, memory: memory, threads: threads, keyLen: keyLen})
		mu.Unlock()
		return argon2.IDKey(pw, salt, time, memory, threads, keyLen)
	}
	return calls
}

var phcRE = regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	h := newHasher(t, DefaultParams)
	const pw = "correct horse battery staple"
	a, err := h.Hash(ctx, pw)
	if err != nil {
		t.Fatal(err)
	}
	if !phcRE.MatchString(a) {
		t.Fatalf("Hash = %q, not a canonical PHC string for DefaultParams", a)
	}
	b, err := h.Hash(ctx, pw)
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Fatal("two hashes of one password are equal: salt is not random")
	}
	if ok, err := h.Verify(ctx, pw, a); !ok || err != nil {
		t.Fatalf("Verify(right password) = %v, %v; want true, nil", ok, err)
	}
	if ok, err := h.Verify(ctx, pw+"!", a); ok || err != nil {
		t.Fatalf("Verify(wrong password) = %v, %v; want false, nil", ok, err)
	}
	if ok, err := h.Verify(ctx, "", b); ok || err != nil {
		t.Fatalf("Verify(empty password) = %v, %v; want false, nil", ok, err)
	}
	if h.NeedsRehash(a) {
		t.Fatal("NeedsRehash of a fresh hash = true")
	}
}

// Vectors of the argon2 reference implementation (phc-winner-argon2
// src/test.c): our parser and x/crypto agree with it, and a hash's own
// parameters, not the Hasher's, are used (m=256 is far below our floor).
func TestReferenceVectors(t *testing.T) {
	ctx := context.Background()
	h := newHasher(t, DefaultParams)
	for _, tc := range []struct{ pw, phc string }{
		{"password", "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
		{"password", "$argon2id$v=19$m=256,t=2,p=2$c29tZXNhbHQ$bQk8UB/VmZZF4Oo79iDXuL5/0ttZwg2f/5U52iv1cDc"},
		{"password", "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"},
		{"differentpassword", "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$C4TWUs9rDEvq7w3+J4umqA32aWKB1+DSiRuBfYxFj94"},
	} {
		if ok, err := h.Verify(ctx, tc.pw, tc.phc); !ok || err != nil {
			t.Errorf("Verify(%q, %s) = %v, %v; want true", tc.pw, tc.phc, ok, err)
		}
		if ok, err := h.Verify(ctx, tc.pw+"x", tc.phc); ok || err != nil {
			t.Errorf("Verify(wrong, %s) = %v, %v; want false, nil", tc.phc, ok, err)
		}
		if !h.NeedsRehash(tc.phc) {
			t.Errorf("NeedsRehash(%s) = false", tc.phc)
		}
	}
}

func TestVerifyUsesHashParams(t *testing.T) {
	ctx := context.Background()
	old := Params{Memory: 7168, Time: 5, Threads: 2, SaltLen: 24, KeyLen: 48}
	oldHasher := newHasher(t, old)
	phc, err := oldHasher.Hash(ctx, "an older password")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(phc, "$argon2id$v=19$m=7168,t=5,p=2$") {
		t.Fatalf("Hash = %q, parameters not encoded", phc)
	}

	h := newHasher(t, DefaultParams)
	calls := recordKDF(h)
	if ok, err := h.Verify(ctx, "an older password", phc); !ok || err != nil {
		t.Fatalf("Verify under newer params = %v, %v; want true", ok, err)
	}
	want := kdfCall{password: "an older password", saltLen: 24, time: 5, memory: 7168, threads: 2, keyLen: 48}
	if len(*calls) != 1 || (*calls)[0] != want {
		t.Fatalf("kdf calls = %+v; want [%+v]", *calls, want)
	}
	if !h.NeedsRehash(phc) {
		t.Fatal("NeedsRehash(old params) = false")
	}
	if oldHasher.NeedsRehash(phc) {
		t.Fatal("NeedsRehash by the hasher that made it = true")
	}
}

func TestMalformedHashes(t *testing.T) {
	const (
		salt = "c29tZXNhbHRzb21lc2FsdA" // 16 bytes
		key  = "CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"
		good = "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + key
	)
	h := newHasher(t, DefaultParams)
	calls := recordKDF(h)
	// The well-formed one parses (and mismatches), so the cases below fail
	// only for their own defect.
	if ok, err := h.Verify(context.Background(), "x", good); ok || err != nil {
		t.Fatalf("Verify(good) = %v, %v; want false, nil", ok, err)
	}
	*calls = nil
	for _, tc := range []struct{ name, phc string }{
		{"empty", ""},
		{"garbage", "hunter2"},
		{"dollar", "$"},
		{"only algorithm", "$argon2id"},
		{"argon2i", "$argon2i$v=19$m=19456,t=2,p=1$" + salt + "$" + key},
		{"argon2d", "$argon2d$v=19$m=19456,t=2,p=1$" + salt + "$" + key},
		{"bcrypt", "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"},
		{"upper case algorithm", "$ARGON2ID$v=19$m=19456,t=2,p=1$" + salt + "$" + key},
		{"no version (v=16)", "$argon2id$m=19456,t=2,p=1$" + salt + "$" + key},
		{"version 16", "$argon2id$v=16$m=19456,t=2,p=1$" + salt + "$" + key},
		{"version leading zero", "$argon2id$v=019$m=19456,t=2,p=1$" + salt + "$" + key},
		{"params reordered", "$argon2id$v=19$t=2,m=19456,p=1$" + salt + "$" + key},
		{"param missing", "$argon2id$v=19$m=19456,t=2$" + salt + "$" + key},
		{"param repeated", "$argon2id$v=19$m=19456,t=2,p=1,p=1$" + salt + "$" + key},
		{"keyid param", "$argon2id$v=19$m=19456,t=2,p=1,keyid=AAAA$" + salt + "$" + key},
		{"space", "$argon2id$v=19$m=19456, t=2,p=1$" + salt + "$" + key},
		{"m empty", "$argon2id$v=19$m=,t=2,p=1$" + salt + "$" + key},
		{"m zero", "$argon2id$v=19$m=0,t=2,p=1$" + salt + "$" + key},
		{"m leading zero", "$argon2id$v=19$m=019456,t=2,p=1$" + salt + "$" + key},
		{"m plus", "$argon2id$v=19$m=+19456,t=2,p=1$" + salt + "$" + key},
		{"m negative", "$argon2id$v=19$m=-1,t=2,p=1$" + salt + "$" + key},
		{"m hex", "$argon2id$v=19$m=0x4c00,t=2,p=1$" + salt + "$" + key},
		{"m over 1 GiB", "$argon2id$v=19$m=1048577,t=2,p=1$" + salt + "$" + key},
		{"m overflows uint32", "$argon2id$v=19$m=4294967296,t=2,p=1$" + salt + "$" + key},
		{"m huge", "$argon2id$v=19$m=99999999999999999999999,t=2,p=1$" + salt + "$" + key},
		{"m below 8 KiB per lane", "$argon2id$v=19$m=15,t=2,p=2$" + salt + "$" + key},
		{"t zero", "$argon2id$v=19$m=19456,t=0,p=1$" + salt + "$" + key},
		{"t over 10", "$argon2id$v=19$m=19456,t=11,p=1$" + salt + "$" + key},
		{"p zero", "$argon2id$v=19$m=19456,t=2,p=0$" + salt + "$" + key},
		{"p over 16", "$argon2id$v=19$m=19456,t=2,p=17$" + salt + "$" + key},
		{"p over 255", "$argon2id$v=19$m=19456,t=2,p=256$" + salt + "$" + key},
		{"no salt", "$argon2id$v=19$m=19456,t=2,p=1$$" + key},
		{"no hash", "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$"},
		{"hash field missing", "$argon2id$v=19$m=19456,t=2,p=1$" + salt},
		{"trailing dollar", good + "$"},
		{"leading text", "x" + good},
		{"salt padded", "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "==$" + key},
		{"salt url alphabet", "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2F_dA$" + key},
		{"salt with newline", "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRz\nb21lc2FsdA$" + key},
		{"salt non-canonical bits", "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdB$" + key},
		{"salt 7 bytes", "$argon2id$v=19$m=19456,t=2,p=1$c29tZVNhbA$" + key},
		{"salt 65 bytes", "$argon2id$v=19$m=19456,t=2,p=1$" + strings.Repeat("A", 87) + "$" + key},
		{"hash 15 bytes", "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + strings.Repeat("A", 20)},
		{"hash 65 bytes", "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + strings.Repeat("A", 87)},
		{"hash bad char", "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + key[:10] + "*" + key[11:]},
		{"too long", good + strings.Repeat("A", 600)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, err := h.Verify(context.Background(), "password", tc.phc)
			if ok {
				t.Fatal("Verify = true")
			}
			if !errors.Is(err, ErrMalformedHash) {
				t.Fatalf("Verify error = %v; want ErrMalformedHash", err)
			}
			if len(tc.phc) > 16 && strings.Contains(err.Error(), tc.phc) {
				t.Fatalf("error %q repeats the hash", err)
			}
			if len(*calls) != 0 {
				t.Fatalf("malformed hash was hashed against: %+v", *calls)
			}
			if !h.NeedsRehash(tc.phc) {
				t.Fatal("NeedsRehash(malformed) = false")
			}
		})
	}
}

func TestValidate(t *testing.T) {
	p := func(m, tm uint32) Params { return Params{Memory: m, Time: tm, Threads: 1, SaltLen: 16, KeyLen: 32} }
	valid := []Params{
		DefaultParams,
		p(47104, 1), p(19456, 2), p(12288, 3), p(9216, 4), p(7168, 5), // the OWASP table
		p(65536, 3), p(MaxMemory, MaxTime), p(19456, 10),
		{Memory: 19456, Time: 2, Threads: MaxThreads, SaltLen: MinSaltLen, KeyLen: MinKeyLen},
		{Memory: 19456, Time: 2, Threads: 4, SaltLen: MaxSaltLen, KeyLen: MaxKeyLen},
	}
	for _, v := range valid {
		if err := v.Validate(); err != nil {
			t.Errorf("%+v.Validate() = %v; want nil", v, err)
		}
	}
	for _, tc := range []struct {
		p    Params
		want string
	}{
		{p(47103, 1), "below the OWASP minimum"},
		{p(19455, 2), "below the OWASP minimum"},
		{p(19456, 1), "below the OWASP minimum"},
		{p(12287, 3), "below the OWASP minimum"},
		{p(9215, 4), "below the OWASP minimum"},
		{p(7167, 5), "below the OWASP minimum"},
		{p(7168, 4), "below the OWASP minimum"},
		{p(7167, 10), "below the OWASP minimum"},
		{p(1024, 10), "below the OWASP minimum"},
		{p(19456, 0), "below the OWASP minimum"},
		{p(0, 0), "below the OWASP minimum"},
		{p(MaxMemory+1, 2), "exceeds the maximum of 1048576 KiB"},
		{p(19456, 11), "time 11 exceeds the maximum of 10"},
		{Params{Memory: 19456, Time: 2, Threads: 0, SaltLen: 16, KeyLen: 32}, "threads 0 is outside 1..16"},
		{Params{Memory: 19456, Time: 2, Threads: 17, SaltLen: 16, KeyLen: 32}, "threads 17 is outside 1..16"},
		{Params{Memory: 19456, Time: 2, Threads: 1, SaltLen: 8, KeyLen: 32}, "salt length 8 bytes is outside 16..64"},
		{Params{Memory: 19456, Time: 2, Threads: 1, SaltLen: 65, KeyLen: 32}, "salt length 65"},
		{Params{Memory: 19456, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 15}, "key length 15 bytes is outside 16..64"},
		{Params{Memory: 19456, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 65}, "key length 65"},
		{Params{}, "threads 0"},
	} {
		err := tc.p.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v.Validate() = %v; want error containing %q", tc.p, err, tc.want)
		}
		if _, err := NewHasher(tc.p); err == nil {
			t.Errorf("NewHasher(%+v) accepted invalid params", tc.p)
		}
	}
}

func TestOptions(t *testing.T) {
	if h := newHasher(t, DefaultParams); h.MaxConcurrent() != 2*runtime.GOMAXPROCS(0) {
		t.Errorf("default MaxConcurrent = %d; want 2×GOMAXPROCS = %d", h.MaxConcurrent(), 2*runtime.GOMAXPROCS(0))
	}
	if h := newHasher(t, DefaultParams, WithMaxConcurrent(7)); h.MaxConcurrent() != 7 {
		t.Errorf("MaxConcurrent = %d; want 7", h.MaxConcurrent())
	}
	for _, n := range []int{0, -1} {
		if _, err := NewHasher(DefaultParams, WithMaxConcurrent(n)); err == nil {
			t.Errorf("WithMaxConcurrent(%d) accepted", n)
		}
	}
	if got := newHasher(t, DefaultParams).Params(); got != DefaultParams {
		t.Errorf("Params() = %+v", got)
	}
}

func TestNeedsRehash(t *testing.T) {
	const s16, k32 = "c29tZXNhbHRzb21lc2FsdA", "CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"
	h := newHasher(t, DefaultParams)
	for _, tc := range []struct {
		phc  string
		want bool
	}{
		{"$argon2id$v=19$m=19456,t=2,p=1$" + s16 + "$" + k32, false},
		{"$argon2id$v=19$m=19457,t=2,p=1$" + s16 + "$" + k32, true},
		{"$argon2id$v=19$m=65536,t=2,p=1$" + s16 + "$" + k32, true}, // stronger also differs
		{"$argon2id$v=19$m=19456,t=3,p=1$" + s16 + "$" + k32, true},
		{"$argon2id$v=19$m=19456,t=2,p=2$" + s16 + "$" + k32, true},
		{"$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$" + k32, true},                                       // 8-byte salt
		{"$argon2id$v=19$m=19456,t=2,p=1$" + s16 + "$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPdA", true}, // 33-byte key
		{"$argon2id$v=19$m=19456,t=2,p=1$" + s16, true},
		{"", true},
	} {
		if got := h.NeedsRehash(tc.phc); got != tc.want {
			t.Errorf("NeedsRehash(%q) = %v; want %v", tc.phc, got, tc.want)
		}
	}
}

func TestDummyVerify(t *testing.T) {
	p := Params{Memory: 7168, Time: 5, Threads: 1, SaltLen: 20, KeyLen: 40}
	h := newHasher(t, p)
	calls := recordKDF(h)
	if err := h.DummyVerify(context.Background(), "whatever password"); err != nil {
		t.Fatalf("DummyVerify = %v", err)
	}
	if err := h.DummyVerify(context.Background(), ""); err != nil {
		t.Fatalf("DummyVerify(empty) = %v", err)
	}
	// It does the work of a Verify against a hash with h's parameters.
	want := kdfCall{password: "whatever password", saltLen: 20, time: 5, memory: 7168, threads: 1, keyLen: 40}
	if len(*calls) != 2 || (*calls)[0] != want {
		t.Fatalf("kdf calls = %+v; want first %+v", *calls, want)
	}
	if h.NeedsRehash(h.dummy) {
		t.Fatal("dummy hash does not carry the Hasher's parameters")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := h.DummyVerify(ctx, "x"); !errors.Is(err, context.Canceled) {
		t.Fatalf("DummyVerify(cancelled) = %v; want context.Canceled", err)
	}
}

// blockingKDF makes h's key derivation count computations in flight (and
// the most at once), announce each on entered and wait for release.
type blockingKDF struct {
	entered, release chan struct{}
	inFlight, most   atomic.Int32
}

func block(h *Hasher) *blockingKDF {
	b := &blockingKDF{entered: make(chan struct{}), release: make(chan struct{})}
	h.kdf = func(_, _ []byte, _, _ uint32, _ uint8, keyLen uint32) []byte {
		n := b.inFlight.Add(1)
		for m := b.most.Load(); n > m && !b.most.CompareAndSwap(m, n); m = b.most.Load() {
		}
		b.entered <- struct{}{}
		<-b.release
		b.inFlight.Add(-1)
		return make([]byte, keyLen)
	}
	return b
}

func TestConcurrencyLimit(t *testing.T) {
	const limit, callers = 3, 20
	h := newHasher(t, DefaultParams, WithMaxConcurrent(limit))
	phc, err := newHasher(t, DefaultParams).Hash(context.Background(), "some password")
	if err != nil {
		t.Fatal(err)
	}
	b := block(h)
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			var err error
			switch i % 3 {
			case 0:
				_, err = h.Hash(ctx, "some password")
			case 1:
				_, err = h.Verify(ctx, "some password", phc)
			case 2:
				err = h.DummyVerify(ctx, "some password")
			}
			if err != nil {
				t.Error(err)
			}
		})
	}
	// The limit is reached...
	for range limit {
		<-b.entered
	}
	// ...and from then on each release lets exactly one more in.
	done := make(chan struct{})
	go func() {
		for range callers - limit {
			<-b.entered
		}
		close(done)
	}()
	for range callers {
		b.release <- struct{}{}
	}
	wg.Wait()
	<-done
	if got := b.most.Load(); got != limit {
		t.Fatalf("at most %d computations ran at once; want exactly the limit %d", got, limit)
	}
}

func TestContextCancelledWhileWaiting(t *testing.T) {
	h := newHasher(t, DefaultParams, WithMaxConcurrent(1))
	b := block(h)
	holder := make(chan error)
	go func() {
		_, err := h.Hash(context.Background(), "holds the only slot")
		holder <- err
	}()
	<-b.entered // the only slot is taken

	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, 3)
	go func() { _, err := h.Hash(ctx, "p"); errs <- err }()
	go func() { _, err := h.Verify(ctx, "p", h.dummy); errs <- err }()
	go func() { errs <- h.DummyVerify(ctx, "p") }()
	cancel()
	for range 3 {
		if err := <-errs; !errors.Is(err, context.Canceled) {
			t.Errorf("waiting call returned %v; want context.Canceled", err)
		}
	}
	if n := b.inFlight.Load(); n != 1 {
		t.Errorf("%d computations in flight; cancelled callers must not compute", n)
	}
	b.release <- struct{}{}
	if err := <-holder; err != nil {
		t.Fatal(err)
	}

	// A context already done fails even when a slot is free.
	if _, err := h.Verify(ctx, "p", h.dummy); !errors.Is(err, context.Canceled) {
		t.Fatalf("Verify(done ctx) = %v; want context.Canceled", err)
	}
	if n := b.most.Load(); n != 1 {
		t.Fatalf("most in flight = %d; want 1", n)
	}
}

func TestValidatePassword(t *testing.T) {
	for _, ok := range []string{
		strings.Repeat("a", 12),
		strings.Repeat("a", 256),
		"correct horse battery staple",
		"éééééé",        // 6 runes, 12 bytes: the rule counts bytes
		"пароль-пароль", // Cyrillic
		"tab\tand\nnewline ok",
	} {
		if err := ValidatePassword(ok); err != nil {
			t.Errorf("ValidatePassword(%q) = %v; want nil", ok, err)
		}
	}
	for _, tc := range []struct{ pw, want string }{
		{"", "at least 12 bytes"},
		{strings.Repeat("a", 11), "at least 12 bytes"},
		{"ééééé", "at least 12 bytes"}, // 10 bytes
		{strings.Repeat("a", 257), "at most 256 bytes"},
		{strings.Repeat("a", 12) + "\xff", "valid UTF-8"},
		{strings.Repeat("a", 12) + "\xc3", "valid UTF-8"},         // truncated rune
		{"\xed\xa0\x80" + strings.Repeat("a", 12), "valid UTF-8"}, // surrogate
		{strings.Repeat("a", 6) + "\x00" + strings.Repeat("a", 6), "NUL"},
	} {
		err := ValidatePassword(tc.pw)
		if !errors.Is(err, ErrInvalidPassword) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ValidatePassword(%q) = %v; want ErrInvalidPassword naming %q", tc.pw, err, tc.want)
			continue
		}
		if len(tc.pw) >= 6 && strings.Contains(err.Error(), tc.pw) {
			t.Errorf("error %q repeats the password", err)
		}
	}
}

func benchHash(b *testing.B) (*Hasher, string) {
	h := newHasher(b, DefaultParams)
	phc, err := h.Hash(context.Background(), "correct horse battery staple")
	if err != nil {
		b.Fatal(err)
	}
	return h, phc
}

// BenchmarkVerify measures one login's cost with DefaultParams.
func BenchmarkVerify(b *testing.B) {
	h, phc := benchHash(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := h.Verify(ctx, "correct horse battery staple", phc); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

func BenchmarkHash(b *testing.B) {
	h := newHasher(b, DefaultParams)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Hash(ctx, "correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyParallel measures the machine's login throughput (ns/op is
// the inverse of verifications per second over all cores).
func BenchmarkVerifyParallel(b *testing.B) {
	h, phc := benchHash(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if ok, err := h.Verify(ctx, "correct horse battery staple", phc); !ok || err != nil {
				b.Error(ok, err)
				return
			}
		}
	})
}
