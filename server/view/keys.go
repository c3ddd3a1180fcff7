package view

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/go-jose/go-jose/v4"

	"github.com/tokenbroker/tokenbroker/server/pulsarjwt"
	"github.com/tokenbroker/tokenbroker/store"
)

// SigningKeys is the signing key set as last loaded: the active private
// key, the prepared next key and every public key still published. A
// value is never modified once installed (readers share it without a
// lock); a reload installs a new one.
type SigningKeys struct {
	Kid     string          // the active key, "" before any key exists
	Key     *rsa.PrivateKey // nil before any key exists
	NextKid string          // a prepared key: published, not signing yet ("" if none)
	Public  map[string]*rsa.PublicKey
	JWKS    []jose.JSONWebKey // published, newest first; callers must not modify it
}

// Next returns the prepared key, if any.
func (k *SigningKeys) Next() (string, *rsa.PublicKey) {
	if k.NextKid == "" {
		return "", nil
	}
	return k.NextKid, k.Public[k.NextKid]
}

type signingKeys struct {
	seal []byte
	// loadMu makes each load (read the stored keys, install them) atomic,
	// so loads install in the order they read: without it, a rotation's
	// load could read before another rotation committed and install after
	// that one's load, leaving a retired key active after the second
	// rotation had answered.
	loadMu sync.Mutex
	cur    atomic.Pointer[SigningKeys]
	err    atomic.Pointer[error] // the last load's failure; nil after a success
}

// Keys returns the signing key set as last loaded (empty, never nil,
// before any key exists). Lock-free: one atomic load.
func (v *View) Keys() *SigningKeys {
	if k := v.keys.cur.Load(); k != nil {
		return k
	}
	return &SigningKeys{}
}

// KeysError returns why the last load of the key set failed (a key
// the seal key cannot open, a set without an active key), or nil after a
// successful one. A failed load keeps the previous set in service; a
// caller that has just written the set (a rotation) reports this error.
func (v *View) KeysError() error {
	if e := v.keys.err.Load(); e != nil {
		return *e
	}
	return nil
}

// reloadSigningKeys reads the stored key set and installs it. An empty set
// (before the domain has created the first key) installs an empty value
// without error.
func (v *View) reloadSigningKeys(ctx context.Context) error {
	k := &v.keys
	k.loadMu.Lock()
	defer k.loadMu.Unlock()
	keys, err := v.Store.SigningKeys(ctx)
	if err != nil {
		err = fmt.Errorf("read signing keys: %w", err)
	} else {
		var set *SigningKeys
		if set, err = openKeys(k.seal, keys); err == nil {
			k.cur.Store(set)
			k.err.Store(nil)
			return nil
		}
		err = unusable{err}
	}
	k.err.Store(&err)
	return err
}

// errUnusableKeys matches the error of a key set that was read but cannot
// be used (reading again will not help).
var errUnusableKeys = errors.New("unusable signing key set")

type unusable struct{ error }

func (u unusable) Is(target error) bool { return target == errUnusableKeys }
func (u unusable) Unwrap() error        { return u.error }

// openKeys decodes a stored key set, opening the active private key.
func openKeys(seal []byte, keys []store.SigningKey) (*SigningKeys, error) {
	set := &SigningKeys{Public: make(map[string]*rsa.PublicKey, len(keys))}
	if len(keys) == 0 {
		return set, nil
	}
	for i := len(keys) - 1; i >= 0; i-- { // newest first
		k := keys[i]
		pub, err := pulsarjwt.ParsePublicDER(k.PublicDER)
		if err != nil {
			return nil, fmt.Errorf("signing key %s: %w", k.Kid, err)
		}
		set.Public[k.Kid] = pub
		set.JWKS = append(set.JWKS, pulsarjwt.PublicJWK(k.Kid, pub))
		if k.Pending {
			if set.NextKid == "" {
				set.NextKid = k.Kid
			}
			continue
		}
		if k.RetiredAt.IsZero() && set.Key == nil {
			der, err := pulsarjwt.Open(seal, k.SealedPrivate, []byte("signing-key:"+k.Kid))
			if err != nil {
				return nil, fmt.Errorf("signing key %s cannot be decrypted with this key file: %w", k.Kid, err)
			}
			if set.Key, err = pulsarjwt.ParsePrivateKey(der); err != nil {
				return nil, fmt.Errorf("signing key %s: %w", k.Kid, err)
			}
			set.Kid = k.Kid
		}
	}
	if set.Key == nil {
		return nil, errors.New("no active signing key")
	}
	return set, nil
}
