package kvrecords

import (
	"context"
	"fmt"
	"math"

	"github.com/tokenbroker/tokenbroker/store"
)

// Writes whose size depends on their input.
//
// A backend with bounded transactions (Limits.TxnOps: etcd's
// --max-txn-ops, 128 by default) cannot hold a use-time flush of thousands
// of tokens, or a report of 1,000 namespaces, in one transaction. Such a
// write is a sequence of items, each written whole or not at all in one
// transaction, and independent of the others (a token's last use, a
// namespace's snapshot, a database's month of usage); inChunks writes them
// in consecutive transactions of as many items as fit. With no bound (bbolt)
// it is one transaction, as before. What a caller sees after an error part
// way is written on each method.

// auditOps is what the audit event a write's context may carry adds to its
// transaction: a compare on the sequence counter, the counter's put and the
// event's put (two operations).
const auditOps = 2

// perTxn returns how many items of opsPerItem operations (and at most as
// many compares) one transaction holds, with room for an audit event.
func (s *Records) perTxn(opsPerItem int) int {
	if s.txnOps == 0 {
		return math.MaxInt
	}
	return max(1, (s.txnOps-auditOps)/opsPerItem)
}

// inChunks writes items [0, n) with write(ctx, lo, hi), one transaction per
// call, in order, at most per items at a time. A part the backend still
// finds too large (its size in bytes: Backend.TooLarge, reported before
// anything of it is written) is halved. Only the transaction of the last
// item carries the audit event of ctx, so that a call is audited once, when
// it completes. It returns how many items were written (all, or those
// before the part that failed).
func (s *Records) inChunks(ctx context.Context, n, per int, write func(ctx context.Context, lo, hi int) error) (int, error) {
	quiet := store.WithAudit(ctx, nil)
	done := 0
	var run func(lo, hi int) error
	run = func(lo, hi int) error {
		wctx := quiet
		if hi == n {
			wctx = ctx
		}
		err := write(wctx, lo, hi)
		if s.b.TooLarge(err) && hi-lo > 1 {
			mid := lo + (hi-lo)/2
			if err := run(lo, mid); err != nil {
				return err
			}
			return run(mid, hi)
		}
		if err == nil {
			done = hi
		}
		return err
	}
	for lo := 0; lo < n; lo += per {
		if err := run(lo, min(lo+per, n)); err != nil {
			return done, err
		}
	}
	return done, nil
}

// chunksErr wraps err, the error of a write of n items (of what kind:
// items) that inChunks stopped after written.
func chunksErr(what string, n int, items string, written int, err error) error {
	if written > 0 {
		return fmt.Errorf("%s (%d %s, the first %d written): %w", what, n, items, written, err)
	}
	return fmt.Errorf("%s (%d %s): %w", what, n, items, err)
}
