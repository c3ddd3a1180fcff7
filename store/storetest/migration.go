package storetest

import (
	"compress/gzip"
	"context"
	"crypto/hmac"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/server/credential"
	"github.com/tokenbroker/tokenbroker/server/keyring"
	"github.com/tokenbroker/tokenbroker/server/pulsarjwt"
	"github.com/tokenbroker/tokenbroker/store"
)

// A schema migration must keep every record as it was. The migration
// fixture is a store holding every kind of record, with real secrets made
// the way the broker makes them: FillMigrationFixture writes it through the
// store API, DumpMigrationFixture reads every record back as text, and
// CheckMigrationFixtureSecrets verifies its secrets. The version-1 fixture
// (store/bolt/testdata/v1.db.gz, with the dump of it made by the version-1
// code next to it) was written by this code at schema version 1; a backend
// test opens it, migrates it, and compares the dump and the secrets.

// MigrationAuditEvents is how many audit events the fixture holds: more
// than one migration chunk of either backend.
const MigrationAuditEvents = 1500

var (
	migrationMaster = []byte("migration fixture master key, 32")
	migrationMonths = []string{"2030-01", "2030-02"}
)

func migrationKeys(t testing.TB) (*keyring.Keyring, *credential.MAC) {
	t.Helper()
	kr, err := keyring.New(migrationMaster)
	if err != nil {
		t.Fatal(err)
	}
	mac, err := credential.NewMAC(kr.Derive("migration fixture token MAC"))
	if err != nil {
		t.Fatal(err)
	}
	return kr, mac
}

// migrationBearer is the bearer token of the fixture's n-th token.
func migrationBearer(n int) string {
	return credential.TokenFor(ClientID(n), fmt.Sprintf("secret-%d", n))
}

func migrationSealKey(kr *keyring.Keyring) []byte { return kr.Derive("migration fixture seal") }

// FillMigrationFixture writes the fixture into an empty store.
func FillMigrationFixture(t testing.TB, s store.Store) {
	t.Helper()
	ctx := context.Background()
	kr, mac := migrationKeys(t)
	sealKey := migrationSealKey(kr)
	seal := func(plain, aad string) []byte {
		b, err := pulsarjwt.Seal(sealKey, []byte(plain), []byte(aad))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	do := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("fill migration fixture: %s: %v", what, err)
		}
	}

	for r := 1; r <= 3; r++ {
		role := NewRole(RoleID(r))
		role.Description = fmt.Sprintf("role %d", r)
		role.Builtin = r == 2
		do("role", s.CreateRole(ctx, role))
	}
	org := NewOrganization()
	org.KeyCheck = kr.Check()
	first := NewToken(ClientID(1), RoleID(1))
	first.SecretMAC = mac.Sum(migrationBearer(1))
	do("bootstrap", s.Bootstrap(ctx, org, first))
	_, err := s.UpdateOrganization(ctx, func(o store.Organization) (store.Organization, error) {
		o.TokenPolicy = store.TokenPolicy{MaxTokenLifetime: 90 * 24 * time.Hour, MaxPulsarTokenLifetime: time.Hour,
			UpdatedAt: Base.Add(time.Minute), UpdatedBy: ClientID(1)}
		return o, nil
	})
	do("token policy", err)

	for n := 2; n <= 4; n++ {
		tok := NewToken(ClientID(n), RoleID(2), RoleID(3))
		tok.SecretMAC = mac.Sum(migrationBearer(n))
		if n == 3 {
			tok.Expiry = Base.Add(365 * 24 * time.Hour)
		}
		do("token", s.CreateToken(ctx, tok))
	}
	do("user", s.CreateUser(ctx, NewUser(UserID(1), Username(1), RoleID(2))))
	do("auth token", s.CreateAuthToken(ctx, NewAuthToken(1, store.PrincipalUser, UserID(1))))
	do("auth token", s.CreateAuthToken(ctx, NewAuthToken(2, store.PrincipalApplicationToken, ClientID(2))))

	tenant := NewTenant(TenantName(1))
	tenant.SealedSecret = seal("hs256 secret 1", "tenant-secret:"+tenant.Name)
	do("tenant", s.CreateTenant(ctx, tenant))
	_, err = s.UpdateTenant(ctx, tenant.Name, func(tn store.Tenant) (store.Tenant, error) {
		tn.PreviousSealedSecret = tn.SealedSecret
		tn.PreviousSecretRetiresAt = Base.Add(24 * time.Hour)
		tn.SealedSecret = seal("hs256 secret 2", "tenant-secret:"+tenant.Name)
		return tn, nil
	})
	do("rotate tenant secret", err)
	do("Pulsar token", s.CreatePulsarToken(ctx, NewPulsarToken(1, tenant.Name), 100))
	do("signing keys", s.UpdateSigningKeys(ctx, func([]store.SigningKey) ([]store.SigningKey, error) {
		retired, active, pending := NewSigningKey(1), NewSigningKey(2), NewSigningKey(3)
		retired.RetiredAt = Base.Add(10 * time.Hour)
		active.ActivatedAt = Base.Add(3 * time.Hour)
		pending.Pending = true
		for _, k := range []*store.SigningKey{&retired, &active, &pending} {
			k.SealedPrivate = seal("private key "+k.Kid, "signing-key:"+k.Kid)
		}
		return []store.SigningKey{retired, active, pending}, nil
	}))
	do("namespace stats", s.PutNamespaceStats(ctx, []store.NamespaceStats{
		NewNamespaceStats(tenant.Name, "default"), NewNamespaceStats(tenant.Name, "ns-2"),
	}))

	db := NewDatabase(1)
	db.DBType = "vector"
	do("database", s.CreateDatabase(ctx, db, NewDatabaseRole(1), NewDatabaseToken(1)))
	for i, month := range migrationMonths {
		do("usage", s.RecordDatabaseUsage(ctx, []store.UsageDelta{{DatabaseID: db.ID, Month: month,
			Usage: store.Usage{Reads: int64(10 + i), Writes: int64(20 + i), Errors: int64(i), LastUsage: Base.Add(time.Duration(i+1) * time.Hour)}}}))
	}
	_, err = s.UpdateDatabase(ctx, db.ID, func(d store.Database) (store.Database, error) {
		d.Status = "TERMINATED"
		d.TerminatedAt = Base.Add(48 * time.Hour)
		return d, nil
	})
	do("terminate database", err)

	events := make([]store.AuditEvent, 0, 100)
	for i := range MigrationAuditEvents {
		e := NewAuditEvent("TokenService.CreateToken", "token", ClientID(i))
		e.Time = Base.Add(time.Duration(i) * time.Millisecond)
		e.RequestID = fmt.Sprintf("req-%d", i)
		e.Detail = fmt.Sprintf("event %d", i)
		if events = append(events, e); len(events) == cap(events) {
			do("audit", s.AppendAuditEvents(ctx, events))
			events = events[:0]
		}
	}
	if len(events) > 0 {
		do("audit", s.AppendAuditEvents(ctx, events))
	}
}

