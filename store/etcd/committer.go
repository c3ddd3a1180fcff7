package etcd

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/tokenbroker/tokenbroker/store"
)

// Group commit, as in store/bolt: one committer goroutine takes the queued
// writes, runs their functions on one transaction (tx.go) and commits them
// as one etcd Txn. That is what makes 64 concurrent writers cheap: they
// share one quorum write (and one fsync on each member) instead of queueing
// for 64.
//
// A batch:
//  1. sync: one linearizable read gives etcd's current revision, and the
//     batch waits until the mirror has applied it. Everything the functions
//     read is then at least as new as the moment the batch started, so their
//     results (including errors such as ErrAlreadyExists) are linearizable.
//  2. Each function runs on the shared transaction. One that fails is rolled
//     back (its writes and reads leave nothing) and will get its error; one
//     that would push the transaction past etcd's limits (operations,
//     request size) is rolled back and left for the next batch.
//  3. Commit: one Txn whose compares are everything read and whose
//     operations are everything written. If another writer changed any of
//     it, etcd refuses the Txn; the batch waits until the mirror has the
//     winner's revision and runs again (at most maxConflictRetries times,
//     then ErrConflict).
//  4. On success, the batch waits until the mirror has applied its own
//     revision, then answers: the caller reads its own write right away.
//
// Audit: as in bolt, a write whose context carries an event appends it in
// the same function, so the event is committed exactly when the change is.
// Its Seq comes from a counter key read and written in the same Txn
// (Bucket.NextSequence): gap-free and increasing with commit order across
// every broker of the installation. The etcd revision was not used: it
// counts every write to the whole cluster (other prefixes, use-time
// flushes), so Seqs would have gaps.

// errTxnTooLarge is given to a single write that alone exceeds etcd's
// limits for one transaction.
var errTxnTooLarge = errors.New("write too large for one etcd transaction")

type writeReq struct {
	ctx  context.Context
	fn   func(*Tx) error
	done chan error
	err  error // the function's own error in the current attempt
}

type committer struct {
	s   *Store
	max int

	mu      sync.RWMutex
	closed  bool
	reqs    chan *writeReq
	stopped chan struct{}
}

func newCommitter(s *Store, maxBatch int) *committer {
	c := &committer{s: s, max: maxBatch, reqs: make(chan *writeReq, maxBatch), stopped: make(chan struct{})}
	go c.run()
	return c
}

// do runs fn in a write transaction and returns once it is committed and
// applied to the mirror (nil) or known not to be (the error); see bolt's
// committer for the contract of fn. After a transport error the outcome is
// unknown, and the error says so.
func (c *committer) do(ctx context.Context, fn func(*Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if ev := store.AuditFrom(ctx); ev != nil {
		if err := checkAuditEvent(*ev); err != nil {
			return fmt.Errorf("audit event: %w", err)
		}
		fn = audited(fn, ev)
	}
	r := &writeReq{ctx: ctx, fn: fn, done: make(chan error, 1)}
	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		return store.ErrClosed
	}
	select {
	case c.reqs <- r:
	case <-ctx.Done():
		c.mu.RUnlock()
		return ctx.Err()
	}
	c.mu.RUnlock()
	return <-r.done
}

func audited(fn func(*Tx) error, ev *store.AuditEvent) func(*Tx) error {
	return func(tx *Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		if err := appendAuditTx(tx, *ev); err != nil {
			return fmt.Errorf("audit event: %w", err)
		}
		return nil
	}
}

func (c *committer) close() {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		close(c.reqs)
	}
	c.mu.Unlock()
	<-c.stopped
}

func (c *committer) run() {
	defer close(c.stopped)
	batch := make([]*writeReq, 0, c.max)
	for r := range c.reqs {
		batch = append(batch[:0], r)
	drain:
		for len(batch) < c.max {
			select {
			case r, ok := <-c.reqs:
				if !ok {
					break drain
				}
				batch = append(batch, r)
			default:
				break drain
			}
		}
		start := time.Now()
		c.commit(batch)
		if c.s.opts.OnCommit != nil {
			c.s.opts.OnCommit(len(batch), time.Since(start))
		}
		clear(batch)
	}
}

