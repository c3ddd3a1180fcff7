package bolt_test

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/bolt"
	"github.com/tokenbroker/tokenbroker/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s := openTemp(t, filepath.Join(t.TempDir(), "tokenbroker.db"))
		// Cleanups run last-in first-out: this one before the Close.
		t.Cleanup(func() {
			if err := bolt.VerifyIndexes(s); err != nil {
				t.Errorf("indexes disagree with records after the case:\n%v", err)
			}
		})
		return s
	})
}

// openTemp opens a store that is closed when the test ends.
func openTemp(t testing.TB, path string) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, store.ErrClosed) {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

func TestNewFileGetsSchemaVersion2(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokenbroker.db")
	s, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if v := readMeta(t, path); v != "2" {
		t.Fatalf("schema_version = %q, want \"2\"", v)
	}
}

func TestRefusesUnknownSchemaVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokenbroker.db")
	s, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	withRawDB(t, path, func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte("meta")).Put([]byte("schema_version"), []byte("99"))
	})

	_, err = bolt.Open(path, bolt.Options{})
	if !errors.Is(err, bolt.ErrUnsupportedSchema) {
		t.Fatalf("Open of a schema 99 file: got %v, want ErrUnsupportedSchema", err)
	}
	if v := readMeta(t, path); v != "99" {
		t.Fatalf("refused open rewrote schema_version to %q", v)
	}
}

func TestRefusesForeignFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "other.db")
	withRawDB(t, path, func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucket([]byte("someone-elses-data"))
		return err
	})
	if _, err := bolt.Open(path, bolt.Options{}); err == nil {
		t.Fatal("Open adopted a bbolt file that has data but no schema version")
	}
}

func TestSecondOpenFailsWithLockError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokenbroker.db")
	openTemp(t, path)
	// flock locks belong to the open file description, so a second open in
	// this process conflicts exactly as another process would.
	_, err := bolt.Open(path, bolt.Options{LockTimeout: 100 * time.Millisecond})
	if !errors.Is(err, bolt.ErrLocked) {
		t.Fatalf("second Open: got %v, want ErrLocked", err)
	}
}

func withRawDB(t *testing.T, path string, fn func(*bbolt.Tx) error) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

func readMeta(t *testing.T, path string) string {
	t.Helper()
	var v string
	withRawDB(t, path, func(tx *bbolt.Tx) error {
		v = string(tx.Bucket([]byte("meta")).Get([]byte("schema_version")))
		return nil
	})
	return v
}
