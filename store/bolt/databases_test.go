package bolt

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	storagev1 "github.com/tokenbroker/tokenbroker/gen/tokenbroker/storage/v1"
	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/storetest"
)

// TestRejectsInvalidDatabaseInput: databases (with their role and token)
// and usage deltas that cannot be stored faithfully, or break this
// backend's rules (the database names its role, the token holds it, usage
// starts at zero), are refused with a plain error and nothing is written.
func TestRejectsInvalidDatabaseInput(t *testing.T) {
	s, _ := openTest(t, Options{})
	ctx := context.Background()
	if err := s.CreateDatabase(ctx, storetest.NewDatabase(1), storetest.NewDatabaseRole(1), storetest.NewDatabaseToken(1)); err != nil {
		t.Fatal(err)
	}
	create := func(edit func(*store.Database, *store.Role, *store.Token)) error {
		db, role, tok := storetest.NewDatabase(2), storetest.NewDatabaseRole(2), storetest.NewDatabaseToken(2)
		edit(&db, &role, &tok)
		return s.CreateDatabase(ctx, db, role, tok)
	}
	record := func(d store.UsageDelta) error {
		return s.RecordDatabaseUsage(ctx, []store.UsageDelta{
			{DatabaseID: storetest.DatabaseID(1), Month: "2030-01", Usage: store.Usage{Reads: 1}}, // valid: not written either
			d,
		})
	}
	delta := func(edit func(*store.UsageDelta)) store.UsageDelta {
		d := store.UsageDelta{DatabaseID: storetest.DatabaseID(1), Month: "2030-01", Usage: store.Usage{Reads: 1}}
		edit(&d)
		return d
	}
	late := time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := map[string]error{
		"empty database ID":  create(func(d *store.Database, _ *store.Role, _ *store.Token) { d.ID = "" }),
		"NUL in database ID": create(func(d *store.Database, _ *store.Role, _ *store.Token) { d.ID = "a\x00b" }),
		"database ID of 257 bytes": create(func(d *store.Database, _ *store.Role, _ *store.Token) {
			d.ID = strings.Repeat("d", 257)
		}),
		"empty role ID": create(func(d *store.Database, r *store.Role, tk *store.Token) {
			d.RoleID, r.ID, tk.Roles = "", "", []string{""}
		}),
		"RoleID not the role's ID": create(func(d *store.Database, _ *store.Role, _ *store.Token) {
			d.RoleID = storetest.DatabaseRoleID(1)
		}),
		"token without the role": create(func(_ *store.Database, _ *store.Role, tk *store.Token) {
			tk.Roles = []string{storetest.DatabaseRoleID(1)}
		}),
		"empty client ID": create(func(_ *store.Database, _ *store.Role, tk *store.Token) { tk.ClientID = "" }),
		"non-zero usage":  create(func(d *store.Database, _ *store.Role, _ *store.Token) { d.Usage.Reads = 1 }),
		"usage LastUsage set": create(func(d *store.Database, _ *store.Role, _ *store.Token) {
			d.Usage.LastUsage = storetest.Base
		}),
		"database time beyond 9999": create(func(d *store.Database, _ *store.Role, _ *store.Token) { d.CreatedAt = late }),
		"role time beyond 9999":     create(func(_ *store.Database, r *store.Role, _ *store.Token) { r.UpdatedAt = late }),
		"token Expiry beyond 2262": create(func(_ *store.Database, _ *store.Role, tk *store.Token) {
			tk.Expiry = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)
		}),
		"delta for an empty ID":    record(delta(func(d *store.UsageDelta) { d.DatabaseID = "" })),
		"delta month 2030-13":      record(delta(func(d *store.UsageDelta) { d.Month = "2030-13" })),
		"delta month 2030-1":       record(delta(func(d *store.UsageDelta) { d.Month = "2030-1" })),
		"delta without month":      record(delta(func(d *store.UsageDelta) { d.Month = "" })),
		"negative reads":           record(delta(func(d *store.UsageDelta) { d.Reads = -1 })),
		"negative writes":          record(delta(func(d *store.UsageDelta) { d.Writes = -1 })),
		"negative errors":          record(delta(func(d *store.UsageDelta) { d.Errors = -1 })),
		"LastUsage beyond 9999":    record(delta(func(d *store.UsageDelta) { d.LastUsage = late })),
		"usage month 2030-13":      getUsageErr(s, storetest.DatabaseID(1), "2030-13"),
		"usage month with a space": getUsageErr(s, storetest.DatabaseID(1), "2030-01 "),
	}
	for name, err := range cases {
		switch {
		case err == nil:
			t.Errorf("%s: accepted", name)
		case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrAlreadyExists):
			t.Errorf("%s: got %v, want a plain error", name, err)
		}
	}
	if err := VerifyIndexes(s); err != nil {
		t.Fatal(err)
	}
	var dbs, usage, roles, tokens int
	_ = s.db.View(func(tx *bbolt.Tx) error {
		dbs = tx.Bucket(bucketDatabases).Stats().KeyN
		usage = tx.Bucket(bucketDatabaseUsage).Stats().KeyN
		roles = tx.Bucket(bucketRoles).Stats().KeyN
		tokens = tx.Bucket(bucketTokens).Stats().KeyN
		return nil
	})
	if dbs != 1 || usage != 0 || roles != 1 || tokens != 1 {
		t.Fatalf("refused input left %d databases (want 1), %d usage entries (want 0), %d roles (want 1), %d tokens (want 1)",
			dbs, usage, roles, tokens)
	}
}

