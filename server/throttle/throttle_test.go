package throttle

import (
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a settable clock safe for concurrent use.
type fakeClock struct{ ns atomic.Int64 }

var epoch = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func (c *fakeClock) Now() time.Time          { return epoch.Add(time.Duration(c.ns.Load())) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// example is the policy of the package comment.
var example = Policy{Burst: 10, Refill: 6 * time.Second, SlowAfter: 3, SlowStep: 200 * time.Millisecond, MaxSlow: 2 * time.Second, MaxKeys: 100}

func newTest(t *testing.T, p Policy) (*Limiter, *fakeClock) {
	t.Helper()
	c := new(fakeClock)
	return New(p, c.Now), c
}

func wantAllow(t *testing.T, l *Limiter, wantOK bool, wantRetry time.Duration, keys ...string) {
	t.Helper()
	ok, retry := l.Allow(keys...)
	if ok != wantOK || retry != wantRetry {
		t.Fatalf("Allow(%q) = %v, %v; want %v, %v", keys, ok, retry, wantOK, wantRetry)
	}
}

func fail(l *Limiter, n int, keys ...string) (last time.Duration) {
	for range n {
		last = l.Failure(keys...)
	}
	return last
}

func TestBudgetExhaustion(t *testing.T) {
	l, c := newTest(t, example)
	wantAllow(t, l, true, 0, "user:a")
	fail(l, 9, "user:a")
	wantAllow(t, l, true, 0, "user:a") // the 10th attempt may still be made
	fail(l, 1, "user:a")
	wantAllow(t, l, false, 6*time.Second, "user:a")
	c.Advance(5 * time.Second)
	wantAllow(t, l, false, time.Second, "user:a")
	c.Advance(time.Second - time.Millisecond)
	wantAllow(t, l, false, time.Millisecond, "user:a") // the caller rounds up to 1s
	c.Advance(time.Millisecond)
	wantAllow(t, l, true, 0, "user:a") // one failure forgiven
	fail(l, 1, "user:a")
	wantAllow(t, l, false, 6*time.Second, "user:a")
	wantAllow(t, l, true, 0, "user:b") // other keys are unaffected
}

func TestRefill(t *testing.T) {
	l, c := newTest(t, example)
	fail(l, 10, "k")
	c.Advance(30 * time.Second) // five forgiven
	wantAllow(t, l, true, 0, "k")
	fail(l, 4, "k")
	wantAllow(t, l, true, 0, "k")
	fail(l, 1, "k")
	wantAllow(t, l, false, 6*time.Second, "k")

	c.Advance(60 * time.Second) // all forgiven: a fresh budget
	wantAllow(t, l, true, 0, "k")
	if d := fail(l, 3, "k"); d != 0 {
		t.Fatalf("3rd failure after full refill delayed %v", d)
	}
	c.Advance(time.Hour) // refill does not accumulate beyond Burst
	fail(l, 9, "k")
	wantAllow(t, l, true, 0, "k")
	fail(l, 1, "k")
	wantAllow(t, l, false, 6*time.Second, "k")
}

func TestAllowRecordsNothing(t *testing.T) {
	l, _ := newTest(t, example)
	for range 1000 {
		wantAllow(t, l, true, 0, "user:a", "addr:x")
	}
	if n := l.Len(); n != 0 {
		t.Fatalf("Allow tracked %d keys", n)
	}
	fail(l, 9, "user:a")
	for range 1000 { // successes, which are only ever Allowed, never consume
		wantAllow(t, l, true, 0, "user:a")
	}
}

func TestSlowdown(t *testing.T) {
	p := example
	p.Burst = 100
	l, _ := newTest(t, p)
	ms := time.Millisecond
	want := []time.Duration{0, 0, 0, 200 * ms, 400 * ms, 600 * ms, 800 * ms, 1000 * ms, 1200 * ms,
		1400 * ms, 1600 * ms, 1800 * ms, 2000 * ms, 2000 * ms, 2000 * ms}
	for i, w := range want {
		if d := l.Failure("k"); d != w {
			t.Fatalf("failure %d delayed %v; want %v", i+1, d, w)
		}
	}

	// Partly forgiven failures still count until wholly forgiven.
	l, c := newTest(t, p)
	fail(l, 4, "k") // debt 24s
	c.Advance(time.Second)
	if d := l.Failure("k"); d != 400*ms { // debt 29s: 5 outstanding
		t.Fatalf("delay %v; want 400ms", d)
	}
	c.Advance(5 * time.Second) // debt 24s: 4 outstanding, the 5th is forgiven
	if d := l.Failure("k"); d != 400*ms {
		t.Fatalf("delay %v; want 400ms", d)
	}
	c.Advance(5*6*time.Second - 1) // debt 1ns: 1 outstanding
	if d := l.Failure("k"); d != 0 {
		t.Fatalf("delay %v; want 0", d)
	}
}

func TestSlowdownSettings(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name  string
		after int
		step  time.Duration
		max   time.Duration
		want  []time.Duration
	}{
		{"SlowAfter 0 delays the first failure", 0, 100 * ms, time.Second, []time.Duration{100 * ms, 200 * ms, 300 * ms}},
		{"SlowStep 0 disables", 0, 0, time.Second, []time.Duration{0, 0, 0}},
		{"MaxSlow 0 disables", 0, 100 * ms, 0, []time.Duration{0, 0, 0}},
		{"cap below one step", 1, time.Second, 300 * ms, []time.Duration{0, 300 * ms, 300 * ms}},
		{"huge step saturates at the cap", 0, math.MaxInt64, time.Hour, []time.Duration{time.Hour, time.Hour}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, _ := newTest(t, Policy{Burst: 5, Refill: time.Second, SlowAfter: tc.after, SlowStep: tc.step, MaxSlow: tc.max, MaxKeys: 10})
			for i, w := range tc.want {
				if d := l.Failure("k"); d != w {
					t.Fatalf("failure %d delayed %v; want %v", i+1, d, w)
				}
			}
		})
	}
}

