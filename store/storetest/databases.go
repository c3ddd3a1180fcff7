package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/store"
)

func wantDatabase(t *testing.T, s store.Store, want store.Database) {
	t.Helper()
	got, err := s.GetDatabase(t.Context(), want.ID)
	must(t, err, "get database "+want.ID)
	if !sameDatabase(got, want) {
		t.Fatalf("database %s:\n got %+v\nwant %+v", want.ID, got, want)
	}
}

func wantNoDatabase(t *testing.T, s store.Store, id string) {
	t.Helper()
	_, err := s.GetDatabase(t.Context(), id)
	wantErr(t, err, store.ErrNotFound, "get database "+id)
}

func wantNoRole(t *testing.T, s store.Store, id string) {
	t.Helper()
	_, err := s.GetRole(t.Context(), id)
	wantErr(t, err, store.ErrNotFound, "get role "+id)
}

// wantUsage checks a database's usage in one month.
func wantUsage(t *testing.T, s store.Store, id, month string, want store.Usage) {
	t.Helper()
	got, err := s.GetDatabaseUsage(t.Context(), id, month)
	must(t, err, fmt.Sprintf("get usage of database %s in %s", id, month))
	if !sameUsage(got, want) {
		t.Fatalf("usage of database %s in %s:\n got %+v\nwant %+v", id, month, got, want)
	}
}

// wantTotals checks a database's usage totals.
func wantTotals(t *testing.T, s store.Store, id string, want store.Usage) {
	t.Helper()
	d, err := s.GetDatabase(t.Context(), id)
	must(t, err, "get database "+id)
	if !sameUsage(d.Usage, want) {
		t.Fatalf("usage totals of database %s:\n got %+v\nwant %+v", id, d.Usage, want)
	}
}

// mustCreateDatabase creates NewDatabase(n) with its role and token and
// returns the database.
func mustCreateDatabase(t *testing.T, s store.Store, n int) store.Database {
	t.Helper()
	db := NewDatabase(n)
	must(t, s.CreateDatabase(t.Context(), db, NewDatabaseRole(n), NewDatabaseToken(n)), "create database "+db.ID)
	return db
}

func testDatabaseCRUD(t *testing.T, s store.Store) {
	ctx := t.Context()
	dbs, err := s.ListDatabases(ctx)
	must(t, err, "list databases")
	if len(dbs) != 0 {
		t.Fatalf("new store lists %d databases", len(dbs))
	}

	// The token may hold other (existing) roles besides the new one.
	mustCreateRoles(t, s, RoleID(1))
	db, role, tok := NewDatabase(1), NewDatabaseRole(1), NewDatabaseToken(1, RoleID(1))
	must(t, s.CreateDatabase(ctx, db, role, tok), "create database")
	wantDatabase(t, s, db)
	wantRole(t, s, role)
	wantToken(t, s, tok)
	if got, _ := s.GetToken(ctx, tok.ClientID); !slices.Contains(got.Roles, role.ID) {
		t.Fatalf("database token holds %v, not the database's role %s", got.Roles, role.ID)
	}
	dbs, err = s.ListDatabases(ctx)
	must(t, err, "list databases")
	if len(dbs) != 1 || !sameDatabase(dbs[0], db) {
		t.Fatalf("ListDatabases = %+v, want just %+v", dbs, db)
	}

	wantNoDatabase(t, s, DatabaseID(9))
	_, err = s.UpdateDatabase(ctx, DatabaseID(9), func(d store.Database) (store.Database, error) { return d, nil })
	wantErr(t, err, store.ErrNotFound, "update unknown database")

	want := db
	want.Status, want.TerminatedAt = "TERMINATED", Base.Add(time.Hour)
	got, err := s.UpdateDatabase(ctx, db.ID, func(d store.Database) (store.Database, error) {
		d.Status, d.TerminatedAt = "TERMINATED", Base.Add(time.Hour)
		return d, nil
	})
	must(t, err, "update database")
	if !sameDatabase(got, want) {
		t.Fatalf("UpdateDatabase returned %+v, want %+v", got, want)
	}
	wantDatabase(t, s, want)

	// The role is held by the database's live token (the existing rule).
	wantErr(t, s.DeleteRole(ctx, role.ID, Base), store.ErrInUse, "delete the role of a database's live token")
	wantRole(t, s, role)
	must(t, s.DeleteToken(ctx, tok.ClientID), "delete the database's token")
	must(t, s.DeleteRole(ctx, role.ID, Base), "delete the database's role once its token is gone")
	wantDatabase(t, s, want)
}