func getUsageErr(s *Store, id, month string) error {
	_, err := s.GetDatabaseUsage(context.Background(), id, month)
	return err
}

// TestUpdateDatabaseRefusesUsageChange documents the choice: a closure that
// changes the usage totals fails the update (nothing is written), rather
// than being silently overridden.
func TestUpdateDatabaseRefusesUsageChange(t *testing.T) {
	s, _ := openTest(t, Options{})
	ctx := context.Background()
	db := storetest.NewDatabase(1)
	if err := s.CreateDatabase(ctx, db, storetest.NewDatabaseRole(1), storetest.NewDatabaseToken(1)); err != nil {
		t.Fatal(err)
	}
	_, err := s.UpdateDatabase(ctx, db.ID, func(d store.Database) (store.Database, error) {
		d.Name, d.Usage.Reads = "renamed", 5
		return d, nil
	})
	if err == nil || errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UpdateDatabase changing the usage: got %v, want a plain error", err)
	}
	got, err := s.GetDatabase(ctx, db.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != db.Name || got.Usage != (store.Usage{}) {
		t.Fatalf("refused update wrote name %q, usage %+v", got.Name, got.Usage)
	}
	// A LastUsage returned in another zone is the same instant: no change.
	if err := s.RecordDatabaseUsage(ctx, []store.UsageDelta{{DatabaseID: db.ID, Month: "2030-01",
		Usage: store.Usage{Reads: 1, LastUsage: storetest.Base}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateDatabase(ctx, db.ID, func(d store.Database) (store.Database, error) {
		d.Usage.LastUsage = d.Usage.LastUsage.In(time.FixedZone("x", 3600))
		return d, nil
	}); err != nil {
		t.Fatalf("UpdateDatabase with the same LastUsage in another zone: %v", err)
	}
}

// TestDatabaseUsageLayout pins the stored layout of database_usage (key
// id 0x00 "2006-01", JSON value) and the saturation of the counters.
func TestDatabaseUsageLayout(t *testing.T) {
	s, _ := openTest(t, Options{})
	ctx := context.Background()
	db := storetest.NewDatabase(1)
	if err := s.CreateDatabase(ctx, db, storetest.NewDatabaseRole(1), storetest.NewDatabaseToken(1)); err != nil {
		t.Fatal(err)
	}
	deltas := []store.UsageDelta{
		{DatabaseID: db.ID, Month: "2030-01", Usage: store.Usage{Reads: math.MaxInt64 - 1, Writes: 2, LastUsage: storetest.Base}},
		{DatabaseID: db.ID, Month: "2030-01", Usage: store.Usage{Reads: 5, Errors: 3}},
	}
	if err := s.RecordDatabaseUsage(ctx, deltas); err != nil {
		t.Fatal(err)
	}
	var raw storagev1.UsageRecord
	_ = s.db.View(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucketDatabaseUsage).Get([]byte(db.ID + "\x002030-01"))
		if v == nil {
			t.Fatal("no database_usage entry under id 0x00 month")
		}
		if err := proto.Unmarshal(v, &raw); err != nil {
			t.Fatal(err)
		}
		return nil
	})
	if raw.Reads != math.MaxInt64 || raw.Writes != 2 || raw.Errors != 3 || raw.LastUsage != storetest.Base.UnixNano() {
		t.Errorf("stored usage = %v", &raw)
	}
	got, err := s.GetDatabaseUsage(ctx, db.ID, "2030-01")
	if err != nil {
		t.Fatal(err)
	}
	if got.Reads != math.MaxInt64 || got.Writes != 2 || got.Errors != 3 {
		t.Fatalf("usage = %+v, want reads saturated at MaxInt64, writes 2, errors 3", got)
	}
	if err := VerifyIndexes(s); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyIndexesChecksDatabaseUsage: totals that disagree with the
// months, and months of a missing database, are reported.
func TestVerifyIndexesChecksDatabaseUsage(t *testing.T) {
	for name, damage := range map[string]func(tx *bbolt.Tx, id string) error{
		"totals off": func(tx *bbolt.Tx, id string) error {
			return tx.Bucket(bucketDatabaseUsage).Put(usageKey(id, "2030-02"), []byte(`{"reads":1}`))
		},
		"orphan month": func(tx *bbolt.Tx, _ string) error {
			return tx.Bucket(bucketDatabaseUsage).Put(usageKey("gone", "2030-01"), []byte(`{}`))
		},
		"bad month key": func(tx *bbolt.Tx, id string) error {
			return tx.Bucket(bucketDatabaseUsage).Put(usageKey(id, "2030-13"), []byte(`{}`))
		},
	} {
		t.Run(name, func(t *testing.T) {
			s, _ := openTest(t, Options{})
			ctx := context.Background()
			db := storetest.NewDatabase(1)
			if err := s.CreateDatabase(ctx, db, storetest.NewDatabaseRole(1), storetest.NewDatabaseToken(1)); err != nil {
				t.Fatal(err)
			}
			if err := s.RecordDatabaseUsage(ctx, []store.UsageDelta{{DatabaseID: db.ID, Month: "2030-01",
				Usage: store.Usage{Reads: 1}}}); err != nil {
				t.Fatal(err)
			}
			if err := VerifyIndexes(s); err != nil {
				t.Fatal(err)
			}
			if err := s.db.Update(func(tx *bbolt.Tx) error { return damage(tx, db.ID) }); err != nil {
				t.Fatal(err)
			}
			if err := VerifyIndexes(s); err == nil {
				t.Fatal("VerifyIndexes missed the damage")
			}
		})
	}
}