func TestMultipleKeys(t *testing.T) {
	l, c := newTest(t, example)
	fail(l, 10, "user:a")
	wantAllow(t, l, false, 6*time.Second, "user:a", "addr:x")
	wantAllow(t, l, false, 6*time.Second, "addr:x", "user:a")
	wantAllow(t, l, true, 0, "addr:x")
	wantAllow(t, l, true, 0, "user:b", "addr:x")

	// Retry-After waits for every exhausted key.
	c.Advance(2 * time.Second)
	fail(l, 10, "addr:x") // exhausted 2s later than user:a
	wantAllow(t, l, false, 6*time.Second, "user:a", "addr:x")
	wantAllow(t, l, false, 4*time.Second, "user:a")

	// The delay is the largest over keys, and each key records the failure.
	l, _ = newTest(t, example)
	fail(l, 5, "user:a")
	if d := l.Failure("addr:y", "user:a"); d != 600*time.Millisecond {
		t.Fatalf("Failure delay %v; want 600ms (user:a's 6th failure)", d)
	}
	if d := l.Failure("addr:y"); d != 0 {
		t.Fatalf("addr:y's 2nd failure delayed %v", d)
	}

	// A key repeated in one call is one failure.
	l, _ = newTest(t, example)
	fail(l, 5, "k", "k", "k")
	if d := l.Failure("k"); d != 600*time.Millisecond {
		t.Fatalf("6th failure delayed %v: repeated keys counted more than once", d)
	}

	// No keys: nothing to refuse, nothing to record.
	wantAllow(t, l, true, 0)
	if d := l.Failure(); d != 0 || l.Len() != 1 {
		t.Fatalf("Failure() = %v, Len %d", d, l.Len())
	}
}

