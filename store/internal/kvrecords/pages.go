package kvrecords

import (
	"bytes"
	"context"
	"fmt"

	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/internal/kv"
)

// readPage decodes up to limit entries of bucket whose keys start with
// prefix and come strictly after the key after (nil: from the first key of
// prefix), in key order, in one short read transaction. more reports that
// at least one further entry follows the page. Each page is its own
// snapshot; since the walk resumes after the last key it returned, every
// entry that exists throughout a walk is visited exactly once.
func readPage[T any](s *Records, bucket, prefix, after []byte, limit int, decode func(tx kv.Tx, k, v []byte) (T, error)) (page []T, more bool, err error) {
	if limit <= 0 {
		limit = defaultListLimit
	}
	err = s.view(func(tx kv.Tx) error {
		c := tx.Bucket(bucket).Cursor()
		var k, v []byte
		switch {
		case after != nil:
			k, v = c.Seek(after)
			if k != nil && bytes.Equal(k, after) {
				k, v = c.Next()
			}
		case len(prefix) > 0:
			k, v = c.Seek(prefix)
		default:
			k, v = c.First()
		}
		for ; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if len(page) == limit {
				more = true
				return nil
			}
			rec, err := decode(tx, k, v)
			if err != nil {
				return err
			}
			page = append(page, rec)
		}
		return nil
	})
	return page, more, err
}

// pageByKey is readPage over a bucket whose keys are the records' own
// string keys (an ID, a name): the page starts after the key after ("" for
// the first), and the cursor returned is the key of its last record ("" when
// nothing follows).
func pageByKey[T any](s *Records, bucket []byte, what, after string, limit int, decode func(tx kv.Tx, k, v []byte) (T, error), key func(T) string) ([]T, string, error) {
	var from []byte
	if after != "" {
		from = []byte(after)
	}
	page, more, err := readPage(s, bucket, nil, from, limit, decode)
	if err != nil {
		return nil, "", fmt.Errorf("list %s after %q: %w", what, after, err)
	}
	next := ""
	if more {
		next = key(page[len(page)-1])
	}
	return page, next, nil
}

// ListUsersPage implements store.Store: users_by_name gives the order.
func (s *Records) ListUsersPage(ctx context.Context, after string, limit int) ([]store.User, string, error) {
	return pageByKey(s, bucketUsersByName, "users", after, limit, func(tx kv.Tx, _, id []byte) (store.User, error) {
		return userByIndexedID(tx, id)
	}, func(u store.User) string { return u.Username })
}

// ListPulsarTokensPage implements store.Store: pulsar_tokens_by_tenant
// gives the order (IssuedAt, then ID) within the tenant's prefix.
func (s *Records) ListPulsarTokensPage(ctx context.Context, tenant string, after store.PulsarTokenPosition, limit int) ([]store.PulsarToken, store.PulsarTokenPosition, error) {
	if checkTenantName(tenant) != nil {
		return nil, store.PulsarTokenPosition{}, nil // its prefix could match another tenant's keys
	}
	prefix := tenantPrefix(tenant)
	var from []byte
	if !after.IsZero() {
		var n int64
		if !after.IssuedAt.IsZero() {
			n = after.IssuedAt.UnixNano() // as pulsarTokenRecord.tenantKey
		}
		from = pulsarTenantKey(tenant, n, after.ID)
	}
	page, more, err := readPage(s, bucketPulsarByTenant, prefix, from, limit, func(tx kv.Tx, k, _ []byte) (store.PulsarToken, error) {
		if len(k) <= len(prefix)+8 {
			return store.PulsarToken{}, fmt.Errorf("corrupt pulsar_tokens_by_tenant key %x", k)
		}
		id := k[len(prefix)+8:]
		v := tx.Bucket(bucketPulsar).Get(id)
		if v == nil {
			return store.PulsarToken{}, fmt.Errorf("corrupt pulsar_tokens_by_tenant: no token %q", id)
		}
		rec, err := decodePulsarTokenRecord(v)
		if err != nil {
			return store.PulsarToken{}, err
		}
		return rec.pulsarToken(), nil
	})
	if err != nil {
		return nil, store.PulsarTokenPosition{}, fmt.Errorf("list Pulsar tokens of tenant %q: %w", tenant, err)
	}
	var next store.PulsarTokenPosition
	if more {
		next = page[len(page)-1].Position()
	}
	return page, next, nil
}

// ListDatabasesPage implements store.Store: the databases bucket is keyed
// by ID.
func (s *Records) ListDatabasesPage(ctx context.Context, after string, limit int) ([]store.Database, string, error) {
	return pageByKey(s, bucketDatabases, "databases", after, limit, func(_ kv.Tx, _, v []byte) (store.Database, error) {
		return decodeDatabase(v)
	}, func(db store.Database) string { return db.ID })
}

// ListRolesPage implements store.Store: the roles bucket is keyed by ID.
func (s *Records) ListRolesPage(ctx context.Context, after string, limit int) ([]store.Role, string, error) {
	return pageByKey(s, bucketRoles, "roles", after, limit, func(_ kv.Tx, _, v []byte) (store.Role, error) {
		return decodeRole(v)
	}, func(r store.Role) string { return r.ID })
}

// ListTenantsPage implements store.Store: the tenants bucket is keyed by
// name.
func (s *Records) ListTenantsPage(ctx context.Context, after string, limit int) ([]store.Tenant, string, error) {
	return pageByKey(s, bucketTenants, "tenants", after, limit, func(_ kv.Tx, _, v []byte) (store.Tenant, error) {
		return decodeTenant(v)
	}, func(t store.Tenant) string { return t.Name })
}

// ListNamespaceStatsPage implements store.Store: namespace_stats holds a
// tenant's namespaces under its prefix, in bytewise order of their names.
func (s *Records) ListNamespaceStatsPage(ctx context.Context, tenant, after string, limit int) ([]store.NamespaceStats, string, error) {
	if checkTenantName(tenant) != nil {
		return nil, "", nil // its prefix could match another tenant's keys
	}
	var from []byte
	if after != "" {
		from = namespaceStatsKey(tenant, after)
	}
	prefix := tenantPrefix(tenant)
	page, more, err := readPage(s, bucketNamespaceStats, prefix, from, limit, func(_ kv.Tx, k, v []byte) (store.NamespaceStats, error) {
		rec, err := decodeNamespaceStatsRecord(v)
		if err != nil {
			return store.NamespaceStats{}, fmt.Errorf("namespace %q: %w", k[len(prefix):], err)
		}
		return rec.namespaceStats(), nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("list namespace stats of tenant %q after %q: %w", tenant, after, err)
	}
	next := ""
	if more {
		next = page[len(page)-1].Namespace
	}
	return page, next, nil
}
