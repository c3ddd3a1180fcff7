package etcd_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"go.etcd.io/bbolt"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tokenbroker/tokenbroker/store/etcd"
	"github.com/tokenbroker/tokenbroker/store/internal/records"
	"github.com/tokenbroker/tokenbroker/store/storetest"
)

// The version-1 fixture is the bbolt one (store/bolt/testdata): the two
// backends store the same keys and values, so copying each bucket's
// entries under "<prefix><bucket>/" (and the audit sequence under
// meta/seq/audit) gives the prefix the version-1 code would have written.

// putV1Fixture writes the version-1 fixture under prefix, with the schema
// version set to version.
func putV1Fixture(t *testing.T, cli *clientv3.Client, prefix, version string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "v1.db")
	if err := os.WriteFile(path, storetest.Gunzip(t, "../bolt/testdata/v1.db.gz"), 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var ops []clientv3.Op
	flush := func() {
		if len(ops) == 0 {
			return
		}
		if _, err := cli.Txn(t.Context()).Then(ops...).Commit(); err != nil {
			t.Fatal(err)
		}
		ops = ops[:0]
	}
	err = db.View(func(tx *bbolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bbolt.Bucket) error {
			if string(name) == "audit" {
				ops = append(ops, clientv3.OpPut(prefix+"meta/seq/audit", string(binary.BigEndian.AppendUint64(nil, b.Sequence()))))
			}
			return b.ForEach(func(k, v []byte) error {
				if string(name) == "meta" && string(k) == "schema_version" {
					v = []byte(version)
				}
				if ops = append(ops, clientv3.OpPut(prefix+string(name)+"/"+string(k), string(v))); len(ops) == 100 {
					flush()
				}
				return nil
			})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	flush()
}

// TestOpenMigratesSchemaVersion1: two brokers open a version-1 prefix at
// the same time; both succeed, every record reads back as the version-1
// code read it, the secrets still verify, no JSON value is left, and each
// value was rewritten at most once (its etcd version is 1 or 2).
func TestOpenMigratesSchemaVersion1(t *testing.T) {
	cli := rawClient(t)
	prefix := freshPrefix()
	putV1Fixture(t, cli, prefix, "1")
	want := string(storetest.Gunzip(t, "../bolt/testdata/v1.dump.txt.gz"))

	stores := make([]*etcd.Store, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range stores {
		wg.Go(func() {
			stores[i], errs[i] = etcd.Open(context.Background(), etcd.Options{Endpoints: cli.Endpoints(), Prefix: prefix})
		})
	}
	wg.Wait()
	for i, s := range stores {
		if errs[i] != nil {
			t.Fatalf("broker %d: open a version 1 prefix: %v", i, errs[i])
		}
		t.Cleanup(func() { _ = s.Close() })
	}
	for i, s := range stores {
		if got := storetest.DumpMigrationFixture(t, s); got != want {
			t.Fatalf("broker %d: records differ from what the version 1 code read:\n%s", i, firstDiff(got, want))
		}
		storetest.CheckMigrationFixtureSecrets(t, s)
	}
	resp, err := cli.Get(t.Context(), prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	converted := 0
	for _, kv := range resp.Kvs {
		k := string(kv.Key[len(prefix):])
		switch {
		case k == "meta/schema_version":
			if string(kv.Value) != "2" {
				t.Errorf("schema version %q, want \"2\"", kv.Value)
			}
		case bytes.HasPrefix(kv.Value, []byte("{")):
			t.Errorf("%q still holds JSON: %.40s", k, kv.Value)
		case kv.Version > 2:
			t.Errorf("%q was written %d times: converted more than once", k, kv.Version)
		case kv.Version == 2:
			converted++
		}
	}
	if converted < storetest.MigrationAuditEvents {
		t.Errorf("%d values converted, want at least the %d audit events", converted, storetest.MigrationAuditEvents)
	}
}

// TestOpenResumesInterruptedMigration: a broker that stopped during the
// migration left the version at "1-migrating-to-2" (which a version-1
// binary refuses); the next open finishes it.
func TestOpenResumesInterruptedMigration(t *testing.T) {
	cli := rawClient(t)
	prefix := freshPrefix()
	putV1Fixture(t, cli, prefix, "1-migrating-to-2")
	// Part of it was converted already: the first audit event.
	first, err := cli.Get(t.Context(), prefix+"audit/", clientv3.WithPrefix(), clientv3.WithLimit(1))
	if err != nil || len(first.Kvs) != 1 {
		t.Fatalf("first audit event: %v", err)
	}
	kv := first.Kvs[0]
	e, err := records.DecodeV1AuditEvent(binary.BigEndian.Uint64(kv.Key[len(prefix+"audit/"):]), kv.Value)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := records.EncodeAuditEvent(e)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(t.Context(), string(kv.Key), string(v2)); err != nil {
		t.Fatal(err)
	}
	s := openTemp(t, etcd.Options{Prefix: prefix})
	if got, want := storetest.DumpMigrationFixture(t, s), string(storetest.Gunzip(t, "../bolt/testdata/v1.dump.txt.gz")); got != want {
		t.Fatalf("records differ from what the version 1 code read:\n%s", firstDiff(got, want))
	}
	storetest.CheckMigrationFixtureSecrets(t, s)
}

// TestRefusesSchemaVersion3: a prefix written by a newer binary is refused
// and left as it was.
func TestRefusesSchemaVersion3(t *testing.T) {
	cli := rawClient(t)
	prefix := freshPrefix()
	putV1Fixture(t, cli, prefix, "3")
	before, err := cli.Get(t.Context(), prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	_, err = etcd.Open(context.Background(), etcd.Options{Endpoints: cli.Endpoints(), Prefix: prefix})
	if !errors.Is(err, etcd.ErrUnsupportedSchema) {
		t.Fatalf("Open of a schema 3 prefix = %v, want ErrUnsupportedSchema", err)
	}
	after, err := cli.Get(t.Context(), prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if after.Header.Revision != before.Header.Revision {
		t.Fatal("a refused open wrote to the prefix")
	}
}

// firstDiff shows the first differing line of two dumps.
func firstDiff(got, want string) string {
	g, w := bytes.Split([]byte(got), []byte("\n")), bytes.Split([]byte(want), []byte("\n"))
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl []byte
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if !bytes.Equal(gl, wl) {
			return "got:  " + string(gl) + "\nwant: " + string(wl)
		}
	}
	return ""
}
