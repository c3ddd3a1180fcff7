package kvrecords

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"

	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/internal/kv"
)

// checkNamespaceStats validates one snapshot: valid tenant and namespace
// names (they make its key), counters and rates that are non-negative (and
// finite: JSON has no NaN or infinity), and an UpdatedAt. Times outside
// years 0-9999 are refused by the encoding.
func checkNamespaceStats(n store.NamespaceStats) error {
	if err := checkTenantName(n.Tenant); err != nil {
		return err
	}
	if err := checkNamespaceName(n.Namespace); err != nil {
		return err
	}
	counters := []struct {
		name string
		v    int64
	}{
		{"MessagesIn", n.MessagesIn}, {"MessagesOut", n.MessagesOut},
		{"BytesIn", n.BytesIn}, {"BytesOut", n.BytesOut},
		{"Subscriptions", n.Subscriptions}, {"Producers", n.Producers},
		{"Consumers", n.Consumers}, {"SubscriptionDelayed", n.SubscriptionDelayed},
		{"StorageSize", n.StorageSize}, {"BacklogBytes", n.BacklogBytes},
		{"BacklogMessages", n.BacklogMessages},
	}
	for _, c := range counters {
		if c.v < 0 {
			return fmt.Errorf("negative %s (%d)", c.name, c.v)
		}
	}
	rates := []struct {
		name string
		v    float64
	}{
		{"MsgRateIn", n.MsgRateIn}, {"MsgRateOut", n.MsgRateOut},
		{"ThroughputIn", n.ThroughputIn}, {"ThroughputOut", n.ThroughputOut},
	}
	for _, r := range rates {
		if math.IsNaN(r.v) || math.IsInf(r.v, 0) || r.v < 0 {
			return fmt.Errorf("%s must be a finite non-negative number, got %v", r.name, r.v)
		}
	}
	if n.UpdatedAt.IsZero() {
		return errors.New("updated-at time is required")
	}
	return nil
}

// namespaceStatsPut is one validated, encoded snapshot to write.
type namespaceStatsPut struct {
	tenant   string
	key, val []byte
}

// prepareNamespaceStats validates and encodes every snapshot outside the
// write transaction. One invalid snapshot fails the whole call (it is a
// caller's bug). Several snapshots of the same namespace in one call are
// not an error: the last one wins, as if they had been put one after the
// other. It returns the puts in ascending key order (so the transaction's
// puts go to ascending keys, and a tenant's are adjacent) and the distinct
// tenants, sorted.
func prepareNamespaceStats(stats []store.NamespaceStats) ([]namespaceStatsPut, []string, error) {
	puts := make([]namespaceStatsPut, 0, len(stats))
	at := make(map[string]int, len(stats)) // key → its index in puts
	tenants := map[string]struct{}{}
	for i, n := range stats {
		if err := checkNamespaceStats(n); err != nil {
			return nil, nil, fmt.Errorf("stats %d (tenant %q, namespace %q): %w", i, n.Tenant, n.Namespace, err)
		}
		val, err := encodeNamespaceStats(n)
		if err != nil {
			return nil, nil, fmt.Errorf("stats %d (tenant %q, namespace %q): %w", i, n.Tenant, n.Namespace, err)
		}
		key := namespaceStatsKey(n.Tenant, n.Namespace)
		p := namespaceStatsPut{tenant: n.Tenant, key: key, val: val}
		if j, dup := at[string(key)]; dup {
			puts[j] = p
		} else {
			at[string(key)] = len(puts)
			puts = append(puts, p)
		}
		tenants[n.Tenant] = struct{}{}
	}
	slices.SortFunc(puts, func(a, b namespaceStatsPut) int { return bytes.Compare(a.key, b.key) })
	return puts, slices.Sorted(maps.Keys(tenants)), nil
}

// checkTenantsTx fails with ErrNotFound, naming the first, unless the
// tenant of every i < n exists. Equal adjacent names are looked up once.
func checkTenantsTx(tx kv.Tx, n int, tenant func(i int) string) error {
	known := tx.Bucket(bucketTenants)
	for i := range n {
		if name := tenant(i); (i == 0 || name != tenant(i-1)) && known.Get([]byte(name)) == nil {
			return fmt.Errorf("tenant %q: %w", name, store.ErrNotFound)
		}
	}
	return nil
}

