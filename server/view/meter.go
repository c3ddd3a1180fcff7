package view

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenbroker/tokenbroker/store"
)

// Meter counts Checks on database resources in memory: one atomic add per
// Check, no disk write. View.Flush persists the counts every flush
// interval; a crash loses at most that much usage (never a database).
// Only registered databases are metered: the set of them follows the
// change feed, so a database created on another replica is metered here
// from the moment the feed reports it.
type Meter struct {
	dbPrefix string // "drn:astra:org:<org>:db:", built once
	isWrite  func(action string) bool
	known    sync.Map // database ID → struct{}
	pending  sync.Map // meterKey → *meterCounts
	// mu makes a flush atomic for readers: a flush holds it while it both
	// persists counts and subtracts them from pending, and a reader (the
	// View's database reads) holds it shared while it reads the store and
	// adds pending, so no read sees a count in both places (or in
	// neither). Record never takes it.
	mu sync.RWMutex
}

type meterKey struct {
	db    string
	month string // "2006-01"
}

type meterCounts struct {
	reads, writes, errors atomic.Int64
	last                  atomic.Int64 // unix nanos
}

func newMeter(dbPrefix string, isWrite func(string) bool) *Meter {
	if isWrite == nil {
		isWrite = func(string) bool { return false }
	}
	return &Meter{dbPrefix: dbPrefix, isWrite: isWrite}
}

func (m *Meter) setKnown(id string, known bool) {
	if known {
		m.known.Store(id, struct{}{})
	} else {
		m.known.Delete(id)
	}
}

// reloadDatabases registers every stored database.
func (v *View) reloadDatabases(ctx context.Context) error {
	dbs, err := v.Store.ListDatabases(ctx)
	if err != nil {
		return err
	}
	for _, db := range dbs {
		v.Meter.setKnown(db.ID, true)
	}
	return nil
}

// Record counts one Check of action on resource, if it names a registered
// database: an allowed one as a write (Config.WriteAction) or a read, a
// refused one as an error. Checks on anything else cost a prefix compare.
func (m *Meter) Record(resource, action string, allowed bool, now time.Time) {
	id, ok := databaseOf(m.dbPrefix, resource)
	if !ok {
		return
	}
	if _, ok := m.known.Load(id); !ok {
		return
	}
	k := meterKey{db: id, month: now.UTC().Format("2006-01")}
	v, ok := m.pending.Load(k)
	if !ok {
		v, _ = m.pending.LoadOrStore(k, new(meterCounts))
	}
	c := v.(*meterCounts)
	switch {
	case !allowed:
		c.errors.Add(1)
	case m.isWrite(action):
		c.writes.Add(1)
	default:
		c.reads.Add(1)
	}
	if allowed {
		n := now.UnixNano()
		for {
			old := c.last.Load()
			if n <= old || c.last.CompareAndSwap(old, n) {
				break
			}
		}
	}
}

// databaseOf extracts the database ID from a DRN under prefix
// (drn:astra:org:<org>:db:<id>[:...]); a wildcard is not a database.
func databaseOf(prefix, resource string) (string, bool) {
	if !strings.HasPrefix(resource, prefix) {
		return "", false
	}
	id, _, _ := strings.Cut(resource[len(prefix):], ":")
	if id == "" || id == "*" {
		return "", false
	}
	return id, true
}

// addPending adds not-yet-persisted counts of database id (for month, or
// all months when month is "") to u. Callers hold mu shared.
func (m *Meter) addPending(id, month string, u *store.Usage) {
	m.pending.Range(func(k, v any) bool {
		key := k.(meterKey)
		if key.db != id || (month != "" && key.month != month) {
			return true
		}
		add(u, v.(*meterCounts))
		return true
	})
}

func add(u *store.Usage, c *meterCounts) {
	u.Reads += c.reads.Load()
	u.Writes += c.writes.Load()
	u.Errors += c.errors.Load()
	if n := c.last.Load(); n != 0 && time.Unix(0, n).After(u.LastUsage) {
		u.LastUsage = time.Unix(0, n).UTC()
	}
}

