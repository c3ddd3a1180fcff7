package etcd

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/internal/kvrecords"
)

// Cascading deletes beyond one transaction.
//
// (Writes whose size depends on their input but that are no cascade, such
// as use-time flushes and namespace statistics, are split by kvrecords
// itself, within Options.MaxTxnOps: kvrecords/chunk.go.)
//
// A delete and its cascade (a token's or user's auth tokens, a tenant's
// Pulsar tokens and statistics) are one transaction whenever they fit in
// etcd's limits (128 operations, 1.5 MiB by default), as in bbolt. When they
// do not, the delete runs as a crash-safe sequence: first the dependents are
// deleted in transactions of trimChunk records each, then the record itself
// with whatever dependents remain, in one final transaction that also holds
// the audit event. Every intermediate state is one the store can be in
// anyway: a principal with fewer auth tokens (some sessions ended early),
// a tenant with fewer Pulsar tokens. The caller is answered only after the
// final transaction, so an interrupted delete is simply not acknowledged,
// and running it again finishes it. Dependents created meanwhile are
// caught by the final transaction's compares (it re-reads them).

// trimChunk is the number of dependents one trimming transaction deletes
// (each is 3 to 4 operations: record and index entries).
const trimChunk = 25

// maxTrimRounds bounds the trim-then-retry loop against a writer creating
// dependents as fast as they are deleted.
const maxTrimRounds = 64

// doCascade runs fn; if it is too large for one transaction, it trims with
// trim (which deletes a chunk of dependents and reports whether any were
// left) and tries again.
func (s *Store) doCascade(ctx context.Context, fn func(*Tx) error, trim func(context.Context) (bool, error)) error {
	err := s.w.do(ctx, fn)
	for round := 0; errors.Is(err, errTxnTooLarge) && round < maxTrimRounds; round++ {
		more, terr := trim(store.WithAudit(ctx, nil)) // the final transaction carries the event
		if terr != nil {
			return terr
		}
		if !more {
			return err // nothing left to trim: the record itself is too large
		}
		err = s.w.do(ctx, fn)
	}
	return err
}

// prefixKeys returns up to n keys of bucket that start with prefix, from the
// mirror.
func (s *Store) prefixKeys(bucket, prefix []byte, n int) ([][]byte, error) {
	var keys [][]byte
	err := s.view(func(tx *Tx) error {
		c := tx.Bucket(bucket).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && len(keys) < n; k, _ = c.Next() {
			keys = append(keys, bytes.Clone(k))
		}
		return nil
	})
	return keys, err
}

// trimAuthTokensOf deletes up to trimChunk auth tokens of a principal.
func (s *Store) trimAuthTokensOf(kind, principalID string) func(context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) {
		bucket, prefix := kvrecords.AuthTokensOf(kind, principalID)
		keys, err := s.prefixKeys(bucket, prefix, trimChunk)
		if err != nil || len(keys) == 0 {
			return false, err
		}
		err = s.w.do(ctx, func(tx *Tx) error { return kvrecords.DeleteAuthTokensTx(tx, prefix, keys) })
		if err != nil {
			return false, fmt.Errorf("delete auth tokens of %s %q: %w", kind, principalID, err)
		}
		return true, nil
	}
}

// trimTenant deletes up to trimChunk Pulsar tokens of a tenant, or, once it
// has none, up to trimChunk of its namespace statistics.
func (s *Store) trimTenant(tenant string) func(context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) {
		bucket, prefix := kvrecords.PulsarTokensOf(tenant)
		keys, err := s.prefixKeys(bucket, prefix, trimChunk)
		if err != nil {
			return false, err
		}
		if len(keys) > 0 {
			err = s.w.do(ctx, func(tx *Tx) error { return kvrecords.DeletePulsarTokensTx(tx, prefix, keys) })
			if err != nil {
				return false, fmt.Errorf("delete Pulsar tokens of tenant %q: %w", tenant, err)
			}
			return true, nil
		}
		bucket, prefix = kvrecords.NamespaceStatsOf(tenant)
		keys, err = s.prefixKeys(bucket, prefix, 4*trimChunk)
		if err != nil || len(keys) == 0 {
			return false, err
		}
		err = s.w.do(ctx, func(tx *Tx) error { return kvrecords.DeleteNamespaceStatsTx(tx, keys) })
		if err != nil {
			return false, fmt.Errorf("delete namespace statistics of tenant %q: %w", tenant, err)
		}
		return true, nil
	}
}

// errTenantExists stops trimLeftoverStats: a tenant of the name was created
// meanwhile, and the statistics are now its own.
var errTenantExists = errors.New("tenant exists")

// trimLeftoverStats deletes up to 4*trimChunk namespace statistics of a
// tenant that does not exist (left behind by an older binary's
// DeleteTenant), before CreateTenant creates one of that name. Each
// transaction is guarded by the tenant's absence, so that a tenant another
// broker created meanwhile keeps its statistics; CreateTenant then fails
// with ErrAlreadyExists.
func (s *Store) trimLeftoverStats(tenant string) func(context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) {
		bucket, prefix := kvrecords.NamespaceStatsOf(tenant)
		keys, err := s.prefixKeys(bucket, prefix, 4*trimChunk)
		if err != nil || len(keys) == 0 {
			return false, err
		}
		err = s.w.do(ctx, func(tx *Tx) error {
			if kvrecords.TenantExistsTx(tx, tenant) {
				return errTenantExists
			}
			return kvrecords.DeleteNamespaceStatsTx(tx, keys)
		})
		switch {
		case errors.Is(err, errTenantExists):
			return true, nil // CreateTenant runs again and finds it
		case err != nil:
			return false, fmt.Errorf("delete leftover namespace statistics of tenant %q: %w", tenant, err)
		}
		return true, nil
	}
}
