package view

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Uses records when each credential was last used, in memory only. The hot
// path does one atomic load per call, and a store only when the recorded
// time is a granularity or more old, so concurrent callers of one
// credential rarely contend on its cache line. View.Flush persists the
// changes; a crash loses at most one flush interval. Entries of credentials
// deleted anywhere are dropped when the change feed reports the deletion.
type Uses struct {
	m           sync.Map // key (client ID, or an auth token's MAC) → *useEntry
	granularity int64    // nanoseconds; uses closer together than this are not recorded
}

type useEntry struct {
	last    atomic.Int64 // unix nanos of the latest use seen
	flushed atomic.Int64 // unix nanos last written to the store
}

// NewUses returns an empty tracker that records uses at most once per
// granularity per key.
func NewUses(granularity time.Duration) *Uses {
	return &Uses{granularity: int64(granularity)}
}

// Touch records a use of key at now.
func (u *Uses) Touch(key string, now time.Time) {
	n := now.UnixNano()
	v, ok := u.m.Load(key)
	if !ok {
		v, _ = u.m.LoadOrStore(key, new(useEntry))
	}
	e := v.(*useEntry)
	if n-e.last.Load() >= u.granularity {
		e.last.Store(n)
	}
}

// LastUsed returns the in-memory last-use time (zero if none).
func (u *Uses) LastUsed(key string) time.Time {
	if v, ok := u.m.Load(key); ok {
		if n := v.(*useEntry).last.Load(); n != 0 {
			return time.Unix(0, n).UTC()
		}
	}
	return time.Time{}
}

// Forget drops key (a deleted credential).
func (u *Uses) Forget(key string) { u.m.Delete(key) }

// ForgetOlderThan drops entries whose last use is before cutoff (expired
// auth tokens), so memory does not grow with every credential ever used.
// An entry that is not yet persisted is kept.
func (u *Uses) ForgetOlderThan(cutoff time.Time) {
	c := cutoff.UnixNano()
	u.m.Range(func(k, v any) bool {
		e := v.(*useEntry)
		if last := e.last.Load(); last < c && e.flushed.Load() >= last {
			u.m.Delete(k)
		}
		return true
	})
}

// pending returns the uses not yet persisted.
func (u *Uses) pending() map[string]time.Time {
	out := map[string]time.Time{}
	u.m.Range(func(k, v any) bool {
		e := v.(*useEntry)
		if last := e.last.Load(); last > e.flushed.Load() {
			out[k.(string)] = time.Unix(0, last).UTC()
		}
		return true
	})
	return out
}

// flushed marks the given uses as persisted.
func (u *Uses) flushed(done map[string]time.Time) {
	for id, t := range done {
		if v, ok := u.m.Load(id); ok {
			e := v.(*useEntry)
			n := t.UnixNano()
			for {
				old := e.flushed.Load()
				if n <= old || e.flushed.CompareAndSwap(old, n) {
					break
				}
			}
		}
	}
}

// flush persists the pending uses with record (RecordTokenUse or
// RecordAuthTokenUse).
func (u *Uses) flush(ctx context.Context, record func(context.Context, map[string]time.Time) error) error {
	pending := u.pending()
	if len(pending) == 0 {
		return nil
	}
	if err := record(ctx, pending); err != nil {
		return err
	}
	u.flushed(pending)
	return nil
}
