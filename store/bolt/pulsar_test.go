package bolt

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/storetest"
)

// TestRejectsInvalidPulsarInput: tenants, Pulsar tokens and signing keys
// that cannot be stored faithfully (or would break the key layout) are
// refused with a plain error (no sentinel), and nothing is written.
func TestRejectsInvalidPulsarInput(t *testing.T) {
	s, _ := openTest(t, Options{})
	ctx := context.Background()
	tenant := storetest.TenantName(1)
	if err := s.CreateTenant(ctx, storetest.NewTenant(tenant)); err != nil {
		t.Fatal(err)
	}
	named := func(name string) store.Tenant { return storetest.NewTenant(name) }
	tok := func(edit func(*store.PulsarToken)) store.PulsarToken {
		tk := storetest.NewPulsarToken(1, tenant)
		edit(&tk)
		return tk
	}
	keys := func(edit func(*store.SigningKey)) error {
		k := storetest.NewSigningKey(1)
		edit(&k)
		return s.UpdateSigningKeys(ctx, func([]store.SigningKey) ([]store.SigningKey, error) {
			return []store.SigningKey{k}, nil
		})
	}
	cases := map[string]error{
		"empty tenant name":          s.CreateTenant(ctx, named("")),
		"tenant name of 65 bytes":    s.CreateTenant(ctx, named(strings.Repeat("t", 65))),
		"slash in tenant name":       s.CreateTenant(ctx, named("a/b")),
		"space in tenant name":       s.CreateTenant(ctx, named("a b")),
		"NUL in tenant name":         s.CreateTenant(ctx, named("a\x00b")),
		"non-ASCII tenant name":      s.CreateTenant(ctx, named("tenänt")),
		"tenant time beyond 9999":    s.CreateTenant(ctx, store.Tenant{Name: "late", CreatedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}),
		"empty token ID":             s.CreatePulsarToken(ctx, tok(func(tk *store.PulsarToken) { tk.ID = "" }), 0),
		"NUL in token ID":            s.CreatePulsarToken(ctx, tok(func(tk *store.PulsarToken) { tk.ID = "a\x00b" }), 0),
		"token ID of 257 bytes":      s.CreatePulsarToken(ctx, tok(func(tk *store.PulsarToken) { tk.ID = strings.Repeat("i", 257) }), 0),
		"empty token MAC":            s.CreatePulsarToken(ctx, tok(func(tk *store.PulsarToken) { tk.MAC = nil }), 0),
		"token MAC of 65 bytes":      s.CreatePulsarToken(ctx, tok(func(tk *store.PulsarToken) { tk.MAC = make([]byte, 65) }), 0),
		"invalid token tenant":       s.CreatePulsarToken(ctx, tok(func(tk *store.PulsarToken) { tk.Tenant = tenant + "/x" }), 0),
		"zero IssuedAt":              s.CreatePulsarToken(ctx, tok(func(tk *store.PulsarToken) { tk.IssuedAt = time.Time{} }), 0),
		"IssuedAt at the Unix epoch": s.CreatePulsarToken(ctx, tok(func(tk *store.PulsarToken) { tk.IssuedAt = time.Unix(0, 0) }), 0),
		"Expiry beyond 2262":         s.CreatePulsarToken(ctx, tok(func(tk *store.PulsarToken) { tk.Expiry = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC) }), 0),
		"empty kid":                  keys(func(k *store.SigningKey) { k.Kid = "" }),
		"kid of 257 bytes":           keys(func(k *store.SigningKey) { k.Kid = strings.Repeat("k", 257) }),
		"key time beyond 9999":       keys(func(k *store.SigningKey) { k.CreatedAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }),
	}
	for name, err := range cases {
		switch {
		case err == nil:
			t.Errorf("%s: accepted", name)
		case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrAlreadyExists), errors.Is(err, store.ErrLimitReached):
			t.Errorf("%s: got %v, want a plain error", name, err)
		}
	}
	// Everything Pulsar allows is fine.
	for _, name := range []string{strings.Repeat("t", maxTenantLen), "Public_Tenant.v2-x", "0"} {
		if err := s.CreateTenant(ctx, storetest.NewTenant(name)); err != nil {
			t.Errorf("tenant name %q: %v", name, err)
		}
	}
	// A name that is no tenant name lists nothing, even where its bytes
	// would prefix another tenant's index keys.
	if err := s.CreatePulsarToken(ctx, storetest.NewPulsarToken(2, tenant), 0); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"", tenant + "\x00", "\x00"} {
		if list, err := s.ListPulsarTokens(ctx, name); err != nil || len(list) != 0 {
			t.Errorf("ListPulsarTokens(%q) = %d tokens, %v; want none", name, len(list), err)
		}
	}
	if _, err := s.GetTenant(ctx, ""); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetTenant(\"\"): got %v, want ErrNotFound", err)
	}
	if err := VerifyIndexes(s); err != nil {
		t.Fatal(err)
	}
	var tenants, tokens, keySets int
	_ = s.db.View(func(tx *bbolt.Tx) error {
		tenants = tx.Bucket(bucketTenants).Stats().KeyN
		tokens = tx.Bucket(bucketPulsar).Stats().KeyN
		keySets = tx.Bucket(bucketSigningKeys).Stats().KeyN
		return nil
	})
	if tenants != 4 || tokens != 1 || keySets != 0 {
		t.Fatalf("refused input left %d tenants (want 4), %d Pulsar tokens (want 1), %d key sets (want 0)", tenants, tokens, keySets)
	}
}

