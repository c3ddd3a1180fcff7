package kvrecords

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/internal/kv"
)

// CreateRole implements store.Store.
func (s *Records) CreateRole(ctx context.Context, r store.Role) error {
	if err := checkID("role", r.ID); err != nil {
		return fmt.Errorf("create role: %w", err)
	}
	val, err := encodeRole(r)
	if err != nil {
		return fmt.Errorf("create role %q: %w", r.ID, err)
	}
	err = s.update(ctx, func(tx kv.Tx) error {
		return createRoleTx(tx, r.ID, val)
	})
	if err != nil {
		return fmt.Errorf("create role %q: %w", r.ID, err)
	}
	return nil
}

// createRoleTx writes a new role record (val, the encoded role; bbolt keeps
// a reference to it until commit) under id; ErrAlreadyExists if id is taken.
// CreateRole and CreateDatabase share it.
func createRoleTx(tx kv.Tx, id string, val []byte) error {
	b := tx.Bucket(bucketRoles)
	key := []byte(id)
	if b.Get(key) != nil {
		return store.ErrAlreadyExists
	}
	return b.Put(key, val)
}

// GetRole implements store.Store.
func (s *Records) GetRole(ctx context.Context, id string) (store.Role, error) {
	return getOne(s, bucketRoles, id, "role", decodeRole)
}

// ListRoles implements store.Store, in one read transaction over the
// whole bucket: for the view's load, which keeps every role in memory
// anyway (every database adds one). API lists page with ListRolesPage.
func (s *Records) ListRoles(ctx context.Context) ([]store.Role, error) {
	return listAll(s, bucketRoles, "roles", decodeRole)
}

// UpdateRole implements store.Store. update runs on the committer goroutine
// inside the write transaction, so it must be quick and must not call the
// Store (that would deadlock: the committer would wait for itself).
func (s *Records) UpdateRole(ctx context.Context, id string, update func(store.Role) (store.Role, error)) (store.Role, error) {
	return updateOne(ctx, s, bucketRoles, id, "role", decodeRole, func(_ kv.Tx, cur store.Role) ([]byte, error) {
		next, err := update(cur)
		if err != nil {
			return nil, err
		}
		if next.ID != id {
			return nil, fmt.Errorf("update must not change the ID (got %q)", next.ID)
		}
		return encodeRole(next)
	}, decodeRole)
}

// DeleteRole implements store.Store. Any users_by_role entry makes the role
// in use; token liveness comes from the expiry kept in tokens_by_role. So
// the check reads two index ranges, not every user and token.
func (s *Records) DeleteRole(ctx context.Context, id string, now time.Time) error {
	key := []byte(id)
	nowNanos := expiryNanos(now)
	err := s.update(ctx, func(tx kv.Tx) error {
		b := tx.Bucket(bucketRoles)
		if b.Get(key) == nil {
			return store.ErrNotFound
		}
		prefix := roleIndexPrefix(id)
		if k, _ := tx.Bucket(bucketUsersByRole).Cursor().Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) {
			return fmt.Errorf("held by user %q: %w", k[len(prefix):], store.ErrInUse)
		}
		tokens := tx.Bucket(bucketTokens)
		c := tx.Bucket(bucketTokensByRole).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			live, err := holderLive(tokens, k[len(prefix):], binary.BigEndian.Uint64(v), nowNanos, now)
			if err != nil {
				return err
			}
			if live {
				return fmt.Errorf("held by live token %q: %w", k[len(prefix):], store.ErrInUse)
			}
		}
		return b.Delete(key)
	})
	if err != nil {
		return fmt.Errorf("delete role %q: %w", id, err)
	}
	return nil
}

// holderLive decides from the index value alone except when it equals now
// after clamping, where only the record's exact expiry can tell.
func holderLive(tokens kv.Bucket, clientID []byte, exp, nowNanos uint64, now time.Time) (bool, error) {
	switch {
	case exp == 0 || exp > nowNanos:
		return true, nil
	case exp < nowNanos:
		return false, nil
	}
	v := tokens.Get(clientID)
	if v == nil {
		return false, nil
	}
	t, err := decodeToken(string(clientID), v)
	if err != nil {
		return false, err
	}
	return !t.Expired(now), nil
}
