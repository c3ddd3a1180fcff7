package bolt

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"go.etcd.io/bbolt"

	"github.com/tokenbroker/tokenbroker/store"
)

// Group commit.
//
// Durability: a write must return only after the transaction holding it has
// committed, i.e. after bbolt's fsync. We cannot acknowledge early as etcd's
// backend does, because we have no write-ahead log to replay after a crash.
//
// Throughput: one db.Update per write pays one fsync per write, and bbolt
// allows a single writer at a time, so N concurrent writers queue for N
// fsyncs. bbolt's own db.Batch merges writers, but only by waiting
// MaxBatchDelay (10 ms) for company: a lone writer always pays that delay,
// and setting it to 0 forms no batches at all.
//
// So one committer goroutine owns every write transaction. It takes the
// next request, drains whatever else is already queued (up to MaxBatch),
// runs all their functions in one transaction and answers each caller after
// the commit returns. Requests that arrive during an fsync wait in the
// channel and form the next batch, so batches grow with load by themselves
// and a lone writer is never delayed.
//
// If one function fails, the transaction is rolled back, that caller gets
// its error and the others are re-run in a fresh transaction. That equals a
// serial order in which the failed function ran (after the ones before it)
// and changed nothing; it is why functions must be pure and may run more
// than once. A commit error is given to every caller of the batch.
//
// Close stops accepting requests, then commits every request already
// queued before the committer exits: nothing a caller handed over is
// dropped or left without an answer.
//
// Audit: the committer is the one place that records the audit event a
// write's context carries (store.WithAudit). do wraps the write function
// (audited) so that each run of it that succeeds appends the event in the
// same transaction: the event is committed exactly when the change is. A
// run that fails, or a batch that rolls back and re-runs, leaves only the
// committed run's append behind.

// writeReq is one caller's write. done is buffered so that answering never
// blocks the committer.
type writeReq struct {
	ctx  context.Context
	fn   func(*bbolt.Tx) error
	done chan error
}

type committer struct {
	db  *bbolt.DB
	log *slog.Logger
	max int

	// mu orders sends on reqs against close(reqs): senders hold it shared,
	// close holds it exclusively, so no send can hit a closed channel.
	mu      sync.RWMutex
	closed  bool
	reqs    chan *writeReq
	stopped chan struct{} // closed when run returns

	onCommit func(batch int, took time.Duration) // optional (Options.OnCommit)
}

func newCommitter(db *bbolt.DB, log *slog.Logger, maxBatch int, onCommit func(int, time.Duration)) *committer {
	c := &committer{
		db:      db,
		log:     log,
		max:     maxBatch,
		reqs:    make(chan *writeReq, maxBatch),
		stopped: make(chan struct{}),
	}
	c.onCommit = onCommit
	go c.run()
	return c
}

// do runs fn in a write transaction and returns once it is committed (nil)
// or known not to be (the error). fn may run more than once and must have
// no effect outside tx except recording results that the caller reads only
// after do returns nil.
//
// ctx is honoured until the committer picks the request up; after that the
// caller waits for the outcome (at most one batch commit), so an error
// never hides a write that did happen, except for commit errors, where the
// disk itself leaves the outcome unknown.
//
// If ctx carries an audit event, fn is wrapped by audited; an invalid event
// fails the write before it is queued. A caller that writes events itself
// (AppendAuditEvents) passes a context whose event is nil.
func (c *committer) do(ctx context.Context, fn func(*bbolt.Tx) error) error {
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

// audited returns fn followed, in the same transaction and only if fn
// succeeds, by the append of a copy of *ev as it is at that moment (so a
// closure run by fn may still have set its targets). The committer reads
// *ev while its caller waits in do: the send on reqs orders the caller's
// writes to it before the read, and the caller touches it again only after
// its answer. The committer never writes *ev: the Seq exists only in the
// stored copy.
func audited(fn func(*bbolt.Tx) error, ev *store.AuditEvent) func(*bbolt.Tx) error {
	return func(tx *bbolt.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		if err := appendAuditTx(tx, *ev); err != nil {
			return fmt.Errorf("audit event: %w", err)
		}
		return nil
	}
}

// close stops accepting requests and waits until every queued one has been
// committed and answered.
func (c *committer) close() {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		close(c.reqs)
	}
	c.mu.Unlock()
	<-c.stopped
}

// lingerMax bounds how long the committer waits for stragglers when the
// previous batch suggests more writers are on their way (see run).
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
		if c.onCommit != nil {
			c.onCommit(len(batch), time.Since(start))
		}
		clear(batch) // let answered requests be collected
	}
}

// commit runs one batch to completion; every request in it is answered
// exactly once.
func (c *committer) commit(batch []*writeReq) {
	// Callers that gave up while queued are answered without running, so
	// their error means "not written".
	live := batch[:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.done <- err
			continue
		}
		live = append(live, r)
	}

	for len(live) > 0 {
		failed, failErr := -1, error(nil)
		err := c.db.Update(func(tx *bbolt.Tx) error {
			for i, r := range live {
				if err := c.call(r.fn, tx); err != nil {
					failed, failErr = i, err
					return err
				}
			}
			return nil
		})
		if failed < 0 {
			if err != nil {
				c.log.Error("write transaction failed", "batch", len(live), "err", err)
			}
			for _, r := range live {
				r.done <- err
			}
			return
		}
		// Rolled back. Re-run the others without the failed one; the ones
		// before it succeeded once and, being pure, will do so again.
		live[failed].done <- failErr
		live = slices.Delete(live, failed, failed+1)
	}
}

// call turns a panic in fn into that caller's error, so one bad function
// cannot kill the goroutine every writer depends on.
func (c *committer) call(fn func(*bbolt.Tx) error, tx *bbolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("panic in write function", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = fmt.Errorf("panic in write function: %v", p)
		}
	}()
	return fn(tx)
}