// testCreateDatabaseTaken: whichever of the three IDs is taken, the call
// fails with ErrAlreadyExists and writes none of the three (the one that
// exists stays as it was).
func testCreateDatabaseTaken(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustCreateRoles(t, s, RoleID(1))
	first := mustCreateDatabase(t, s, 1)

	// Database ID taken: a new role and token with it are not written.
	dup := NewDatabase(2)
	dup.ID, dup.Name = first.ID, "duplicate"
	err := s.CreateDatabase(ctx, dup, NewDatabaseRole(2), NewDatabaseToken(2))
	wantErr(t, err, store.ErrAlreadyExists, "create database with a taken database ID")
	wantDatabase(t, s, first)
	wantNoRole(t, s, DatabaseRoleID(2))
	wantNoToken(t, s, DatabaseClientID(2))

	// Role ID taken.
	taken := NewRole(DatabaseRoleID(3))
	must(t, s.CreateRole(ctx, taken), "create role")
	err = s.CreateDatabase(ctx, NewDatabase(3), NewDatabaseRole(3), NewDatabaseToken(3))
	wantErr(t, err, store.ErrAlreadyExists, "create database with a taken role ID")
	wantNoDatabase(t, s, DatabaseID(3))
	wantRole(t, s, taken)
	wantNoToken(t, s, DatabaseClientID(3))

	// Client ID taken.
	takenTok := NewToken(DatabaseClientID(4), RoleID(1))
	must(t, s.CreateToken(ctx, takenTok), "create token")
	err = s.CreateDatabase(ctx, NewDatabase(4), NewDatabaseRole(4), NewDatabaseToken(4))
	wantErr(t, err, store.ErrAlreadyExists, "create database with a taken client ID")
	wantNoDatabase(t, s, DatabaseID(4))
	wantNoRole(t, s, DatabaseRoleID(4))
	wantToken(t, s, takenTok)

	// A token holding an unknown role besides the new one: nothing written.
	err = s.CreateDatabase(ctx, NewDatabase(5), NewDatabaseRole(5), NewDatabaseToken(5, RoleID(9)))
	wantErr(t, err, store.ErrNotFound, "create database whose token holds an unknown role")
	wantNoDatabase(t, s, DatabaseID(5))
	wantNoRole(t, s, DatabaseRoleID(5))
	wantNoToken(t, s, DatabaseClientID(5))

	// Nothing half-written blocks correct retries.
	for _, n := range []int{2, 5} {
		mustCreateDatabase(t, s, n)
		wantDatabase(t, s, NewDatabase(n))
		wantRole(t, s, NewDatabaseRole(n))
		wantToken(t, s, NewDatabaseToken(n))
	}
	dbs, err := s.ListDatabases(ctx)
	must(t, err, "list databases")
	if len(dbs) != 3 {
		t.Fatalf("ListDatabases lists %d databases, want 3", len(dbs))
	}
}