func TestMaxKeysEvictsLeastIndebted(t *testing.T) {
	p := Policy{Burst: 1, Refill: 10 * time.Second, MaxKeys: 3}
	l, c := newTest(t, p)
	fail(l, 3, "a") // debt 30s, the least recently failed
	c.Advance(time.Second)
	fail(l, 1, "b") // refilled at 11s
	c.Advance(time.Second)
	fail(l, 1, "c") // refilled at 12s
	c.Advance(time.Second)
	fail(l, 1, "d") // a 4th key: b is evicted, not a
	if n := l.Len(); n != 3 {
		t.Fatalf("Len = %d; want MaxKeys 3", n)
	}
	wantAllow(t, l, true, 0, "b")
	wantAllow(t, l, false, 27*time.Second, "a")
	wantAllow(t, l, false, 9*time.Second, "c")
	wantAllow(t, l, false, 10*time.Second, "d")

	fail(l, 1, "e") // c now owes least
	wantAllow(t, l, true, 0, "c")
	wantAllow(t, l, false, 27*time.Second, "a")
}

func TestFloodDoesNotFlushAttackedKey(t *testing.T) {
	p := example
	p.MaxKeys = 100
	l, _ := newTest(t, p)
	fail(l, 10, "user:victim")
	for i := range 10000 {
		l.Failure(fmt.Sprintf("user:junk%d", i))
	}
	if n := l.Len(); n != p.MaxKeys {
		t.Fatalf("Len = %d; want MaxKeys %d", n, p.MaxKeys)
	}
	wantAllow(t, l, false, 6*time.Second, "user:victim")
}

func TestSweep(t *testing.T) {
	l, c := newTest(t, example)
	if n := l.Sweep(); n != 0 {
		t.Fatalf("Sweep of empty limiter = %d", n)
	}
	fail(l, 1, "one")    // full again at 6s
	fail(l, 2, "two")    // at 12s
	fail(l, 10, "ten")   // at 60s
	fail(l, 1, "a", "b") // at 6s
	c.Advance(6*time.Second - 1)
	if n := l.Sweep(); n != 0 || l.Len() != 5 {
		t.Fatalf("Sweep before any refill = %d, Len %d", n, l.Len())
	}
	c.Advance(1)
	if n := l.Sweep(); n != 3 || l.Len() != 2 {
		t.Fatalf("Sweep at 6s = %d, Len %d; want 3, 2", n, l.Len())
	}
	wantAllow(t, l, true, 0, "one")
	c.Advance(time.Minute)
	if n := l.Sweep(); n != 2 || l.Len() != 0 {
		t.Fatalf("Sweep at 66s = %d, Len %d; want 2, 0", n, l.Len())
	}
}

func TestSweepReleasesFloodMemory(t *testing.T) {
	p := example
	p.MaxKeys = 100000
	l, c := newTest(t, p)
	for i := range 50000 {
		l.Failure(fmt.Sprintf("addr:%d", i))
	}
	c.Advance(time.Minute)
	if n := l.Sweep(); n != 50000 {
		t.Fatalf("Sweep = %d; want 50000", n)
	}
	for i := range l.shards {
		if s := &l.shards[i]; len(s.entries) != 0 || cap(s.byFull) != 0 {
			t.Fatalf("shard %d keeps %d entries, heap capacity %d", i, len(s.entries), cap(s.byFull))
		}
	}
	fail(l, 10, "k") // still works afterwards
	wantAllow(t, l, false, 6*time.Second, "k")
}

func TestLazyExpiry(t *testing.T) {
	l, c := newTest(t, example) // MaxKeys 100: one shard
	for i := range 20 {
		l.Failure(fmt.Sprintf("k%d", i))
	}
	c.Advance(6 * time.Second)
	l.Failure("new")
	if n, want := l.Len(), 20-lazyExpire+1; n != want {
		t.Fatalf("Len after a Failure = %d; want %d (%d forgotten lazily)", n, want, lazyExpire)
	}
	l.Failure("new")
	l.Failure("new")
	if n := l.Len(); n != 1 {
		t.Fatalf("Len = %d; want 1", n)
	}
}

