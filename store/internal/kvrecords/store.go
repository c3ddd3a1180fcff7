// Package kvrecords is the record logic of every key-value backend of
// store.Store (store/bolt, store/etcd): how each operation reads and writes
// records and their index entries, written once over the transaction shape
// of store/internal/kv. A backend supplies transactions (Backend) and the
// limits its transactions must respect (Limits); it keeps only what is its
// own (opening, committing, mirroring, schema checks).
package kvrecords

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/internal/kv"
)

const defaultListLimit = 100

// Backend runs transactions for Records.
type Backend interface {
	// Update runs fn in a write transaction and returns once it is
	// committed (fn may run more than once; it must only touch tx).
	Update(ctx context.Context, fn func(kv.Tx) error) error
	// Cascade is Update for a delete that also deletes the record's
	// dependents (c names them). A backend whose transactions are bounded
	// may delete some dependents first, in transactions of their own,
	// when fn does not fit in one.
	Cascade(ctx context.Context, fn func(kv.Tx) error, c Cascade) error
	// TooLarge reports whether err says a transaction exceeded the
	// backend's limits (false in a backend without such limits).
	TooLarge(err error) bool
	// BeginRead starts a read-only transaction; EndRead ends it. (Not a
	// View(func) so that reads on the credential-check path allocate no
	// closure.)
	BeginRead() (kv.Tx, error)
	EndRead(kv.Tx)
}

// DirectGetter is implemented by a backend that can read one value outside
// a transaction, cheaper than in one, and whose values stay valid after the
// read (store/etcd's mirror). GetValue returns store.ErrClosed once the
// backend is closed.
type DirectGetter interface {
	GetValue(bucket []byte, key string) (v []byte, ok bool, err error)
}

// Cascade names the dependents of a deleted record: the auth tokens of a
// principal (PrincipalKind, PrincipalID), or a tenant's Pulsar tokens and
// namespace statistics (Tenant). With Leftovers, Tenant is a tenant being
// created: the dependents are the namespace statistics a deleted tenant of
// that name left behind, to be deleted only while no tenant of that name
// exists.
type Cascade struct {
	PrincipalKind, PrincipalID string
	Tenant                     string
	Leftovers                  bool
}

func cascadeOf(kind, principalID string) Cascade {
	return Cascade{PrincipalKind: kind, PrincipalID: principalID}
}

func cascadeTenant(tenant string) Cascade { return Cascade{Tenant: tenant} }

func cascadeLeftovers(tenant string) Cascade { return Cascade{Tenant: tenant, Leftovers: true} }

// Limits bound the work of one transaction. A zero field means no bound
// (GCChunk: 1000).
type Limits struct {
	// GCChunk bounds the records one garbage-collection transaction
	// (DeleteExpiredTokens, DeleteIdleAuthTokens, …) deletes, and its scans.
	GCChunk int
	// TxnOps is the most compares, and the most operations, one
	// transaction may hold (etcd's --max-txn-ops). A write whose size
	// depends on its input (use times, database usage, namespace
	// statistics, audit events) is split into transactions within it
	// (chunk.go); with no bound it is always one transaction.
	TxnOps int
}

// Records implements the record operations of store.Store over a Backend.
// A backend embeds it and adds the rest (Close, and whatever it overrides).
type Records struct {
	b       Backend
	direct  DirectGetter // nil unless b is one
	gcChunk int
	txnOps  int // 0: no bound
	// orphansSwept: DeleteIdleAuthTokens' orphan pass has completed once
	// since New (it runs only until then; see DeleteIdleAuthTokens).
	orphansSwept atomic.Bool
}

// New returns the record operations over b.
func New(b Backend, l Limits) *Records {
	r := &Records{b: b, gcChunk: l.GCChunk, txnOps: max(l.TxnOps, 0)}
	if r.gcChunk <= 0 {
		r.gcChunk = 1000
	}
	r.direct, _ = b.(DirectGetter)
	return r
}

// view runs fn in a read-only transaction. fn must copy whatever it keeps
// out of tx (decoding does).
func (s *Records) view(fn func(kv.Tx) error) error {
	tx, err := s.b.BeginRead()
	if err != nil {
		return err
	}
	defer s.b.EndRead(tx)
	return fn(tx)
}

// update runs fn in a write transaction.
func (s *Records) update(ctx context.Context, fn func(kv.Tx) error) error {
	return s.b.Update(ctx, fn)
}

