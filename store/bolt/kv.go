package bolt

import (
	"context"
	"errors"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/internal/kv"
	"github.com/tokenbroker/tokenbroker/store/internal/kvrecords"
)

// The record logic is store/internal/kvrecords, shared with store/etcd; this
// file runs it on bbolt. The adapters are single pointers, so turning them
// into interfaces allocates nothing on the read path.

type boltTx struct{ tx *bbolt.Tx }

func (t boltTx) Bucket(name []byte) kv.Bucket {
	b := t.tx.Bucket(name)
	if t.tx.Writable() {
		setFillPercent(b, name) // schema.go
	}
	return boltBucket{b}
}

type boltBucket struct{ b *bbolt.Bucket }

func (b boltBucket) Get(key []byte) []byte                    { return b.b.Get(key) }
func (b boltBucket) GetString(key string) []byte              { return b.b.Get([]byte(key)) }
func (b boltBucket) Put(key, value []byte) error              { return b.b.Put(key, value) }
func (b boltBucket) Delete(key []byte) error                  { return b.b.Delete(key) }
func (b boltBucket) ForEach(fn func(k, v []byte) error) error { return b.b.ForEach(fn) }
func (b boltBucket) NextSequence() (uint64, error)            { return b.b.NextSequence() }
func (b boltBucket) Cursor() kv.Cursor                        { return boltCursor{b.b.Cursor()} }

type boltCursor struct{ c *bbolt.Cursor }

func (c boltCursor) First() ([]byte, []byte)        { return c.c.First() }
func (c boltCursor) Seek(k []byte) ([]byte, []byte) { return c.c.Seek(k) }
func (c boltCursor) Next() ([]byte, []byte)         { return c.c.Next() }

// backend is the kvrecords.Backend of a Store: writes through the group
// committer, reads in the caller's goroutine. bbolt has no transaction
// size limit, so a cascade is one transaction.
type backend struct{ s *Store }

func (b backend) Update(ctx context.Context, fn func(kv.Tx) error) error {
	return b.s.w.do(ctx, func(tx *bbolt.Tx) error { return fn(b.s.w.changes.writeTx(tx)) })
}

func (b backend) Cascade(ctx context.Context, fn func(kv.Tx) error, _ kvrecords.Cascade) error {
	return b.Update(ctx, fn)
}

func (backend) TooLarge(error) bool { return false }

func (b backend) BeginRead() (kv.Tx, error) {
	if b.s.closed.Load() {
		return nil, store.ErrClosed
	}
	tx, err := b.s.db.Begin(false)
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return nil, store.ErrClosed // lost a race with Close
	}
	if err != nil {
		return nil, err
	}
	return boltTx{tx}, nil
}

func (backend) EndRead(tx kv.Tx) { _ = tx.(boltTx).tx.Rollback() }

// The committer validates and appends the audit event of a write
// (committer.go).
func checkAuditEvent(e store.AuditEvent) error { return kvrecords.CheckAuditEvent(e) }

func appendAuditTx(tx *bbolt.Tx, rec *txChanges, e store.AuditEvent) error {
	return kvrecords.AppendAuditTx(rec.writeTx(tx), e)
}

func encodeAuditEvent(e store.AuditEvent) ([]byte, error) { return kvrecords.EncodeAuditEvent(e) }

func appendEncodedAuditTx(tx *bbolt.Tx, rec *txChanges, val []byte) error {
	return kvrecords.AppendEncodedAuditTx(rec.writeTx(tx), val)
}