func TestShards(t *testing.T) {
	for _, tc := range []struct{ maxKeys, shards int }{
		{1, 1}, {127, 1}, {128, 2}, {255, 2}, {256, 4}, {1000, 8}, {1024, 16}, {1025, 16}, {1 << 20, 16},
	} {
		l := New(Policy{Burst: 1, Refill: time.Second, MaxKeys: tc.maxKeys}, nil)
		total := 0
		for i := range l.shards {
			total += l.shards[i].cap
		}
		if len(l.shards) != tc.shards || total != tc.maxKeys {
			t.Errorf("MaxKeys %d: %d shards holding %d; want %d holding %d", tc.maxKeys, len(l.shards), total, tc.shards, tc.maxKeys)
		}
	}

	// Sharded, the bound is still exact.
	l, _ := newTest(t, Policy{Burst: 1, Refill: time.Minute, MaxKeys: 1024})
	for i := range 5000 {
		l.Failure(fmt.Sprintf("user:%d", i))
	}
	if n := l.Len(); n != 1024 {
		t.Fatalf("Len = %d; want MaxKeys 1024", n)
	}
}

func TestConcurrent(t *testing.T) {
	const goroutines, each = 8, 200
	p := Policy{Burst: 10, Refill: time.Second, SlowAfter: 3, SlowStep: time.Millisecond, MaxSlow: time.Second, MaxKeys: 10000}
	l, _ := newTest(t, p) // frozen clock: nothing is forgiven, so the counts are exact
	var wg sync.WaitGroup
	for g := range goroutines {
		own := fmt.Sprintf("addr:%d", g)
		wg.Go(func() {
			for i := range each {
				l.Allow("user:hot", own)
				l.Failure("user:hot", own)
				if i%50 == 0 {
					l.Sweep()
					l.Len()
				}
			}
		})
	}
	wg.Wait()
	// Every failure was recorded: debt = failures×Refill, so Retry-After is
	// (failures - (Burst-1))×Refill.
	wantAllow(t, l, false, (goroutines*each-9)*time.Second, "user:hot")
	for g := range goroutines {
		wantAllow(t, l, false, (each-9)*time.Second, fmt.Sprintf("addr:%d", g))
	}
	if n := l.Len(); n != goroutines+1 {
		t.Fatalf("Len = %d; want %d", n, goroutines+1)
	}
}

func TestConcurrentWithMovingClock(t *testing.T) {
	p := Policy{Burst: 5, Refill: time.Millisecond, SlowAfter: 1, SlowStep: time.Microsecond, MaxSlow: time.Millisecond, MaxKeys: 300}
	l, c := newTest(t, p)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				k := fmt.Sprintf("k%d", (g*7+i)%500)
				if ok, _ := l.Allow(k, "shared"); ok {
					l.Failure(k, "shared")
				}
				c.Advance(time.Microsecond * time.Duration(i%3))
				if i%100 == 0 {
					l.Sweep()
				}
			}
		})
	}
	wg.Wait()
	if n := l.Len(); n > p.MaxKeys {
		t.Fatalf("Len = %d exceeds MaxKeys %d", n, p.MaxKeys)
	}
	c.Advance(time.Hour)
	l.Sweep()
	if n := l.Len(); n != 0 {
		t.Fatalf("Len after quiet hour and Sweep = %d", n)
	}
}

func TestSaturation(t *testing.T) {
	l, _ := newTest(t, Policy{Burst: 1, Refill: math.MaxInt64 / 2, SlowAfter: 1, SlowStep: time.Second, MaxSlow: time.Minute, MaxKeys: 1})
	fail(l, 5, "k") // debt would overflow int64
	wantAllow(t, l, false, math.MaxInt64, "k")
	if d := l.Failure("k"); d != 2*time.Second {
		t.Fatalf("delay = %v", d)
	}
}

func TestPolicyValidate(t *testing.T) {
	if err := example.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		edit func(*Policy)
		want string
	}{
		{func(p *Policy) { p.Burst = 0 }, "Burst 0 must be at least 1"},
		{func(p *Policy) { p.Refill = 0 }, "Refill 0s must be positive"},
		{func(p *Policy) { p.Refill = -time.Second }, "Refill -1s must be positive"},
		{func(p *Policy) { p.Burst, p.Refill = 1<<40, time.Hour }, "overflows"},
		{func(p *Policy) { p.SlowAfter = -1 }, "SlowAfter -1"},
		{func(p *Policy) { p.SlowStep = -1 }, "SlowStep -1ns"},
		{func(p *Policy) { p.MaxSlow = -1 }, "MaxSlow -1ns"},
		{func(p *Policy) { p.MaxKeys = 0 }, "MaxKeys 0 must be at least 1"},
	} {
		p := example
		tc.edit(&p)
		err := p.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v) = %v; want %q", p, err, tc.want)
		}
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New(%+v) did not panic", p)
				}
			}()
			New(p, nil)
		}()
	}
}

