package view

import (
	"context"
	"errors"
	"strings"
	"sync"

	"github.com/tokenbroker/tokenbroker/server/policy"
	"github.com/tokenbroker/tokenbroker/store"
)

// roleCache keeps every role in memory with compiled permission sets, so
// checking a credential costs no role reads or policy compilation. It is
// filled by the initial load and refreshed from the change feed: each
// changed role is read back from the store (which already holds the
// change), never taken from a writer's copy, so a refresh can only install
// the store's state as of its read.
type roleCache struct {
	orgID string
	// loadMu makes each refresh (read from the store, install) atomic, so
	// refreshes install in the order they read: the initial load and a
	// feed refresh running at once cannot leave the older read installed.
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

func newRoleCache(orgID string) roleCache {
	return roleCache{orgID: orgID, byID: map[string]store.Role{}, sets: map[string]cachedSet{}}
}

// reloadRoles replaces the cache with the store's roles.
func (v *View) reloadRoles(ctx context.Context) error {
	c := &v.roles
	c.loadMu.Lock()
	defer c.loadMu.Unlock()
	roles, err := v.Store.ListRoles(ctx)
	if err != nil {
		return err
	}
	byID := make(map[string]store.Role, len(roles))
	for _, r := range roles {
		byID[r.ID] = r
	}
	c.mu.Lock()
	c.byID = byID
	c.gen++
	c.sets = map[string]cachedSet{} // every entry is stale now
	c.mu.Unlock()
	return nil
}

// refreshRoles re-reads the roles a batch of changes names: one read per
// role, so creating a database (and its role) does not re-read every role.
func (v *View) refreshRoles(ctx context.Context, changes []store.Change) error {
	c := &v.roles
	c.loadMu.Lock()
	defer c.loadMu.Unlock()
	type update struct {
		role    store.Role
		present bool
	}
	updates := make(map[string]update, len(changes))
	for _, ch := range changes {
		if _, done := updates[ch.Key]; done {
			continue
		}
		if ch.Deleted {
			updates[ch.Key] = update{}
			continue
		}
		r, err := v.Store.GetRole(ctx, ch.Key)
		switch {
		case errors.Is(err, store.ErrNotFound): // deleted since
			updates[ch.Key] = update{}
		case err != nil:
			return err
		default:
			updates[ch.Key] = update{role: r, present: true}
		}
	}
	c.mu.Lock()
	for id, u := range updates {
		if u.present {
			c.byID[id] = u.role
		} else {
			delete(c.byID, id)
		}
	}
	c.gen++
	c.mu.Unlock()
	return nil
}

// Role returns the cached role with this ID.
func (v *View) Role(id string) (store.Role, bool) {
	v.roles.mu.RLock()
	r, ok := v.roles.byID[id]
	v.roles.mu.RUnlock()
	return r, ok
}

// EachRole calls fn for every cached role, in no particular order, until fn
// returns false. It holds the cache's read lock: fn must be quick and must
// not call the View.
func (v *View) EachRole(fn func(store.Role) bool) {
	v.roles.mu.RLock()
	defer v.roles.mu.RUnlock()
	for _, r := range v.roles.byID {
		if !fn(r) {
			return
		}
	}
}

// Permissions returns the compiled permissions of a list of role IDs (a
// credential's roles). A role that no longer exists grants nothing. This is
// the Check hot path: a read lock and a map lookup while the set is cached
// (no allocation for a single role), a compilation once per role change.
func (v *View) Permissions(ids []string) *policy.Set {
	c := &v.roles
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
