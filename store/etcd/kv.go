package etcd

import (
	"context"
	"errors"

	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/internal/kv"
	"github.com/tokenbroker/tokenbroker/store/internal/kvrecords"
)

// The record logic is store/internal/kvrecords, shared with store/bolt; this
// file runs it on etcd: writes as guarded transactions through the
// committer, cascades split when they exceed etcd's limits (cascade.go),
// reads from the mirror.

var _ kv.Tx = (*Tx)(nil)

type backend struct{ s *Store }

func (b backend) Update(ctx context.Context, fn func(kv.Tx) error) error {
	return b.s.w.do(ctx, func(tx *Tx) error { return fn(tx) })
}

func (b backend) Cascade(ctx context.Context, fn func(kv.Tx) error, c kvrecords.Cascade) error {
	var trim func(context.Context) (bool, error)
	switch {
	case c.Leftovers:
		trim = b.s.trimLeftoverStats(c.Tenant)
	case c.Tenant != "":
		trim = b.s.trimTenant(c.Tenant)
	default:
		trim = b.s.trimAuthTokensOf(c.PrincipalKind, c.PrincipalID)
	}
	return b.s.doCascade(ctx, func(tx *Tx) error { return fn(tx) }, trim)
}

func (backend) TooLarge(err error) bool { return errors.Is(err, errTxnTooLarge) }

// BeginRead holds the mirror's read lock until EndRead: the transaction
// reads one revision.
func (b backend) BeginRead() (kv.Tx, error) {
	if b.s.closed.Load() {
		return nil, store.ErrClosed
	}
	if err := b.s.Stale(); err != nil { // fail closed on a view too old (changes.go)
		return nil, err
	}
	if err := b.s.rlockCurrent(); err != nil {
		return nil, err
	}
	return newReadTx(b.s.m.tree, b.s.m.rev), nil
}

func (b backend) EndRead(kv.Tx) { b.s.m.mu.RUnlock() }

// GetValue reads one key from the mirror without a transaction (mirror
// values are never modified in place, so v stays valid).
func (b backend) GetValue(bucket []byte, key string) ([]byte, bool, error) {
	if b.s.closed.Load() {
		return nil, false, store.ErrClosed
	}
	if err := b.s.Stale(); err != nil {
		return nil, false, err
	}
	if err := b.s.rlockCurrent(); err != nil {
		return nil, false, err
	}
	it, ok := b.s.m.tree.Get(item{key: string(bucket) + "/" + key})
	b.s.m.mu.RUnlock()
	return it.val, ok, nil
}

// The committer validates and appends the audit event of a write
// (committer.go).
func checkAuditEvent(e store.AuditEvent) error { return kvrecords.CheckAuditEvent(e) }

func appendAuditTx(tx *Tx, e store.AuditEvent) error { return kvrecords.AppendAuditTx(tx, e) }