func TestRealClock(t *testing.T) {
	l := New(example, nil)
	fail(l, 10, "k")
	if ok, retry := l.Allow("k"); ok || retry <= 5*time.Second || retry > 6*time.Second {
		t.Fatalf("Allow = %v, %v", ok, retry)
	}
}

// benchLimiter is a limiter with the example policy, MaxKeys 100000 (16
// shards unless given), the real clock and, if busy, 10000 tracked keys.
func benchLimiter(shards int, busy bool) *Limiter {
	p := example
	p.MaxKeys = 100000
	l := New(p, nil)
	if shards > 0 {
		l = newLimiter(p, nil, shards)
	}
	if busy {
		for i := range 10000 {
			l.Failure(fmt.Sprintf("addr:10.0.%d.%d", i/256, i%256))
		}
	}
	return l
}

// BenchmarkAllowUnknownKey is the check path's common case: quiet (nothing
// tracked) and busy (10000 keys tracked, e.g. under a spraying attack).
func BenchmarkAllowUnknownKey(b *testing.B) {
	for _, busy := range []bool{false, true} {
		b.Run(map[bool]string{false: "quiet", true: "busy"}[busy], func(b *testing.B) {
			l := benchLimiter(0, busy)
			b.ReportAllocs()
			for b.Loop() {
				if ok, _ := l.Allow("user:nobody"); !ok {
					b.Fatal("refused")
				}
			}
		})
	}
}

// The usual login check: a user key and an address key.
func BenchmarkAllowTwoUnknownKeys(b *testing.B) {
	l := benchLimiter(0, true)
	b.ReportAllocs()
	for b.Loop() {
		if ok, _ := l.Allow("user:nobody", "addr:192.0.2.1"); !ok {
			b.Fatal("refused")
		}
	}
}

// A tracked key costs a clock read more.
func BenchmarkAllowKnownKey(b *testing.B) {
	l := benchLimiter(0, true)
	b.ReportAllocs()
	for b.Loop() {
		l.Allow("addr:10.0.1.1")
	}
}

// BenchmarkAllowParallel compares one lock with the sharded default: quiet
// (nothing tracked), busy with untracked keys, and busy with one key in
// eight tracked.
func BenchmarkAllowParallel(b *testing.B) {
	unknown, mixed := make([]string, 1024), make([]string, 1024)
	for i := range mixed {
		unknown[i] = fmt.Sprintf("user:u%d", i)
		mixed[i] = unknown[i]
		if i%8 == 0 {
			mixed[i] = fmt.Sprintf("addr:10.0.%d.%d", i/256, i%256) // tracked
		}
	}
	for _, tc := range []struct {
		name string
		busy bool
		keys []string
	}{{"quiet", false, unknown}, {"busy-unknown", true, unknown}, {"busy-mixed", true, mixed}} {
		for _, shards := range []int{1, 16} {
			b.Run(fmt.Sprintf("%s/shards=%d", tc.name, shards), func(b *testing.B) {
				l := benchLimiter(shards, tc.busy)
				b.ReportAllocs()
				var goroutine atomic.Int64
				b.RunParallel(func(pb *testing.PB) {
					i := int(goroutine.Add(1)) * 337 // not in step with the others
					for pb.Next() {
						l.Allow(tc.keys[i%len(tc.keys)])
						i++
					}
				})
			})
		}
	}
}

func BenchmarkFailure(b *testing.B) {
	l := benchLimiter(0, true)
	b.ReportAllocs()
	for b.Loop() {
		l.Failure("addr:10.0.1.1")
	}
}
