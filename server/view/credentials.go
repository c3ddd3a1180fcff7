package view

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenbroker/tokenbroker/store"
)

// Decoded credential records for the credential-check path.
//
// Every Check used to read the credential's record from the store and
// decode it: a read transaction and a protobuf decode whose deep call
// chain also grew the calling goroutine's stack, about a third of the
// server's CPU per Check over gRPC. The View keeps the decoded records of
// the credentials in use instead, filled on a miss and emptied by the
// change feed like everything else here:
//
//   - An entry is dropped when a batch of changes to its record (a
//     revocation, a rotation, a recorded use) or, for an auth token, to its
//     principal (the application token or user whose roles it carries)
//     opens its window (store.ChangeNotifier.SubscribeWindows): before any
//     read can see the batch. Until the window closes, after the batch is
//     visible and delivered, the records it changes are not filled, so a
//     Check reads them from the store: no Check can see a revocation and a
//     later one miss it. The window closes before the write returns, so a
//     revocation is in effect on this process when it returns, and on
//     another replica when its watch delivers it, as for an uncached read.
//   - A miss fills the entry only if no window opened or closed while it
//     read the store (a generation check): a read that began before a
//     revocation committed can never put the revoked record back.
//   - Reads keep failing closed when a shared store's view is stale
//     (store.Freshness), hit or miss; and while this process has a write
//     its feed has not delivered yet (store.FeedLag), reads bypass the
//     cache and wait in the store for that write, as every read does.
//   - Only found records are cached (a guessed credential costs a store
//     read, as before), and the number of entries is bounded: a full cache
//     evicts an arbitrary entry per fill. Secrets are held only as the MACs
//     the store holds.

// DefaultCredentialCacheSize bounds each of the two credential caches
// (application tokens, auth tokens). An entry takes a few hundred bytes, so
// the default costs at most some tens of MB, whatever the number of
// credentials stored.
const DefaultCredentialCacheSize = 65536

// TokenCredential is what checking an application token reads of its
// record.
type TokenCredential struct {
	ClientID  string
	OrgID     string
	Roles     []string // read-only: shared by every caller
	SecretMAC []byte   // read-only
	Expiry    time.Time
}

// Expired reports whether the token's expiry is at or before now.
func (c TokenCredential) Expired(now time.Time) bool {
	return !c.Expiry.IsZero() && !c.Expiry.After(now)
}

// TokenCredential returns the application token's credential, from the
// cache or from the store (store.ErrNotFound if there is none). Its slices
// are shared and must not be modified.
func (v *View) TokenCredential(ctx context.Context, clientID string) (TokenCredential, error) {
	useCache, err := v.cacheUsable()
	if err != nil {
		return TokenCredential{}, fmt.Errorf("get token: %w", err)
	}
	if useCache {
		if c, ok := v.tokens.get(clientID); ok {
			return *c, nil
		}
	}
	gen := v.tokens.generation()
	t, err := v.Store.GetToken(ctx, clientID)
	if err != nil {
		return TokenCredential{}, err
	}
	c := &TokenCredential{ClientID: t.ClientID, OrgID: t.OrgID, Roles: t.Roles, SecretMAC: t.SecretMAC, Expiry: t.Expiry}
	v.tokens.fill(gen, clientID, c, "")
	return *c, nil
}

// ResolvedAuthToken returns the auth token with this MAC and its
// principal's roles (store.Store.ResolveAuthToken), from the cache or from
// the store; key is string(mac). Its slices are shared and must not be
// modified. Its LastUsed is the store's; the live value is AuthTokenUse's.
func (v *View) ResolvedAuthToken(ctx context.Context, key string, mac []byte) (store.ResolvedAuthToken, error) {
	useCache, err := v.cacheUsable()
	if err != nil {
		return store.ResolvedAuthToken{}, fmt.Errorf("resolve auth token: %w", err)
	}
	if useCache {
		if r, ok := v.authTokens.get(key); ok {
			return *r, nil
		}
	}
	gen := v.authTokens.generation()
	r, err := v.Store.ResolveAuthToken(ctx, mac)
	if err != nil {
		return store.ResolvedAuthToken{}, err
	}
	v.authTokens.fill(gen, key, &r, r.PrincipalID)
	return r, nil
}

// cacheUsable reports whether a cached credential may answer: an error
// when a shared store's view is stale (every read fails closed then), and
// false while this process has a write its change feed has not delivered.
func (v *View) cacheUsable() (bool, error) {
	if v.freshness != nil {
		if err := v.freshness.Stale(); err != nil {
			return false, err
		}
	}
	return v.lag == nil || !v.lag.FeedBehind(), nil
}

