package view_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"

	"github.com/tokenbroker/tokenbroker/server/policy"
	"github.com/tokenbroker/tokenbroker/server/pulsarjwt"
	"github.com/tokenbroker/tokenbroker/server/view"
	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/bolt"
	"github.com/tokenbroker/tokenbroker/store/etcd"
	"github.com/tokenbroker/tokenbroker/store/etcd/etcdtest"
	"github.com/tokenbroker/tokenbroker/store/storetest"
)

// The View over real stores: a bbolt file, and a real etcd shared by two
// handles as two replicas hold it. Whatever handle writes, the View must
// follow: a write through the View itself or through its own store is
// visible to the next read (read-your-writes, no waiting), and one made by
// another replica once CatchUp returns (or the watch brings it).

func TestMain(m *testing.M) {
	code := m.Run()
	etcdtest.StopShared()
	os.Exit(code)
}

var sealKey = func() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return k
}()

// signingKey returns a real RS256 key sealed with sealKey, as the broker
// stores it.
func signingKey(t *testing.T, at time.Time) store.SigningKey {
	t.Helper()
	priv, err := pulsarjwt.GenerateRSAKey()
	if err != nil {
		t.Fatal(err)
	}
	kid, err := pulsarjwt.KeyID(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	der, err := pulsarjwt.PublicDER(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := pulsarjwt.MarshalPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := pulsarjwt.Seal(sealKey, pkcs8, []byte("signing-key:"+kid))
	if err != nil {
		t.Fatal(err)
	}
	return store.SigningKey{Kid: kid, Alg: "RS256", PublicDER: der, SealedPrivate: sealed, CreatedAt: at}
}

func must(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// bootstrap records the organization, role 1 and a token holding it.
func bootstrap(t *testing.T, s store.Store) store.Organization {
	t.Helper()
	org := storetest.NewOrganization()
	must(t, s.CreateRole(t.Context(), storetest.NewRole(storetest.RoleID(1))), "create role")
	must(t, s.Bootstrap(t.Context(), org, storetest.NewToken(storetest.ClientID(1), storetest.RoleID(1))), "bootstrap")
	return org
}

func openView(t *testing.T, s store.Store, org store.Organization) *view.View {
	t.Helper()
	v, err := view.Open(t.Context(), s, view.Config{OrgID: org.ID, SealKey: sealKey,
		WriteAction: func(a string) bool { return a == "db-table-create" }})
	must(t, err, "open view")
	t.Cleanup(v.Stop)
	return v
}

func openBolt(t *testing.T) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(filepath.Join(t.TempDir(), "tokenbroker.db"), bolt.Options{})
	must(t, err, "open bolt")
	t.Cleanup(func() { _ = s.Close() })
	return s
}

var prefixes atomic.Int64

// openEtcdPair returns two handles on one fresh prefix of the shared etcd:
// two replicas.
func openEtcdPair(t *testing.T) (a, b *etcd.Store) {
	t.Helper()
	srv := etcdtest.Shared(t)
	prefix := fmt.Sprintf("/view-test-%d-%d/", os.Getpid(), prefixes.Add(1))
	open := func() *etcd.Store {
		s, err := etcd.Open(t.Context(), etcd.Options{Endpoints: []string{srv.Endpoint}, Prefix: prefix})
		must(t, err, "open etcd")
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	return open(), open()
}

// follow runs the View's contract against writes through writer; settle
// is what a reader must do before it can expect another replica's write
// (nothing when writer is the View's own store).
func follow(t *testing.T, v *view.View, writer store.Store, org store.Organization, settle func()) {
	ctx := t.Context()
	db := policy.DatabaseDRN(org.ID, storetest.DatabaseID(1))
	role := storetest.NewRole(storetest.RoleID(2))
	role.Resources, role.Actions = []string{db}, []string{"db-cql"}
	ids := []string{storetest.RoleID(2)}

	// Roles and their compiled permissions.
	if v.Permissions(ids).Allows("db-cql", db) {
		t.Fatal("an unknown role grants something")
	}
	must(t, writer.CreateRole(ctx, role), "create role")
	settle()
	if _, ok := v.Role(role.ID); !ok || !v.Permissions(ids).Allows("db-cql", db) {
		t.Fatal("created role not in the view")
	}
	_, err := writer.UpdateRole(ctx, role.ID, func(r store.Role) (store.Role, error) {
		r.Actions = []string{"db-table-select"}
		return r, nil
	})
	must(t, err, "update role")
	settle()
	if p := v.Permissions(ids); p.Allows("db-cql", db) || !p.Allows("db-table-select", db) {
		t.Fatal("updated role's permissions not in the view")
	}
	must(t, writer.DeleteRole(ctx, role.ID, time.Now()), "delete role")
	settle()
	if _, ok := v.Role(role.ID); ok || v.Permissions(ids).Allows("db-table-select", db) {
		t.Fatal("deleted role still in the view")
	}

	// The token policy.
	_, err = writer.UpdateOrganization(ctx, func(o store.Organization) (store.Organization, error) {
		o.TokenPolicy.MaxTokenLifetime = 90 * time.Minute
		return o, nil
	})
	must(t, err, "update organization")
	settle()
	if got := v.TokenPolicy().MaxTokenLifetime; got != 90*time.Minute {
		t.Fatalf("token policy: max lifetime %v, want 90m", got)
	}

	// The signing keys: a rotation is in the view, private key opened.
	old := v.Keys().Kid
	next := signingKey(t, time.Now().UTC())
	must(t, writer.UpdateSigningKeys(ctx, func(cur []store.SigningKey) ([]store.SigningKey, error) {
		for i := range cur {
			cur[i].RetiredAt = time.Now().UTC()
		}
		return append(cur, next), nil
	}), "rotate signing keys")
	settle()
	k := v.Keys()
	if k.Kid != next.Kid || k.Key == nil || k.Public[next.Kid] == nil || (old != "" && k.Public[old] == nil) || v.KeysError() != nil {
		t.Fatalf("signing keys after rotation: active %q (want %q), error %v", k.Kid, next.Kid, v.KeysError())
	}

	// A new database is metered, its unflushed usage is in the View's
	// reads, and Flush moves it to the store without counting it twice.
	must(t, writer.CreateDatabase(ctx, storetest.NewDatabase(1), storetest.NewDatabaseRole(1), storetest.NewDatabaseToken(1)), "create database")
	settle()
	now := time.Now()
	v.Meter.Record(db+":keyspace:ks", "db-table-select", true, now)
	v.Meter.Record(db+":keyspace:ks", "db-table-create", true, now)
	v.Meter.Record(db, "db-table-select", false, now)
	wantUsage := func(what string) {
		t.Helper()
		got, err := v.GetDatabase(ctx, storetest.DatabaseID(1))
		must(t, err, "get database")
		if got.Usage.Reads != 1 || got.Usage.Writes != 1 || got.Usage.Errors != 1 {
			t.Fatalf("%s: usage %+v, want 1 read, 1 write, 1 error", what, got.Usage)
		}
		list, err := v.ListDatabases(ctx)
		must(t, err, "list databases")
		if len(list) != 1 || list[0].Usage != got.Usage {
			t.Fatalf("%s: listed %+v, want one database with %+v", what, list, got.Usage)
		}
		month, err := v.GetDatabaseUsage(ctx, storetest.DatabaseID(1), now.UTC().Format("2006-01"))
		must(t, err, "get database usage")
		if month.Reads != 1 || month.Writes != 1 || month.Errors != 1 {
			t.Fatalf("%s: month's usage %+v", what, month)
		}
	}
	wantUsage("before the flush")
	must(t, v.Flush(ctx), "flush")
	wantUsage("after the flush")

	// Last-use trackers: Flush persists; a deletion anywhere drops the entry.
	client := storetest.DatabaseClientID(1)
	v.TokenUse.Touch(client, now)
	must(t, v.Flush(ctx), "flush")
	got, err := v.GetToken(ctx, client)
	must(t, err, "get token")
	if !got.LastUsed.Equal(time.Unix(0, now.UnixNano()).UTC()) {
		t.Fatalf("flushed last use %v, want %v", got.LastUsed, now)
	}
	must(t, writer.DeleteToken(ctx, client), "delete token")
	settle()
	if !v.TokenUse.LastUsed(client).IsZero() {
		t.Fatal("a deleted token's last use is still tracked")
	}
}

func TestBolt(t *testing.T) {
	s := openBolt(t)
	org := bootstrap(t, s)
	v := openView(t, s, org)
	if _, ok := v.Role(storetest.RoleID(1)); !ok {
		t.Fatal("the initial load missed a role")
	}
	t.Run("WritesThroughTheView", func(t *testing.T) { follow(t, v, v, org, func() {}) })
}

func TestBoltStoreHandle(t *testing.T) {
	// Writes through the store itself, not the View, reach it too: the
	// feed is bbolt's commits, whoever writes.
	s := openBolt(t)
	org := bootstrap(t, s)
	follow(t, openView(t, s, org), s, org, func() {})
}

func TestEtcdOwnWrites(t *testing.T) {
	a, _ := openEtcdPair(t)
	org := bootstrap(t, a)
	v := openView(t, a, org)
	follow(t, v, v, org, func() {}) // no CatchUp: read-your-writes
}

func TestEtcdOtherReplica(t *testing.T) {
	a, b := openEtcdPair(t)
	org := bootstrap(t, b)
	must(t, a.Sync(t.Context()), "sync") // the organization, before the view opens
	v := openView(t, a, org)
	follow(t, v, b, org, func() {
		if !v.CatchUp(t.Context()) {
			t.Fatal("CatchUp on a shared store: false")
		}
	})
}

func TestEtcdOtherReplicaWithoutCatchUp(t *testing.T) {
	// The watch alone brings another replica's write.
	a, b := openEtcdPair(t)
	org := bootstrap(t, b)
	must(t, a.Sync(t.Context()), "sync") // the organization, before the view opens
	v := openView(t, a, org)
	role := storetest.NewRole(storetest.RoleID(9))
	must(t, b.CreateRole(t.Context(), role), "create role on the other replica")
	deadline := time.Now().Add(time.Minute) // a safety net, not a timing assertion
	for {
		if _, ok := v.Role(role.ID); ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the other replica's role never reached the view")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCatchUpOnBoltIsFalse(t *testing.T) {
	s := openBolt(t)
	v := openView(t, s, bootstrap(t, s))
	if v.CatchUp(t.Context()) {
		t.Fatal("CatchUp on a store only this process writes: true")
	}
}

// TestPermissionsUnderRoleChurn reads permission sets while roles change
// (run with -race): every read sees either the old or the new role, and
// after the last write returns, the new one.
func TestPermissionsUnderRoleChurn(t *testing.T) {
	s := openBolt(t)
	org := bootstrap(t, s)
	v := openView(t, s, org)
	ids := []string{storetest.RoleID(1)}
	orgDRN := policy.OrgDRN(org.ID)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					_ = v.Permissions(ids).Allows("org-read", orgDRN)
				}
			}
		})
	}
	ctx := context.Background()
	for i := range 50 {
		_, err := s.UpdateRole(ctx, storetest.RoleID(1), func(r store.Role) (store.Role, error) {
			r.Description = fmt.Sprint(i)
			if i%2 == 0 {
				r.Actions = []string{"db-cql"}
			} else {
				r.Actions = []string{"org-read"}
			}
			return r, nil
		})
		must(t, err, "update role")
		if got := v.Permissions(ids).Allows("org-read", orgDRN); got != (i%2 == 1) {
			t.Fatalf("after update %d: org-read allowed %v", i, got)
		}
	}
	close(stop)
	wg.Wait()
}