func testListDatabasesOrder(t *testing.T, s store.Store) {
	ctx := t.Context()
	created := map[int]time.Time{
		1: Base.Add(2 * time.Hour),
		2: Base,
		3: Base.Add(time.Hour),
		4: Base, // same time as 2: ID order
		5: Base.Add(-time.Hour),
	}
	dbs := map[int]store.Database{}
	for _, n := range []int{4, 1, 5, 3, 2} {
		db := NewDatabase(n)
		db.CreatedAt = created[n]
		must(t, s.CreateDatabase(ctx, db, NewDatabaseRole(n), NewDatabaseToken(n)), "create database")
		dbs[n] = db
	}
	var want []store.Database
	for _, n := range []int{5, 2, 4, 3, 1} {
		want = append(want, dbs[n])
	}
	got, err := s.ListDatabases(ctx)
	must(t, err, "list databases")
	ids := func(dbs []store.Database) (out []string) {
		for _, d := range dbs {
			out = append(out, d.ID)
		}
		return out
	}
	if !slices.Equal(ids(got), ids(want)) {
		t.Fatalf("ListDatabases IDs:\n got %v\nwant %v", ids(got), ids(want))
	}
	for i := range got {
		if !sameDatabase(got[i], want[i]) {
			t.Fatalf("ListDatabases[%d]:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

func testUpdateDatabaseClosureError(t *testing.T, s store.Store) {
	db := mustCreateDatabase(t, s, 1)
	errRefused := errors.New("refused by closure")
	_, err := s.UpdateDatabase(t.Context(), db.ID, func(d store.Database) (store.Database, error) {
		d.Name = "must not be stored"
		return d, errRefused
	})
	wantErr(t, err, errRefused, "update whose closure fails")
	wantDatabase(t, s, db)
}

// testUpdateDatabaseCannotChangeIDOrUsage: changing the ID fails (as for
// roles). Changing the usage counters may fail or be ignored, but never
// reaches the stored totals.
func testUpdateDatabaseCannotChangeIDOrUsage(t *testing.T, s store.Store) {
	ctx := t.Context()
	db := mustCreateDatabase(t, s, 1)
	used := store.Usage{Reads: 3, Writes: 2, Errors: 1, LastUsage: Base}
	must(t, s.RecordDatabaseUsage(ctx, []store.UsageDelta{{DatabaseID: db.ID, Month: "2030-01", Usage: used}}),
		"record database usage")
	db.Usage = used

	_, err := s.UpdateDatabase(ctx, db.ID, func(d store.Database) (store.Database, error) {
		d.ID, d.Name = DatabaseID(2), "renamed"
		return d, nil
	})
	if err == nil {
		t.Fatal("UpdateDatabase changed the ID without error")
	}
	wantDatabase(t, s, db)
	wantNoDatabase(t, s, DatabaseID(2))

	for _, change := range []func(*store.Usage){
		func(u *store.Usage) { u.Reads = 1000 },
		func(u *store.Usage) { u.Writes = 0 },
		func(u *store.Usage) { u.Errors++ },
		func(u *store.Usage) { u.LastUsage = Base.Add(time.Hour) },
		func(u *store.Usage) { *u = store.Usage{} },
	} {
		got, err := s.UpdateDatabase(ctx, db.ID, func(d store.Database) (store.Database, error) {
			change(&d.Usage)
			return d, nil
		})
		if err == nil && !sameUsage(got.Usage, used) {
			t.Fatalf("UpdateDatabase returned usage %+v, want the stored %+v", got.Usage, used)
		}
		wantTotals(t, s, db.ID, used)
	}
	wantUsage(t, s, db.ID, "2030-01", used)

	// A legitimate update keeps the totals.
	db.Name = "renamed"
	got, err := s.UpdateDatabase(ctx, db.ID, func(d store.Database) (store.Database, error) {
		d.Name = "renamed"
		return d, nil
	})
	must(t, err, "update database")
	if !sameDatabase(got, db) {
		t.Fatalf("UpdateDatabase returned %+v, want %+v", got, db)
	}
	wantDatabase(t, s, db)
}

func testRecordDatabaseUsage(t *testing.T, s store.Store) {
	ctx := t.Context()
	db1, db2 := mustCreateDatabase(t, s, 1).ID, mustCreateDatabase(t, s, 2).ID
	feb := Base.AddDate(0, 1, 0)
	must(t, s.RecordDatabaseUsage(ctx, nil), "record no usage")
	must(t, s.RecordDatabaseUsage(ctx, []store.UsageDelta{
		{DatabaseID: db1, Month: "2030-01", Usage: store.Usage{Reads: 1, Writes: 2, LastUsage: Base}},
		// Same database and month in the same call: both count.
		{DatabaseID: db1, Month: "2030-01", Usage: store.Usage{Reads: 10, Errors: 1, LastUsage: Base.Add(-time.Hour)}},
		{DatabaseID: db1, Month: "2030-02", Usage: store.Usage{Reads: 100, LastUsage: feb}},
		{DatabaseID: db2, Month: "2030-01", Usage: store.Usage{Writes: 5, LastUsage: Base}},
		// Unknown: skipped, not an error, and not created.
		{DatabaseID: DatabaseID(9), Month: "2030-01", Usage: store.Usage{Reads: 7, LastUsage: Base}},
	}), "record database usage")

	wantUsage(t, s, db1, "2030-01", store.Usage{Reads: 11, Writes: 2, Errors: 1, LastUsage: Base})
	wantUsage(t, s, db1, "2030-02", store.Usage{Reads: 100, LastUsage: feb})
	wantTotals(t, s, db1, store.Usage{Reads: 111, Writes: 2, Errors: 1, LastUsage: feb})
	wantUsage(t, s, db2, "2030-01", store.Usage{Writes: 5, LastUsage: Base})
	wantUsage(t, s, db2, "2030-02", store.Usage{})
	wantTotals(t, s, db2, store.Usage{Writes: 5, LastUsage: Base})
	wantNoDatabase(t, s, DatabaseID(9))
	_, err := s.GetDatabaseUsage(ctx, DatabaseID(9), "2030-01")
	wantErr(t, err, store.ErrNotFound, "get usage of an unknown database")

	// A later call adds to what is stored; an earlier LastUsage does not
	// move it back.
	must(t, s.RecordDatabaseUsage(ctx, []store.UsageDelta{
		{DatabaseID: db1, Month: "2030-01", Usage: store.Usage{Reads: 1, LastUsage: Base.Add(-2 * time.Hour)}},
		{DatabaseID: db1, Month: "2029-12", Usage: store.Usage{Writes: 1}}, // no LastUsage: keeps the stored one
	}), "record database usage again")
	wantUsage(t, s, db1, "2030-01", store.Usage{Reads: 12, Writes: 2, Errors: 1, LastUsage: Base})
	wantUsage(t, s, db1, "2029-12", store.Usage{Writes: 1})
	wantTotals(t, s, db1, store.Usage{Reads: 112, Writes: 3, Errors: 1, LastUsage: feb})

	// A month without data is zero usage; a malformed month is an error.
	wantUsage(t, s, db1, "2031-06", store.Usage{})
	for _, month := range []string{"", "2030-13", "2030-00", "2030-1", "30-01", "2030/01", "2030-01-02", " 2030-01"} {
		if _, err := s.GetDatabaseUsage(ctx, db1, month); err == nil {
			t.Errorf("GetDatabaseUsage accepted month %q", month)
		}
	}
	// The unknown database's ID was not created by the skipped delta.
	dbs, err := s.ListDatabases(ctx)
	must(t, err, "list databases")
	if len(dbs) != 2 {
		t.Fatalf("ListDatabases lists %d databases, want 2", len(dbs))
	}
}

// testConcurrentRecordDatabaseUsage: 16 goroutines each record 50 deltas of
// one read to the same database and month, while others rename the
// database through UpdateDatabase. A lost update would lose a read, or an
// update would write back stale totals.
func testConcurrentRecordDatabaseUsage(t *testing.T, s store.Store) {
	ctx := t.Context()
	db := mustCreateDatabase(t, s, 1)
	const goroutines, each, updaters = 16, 50, 4
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for i := range each {
				err := s.RecordDatabaseUsage(ctx, []store.UsageDelta{{
					DatabaseID: db.ID, Month: "2030-01",
					Usage: store.Usage{Reads: 1, LastUsage: Base.Add(time.Duration(i) * time.Second)},
				}})
				if err != nil {
					t.Errorf("record database usage: %v", err)
					return
				}
			}
		})
	}
	for g := range updaters {
		wg.Go(func() {
			for i := range each / 5 {
				_, err := s.UpdateDatabase(ctx, db.ID, func(d store.Database) (store.Database, error) {
					d.Name = fmt.Sprintf("renamed-%d-%d", g, i)
					return d, nil
				})
				if err != nil {
					t.Errorf("update database: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	want := store.Usage{Reads: goroutines * each, LastUsage: Base.Add((each - 1) * time.Second)}
	wantTotals(t, s, db.ID, want)
	wantUsage(t, s, db.ID, "2030-01", want)
}

func testDatabaseTimesUTC(t *testing.T, s store.Store) {
	ctx := t.Context()
	zone := time.FixedZone("UTC-03:30", -(3*3600 + 30*60))
	at := time.Date(2031, time.March, 4, 5, 6, 7, 123456000, zone)

	plain := mustCreateDatabase(t, s, 2) // zero TerminatedAt and LastUsage
	db := NewDatabase(1)
	db.CreatedAt = at
	must(t, s.CreateDatabase(ctx, db, NewDatabaseRole(1), NewDatabaseToken(1)), "create database")
	// 2031-03-04 05:06 at UTC-03:30 is 08:36 UTC, the same month either way.
	must(t, s.RecordDatabaseUsage(ctx, []store.UsageDelta{
		{DatabaseID: db.ID, Month: "2031-03", Usage: store.Usage{Reads: 1, LastUsage: at.Add(time.Minute)}},
	}), "record database usage")
	updated, err := s.UpdateDatabase(ctx, db.ID, func(d store.Database) (store.Database, error) {
		d.Status, d.TerminatedAt = "TERMINATED", at.Add(time.Hour)
		return d, nil
	})
	must(t, err, "update database")

	check := func(what string, got, want time.Time) {
		t.Helper()
		if !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("%s = %v (location %v), want %v in UTC", what, got, got.Location(), want)
		}
	}
	check("UpdateDatabase CreatedAt", updated.CreatedAt, at)
	check("UpdateDatabase TerminatedAt", updated.TerminatedAt, at.Add(time.Hour))
	check("UpdateDatabase usage LastUsage", updated.Usage.LastUsage, at.Add(time.Minute))
	got, err := s.GetDatabase(ctx, db.ID)
	must(t, err, "get database")
	check("database CreatedAt", got.CreatedAt, at)
	check("database TerminatedAt", got.TerminatedAt, at.Add(time.Hour))
	check("database usage LastUsage", got.Usage.LastUsage, at.Add(time.Minute))
	u, err := s.GetDatabaseUsage(ctx, db.ID, "2031-03")
	must(t, err, "get database usage")
	check("monthly LastUsage", u.LastUsage, at.Add(time.Minute))
	dbs, err := s.ListDatabases(ctx)
	must(t, err, "list databases")
	for _, d := range dbs {
		if d.ID == db.ID {
			check("listed CreatedAt", d.CreatedAt, at)
		}
	}

	gotPlain, err := s.GetDatabase(ctx, plain.ID)
	must(t, err, "get database")
	if !gotPlain.TerminatedAt.IsZero() || !gotPlain.Usage.LastUsage.IsZero() {
		t.Errorf("zero times came back as TerminatedAt %v, LastUsage %v", gotPlain.TerminatedAt, gotPlain.Usage.LastUsage)
	}
	u, err = s.GetDatabaseUsage(ctx, plain.ID, "2031-03")
	must(t, err, "get database usage")
	if !u.LastUsage.IsZero() {
		t.Errorf("LastUsage of a month without usage = %v, want zero", u.LastUsage)
	}
}