// flush persists pending counts with record and subtracts what was
// persisted (counts added meanwhile stay pending for the next flush).
func (m *Meter) flush(ctx context.Context, record func(context.Context, []store.UsageDelta) error) error {
	// Exclusive: two concurrent flushes would both persist the same counts.
	m.mu.Lock()
	defer m.mu.Unlock()
	var deltas []store.UsageDelta
	var taken []*meterCounts
	m.pending.Range(func(k, v any) bool {
		key, c := k.(meterKey), v.(*meterCounts)
		d := store.UsageDelta{DatabaseID: key.db, Month: key.month, Usage: store.Usage{
			Reads: c.reads.Load(), Writes: c.writes.Load(), Errors: c.errors.Load(),
		}}
		if n := c.last.Load(); n != 0 {
			d.LastUsage = time.Unix(0, n).UTC()
		}
		if d.Reads != 0 || d.Writes != 0 || d.Errors != 0 {
			deltas = append(deltas, d)
			taken = append(taken, c)
		}
		return true
	})
	if len(deltas) == 0 {
		return nil
	}
	if err := record(ctx, deltas); err != nil {
		return err
	}
	for i, c := range taken {
		c.reads.Add(-deltas[i].Reads)
		c.writes.Add(-deltas[i].Writes)
		c.errors.Add(-deltas[i].Errors)
	}
	return nil
}

// The View's database reads include the usage counted but not yet
// flushed, so the counters a caller reads match the Checks made so far.
// (These reads are decorated here rather than by the domain because the
// merge must hold Meter.mu across the store read.) Store methods added
// later that return database usage must be decorated the same way.

// GetDatabase is store.Store's, with unflushed usage in the totals.
func (v *View) GetDatabase(ctx context.Context, id string) (store.Database, error) {
	v.Meter.mu.RLock()
	defer v.Meter.mu.RUnlock()
	db, err := v.Store.GetDatabase(ctx, id)
	if err == nil {
		v.Meter.addPending(id, "", &db.Usage)
	}
	return db, err
}

// ListDatabases is store.Store's, with unflushed usage in the totals (one
// pass over the pending counts for the whole list).
func (v *View) ListDatabases(ctx context.Context) ([]store.Database, error) {
	v.Meter.mu.RLock()
	defer v.Meter.mu.RUnlock()
	dbs, err := v.Store.ListDatabases(ctx)
	if err != nil {
		return nil, err
	}
	v.Meter.addPendingAll(dbs)
	return dbs, nil
}

// ListDatabasesPage is store.Store's, with unflushed usage in the totals of
// the page (read and merged under one hold of the meter's lock, so a flush
// cannot count a use twice or not at all).
func (v *View) ListDatabasesPage(ctx context.Context, after string, limit int) ([]store.Database, string, error) {
	v.Meter.mu.RLock()
	defer v.Meter.mu.RUnlock()
	dbs, next, err := v.Store.ListDatabasesPage(ctx, after, limit)
	if err != nil {
		return nil, "", err
	}
	v.Meter.addPendingAll(dbs)
	return dbs, next, nil
}

// addPendingAll adds every database's not-yet-persisted counts to its
// totals in one pass over the pending counts. Callers hold mu shared.
func (m *Meter) addPendingAll(dbs []store.Database) {
	byDB := map[string][]*meterCounts{}
	m.pending.Range(func(k, c any) bool {
		id := k.(meterKey).db
		byDB[id] = append(byDB[id], c.(*meterCounts))
		return true
	})
	if len(byDB) == 0 {
		return
	}
	for i := range dbs {
		for _, c := range byDB[dbs[i].ID] {
			add(&dbs[i].Usage, c)
		}
	}
}

// GetDatabaseUsage is store.Store's, with month's unflushed usage added.
func (v *View) GetDatabaseUsage(ctx context.Context, id, month string) (store.Usage, error) {
	v.Meter.mu.RLock()
	defer v.Meter.mu.RUnlock()
	u, err := v.Store.GetDatabaseUsage(ctx, id, month)
	if err == nil {
		v.Meter.addPending(id, month, &u)
	}
	return u, err
}