func TestOpenRefusesUnopenableKeys(t *testing.T) {
	s := openBolt(t)
	org := bootstrap(t, s)
	must(t, s.UpdateSigningKeys(t.Context(), func([]store.SigningKey) ([]store.SigningKey, error) {
		return []store.SigningKey{signingKey(t, time.Now().UTC())}, nil
	}), "store a key")
	other := make([]byte, 32)
	if _, err := view.Open(t.Context(), s, view.Config{OrgID: org.ID, SealKey: other}); err == nil {
		t.Fatal("opened a view whose seal key cannot open the signing key")
	}
}

// BenchmarkPermissions is the View's part of every Check: the compiled set
// of a credential's roles, cached (one read lock, one map lookup, no
// allocation for a single role).
func BenchmarkPermissions(b *testing.B) {
	s, err := bolt.Open(filepath.Join(b.TempDir(), "tokenbroker.db"), bolt.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	org := storetest.NewOrganization()
	ctx := context.Background()
	for _, id := range []string{storetest.RoleID(1), storetest.RoleID(2)} {
		if err := s.CreateRole(ctx, storetest.NewRole(id)); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Bootstrap(ctx, org, storetest.NewToken(storetest.ClientID(1), storetest.RoleID(1))); err != nil {
		b.Fatal(err)
	}
	v, err := view.Open(ctx, s, view.Config{OrgID: org.ID, SealKey: sealKey})
	if err != nil {
		b.Fatal(err)
	}
	defer v.Stop()
	for _, c := range []struct {
		name string
		ids  []string
	}{{"OneRole", []string{storetest.RoleID(1)}}, {"TwoRoles", []string{storetest.RoleID(1), storetest.RoleID(2)}}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if v.Permissions(c.ids) == nil {
						b.Error("nil set")
						return
					}
				}
			})
		})
	}
}

