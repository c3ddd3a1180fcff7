package bolt_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/tokenbroker/tokenbroker/store/bolt"
	"github.com/tokenbroker/tokenbroker/store/storetest"
)

// testdata/v1.db.gz is a schema version 1 file written by the version-1
// code (storetest.FillMigrationFixture, before the JSON records became
// protobuf); testdata/v1.dump.txt.gz is what that code read back from it
// (storetest.DumpMigrationFixture).

// v1File copies the version-1 fixture into a fresh file.
func v1File(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "v1.db")
	if err := os.WriteFile(path, storetest.Gunzip(t, "testdata/v1.db.gz"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestOpenMigratesSchemaVersion1 opens a file written by the version-1
// code: every record reads back as the version-1 code read it, the secrets
// still verify, every index still agrees with its records, no JSON value
// is left, and the file is at version 2 (a second open migrates nothing).
func TestOpenMigratesSchemaVersion1(t *testing.T) {
	path := v1File(t)
	if v := readMeta(t, path); v != "1" {
		t.Fatalf("fixture has schema_version %q, want \"1\"", v)
	}
	want := string(storetest.Gunzip(t, "testdata/v1.dump.txt.gz"))
	for open := 1; open <= 2; open++ {
		s, err := bolt.Open(path, bolt.Options{})
		if err != nil {
			t.Fatalf("open %d of a version 1 file: %v", open, err)
		}
		if got := storetest.DumpMigrationFixture(t, s); got != want {
			t.Fatalf("open %d: records differ from what the version 1 code read:\n%s", open, firstDiff(got, want))
		}
		storetest.CheckMigrationFixtureSecrets(t, s)
		if err := bolt.VerifyIndexes(s); err != nil {
			t.Fatalf("open %d: %v", open, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if v := readMeta(t, path); v != "2" {
			t.Fatalf("after open %d: schema_version = %q, want \"2\"", open, v)
		}
	}
	withRawDB(t, path, func(tx *bbolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bbolt.Bucket) error {
			return b.ForEach(func(k, v []byte) error {
				if bytes.HasPrefix(v, []byte("{")) {
					t.Errorf("bucket %s key %q still holds JSON: %.40s", name, k, v)
				}
				return nil
			})
		})
	})
}

// TestFailedMigrationLeavesFileIntact: a migration that fails part way (a
// damaged record in the last bucket it converts, after every other bucket
// is converted) changes not one byte of the file, which stays at version
// 1, exactly as a crash would leave it (the migration is one bbolt
// transaction).
func TestFailedMigrationLeavesFileIntact(t *testing.T) {
	path := v1File(t)
	withRawDB(t, path, func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte("audit"))
		k, _ := b.Cursor().Last()
		return b.Put(k, []byte(`{"time": 12`))
	})
	before := fileHash(t, path)
	_, err := bolt.Open(path, bolt.Options{})
	if err == nil {
		t.Fatal("Open migrated a file holding a damaged record")
	}
	t.Logf("refused: %v", err)
	if fileHash(t, path) != before {
		t.Fatal("a failed migration changed the file")
	}
	if v := readMeta(t, path); v != "1" {
		t.Fatalf("schema_version = %q after a failed migration, want \"1\"", v)
	}
}

// TestRefusesSchemaVersion3: a file from a newer binary is still refused.
func TestRefusesSchemaVersion3(t *testing.T) {
	path := v1File(t)
	withRawDB(t, path, func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte("meta")).Put([]byte("schema_version"), []byte("3"))
	})
	before := fileHash(t, path)
	_, err := bolt.Open(path, bolt.Options{})
	if !errors.Is(err, bolt.ErrUnsupportedSchema) {
		t.Fatalf("Open of a schema 3 file: got %v, want ErrUnsupportedSchema", err)
	}
	if fileHash(t, path) != before {
		t.Fatal("a refused open changed the file")
	}
}

func fileHash(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
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