// commit runs one batch to completion; every request is answered once.
func (c *committer) commit(batch []*writeReq) {
	live := make([]*writeReq, 0, len(batch))
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.done <- err
			continue
		}
		live = append(live, r)
	}
	conflicts := 0
	for len(live) > 0 {
		next, conflict := c.attempt(live)
		if conflict {
			conflicts++
			if conflicts > maxConflictRetries {
				for _, r := range live {
					r.done <- fmt.Errorf("%d concurrent writers won first: %w", conflicts, store.ErrConflict)
				}
				return
			}
		}
		live = next
	}
}

// attempt builds and commits one transaction from the head of live. It
// answers the requests it settles and returns those still to run: the
// deferred ones (too large to fit), or all of them after a conflict.
func (c *committer) attempt(live []*writeReq) (rest []*writeReq, conflict bool) {
	s := c.s
	ctx, cancel := context.WithTimeout(s.bg, s.opts.CallTimeout)
	defer cancel()
	answerAll := func(rs []*writeReq, err error) {
		for _, r := range rs {
			r.done <- err
		}
	}
	if err := s.sync(ctx); err != nil {
		answerAll(live, fmt.Errorf("nothing written: %w", err))
		return nil, false
	}
	base, rev := s.m.snapshot()
	tx := newWriteTx(base, rev)
	var in, deferred []*writeReq
	for _, r := range live {
		if len(deferred) > 0 { // keep arrival order among the deferred
			deferred = append(deferred, r)
			continue
		}
		m := tx.mark()
		r.err = c.call(r.fn, tx)
		if r.err != nil {
			tx.rollback(m)
			in = append(in, r)
			continue
		}
		if cmps, ops, bytes := tx.size(); cmps > s.opts.MaxTxnOps || ops > s.opts.MaxTxnOps || bytes > s.opts.MaxTxnBytes {
			tx.rollback(m)
			if len(in) == 0 {
				r.err = fmt.Errorf("%w (%d compares, %d operations, ~%d bytes; limits %d operations, %d bytes)",
					errTxnTooLarge, cmps, ops, bytes, s.opts.MaxTxnOps, s.opts.MaxTxnBytes)
				in = append(in, r)
				continue
			}
			deferred = append(deferred, r)
			continue
		}
		in = append(in, r)
	}
	answer := func() {
		for _, r := range in {
			r.done <- r.err
		}
	}
	cmps, ops := tx.ops(s.prefix)
	if len(ops) == 0 { // nothing to write: the reads were consistent at rev
		answer()
		return deferred, false
	}
	resp, err := s.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
	if err != nil {
		s.log.Error("etcd write transaction failed", "batch", len(in), "err", err.Error())
		answerAll(in, etcdErr("commit (outcome unknown)", err))
		return deferred, false
	}
	if !resp.Succeeded {
		// Another writer changed something we read: catch up and rerun.
		if err := s.waitRev(ctx, resp.Header.Revision); err != nil {
			answerAll(live, fmt.Errorf("nothing written: %w", err))
			return nil, false
		}
		return live, true
	}
	if err := s.waitRev(ctx, resp.Header.Revision); err != nil {
		// Committed, so success; later reads here wait until the mirror
		// has it (rlockCurrent). Only then: in the normal case the wait
		// above already made it visible, and a read must not wait for
		// other callers' writes still in flight (the Check path would
		// stall behind every concurrent write's watch round trip).
		s.noteWritten(resp.Header.Revision)
		s.log.Warn("write committed but the local mirror lags", "revision", resp.Header.Revision, "err", err.Error())
	}
	answer()
	return deferred, false
}

// call turns a panic in fn into that caller's error.
func (c *committer) call(fn func(*Tx) error, tx *Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			c.s.log.Error("panic in write function", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = fmt.Errorf("panic in write function: %v", p)
		}
	}()
	return fn(tx)
}