// PutNamespaceStats implements store.Store. Every tenant is checked before
// anything is put, in the same transaction as the puts; an unknown one
// fails the call and, the transaction being rolled back, nothing of it is
// written. Each snapshot replaces the stored one whole, whatever their
// UpdatedAt (no "newer wins" check). Several snapshots of one namespace in
// one call: the last one wins. An empty call writes nothing.
//
// A report larger than one transaction of a bounded backend (chunk.go) is
// written in several, in key order. First every tenant is checked, in
// transactions that write nothing (through the committer, so the check is
// as current as a write's): an unknown tenant still fails the call with
// nothing written. Then each transaction puts its part of the snapshots,
// guarded again by the existence of its own tenants. Only a tenant
// deleted meanwhile (or a backend failure) can stop the sequence part-way;
// then each namespace holds either its new snapshot or its previous one
// (the deleted tenant's are gone with it), and sending the report again
// completes it, as every snapshot is a plain replacement.
func (s *Records) PutNamespaceStats(ctx context.Context, stats []store.NamespaceStats) error {
	puts, tenants, err := prepareNamespaceStats(stats)
	if err != nil {
		return fmt.Errorf("put namespace stats: %w", err)
	}
	if len(puts) == 0 {
		return nil
	}
	per := s.perTxn(1) // a put, and at most one tenant compare, per snapshot
	if len(puts) > per {
		_, err := s.inChunks(store.WithAudit(ctx, nil), len(tenants), per, func(ctx context.Context, lo, hi int) error {
			part := tenants[lo:hi]
			return s.update(ctx, func(tx kv.Tx) error {
				return checkTenantsTx(tx, len(part), func(i int) string { return part[i] })
			})
		})
		if err != nil {
			return fmt.Errorf("put namespace stats (%d namespaces): nothing written: %w", len(puts), err)
		}
	}
	written, err := s.inChunks(ctx, len(puts), per, func(ctx context.Context, lo, hi int) error {
		part := puts[lo:hi]
		return s.update(ctx, func(tx kv.Tx) error {
			if err := checkTenantsTx(tx, len(part), func(i int) string { return part[i].tenant }); err != nil {
				return err
			}
			b := tx.Bucket(bucketNamespaceStats)
			for _, p := range part {
				if err := b.Put(p.key, p.val); err != nil {
					return err
				}
			}
			return nil
		})
	})
	if err != nil {
		return chunksErr("put namespace stats", len(puts), "namespaces in key order", written, err)
	}
	return nil
}

// ListNamespaceStats implements store.Store: a prefix scan of
// namespace_stats, which holds a tenant's namespaces in bytewise order of
// their names. A name that is no valid tenant name has none (its prefix
// could match another tenant's keys).
func (s *Records) ListNamespaceStats(ctx context.Context, tenant string) ([]store.NamespaceStats, error) {
	var list []store.NamespaceStats
	err := s.view(func(tx kv.Tx) error {
		if checkTenantName(tenant) != nil {
			return nil
		}
		prefix := tenantPrefix(tenant)
		c := tx.Bucket(bucketNamespaceStats).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			rec, err := decodeNamespaceStatsRecord(v)
			if err != nil {
				return fmt.Errorf("namespace %q: %w", k[len(prefix):], err)
			}
			list = append(list, rec.namespaceStats())
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list namespace stats of tenant %q: %w", tenant, err)
	}
	return list, nil
}

// deleteNamespaceStatsOfTx removes every snapshot of tenant's namespaces:
// the cascade of DeleteTenant (and CreateTenant's clean-up, see schema.go).
// Keys are collected before deleting, as bbolt cursors must not see their
// bucket change under them.
func deleteNamespaceStatsOfTx(tx kv.Tx, tenant string) error {
	prefix := tenantPrefix(tenant)
	b := tx.Bucket(bucketNamespaceStats)
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}
