package bolt

import (
	"context"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/tokenbroker/tokenbroker/store"
)

// CreateTenant implements store.Store.
func (s *Store) CreateTenant(ctx context.Context, t store.Tenant) error {
	if err := checkTenantName(t.Name); err != nil {
		return fmt.Errorf("create tenant: %w", err)
	}
	val, err := encodeTenant(t)
	if err != nil {
		return fmt.Errorf("create tenant %q: %w", t.Name, err)
	}
	key := []byte(t.Name)
	err = s.w.do(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketTenants)
		if b.Get(key) != nil {
			return store.ErrAlreadyExists
		}
		// Normally none: only a downgrade's DeleteTenant leaves any behind
		// (see schema.go). A new tenant must not inherit them.
		if err := deleteNamespaceStatsOfTx(tx, t.Name); err != nil {
			return err
		}
		return b.Put(key, val)
	})
	if err != nil {
		return fmt.Errorf("create tenant %q: %w", t.Name, err)
	}
	return nil
}

// GetTenant implements store.Store.
func (s *Store) GetTenant(ctx context.Context, name string) (store.Tenant, error) {
	return getOne(s, bucketTenants, name, "tenant", decodeTenant)
}

// ListTenants implements store.Store. Tenants are few (one per streaming
// tenant of the organization), so one read transaction stays short.
func (s *Store) ListTenants(ctx context.Context) ([]store.Tenant, error) {
	return listAll(s, bucketTenants, "tenants", decodeTenant)
}

// DeleteTenant implements store.Store. The tenant's Pulsar tokens and
// namespace statistics go in the same transaction, found through
// pulsar_tokens_by_tenant and by prefix in namespace_stats, so neither ever
// outlives its tenant. The transaction grows with the tenant's token count;
// a tenant without a token limit and with very many tokens makes one large
// commit.
func (s *Store) DeleteTenant(ctx context.Context, name string) error {
	key := []byte(name)
	err := s.w.do(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketTenants)
		if b.Get(key) == nil {
			return store.ErrNotFound
		}
		if err := deletePulsarTokensOfTx(tx, name); err != nil {
			return err
		}
		if err := deleteNamespaceStatsOfTx(tx, name); err != nil {
			return err
		}
		return b.Delete(key)
	})
	if err != nil {
		return fmt.Errorf("delete tenant %q: %w", name, err)
	}
	return nil
}

// UpdateTenant implements store.Store (closure rules as for UpdateRole).
func (s *Store) UpdateTenant(ctx context.Context, name string, update func(store.Tenant) (store.Tenant, error)) (store.Tenant, error) {
	key := []byte(name)
	var stored []byte
	err := s.w.do(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketTenants)
		v := b.Get(key)
		if v == nil {
			return store.ErrNotFound
		}
		cur, err := decodeTenant(v)
		if err != nil {
			return err
		}
		next, err := update(cur)
		if err != nil {
			return err
		}
		if next.Name != name {
			return fmt.Errorf("update must not change the name (got %q)", next.Name)
		}
		val, err := encodeTenant(next)
		if err != nil {
			return err
		}
		if err := b.Put(key, val); err != nil {
			return err
		}
		stored = val
		return nil
	})
	if err != nil {
		return store.Tenant{}, fmt.Errorf("update tenant %q: %w", name, err)
	}
	t, err := decodeTenant(stored)
	if err != nil {
		return store.Tenant{}, fmt.Errorf("update tenant %q: %w", name, err)
	}
	return t, nil
}
