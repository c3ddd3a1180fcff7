// Package keyring holds the broker's master key: 32 random bytes in a 0600
// file next to the database, never inside it. Every key the broker uses is
// derived from it with HKDF-SHA256 under a distinct purpose label, so a
// stolen database file alone yields no credential and no key.
package keyring

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

const masterLen = 32

// Purposes of derived keys. Changing a label invalidates every value made
// with it, so they are versioned and never edited.
const (
	PurposeTokenMAC       = "tokenbroker/v1/token-mac"
	PurposeAuthTokenMAC   = "tokenbroker/v1/auth-token-mac"
	PurposePulsarTokenMAC = "tokenbroker/v1/pulsar-token-mac"
	// PurposeSeal encrypts private keys and tenant secrets stored in the database.
	PurposeSeal     = "tokenbroker/v1/seal"
	purposeKeyCheck = "tokenbroker/v1/key-check"
)

// Keyring derives purpose-bound keys from the master key.
type Keyring struct {
	master []byte
}

// ErrNoKeyFile: the key file does not exist and creating one was not allowed.
var ErrNoKeyFile = errors.New("key file not found")

// PathFor returns the key file path used for a database path: "<db>.key".
func PathFor(dbPath string) string { return dbPath + ".key" }

// Load reads the key file at path. When it does not exist and create is true,
// it writes a new random key (mode 0600, atomically) and reports created.
// create must be true only for a database that holds no data yet: a new key
// would make every stored token unverifiable.
func Load(path string, create bool, log *slog.Logger) (k *Keyring, created bool, err error) {
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		if fi, statErr := os.Stat(path); statErr == nil && fi.Mode().Perm()&0o077 != 0 && log != nil {
			log.Warn("key file is readable by group or others; restrict it to mode 0600", "path", path, "mode", fi.Mode().Perm().String())
		}
		master, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data)))
		if err != nil || len(master) != masterLen {
			return nil, false, fmt.Errorf("key file %s: want %d base64-encoded bytes", path, masterLen)
		}
		return &Keyring{master: master}, false, nil
	case errors.Is(err, fs.ErrNotExist) && create:
		master := make([]byte, masterLen)
		if _, err := rand.Read(master); err != nil {
			return nil, false, fmt.Errorf("generate master key: %w", err)
		}
		if err := writeFileAtomic(path, []byte(base64.StdEncoding.EncodeToString(master)+"\n")); err != nil {
			return nil, false, fmt.Errorf("write key file: %w", err)
		}
		return &Keyring{master: master}, true, nil
	case errors.Is(err, fs.ErrNotExist):
		return nil, false, fmt.Errorf("%w: %s (the database holds data that only this key can verify; restore the file from backup)", ErrNoKeyFile, path)
	default:
		return nil, false, fmt.Errorf("read key file: %w", err)
	}
}

// New returns a keyring over the given master key (for tests and tools).
func New(master []byte) (*Keyring, error) {
	if len(master) != masterLen {
		return nil, fmt.Errorf("master key must be %d bytes", masterLen)
	}
	return &Keyring{master: append([]byte(nil), master...)}, nil
}

// Derive returns a 32-byte key bound to purpose.
func (k *Keyring) Derive(purpose string) []byte {
	key, err := hkdf.Key(sha256.New, k.master, nil, purpose, 32)
	if err != nil { // only for invalid lengths, which are constants here
		panic(err)
	}
	return key
}

// Check returns a value that identifies the master key without revealing it;
// stored in the database to detect a key file that belongs to another one.
func (k *Keyring) Check() []byte {
	m := hmac.New(sha256.New, k.Derive(purposeKeyCheck))
	m.Write([]byte("tokenbroker key check"))
	return m.Sum(nil)
}

// Matches reports whether check was made by this keyring.
func (k *Keyring) Matches(check []byte) bool { return hmac.Equal(k.Check(), check) }

// writeFileAtomic writes data to a temp file in the same directory, fsyncs it
// and renames it into place, so a crash never leaves a truncated key.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // make the rename itself durable
		d.Close()
	}
	return nil
}

// WriteFileAtomic is writeFileAtomic for other packages' one-time secrets
// (the bootstrap file): mode 0600, fsynced, renamed into place.
func WriteFileAtomic(path string, data []byte) error { return writeFileAtomic(path, data) }