// openWindow drops the cached records a batch changes, and keeps them from
// being filled until closeWindow, before any read can see the batch.
func (v *View) openWindow(changes []store.Change) { v.window(changes, true) }

// closeWindow ends openWindow's, once the batch is visible and delivered
// (or failed).
func (v *View) closeWindow(changes []store.Change) { v.window(changes, false) }

func (v *View) window(changes []store.Change, open bool) {
	var tokens, auth, principals []string
	all := false
	for _, c := range changes {
		switch c.Kind {
		case store.ChangeAll:
			all = true
		case store.ChangeToken:
			tokens = append(tokens, c.Key)
			principals = append(principals, c.Key)
		case store.ChangeUser:
			principals = append(principals, c.Key)
		case store.ChangeAuthToken:
			auth = append(auth, c.Key)
		}
	}
	if all || len(tokens) > 0 {
		v.tokens.window(open, all, tokens, nil)
	}
	if all || len(auth) > 0 || len(principals) > 0 {
		v.authTokens.window(open, all, auth, principals)
	}
}

// credCache is a bounded map of immutable decoded records. Reads are one
// lock-free load; fills and invalidations are serialized by mu, which also
// guards the generation a fill compares. An entry may belong to a group
// (an auth token to its principal), and dropping a group drops its entries.
type credCache[V any] struct {
	m      sync.Map // key → *cached[V]
	mu     sync.Mutex
	gen    atomic.Uint64                  // bumped, under mu, by every window's opening and closing
	n      int                            // entries, under mu
	max    int                            // bound on n
	groups map[string]map[string]struct{} // group → keys, under mu
	// What open windows change, not to be filled (under mu): keys and
	// groups with a count of windows, and whole reloads.
	pendingKeys   map[string]int
	pendingGroups map[string]int
	pendingAll    int
}

// cached is one entry: the record and the group it belongs to ("" for none).
type cached[V any] struct {
	v     *V
	group string
}

func newCredCache[V any](max int) *credCache[V] {
	return &credCache[V]{max: max, groups: map[string]map[string]struct{}{},
		pendingKeys: map[string]int{}, pendingGroups: map[string]int{}}
}

func (c *credCache[V]) get(key string) (*V, bool) {
	if e, ok := c.m.Load(key); ok {
		return e.(*cached[V]).v, true
	}
	return nil, false
}

// generation is read before a fill's store read.
func (c *credCache[V]) generation() uint64 { return c.gen.Load() }

// fill stores v under key unless a window opened or closed since gen was
// read (the store read may then predate the change), or one that is open
// changes key or group.
func (c *credCache[V]) fill(gen uint64, key string, v *V, group string) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen.Load() != gen || c.pendingAll > 0 || c.pendingKeys[key] > 0 || (group != "" && c.pendingGroups[group] > 0) {
		return
	}
	if old, had := c.m.Swap(key, &cached[V]{v: v, group: group}); had {
		c.ungroupLocked(key, old.(*cached[V]).group)
	} else {
		c.n++
	}
	if group != "" {
		keys := c.groups[group]
		if keys == nil {
			keys = map[string]struct{}{}
			c.groups[group] = keys
		}
		keys[key] = struct{}{}
	}
	for c.n > c.max {
		c.m.Range(func(k, _ any) bool {
			if k.(string) != key {
				c.deleteLocked(k.(string))
				return false
			}
			return true
		})
	}
}

// window opens (or closes) a window over keys and groups, or over
// everything: either way it drops their entries (none can have been filled
// while the window was open) and bumps the generation, so that a fill
// whose store read overlapped either end is refused.
func (c *credCache[V]) window(open, all bool, keys, groups []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen.Add(1)
	d := 1
	if !open {
		d = -1
	}
	if all {
		c.pendingAll += d
		c.m.Clear()
		c.n = 0
		clear(c.groups)
	}
	for _, k := range keys {
		c.deleteLocked(k)
		count(c.pendingKeys, k, d)
	}
	for _, g := range groups {
		for k := range c.groups[g] {
			c.deleteLocked(k)
		}
		count(c.pendingGroups, g, d)
	}
}

// count adds d to m[k], forgetting k at zero.
func count(m map[string]int, k string, d int) {
	if n := m[k] + d; n > 0 {
		m[k] = n
	} else {
		delete(m, k)
	}
}

func (c *credCache[V]) deleteLocked(key string) {
	if old, had := c.m.LoadAndDelete(key); had {
		c.n--
		c.ungroupLocked(key, old.(*cached[V]).group)
	}
}

func (c *credCache[V]) ungroupLocked(key, group string) {
	if keys := c.groups[group]; keys != nil {
		delete(keys, key)
		if len(keys) == 0 {
			delete(c.groups, group)
		}
	}
}