// DumpMigrationFixture reads every record of the fixture back through the
// store API, as text: two stores hold the same records exactly when their
// dumps are equal.
func DumpMigrationFixture(t testing.TB, s store.Store) string {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	line := func(what string, v any, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("dump %s: %v", what, err)
		}
		fmt.Fprintf(&b, "%s: %+v\n", what, v)
	}
	org, err := s.GetOrganization(ctx)
	line("organization", org, err)
	roles, err := s.ListRoles(ctx)
	line("roles", roles, err)
	for after := ""; ; {
		page, next, err := s.ListTokens(ctx, after, 100)
		line("tokens", page, err)
		if next == "" {
			break
		}
		after = next
	}
	users, err := s.ListUsers(ctx)
	line("users", users, err)
	for n := 1; n <= 2; n++ {
		at, err := s.GetAuthToken(ctx, AuthMAC(n))
		line("auth token", at, err)
	}
	tenants, err := s.ListTenants(ctx)
	line("tenants", tenants, err)
	for _, tn := range tenants {
		pt, err := s.ListPulsarTokens(ctx, tn.Name)
		line("Pulsar tokens of "+tn.Name, pt, err)
		ns, err := s.ListNamespaceStats(ctx, tn.Name)
		line("namespace stats of "+tn.Name, ns, err)
	}
	keys, err := s.SigningKeys(ctx)
	line("signing keys", keys, err)
	dbs, err := s.ListDatabases(ctx)
	line("databases", dbs, err)
	for _, db := range dbs {
		for _, m := range migrationMonths {
			u, err := s.GetDatabaseUsage(ctx, db.ID, m)
			line("usage of "+db.ID+" in "+m, u, err)
		}
	}
	var seq uint64
	for {
		page, err := s.ListAuditEvents(ctx, store.AuditQuery{AfterSeq: seq, Limit: 500})
		if len(page) == 0 || err != nil {
			line("audit end", seq, err)
			break
		}
		line("audit", page, err)
		seq = page[len(page)-1].Seq
	}
	return b.String()
}

// CheckMigrationFixtureSecrets verifies the fixture's secrets: the key
// check matches the master key, every token's MAC verifies its bearer
// token (constant-time), and every sealed secret opens.
func CheckMigrationFixtureSecrets(t testing.TB, s store.Store) {
	t.Helper()
	ctx := context.Background()
	kr, mac := migrationKeys(t)
	sealKey := migrationSealKey(kr)
	org, err := s.GetOrganization(ctx)
	if err != nil || !kr.Matches(org.KeyCheck) {
		t.Fatalf("key check does not match the master key (err %v)", err)
	}
	for n := 1; n <= 4; n++ {
		tok, err := s.GetToken(ctx, ClientID(n))
		if err != nil || !hmac.Equal(tok.SecretMAC, mac.Sum(migrationBearer(n))) {
			t.Errorf("token %d: MAC does not verify its bearer token (err %v)", n, err)
		}
	}
	open := func(what string, sealed []byte, aad, want string) {
		t.Helper()
		got, err := pulsarjwt.Open(sealKey, sealed, []byte(aad))
		if err != nil || string(got) != want {
			t.Errorf("%s does not open: %v", what, err)
		}
	}
	tn, err := s.GetTenant(ctx, TenantName(1))
	if err != nil {
		t.Fatal(err)
	}
	open("tenant secret", tn.SealedSecret, "tenant-secret:"+tn.Name, "hs256 secret 2")
	open("previous tenant secret", tn.PreviousSealedSecret, "tenant-secret:"+tn.Name, "hs256 secret 1")
	keys, err := s.SigningKeys(ctx)
	if err != nil || len(keys) != 3 {
		t.Fatalf("signing keys: %d, %v", len(keys), err)
	}
	for _, k := range keys {
		open("signing key "+k.Kid, k.SealedPrivate, "signing-key:"+k.Kid, "private key "+k.Kid)
	}
}

// Gunzip returns the decompressed content of the gzip file at path (the
// committed migration fixtures).
func Gunzip(t testing.TB, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
