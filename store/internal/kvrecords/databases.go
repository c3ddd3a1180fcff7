package kvrecords

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/internal/kv"
)

// prepareDatabase validates and encodes the three records of CreateDatabase
// outside the write transaction. Besides each record's own rules, the
// database must name the role (RoleID) and the token must hold it: that is
// what makes them the database's role and token. The usage totals must be
// zero: only RecordDatabaseUsage writes them, and the totals are the sums
// of the monthly counters, which a new database does not have.
func prepareDatabase(db store.Database, role store.Role, token store.Token) (dbVal, roleVal, tokVal []byte, err error) {
	if err := checkID("database", db.ID); err != nil {
		return nil, nil, nil, err
	}
	if err := checkID("role", role.ID); err != nil {
		return nil, nil, nil, err
	}
	switch {
	case db.RoleID != role.ID:
		return nil, nil, nil, fmt.Errorf("the database's role ID %q is not the ID of its role %q", db.RoleID, role.ID)
	case !slices.Contains(token.Roles, role.ID):
		return nil, nil, nil, fmt.Errorf("token %q does not hold the database's role %q", token.ClientID, role.ID)
	case !usageIsZero(db.Usage):
		return nil, nil, nil, errors.New("a new database must have zero usage (only RecordDatabaseUsage writes it)")
	}
	if dbVal, err = encodeDatabase(db); err != nil {
		return nil, nil, nil, err
	}
	if roleVal, err = encodeRole(role); err != nil {
		return nil, nil, nil, fmt.Errorf("role %q: %w", role.ID, err)
	}
	if tokVal, err = prepareToken(token); err != nil {
		return nil, nil, nil, fmt.Errorf("token %q: %w", token.ClientID, err)
	}
	return dbVal, roleVal, tokVal, nil
}

func usageIsZero(u store.Usage) bool {
	return u.Reads == 0 && u.Writes == 0 && u.Errors == 0 && u.LastUsage.IsZero()
}

// CreateDatabase implements store.Store. The role and the token are written
// by the same functions as CreateRole and CreateToken (createRoleTx,
// createTokenTx), with their index entries, after the database ID is
// checked. The role is written before the token, so the token may (and
// must) hold it. Any failure rolls the whole transaction back: nothing of
// the three is written.
func (s *Records) CreateDatabase(ctx context.Context, db store.Database, role store.Role, token store.Token) error {
	dbVal, roleVal, tokVal, err := prepareDatabase(db, role, token)
	if err != nil {
		return fmt.Errorf("create database %q: %w", db.ID, err)
	}
	key := []byte(db.ID)
	err = s.update(ctx, func(tx kv.Tx) error {
		b := tx.Bucket(bucketDatabases)
		if b.Get(key) != nil {
			return fmt.Errorf("database ID: %w", store.ErrAlreadyExists)
		}
		if err := createRoleTx(tx, role.ID, roleVal); err != nil {
			return fmt.Errorf("role %q: %w", role.ID, err)
		}
		if err := createTokenTx(tx, token, tokVal); err != nil {
			return fmt.Errorf("token %q: %w", token.ClientID, err)
		}
		return b.Put(key, dbVal)
	})
	if err != nil {
		return fmt.Errorf("create database %q: %w", db.ID, err)
	}
	return nil
}

// GetDatabase implements store.Store.
func (s *Records) GetDatabase(ctx context.Context, id string) (store.Database, error) {
	return getOne(s, bucketDatabases, id, "database", decodeDatabase)
}