// TestPulsarGCKeepsTokenRecreatedDuringScan orders the race
// deterministically: an expired token is deleted and re-created without an
// expiry, both queued (not yet committed) when DeleteExpiredPulsarTokens
// scans, so the scan still sees the old expiry entry. The re-check inside
// the GC's own write must keep the new token.
func TestPulsarGCKeepsTokenRecreatedDuringScan(t *testing.T) {
	s, _ := openTest(t, Options{})
	ctx := context.Background()
	tenant := storetest.TenantName(1)
	if err := s.CreateTenant(ctx, storetest.NewTenant(tenant)); err != nil {
		t.Fatal(err)
	}
	old := storetest.NewPulsarToken(1, tenant)
	old.Expiry = storetest.Base
	if err := s.CreatePulsarToken(ctx, old, 0); err != nil {
		t.Fatal(err)
	}
	reborn := storetest.NewPulsarToken(1, tenant) // same ID and MAC, no expiry

	release, blocked := blockCommitter(t, s)
	errs := make(chan error, 2)
	go func() { errs <- s.DeletePulsarToken(ctx, old.ID) }()
	waitQueued(t, s, 1)
	go func() { errs <- s.CreatePulsarToken(ctx, reborn, 1) }()
	waitQueued(t, s, 2)
	type result struct {
		n   int
		err error
	}
	gcRes := make(chan result, 1)
	go func() {
		n, err := s.DeleteExpiredPulsarTokens(ctx, storetest.Base)
		gcRes <- result{n, err}
	}()
	waitQueued(t, s, 3) // the scan is done and found the old entry
	release()
	if err := <-blocked; err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if res := <-gcRes; res.err != nil || res.n != 0 {
		t.Fatalf("DeleteExpiredPulsarTokens = %d, %v; want 0, nil", res.n, res.err)
	}
	got, err := s.GetPulsarTokenByMAC(ctx, reborn.MAC)
	if err != nil {
		t.Fatalf("token re-created during the scan was deleted: %v", err)
	}
	if !got.Expiry.IsZero() {
		t.Fatalf("Expiry = %v, want none", got.Expiry)
	}
	if err := VerifyIndexes(s); err != nil {
		t.Fatal(err)
	}
}

// TestDeleteTenantDropsStrayIndexEntries: pulsar_tokens_by_tenant entries
// without their record (a damaged file) do not block deleting the tenant,
// and are removed with it.
func TestDeleteTenantDropsStrayIndexEntries(t *testing.T) {
	s, _ := openTest(t, Options{})
	ctx := context.Background()
	tenant := storetest.TenantName(1)
	if err := s.CreateTenant(ctx, storetest.NewTenant(tenant)); err != nil {
		t.Fatal(err)
	}
	kept := storetest.NewPulsarToken(1, tenant)
	if err := s.CreatePulsarToken(ctx, kept, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketPulsarByTenant)
		// No record at all, and a record whose own key differs (issued at
		// another time).
		if err := b.Put(pulsarTenantKey(tenant, storetest.Base.UnixNano(), "no-such-token"), be64(0)); err != nil {
			return err
		}
		return b.Put(pulsarTenantKey(tenant, storetest.Base.UnixNano()+1, kept.ID), be64(0))
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteTenant(ctx, tenant); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetPulsarTokenByMAC(ctx, kept.MAC); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("token of the deleted tenant: %v", err)
	}
	if err := VerifyIndexes(s); err != nil {
		t.Fatal(err)
	}
}

// TestOpenAddsPulsarBucketsToOlderFile: a version 1 file written before
// tenants, Pulsar tokens and signing keys existed opens and gains their
// buckets.
func TestOpenAddsPulsarBucketsToOlderFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	old := []string{"meta", "org", "roles", "tokens", "tokens_by_role", "tokens_by_expiry",
		"users", "users_by_name", "users_by_role", "auth_tokens", "auth_tokens_by_principal", "auth_tokens_by_use"}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, name := range old {
			if _, err := tx.CreateBucket([]byte(name)); err != nil {
				return err
			}
		}
		return tx.Bucket([]byte("meta")).Put([]byte("schema_version"), []byte("1"))
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}

	s, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("open a version 1 file without the Pulsar buckets: %v", err)
	}
	defer s.Close()
	ctx := context.Background()
	if keys, err := s.SigningKeys(ctx); err != nil || len(keys) != 0 {
		t.Fatalf("SigningKeys = %v, %v; want none", keys, err)
	}
	tenant := storetest.TenantName(1)
	if err := s.CreateTenant(ctx, storetest.NewTenant(tenant)); err != nil {
		t.Fatal(err)
	}
	if err := s.CreatePulsarToken(ctx, storetest.NewPulsarToken(1, tenant), 1); err != nil {
		t.Fatal(err)
	}
	if err := VerifyIndexes(s); err != nil {
		t.Fatal(err)
	}
}
