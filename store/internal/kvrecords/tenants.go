package kvrecords

import (
	"context"
	"fmt"

	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/internal/kv"
)

// CreateTenant implements store.Store.
func (s *Records) CreateTenant(ctx context.Context, t store.Tenant) error {
	if err := checkTenantName(t.Name); err != nil {
		return fmt.Errorf("create tenant: %w", err)
	}
	val, err := encodeTenant(t)
	if err != nil {
		return fmt.Errorf("create tenant %q: %w", t.Name, err)
	}
	key := []byte(t.Name)
	// A cascade: the statistics left behind may outnumber one bounded
	// transaction (Backend.Cascade deletes them first, in chunks).
	err = s.b.Cascade(ctx, func(tx kv.Tx) error {
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
	}, cascadeLeftovers(t.Name))
	if err != nil {
		return fmt.Errorf("create tenant %q: %w", t.Name, err)
	}
	return nil
}

// GetTenant implements store.Store.
func (s *Records) GetTenant(ctx context.Context, name string) (store.Tenant, error) {
	return getOne(s, bucketTenants, name, "tenant", decodeTenant)
}

// ListTenants implements store.Store. Tenants are few (one per streaming
// tenant of the organization), so one read transaction stays short; API
// lists page with ListTenantsPage all the same.
func (s *Records) ListTenants(ctx context.Context) ([]store.Tenant, error) {
	return listAll(s, bucketTenants, "tenants", decodeTenant)
}

// DeleteTenant implements store.Store. The tenant's Pulsar tokens and
// namespace statistics go in the same transaction, found through
// pulsar_tokens_by_tenant and by prefix in namespace_stats, so neither ever
// outlives its tenant. A backend with bounded transactions deletes them
// first, in chunks, when they do not fit in one (Backend.Cascade).
func (s *Records) DeleteTenant(ctx context.Context, name string) error {
	key := []byte(name)
	err := s.b.Cascade(ctx, func(tx kv.Tx) error {
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
	}, cascadeTenant(name))
	if err != nil {
		return fmt.Errorf("delete tenant %q: %w", name, err)
	}
	return nil
}
