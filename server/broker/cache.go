package broker

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenbroker/tokenbroker/server/policy"
	"github.com/tokenbroker/tokenbroker/store"
)

// roleCache keeps every role in memory with compiled permission sets, so
// checking a credential costs no role reads or policy compilation.
//
// With a store only this process writes (bbolt), the broker updates the
// cache right after each durable store write. With a shared store (etcd),
// every role change of any process arrives through the store's change
// feed and the cache is reloaded from the store (changes.go); local writes
// reload too, so a local update can never overwrite a newer one read from
// the feed.
type roleCache struct {
	orgID   string
	writeMu sync.Mutex // serializes this process's role writes (see Broker.CreateRole)
	// loadMu makes each reload (read every role, install them) atomic, so
	// reloads install in the order they read.
	loadMu sync.Mutex
	mu     sync.RWMutex
	byID   map[string]store.Role
	gen    uint64               // bumped on every role change
	sets   map[string]cachedSet // key: the token's role IDs joined by ","
}

type cachedSet struct {
	gen uint64
	set *policy.Set
}

func newRoleCache(orgID string) *roleCache {
	return &roleCache{orgID: orgID, byID: map[string]store.Role{}, sets: map[string]cachedSet{}}
}

func (c *roleCache) load(roles []store.Role) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.byID = make(map[string]store.Role, len(roles))
	for _, r := range roles {
		c.byID[r.ID] = r
	}
	c.gen++
}

func (c *roleCache) put(r store.Role) {
	c.mu.Lock()
	c.byID[r.ID] = r
	c.gen++
	c.mu.Unlock()
}

func (c *roleCache) remove(id string) {
	c.mu.Lock()
	delete(c.byID, id)
	c.gen++
	c.mu.Unlock()
}

func (c *roleCache) get(id string) (store.Role, bool) {
	c.mu.RLock()
	r, ok := c.byID[id]
	c.mu.RUnlock()
	return r, ok
}

// setFor returns the compiled permissions of a list of role IDs. A role that
// no longer exists grants nothing.
func (c *roleCache) setFor(ids []string) *policy.Set {
	key := strings.Join(ids, ",")
	c.mu.RLock()
	cs, ok := c.sets[key]
	gen := c.gen
	c.mu.RUnlock()
	if ok && cs.gen == gen {
		return cs.set
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cs, ok := c.sets[key]; ok && cs.gen == c.gen {
		return cs.set
	}
	roles := make([]store.Role, 0, len(ids))
	for _, id := range ids {
		if r, ok := c.byID[id]; ok {
			roles = append(roles, r)
		}
	}
	set := policy.Compile(c.orgID, roles)
	c.sets[key] = cachedSet{gen: c.gen, set: set}
	return set
}

// usageTracker records when each token was last used, in memory only. The
// hot path does one atomic load per call, and a store only when the recorded
// time is a second or more old, so concurrent callers of one token rarely
// contend on its cache line. The broker's background loop persists the
// changes (Broker.FlushUsage); a crash loses at most one flush interval.
type usageTracker struct {
	m           sync.Map // key (client ID, or an auth token's MAC) → *usageEntry
	granularity int64    // nanoseconds; uses closer together than this are not recorded
}

type usageEntry struct {
	last    atomic.Int64 // unix nanos of the latest use seen
	flushed atomic.Int64 // unix nanos last written to the store
}

// Granularities of last-use tracking. Application tokens' last use is
// informational, so a second is plenty. An auth token's last use is its
// expiry clock, so it is recorded more finely: it may expire at most this
// much earlier than exactly TTL after its last use.
const (
	appTokenUseGranularity  = time.Second
	authTokenUseGranularity = 100 * time.Millisecond
)

func newUsageTracker(granularity time.Duration) *usageTracker {
	return &usageTracker{granularity: int64(granularity)}
}

func (u *usageTracker) touch(clientID string, now time.Time) {
	n := now.UnixNano()
	v, ok := u.m.Load(clientID)
	if !ok {
		v, _ = u.m.LoadOrStore(clientID, new(usageEntry))
	}
	e := v.(*usageEntry)
	if n-e.last.Load() >= u.granularity {
		e.last.Store(n)
	}
}

// lastUsed returns the in-memory last-use time (zero if none).
func (u *usageTracker) lastUsed(clientID string) time.Time {
	if v, ok := u.m.Load(clientID); ok {
		if n := v.(*usageEntry).last.Load(); n != 0 {
			return time.Unix(0, n).UTC()
		}
	}
	return time.Time{}
}

func (u *usageTracker) forget(clientID string) { u.m.Delete(clientID) }

// pending returns the uses not yet persisted.
func (u *usageTracker) pending() map[string]time.Time {
	out := map[string]time.Time{}
	u.m.Range(func(k, v any) bool {
		e := v.(*usageEntry)
		if last := e.last.Load(); last > e.flushed.Load() {
			out[k.(string)] = time.Unix(0, last).UTC()
		}
		return true
	})
	return out
}

// flushed marks the given uses as persisted.
func (u *usageTracker) flushed(done map[string]time.Time) {
	for id, t := range done {
		if v, ok := u.m.Load(id); ok {
			e := v.(*usageEntry)
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

// forgetOlderThan drops entries whose last use is before cutoff (expired
// auth tokens), so memory does not grow with every token ever used. An
// entry that is not yet persisted is kept.
func (u *usageTracker) forgetOlderThan(cutoff time.Time) {
	c := cutoff.UnixNano()
	u.m.Range(func(k, v any) bool {
		e := v.(*usageEntry)
		if last := e.last.Load(); last < c && e.flushed.Load() >= last {
			u.m.Delete(k)
		}
		return true
	})
}