// updateOne is the read-modify-write of one record shared by the Update*
// methods. rewrite gets the stored record (decoded afresh on every run, as
// the committer may run the transaction again) and returns the value to
// store, having applied the caller's closure, refused what the closure must
// not change and moved any index entries in tx. The caller gets the stored
// value decoded again: a copy sharing nothing with the closure's values,
// with times normalised exactly as a Get would. A missing key is
// store.ErrNotFound; what names the record kind in errors.
func updateOne[R, T any](ctx context.Context, s *Records, bucket []byte, key, what string,
	decodeStored func([]byte) (R, error), rewrite func(tx kv.Tx, cur R) ([]byte, error),
	decode func([]byte) (T, error)) (T, error) {
	var zero T
	var stored []byte // the value of the last successful run
	err := s.update(ctx, func(tx kv.Tx) error {
		b := tx.Bucket(bucket)
		v := b.Get([]byte(key))
		if v == nil {
			return store.ErrNotFound
		}
		cur, err := decodeStored(v)
		if err != nil {
			return err
		}
		val, err := rewrite(tx, cur)
		if err != nil {
			return err
		}
		if err := b.Put([]byte(key), val); err != nil {
			return err
		}
		stored = val
		return nil
	})
	if err != nil {
		return zero, fmt.Errorf("update %s %q: %w", what, key, err)
	}
	out, err := decode(stored)
	if err != nil {
		return zero, fmt.Errorf("update %s %q: %w", what, key, err)
	}
	return out, nil
}

// getOne reads the record under key in bucket and decodes it; a missing
// key is store.ErrNotFound. what names the record kind in errors.
func getOne[T any](s *Records, bucket []byte, key, what string, decode func([]byte) (T, error)) (T, error) {
	var zero T
	if s.direct != nil {
		v, ok, err := s.direct.GetValue(bucket, key)
		if err == nil && !ok {
			err = store.ErrNotFound
		}
		if err != nil {
			return zero, fmt.Errorf("get %s %q: %w", what, key, err)
		}
		out, err := decode(v)
		if err != nil {
			return zero, fmt.Errorf("get %s %q: %w", what, key, err)
		}
		return out, nil
	}
	tx, err := s.b.BeginRead()
	if err != nil {
		return zero, fmt.Errorf("get %s %q: %w", what, key, err)
	}
	defer s.b.EndRead(tx)
	v := tx.Bucket(bucket).GetString(key)
	if v == nil {
		return zero, fmt.Errorf("get %s %q: %w", what, key, store.ErrNotFound)
	}
	out, err := decode(v)
	if err != nil {
		return zero, fmt.Errorf("get %s %q: %w", what, key, err)
	}
	return out, nil
}

// listAll decodes every record of bucket in key order, in one read
// transaction: only for buckets that stay small (roles, tenants,
// databases).
func listAll[T any](s *Records, bucket []byte, what string, decode func([]byte) (T, error)) ([]T, error) {
	var out []T
	err := s.view(func(tx kv.Tx) error {
		return tx.Bucket(bucket).ForEach(func(_, v []byte) error {
			rec, err := decode(v)
			if err != nil {
				return err
			}
			out = append(out, rec)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", what, err)
	}
	return out, nil
}

// GetOrganization implements store.Store.
func (s *Records) GetOrganization(ctx context.Context) (store.Organization, error) {
	var org store.Organization
	err := s.view(func(tx kv.Tx) error {
		v := tx.Bucket(bucketOrg).Get(keyOrg)
		if v == nil {
			return store.ErrNotFound
		}
		var err error
		org, err = decodeOrg(v)
		return err
	})
	if err != nil {
		return store.Organization{}, fmt.Errorf("get organization: %w", err)
	}
	return org, nil
}

// Bootstrap implements store.Store. Two brokers bootstrapping one empty
// store at once both run the same transaction ("org absent"); one commits,
// the other gets ErrAlreadyExists.
func (s *Records) Bootstrap(ctx context.Context, org store.Organization, first store.Token) error {
	orgVal, err := encodeOrg(org)
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	tokVal, err := prepareToken(first)
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	err = s.update(ctx, func(tx kv.Tx) error {
		b := tx.Bucket(bucketOrg)
		if b.Get(keyOrg) != nil {
			return fmt.Errorf("organization: %w", store.ErrAlreadyExists)
		}
		if err := createTokenTx(tx, first, tokVal); err != nil {
			return fmt.Errorf("first token %q: %w", first.ClientID, err)
		}
		return b.Put(keyOrg, orgVal)
	})
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	return nil
}

var _ = bytes.Equal
var _ = errors.New
