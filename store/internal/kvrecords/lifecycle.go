package kvrecords

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/internal/kv"
)

// Credential-lifecycle writes.

// UpdateOrganization implements store.Store (closure rules as for
// UpdateRole).
func (s *Records) UpdateOrganization(ctx context.Context, update func(store.Organization) (store.Organization, error)) (store.Organization, error) {
	var stored []byte
	err := s.update(ctx, func(tx kv.Tx) error {
		b := tx.Bucket(bucketOrg)
		v := b.Get(keyOrg)
		if v == nil {
			return store.ErrNotFound
		}
		cur, err := decodeOrg(v)
		if err != nil {
			return err
		}
		next, err := update(cur)
		if err != nil {
			return err
		}
		if next.ID != cur.ID || !bytes.Equal(next.KeyCheck, cur.KeyCheck) {
			return errors.New("update must not change the organization ID or key check")
		}
		val, err := encodeOrg(next)
		if err != nil {
			return err
		}
		if err := b.Put(keyOrg, val); err != nil {
			return err
		}
		stored = val
		return nil
	})
	if err != nil {
		return store.Organization{}, fmt.Errorf("update organization: %w", err)
	}
	o, err := decodeOrg(stored)
	if err != nil {
		return store.Organization{}, fmt.Errorf("update organization: %w", err)
	}
	return o, nil
}

// UpdateTenant implements store.Store (closure rules as for UpdateRole).
func (s *Records) UpdateTenant(ctx context.Context, name string, update func(store.Tenant) (store.Tenant, error)) (store.Tenant, error) {
	return updateOne(ctx, s, bucketTenants, name, "tenant", decodeTenant, func(_ kv.Tx, cur store.Tenant) ([]byte, error) {
		next, err := update(cur)
		if err != nil {
			return nil, err
		}
		if next.Name != name {
			return nil, fmt.Errorf("update must not change the name (got %q)", next.Name)
		}
		return encodeTenant(next)
	}, decodeTenant)
}

// RotateToken implements store.Store. The old record is rewritten together
// with the index entries that carry its expiry (tokens_by_expiry, and the
// expiry kept as the value of tokens_by_role), and the successor is created
// in the same transaction, so no reader sees one without the other.
func (s *Records) RotateToken(ctx context.Context, clientID string, next store.Token, update func(store.Token) (store.Token, error)) (store.Token, error) {
	nextVal, err := prepareToken(next)
	if err != nil {
		return store.Token{}, fmt.Errorf("rotate token %q: %w", clientID, err)
	}
	var stored []byte // result of the last successful run
	err = s.update(ctx, func(tx kv.Tx) error {
		tokens := tx.Bucket(bucketTokens)
		key := []byte(clientID)
		v := tokens.Get(key)
		if v == nil {
			return store.ErrNotFound
		}
		rec, err := decodeTokenRecord(clientID, v) // a fresh copy on every run
		if err != nil {
			return err
		}
		cur := rec.token()
		upd, err := update(cur)
		if err != nil {
			return err
		}
		if upd.ClientID != clientID || !slices.Equal(upd.Roles, rec.Roles) || !bytes.Equal(upd.SecretMAC, rec.SecretMAC) {
			return fmt.Errorf("update must not change the client ID, roles or secret MAC")
		}
		val, err := encodeToken(upd)
		if err != nil {
			return err
		}
		if oldExp, newExp := expiryNanos(rec.Expiry), expiryNanos(upd.Expiry); oldExp != newExp {
			byExpiry := tx.Bucket(bucketTokensByExpiry)
			if oldExp != 0 {
				if err := byExpiry.Delete(expiryIndexKey(oldExp, clientID)); err != nil {
					return err
				}
			}
			if newExp != 0 {
				if err := byExpiry.Put(expiryIndexKey(newExp, clientID), []byte{}); err != nil {
					return err
				}
			}
			byRole := tx.Bucket(bucketTokensByRole)
			for _, r := range rec.Roles {
				if err := byRole.Put(roleIndexKey(r, clientID), be64(newExp)); err != nil {
					return err
				}
			}
		}
		if err := tokens.Put(key, val); err != nil {
			return err
		}
		if err := createTokenTx(tx, next, nextVal); err != nil {
			return fmt.Errorf("successor %q: %w", next.ClientID, err)
		}
		stored = val
		return nil
	})
	if err != nil {
		return store.Token{}, fmt.Errorf("rotate token %q: %w", clientID, err)
	}
	t, err := decodeToken(clientID, stored)
	if err != nil {
		return store.Token{}, fmt.Errorf("rotate token %q: %w", clientID, err)
	}
	return t, nil
}