// TestFlushPartsAreIndependent: a flush whose token-use part the store
// refuses still persists the auth-token uses and the database usage, and
// answers an error naming only the part that failed; that part stays
// pending and is written by a later flush once the store accepts it.
//
// The refusal is a real one: the etcd member runs with --max-txn-ops 64
// while the store keeps its default MaxTxnOps of 128 (the misconfiguration
// docs/operations.md warns about), so the token-use flush of 70 tokens,
// one transaction of 70 compares and 70 puts, is refused by etcd, while
// one auth token's use (a compare, 3 operations) and one database month's
// usage fit.
func TestFlushPartsAreIndependent(t *testing.T) {
	member, err := etcdtest.Start(func(c *embed.Config) { c.MaxTxnOps = 64 })
	must(t, err, "start etcd")
	t.Cleanup(member.Stop)
	s, err := etcd.Open(t.Context(), etcd.Options{Endpoints: []string{member.Endpoint}, Prefix: "/flush/"})
	must(t, err, "open etcd")
	t.Cleanup(func() { _ = s.Close() })
	ctx := t.Context()
	org := bootstrap(t, s)
	const n = 70
	var ids []string
	for i := 2; i < 2+n; i++ { // one at a time: each its own small transaction
		ids = append(ids, storetest.ClientID(i))
		must(t, s.CreateToken(ctx, storetest.NewToken(storetest.ClientID(i), storetest.RoleID(1))), "create token")
	}
	must(t, s.CreateDatabase(ctx, storetest.NewDatabase(1), storetest.NewDatabaseRole(1), storetest.NewDatabaseToken(1)), "create database")
	auth := storetest.NewAuthToken(1, store.PrincipalApplicationToken, storetest.ClientID(1))
	must(t, s.CreateAuthToken(ctx, auth), "create auth token")
	v := openView(t, s, org)

	at := storetest.Base.Add(time.Hour) // after the records' stored last use
	for _, id := range ids {
		v.TokenUse.Touch(id, at)
	}
	v.AuthTokenUse.Touch(string(auth.MAC), at)
	v.Meter.Record(policy.DatabaseDRN(org.ID, storetest.DatabaseID(1)), "db-table-select", true, at)

	err = v.Flush(ctx)
	if err == nil || !strings.Contains(err.Error(), "flush token use") ||
		strings.Contains(err.Error(), "flush auth token use") || strings.Contains(err.Error(), "flush database usage") {
		t.Fatalf("Flush = %v, want an error of the token-use part only", err)
	}
	// Read from the store itself: the View would add what it still holds.
	got, err := s.GetAuthToken(ctx, auth.MAC)
	must(t, err, "get auth token")
	if !got.LastUsed.Equal(at) {
		t.Errorf("auth token's stored last use %v, want %v: its flush was held back by the token-use failure", got.LastUsed, at)
	}
	usage, err := s.GetDatabaseUsage(ctx, storetest.DatabaseID(1), at.Format("2006-01"))
	must(t, err, "get database usage")
	if usage.Reads != 1 {
		t.Errorf("stored usage %+v, want 1 read: its flush was held back by the token-use failure", usage)
	}
	tok, err := s.GetToken(ctx, ids[0])
	must(t, err, "get token")
	if !tok.LastUsed.IsZero() {
		t.Fatalf("token's stored last use %v after a refused flush", tok.LastUsed)
	}

	// Still refused, and only that part: the others have nothing left.
	err = v.Flush(ctx)
	if err == nil || strings.Count(err.Error(), "flush ") != 1 || !strings.Contains(err.Error(), "flush token use") {
		t.Fatalf("second Flush = %v, want the token-use error alone", err)
	}
	if usage, err := s.GetDatabaseUsage(ctx, storetest.DatabaseID(1), at.Format("2006-01")); err != nil || usage.Reads != 1 {
		t.Fatalf("stored usage %+v (%v) after a second flush, want 1 read (counted once)", usage, err)
	}
	// With ten tokens deleted (the View forgets their uses), the rest fit
	// in one transaction the member accepts: the pending uses are written.
	for _, id := range ids[n-10:] {
		must(t, s.DeleteToken(ctx, id), "delete token")
	}
	must(t, v.Flush(ctx), "flush after the deletes")
	for _, id := range ids[:n-10] {
		tok, err := s.GetToken(ctx, id)
		must(t, err, "get token")
		if !tok.LastUsed.Equal(at) {
			t.Fatalf("token %s: stored last use %v, want %v", id, tok.LastUsed, at)
		}
	}
}
