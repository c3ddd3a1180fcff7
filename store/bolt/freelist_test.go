package bolt

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/tokenbroker/tokenbroker/store/storetest"
)

// TestCleanCloseSavesTheFreePageList follows the free-page list through
// the states freelist.go describes: saved by Close, kept by an Open that
// writes nothing, dropped by the first commit, saved again by Close, and
// always consistent with the pages the file reaches.
func TestCleanCloseSavesTheFreePageList(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokenbroker.db")
	s := mustOpen(t, path)
	// Free some pages: 200 roles of 2 KB, then half of them deleted.
	for r := 1; r <= 200; r++ {
		role := storetest.NewRole(storetest.RoleID(r))
		role.Description = strings.Repeat("x", 2000)
		if err := s.CreateRole(t.Context(), role); err != nil {
			t.Fatal(err)
		}
	}
	for r := 1; r <= 200; r += 2 {
		if err := s.DeleteRole(t.Context(), storetest.RoleID(r), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	wantSaved(t, path, false) // written with NoFreelistSync: no list in the file
	mustClose(t, s)
	wantSaved(t, path, true)
	free := checkFile(t, path)
	if free == 0 {
		t.Fatal("the deletes freed no page: the test proves nothing")
	}

	s = mustOpen(t, path)
	wantSaved(t, path, true) // opening a current file commits nothing
	if err := s.DeleteRole(t.Context(), storetest.RoleID(2), time.Now()); err != nil {
		t.Fatal(err)
	}
	wantSaved(t, path, false) // a crash from here on rebuilds the list
	mustClose(t, s)
	wantSaved(t, path, true)
	checkFile(t, path)

	s = mustOpen(t, path)
	if _, err := s.GetRole(t.Context(), storetest.RoleID(4)); err != nil {
		t.Fatalf("a role kept across the reopens: %v", err)
	}
	mustClose(t, s)
}

func TestFreelistSavedOnOtherFiles(t *testing.T) {
	dir := t.TempDir()
	if _, ok := freelistSaved(filepath.Join(dir, "absent.db")); ok {
		t.Error("a missing file has a meta page")
	}
	// A file bbolt itself wrote with its list synced on every commit.
	path := filepath.Join(dir, "plain.db")
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error { _, err := tx.CreateBucket([]byte("b")); return err }); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	wantSaved(t, path, true)
}

func mustOpen(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustClose(t *testing.T, s *Store) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func wantSaved(t *testing.T, path string, want bool) {
	t.Helper()
	saved, ok := freelistSaved(path)
	if !ok {
		t.Fatalf("%s: no valid meta page", path)
	}
	if saved != want {
		t.Fatalf("free-page list saved = %v, want %v", saved, want)
	}
}

// checkFile opens the closed file with bbolt as Open does, runs bbolt's
// consistency check (every page either reachable or free, never both) and
// returns the number of free pages.
func checkFile(t *testing.T, path string) int {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{NoFreelistSync: true, FreelistType: bbolt.FreelistMapType})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.View(func(tx *bbolt.Tx) error {
		for err := range tx.Check() {
			t.Errorf("bbolt check: %v", err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return db.Stats().FreePageN
}