// ListDatabases implements store.Store. Databases are few (tens), so one
// read transaction over the whole bucket stays short, and sorting by
// CreatedAt in memory needs no index.
func (s *Records) ListDatabases(ctx context.Context) ([]store.Database, error) {
	dbs, err := listAll(s, bucketDatabases, "databases", decodeDatabase)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(dbs, func(a, b store.Database) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return dbs, nil
}

// UpdateDatabase implements store.Store. As for UpdateRole, update runs on
// the committer goroutine inside the write transaction. It receives the
// stored record, usage totals included; if the record it returns has
// another ID or other usage totals, UpdateDatabase fails and writes nothing
// (rather than silently keeping the stored values), so that a caller who
// believes it can set them learns otherwise.
func (s *Records) UpdateDatabase(ctx context.Context, id string, update func(store.Database) (store.Database, error)) (store.Database, error) {
	return updateOne(ctx, s, bucketDatabases, id, "database", decodeDatabaseRecord, func(_ kv.Tx, cur databaseRecord) ([]byte, error) {
		next, err := update(cur.database())
		if err != nil {
			return nil, err
		}
		switch {
		case next.ID != id:
			return nil, fmt.Errorf("update must not change the ID (got %q)", next.ID)
		case !sameUsage(toUsageRecord(next.Usage), cur.Usage):
			return nil, errors.New("update must not change the usage counters (only RecordDatabaseUsage writes them)")
		}
		rec := toDatabaseRecord(next)
		rec.Usage = cur.Usage
		return marshal(rec)
	}, decodeDatabase)
}

func sameUsage(a, b usageRecord) bool {
	return a.Reads == b.Reads && a.Writes == b.Writes && a.Errors == b.Errors && a.LastUsage.Equal(b.LastUsage)
}

// plus returns r with d added: counters saturate at MaxInt64 rather than
// wrap (a wrapped total would be negative, and refusing the addition would
// wedge every later batch of the same database), and LastUsage is the
// later of the two.
func (r usageRecord) plus(d usageRecord) usageRecord {
	r.Reads = addSat(r.Reads, d.Reads)
	r.Writes = addSat(r.Writes, d.Writes)
	r.Errors = addSat(r.Errors, d.Errors)
	if d.LastUsage.After(r.LastUsage) {
		r.LastUsage = d.LastUsage
	}
	return r
}

// addSat adds two non-negative counters, saturating at MaxInt64.
func addSat(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// monthUsage is one database's usage in one month, summed over a
// RecordDatabaseUsage call.
type monthUsage struct {
	id, month string
	usage     usageRecord
}

// sumUsageDeltas validates every delta and sums them up per database and
// month, so that several deltas of one database (and month) in one call
// all count, and the write transaction does one read and one write per
// key. One invalid delta fails the whole call: it is a caller's bug, not a
// database deleted meanwhile. The sums come in (database ID, month) order,
// so that the transaction's puts go to ascending keys.
func sumUsageDeltas(deltas []store.UsageDelta) ([]monthUsage, error) {
	type key struct{ id, month string }
	sums := map[key]usageRecord{}
	for i, d := range deltas {
		if err := checkID("database", d.DatabaseID); err != nil {
			return nil, fmt.Errorf("delta %d: %w", i, err)
		}
		if err := checkMonth(d.Month); err != nil {
			return nil, fmt.Errorf("delta %d (database %q): %w", i, d.DatabaseID, err)
		}
		if d.Reads < 0 || d.Writes < 0 || d.Errors < 0 {
			return nil, fmt.Errorf("delta %d (database %q): negative counter", i, d.DatabaseID)
		}
		u := toUsageRecord(d.Usage)
		if _, err := encodeUsage(u); err != nil { // a LastUsage that cannot be stored
			return nil, fmt.Errorf("delta %d (database %q): %w", i, d.DatabaseID, err)
		}
		if usageIsZero(d.Usage) {
			continue // adds nothing
		}
		k := key{d.DatabaseID, d.Month}
		sums[k] = sums[k].plus(u)
	}
	out := make([]monthUsage, 0, len(sums))
	for k, u := range sums {
		out = append(out, monthUsage{id: k.id, month: k.month, usage: u})
	}
	slices.SortFunc(out, func(a, b monthUsage) int {
		return cmp.Or(cmp.Compare(a.id, b.id), cmp.Compare(a.month, b.month))
	})
	return out, nil
}

// RecordDatabaseUsage implements store.Store. The totals in the database
// record and the monthly counters in database_usage are added to in the
// same transaction, so the totals stay the sums of the months.
//
// A call larger than one transaction of a bounded backend (chunk.go; each
// database month is a read and a write of its counters and of the
// database record) is written in several, in (database, month) order, each
// adding a part of the months to their database's totals too: after every
// transaction the totals are still the sums of the months. An error part
// way leaves the earlier months added; the error says how many. A caller
// that sends the whole call again (the usage meter keeps what a failed
// flush did not persist, and sends it with the next one) then counts those
// months twice. That needs a backend failure between two transactions of
// one call; a commit whose outcome is unknown does the same to any call.
func (s *Records) RecordDatabaseUsage(ctx context.Context, deltas []store.UsageDelta) error {
	sums, err := sumUsageDeltas(deltas)
	if err != nil {
		return fmt.Errorf("record database usage: %w", err)
	}
	if len(sums) == 0 {
		return nil
	}
	written, err := s.inChunks(ctx, len(sums), s.perTxn(2), func(ctx context.Context, lo, hi int) error {
		return s.update(ctx, func(tx kv.Tx) error { return addUsageTx(tx, sums[lo:hi]) })
	})
	if err != nil {
		return chunksErr("record database usage", len(sums), "database months", written, err)
	}
	return nil
}

// addUsageTx adds sums (in database order) to their months and to their
// databases' totals; months of unknown databases are skipped.
func addUsageTx(tx kv.Tx, sums []monthUsage) error {
	dbs := tx.Bucket(bucketDatabases)
	usage := tx.Bucket(bucketDatabaseUsage)
	for lo := 0; lo < len(sums); {
		id := sums[lo].id
		hi := lo + 1
		for hi < len(sums) && sums[hi].id == id {
			hi++
		}
		months := sums[lo:hi]
		lo = hi
		key := []byte(id)
		v := dbs.Get(key)
		if v == nil {
			continue // unknown: never created, or the caller's mistake
		}
		rec, err := decodeDatabaseRecord(v)
		if err != nil {
			return fmt.Errorf("database %q: %w", id, err)
		}
		for _, m := range months {
			rec.Usage = rec.Usage.plus(m.usage)
		}
		val, err := marshal(rec)
		if err != nil {
			return fmt.Errorf("database %q: %w", id, err)
		}
		if err := dbs.Put(key, val); err != nil {
			return err
		}
		for _, m := range months {
			mk := usageKey(id, m.month)
			cur, err := decodeUsage(usage.Get(mk))
			if err != nil {
				return fmt.Errorf("database %q, month %s: %w", id, m.month, err)
			}
			mv, err := encodeUsage(cur.plus(m.usage))
			if err != nil {
				return fmt.Errorf("database %q, month %s: %w", id, m.month, err)
			}
			if err := usage.Put(mk, mv); err != nil {
				return err
			}
		}
	}
	return nil
}

// GetDatabaseUsage implements store.Store. The database and its month are
// read in one transaction, so a known database never reads as unknown.
func (s *Records) GetDatabaseUsage(ctx context.Context, id, month string) (store.Usage, error) {
	if err := checkMonth(month); err != nil {
		return store.Usage{}, fmt.Errorf("get usage of database %q: %w", id, err)
	}
	var u usageRecord
	err := s.view(func(tx kv.Tx) error {
		if tx.Bucket(bucketDatabases).Get([]byte(id)) == nil {
			return store.ErrNotFound
		}
		var err error
		u, err = decodeUsage(tx.Bucket(bucketDatabaseUsage).Get(usageKey(id, month)))
		return err
	})
	if err != nil {
		return store.Usage{}, fmt.Errorf("get usage of database %q in %s: %w", id, month, err)
	}
	return u.usage(), nil
}
