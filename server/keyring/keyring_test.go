package keyring

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestLoadCreatesOnceAndReloads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tb.db.key")
	if _, _, err := Load(path, false, nil); !errors.Is(err, ErrNoKeyFile) {
		t.Fatalf("Load without create on a missing file: err = %v, want ErrNoKeyFile", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatal("Load without create wrote a key file")
	}
	k1, created, err := Load(path, true, nil)
	if err != nil || !created {
		t.Fatalf("create: created=%v err=%v", created, err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode = %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	k2, created, err := Load(path, true, nil)
	if err != nil || created {
		t.Fatalf("reload: created=%v err=%v", created, err)
	}
	if !bytes.Equal(k1.Derive(PurposeTokenMAC), k2.Derive(PurposeTokenMAC)) || !k2.Matches(k1.Check()) {
		t.Fatal("reloaded key differs")
	}
}

func TestDerivedKeysAreSeparate(t *testing.T) {
	k, err := New(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(k.Derive("a"), k.Derive("b")) || len(k.Derive("a")) != 32 {
		t.Fatal("purposes must yield distinct 32-byte keys")
	}
	other, _ := New(bytes.Repeat([]byte{8}, 32))
	if other.Matches(k.Check()) {
		t.Fatal("a different master key matched the key check")
	}
}

func TestLoadRejectsBadFiles(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{"not base64": "!!!\n", "short": "AAAA\n"} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, _, err := Load(path, true, nil); err == nil {
			t.Errorf("%s: Load accepted a bad key file", name)
		}
	}
}
