package bolt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"go.etcd.io/bbolt"

	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/internal/feed"
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
// and a lone writer is never delayed. The writers just answered are waited
// for briefly so that concurrent writers stay in one batch (regrouping,
// below).
//
// If one function fails, the transaction is rolled back, that request is
// set aside with its error and the others are re-run in a fresh
// transaction. The refusal is NOT answered yet: it was evaluated against
// the effects of the requests before it in the same batch, which nobody can
// see until they commit and which may never commit (a crash, a disk error).
// Answering it early told a caller "not found" for a token another request
// had deleted only in an uncommitted transaction, so a Check that started
// after the answer could still find the token live, or find it live for
// good after a crash. So every answer of a batch, success or refusal,
// leaves only after the batch's final transaction has committed:
//
//   - Serial order. Functions must be pure and deterministic (the same
//     state gives the same result; they may run more than once). When the
//     request at position i fails, the i before it succeeded and, re-run
//     on the same state, succeed again, so every later failure is at a
//     position >= i and the prefix a refusal was evaluated against is a
//     prefix of the final, committed list. The answers therefore equal
//     the serial order "committed requests in batch order, each refusal
//     inserted at its position", every refusal seeing exactly a committed
//     state. (Should a function break the rule and fail earlier than a
//     refusal's position on a re-run, that refusal's prefix is gone and it
//     is re-evaluated as below.)
//   - Commit error. The committed requests get the error (the disk leaves
//     their outcome unknown). The refusals were evaluated against a state
//     that did not commit, so they are re-run once, as a fresh batch,
//     against the state that did; if that commit fails too they get its
//     error.
//   - A batch whose every request fails commits nothing: each failed at
//     position 0, against the state the previous batch committed, so the
//     refusals are answered at once.
//
// Requests whose context ended while queued never run and are answered at
// once: their error means "not written", whatever the batch does. A
// refusal costs its caller one batch commit of waiting; successful writes
// are answered exactly as before, so group commit keeps its throughput.
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

	// update runs a write transaction: db.Update, which tests may wrap to
	// fail a commit. onAnswer, when set (tests), is called with each
	// answer just before it is sent.
	update   func(func(*bbolt.Tx) error) error
	onAnswer func(err error)
	onCommit func(batch int, took time.Duration) // optional (Options.OnCommit)

	// changes collects what the current transaction writes, and publish
	// hands a committed batch's changes to the change feed before the
	// batch is answered (changes.go). Both are used on the committer
	// goroutine only.
	changes txChanges
	publish func([]store.Change)
	windows *feed.Feed // opens and closes each batch's window (store.ChangeNotifier)
}

func newCommitter(db *bbolt.DB, log *slog.Logger, maxBatch int, onCommit func(int, time.Duration), f *feed.Feed) *committer {
	c := &committer{
		db:      db,
		log:     log,
		max:     maxBatch,
		reqs:    make(chan *writeReq, maxBatch),
		stopped: make(chan struct{}),
	}
	c.update = db.Update
	c.onCommit = onCommit
	if f != nil {
		c.publish, c.windows = f.Publish, f
	}
	go c.run()
	return c
}

// do runs fn in a write transaction and returns once it is committed (nil)
// or known not to be (the error). An error fn returns is answered only
// once the state it was evaluated against has committed (see the top of
// the file). fn may run more than once, must give the same result on the
// same state and must have no effect outside tx except recording results
// that the caller reads only after do returns nil.
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
		ahead, err := encodeAhead(*ev)
		if err != nil {
			return fmt.Errorf("audit event: %w", err)
		}
		fn = audited(fn, &c.changes, ev, ahead)
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
//
// ahead is the event as do found it, already encoded (encodeAhead): when
// *ev is still equal to it, the encoded record is appended as it is, so
// validating and encoding the event is not done inside the transaction,
// where every other writer waits.
func audited(fn func(*bbolt.Tx) error, rec *txChanges, ev *store.AuditEvent, ahead encodedEvent) func(*bbolt.Tx) error {
	return func(tx *bbolt.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		var err error
		if e := *ev; ahead.val != nil && e == ahead.event {
			err = appendEncodedAuditTx(tx, rec, ahead.val)
		} else {
			err = appendAuditTx(tx, rec, e)
		}
		if err != nil {
			return fmt.Errorf("audit event: %w", err)
		}
		return nil
	}
}

// encodedEvent is an audit event and its encoded record (val nil: not
// encoded ahead).
type encodedEvent struct {
	event store.AuditEvent
	val   []byte
}

// encodeAhead validates e and encodes it before its write is queued. An
// event without a Time is only validated: the transaction stamps it with
// the commit's clock and encodes it then.
func encodeAhead(e store.AuditEvent) (encodedEvent, error) {
	if e.Time.IsZero() {
		return encodedEvent{}, checkAuditEvent(e)
	}
	val, err := encodeAuditEvent(e)
	if err != nil {
		return encodedEvent{}, err
	}
	return encodedEvent{event: e, val: val}, nil
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

// run is the committer goroutine: it forms a batch of the next request and
// whatever else is queued, commits it, and repeats until reqs is closed
// and drained.
func (c *committer) run() {
	defer close(c.stopped)
	batch := make([]*writeReq, 0, c.max)
	var regroup regrouping
	for r := range c.reqs {
		batch = append(batch[:0], r)
		batch = regroup.wait(c.reqs, batch, c.max)
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
		took := time.Since(start)
		regroup.committed(len(batch), len(c.reqs), took)
		if c.onCommit != nil {
			c.onCommit(len(batch), took)
		}
		clear(batch) // let answered requests be collected
	}
}

// regrouping keeps concurrent writers in one batch. Without it, writers
// answered at the end of a commit come back while the next batch (the
// writers that queued during the commit) is already committing, so they
// form the batch after it: N concurrent writers split into two cohorts
// that alternate, each commit carrying about N/2 (measured: ~19-31 of 64)
// and throughput bounded by (N/2) / commit time. So after a commit that
// answered n writers while q more were queued, the next batch waits for up
// to n+q requests, at most half the last commit's duration (and never more
// than maxRegroupWait): the writers just answered need only a round trip
// to come back, which is shorter than a commit (two fsyncs). A lone writer
// is never delayed (n+q = 1: its own request completes the batch), and
// neither is any batch whose writers all come back: the wait ends as soon
// as the expected number is queued.
type regrouping struct {
	expect   int           // writers active at the end of the last commit
	patience time.Duration // how long the next batch may wait for them
}

// maxRegroupWait bounds the wait, whatever a slow commit took.
const maxRegroupWait = 5 * time.Millisecond

func (g *regrouping) committed(answered, queued int, took time.Duration) {
	g.expect = answered + queued
	g.patience = min(took/2, maxRegroupWait)
}

// wait adds requests from reqs to batch until it holds the expected
// number (or max), reqs is closed, or the wait is over.
func (g *regrouping) wait(reqs <-chan *writeReq, batch []*writeReq, max int) []*writeReq {
	want := min(g.expect, max)
	if len(batch)+len(reqs) >= want || g.patience <= 0 {
		return batch
	}
	timer := time.NewTimer(g.patience)
	defer timer.Stop()
	for len(batch) < want {
		select {
		case r, ok := <-reqs:
			if !ok {
				return batch
			}
			batch = append(batch, r)
		case <-timer.C:
			return batch
		}
	}
	return batch
}

// refusal is a request whose function failed in a batch, held back until
// the batch's outcome is known. pos is its position in the list it failed
// in: the requests before it are the prefix it was evaluated against.
type refusal struct {
	r   *writeReq
	err error
	pos int
}

// reevaluations bounds how often a batch's refusals are re-run against a
// newer committed state (after a commit error, see the top of the file).
const reevaluations = 1

// commit runs one batch to completion; every request in it is answered
// exactly once, and none before the state its answer describes has
// committed.
func (c *committer) commit(batch []*writeReq) {
	for round := 0; len(batch) > 0; round++ {
		batch = c.commitOnce(batch, round == reevaluations)
	}
}

// commitOnce runs batch until a transaction commits (or nothing is left to
// commit), answers what it can and returns the refusals that must be
// evaluated again against the state that committed. final means there is
// no next round: refusals are answered whatever happened.
func (c *committer) commitOnce(batch []*writeReq, final bool) (again []*writeReq) {
	// Callers that gave up while queued are answered without running, so
	// their error means "not written".
	live := batch[:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			c.answer(r, err)
			continue
		}
		live = append(live, r)
	}

	var refused []refusal
	var err error
	var window []store.Change // opened before the commit, closed below
	for len(live) > 0 {
		failed, failErr := -1, error(nil)
		err = c.update(func(tx *bbolt.Tx) error {
			c.changes.reset() // a re-run starts from the committed state
			for i, r := range live {
				if err := c.call(r.fn, tx); err != nil {
					failed, failErr = i, err
					return err
				}
			}
			// Everything ran: the commit follows, and a read may see it
			// before Commit returns.
			if c.windows != nil && c.windows.Windowed() {
				window = c.changes.peek()
				c.windows.Open(window)
			}
			return nil
		})
		c.changes.endTx()
		if failed < 0 {
			break // committed, or the commit failed
		}
		err = nil
		// Rolled back. A refusal evaluated against a longer prefix than
		// the one that now stands no longer describes a state that can
		// commit (a function that was not deterministic): evaluate it
		// again.
		kept := refused[:0]
		for _, f := range refused {
			if f.pos > failed {
				again = append(again, f.r)
			} else {
				kept = append(kept, f)
			}
		}
		refused = append(kept, refusal{r: live[failed], err: failErr, pos: failed})
		// Re-run the others without the failed one; the ones before it
		// succeeded once and, being pure, will do so again.
		live = slices.Delete(live, failed, failed+1)
	}

	if err == nil && len(live) > 0 && c.publish != nil {
		// Committed and durable: the feed sees it before any caller of
		// the batch learns the outcome (changes.go).
		if changes := c.changes.take(); len(changes) > 0 {
			c.publish(changes)
		}
	}
	if window != nil {
		c.windows.Close(window) // committed and delivered, or failed
	}
	if err != nil {
		c.log.Error("write transaction failed", "batch", len(live), "refused", len(refused), "err", err)
		// The refusals saw a state that never committed.
		for _, f := range refused {
			again = append(again, f.r)
		}
		refused = nil
	}
	for _, r := range live {
		c.answer(r, err)
	}
	for _, f := range refused {
		c.answer(f.r, f.err)
	}
	if final && len(again) > 0 {
		// Out of rounds: the caller learns the write did not happen (a
		// refusal changes nothing) but not against which state.
		if err == nil {
			err = errors.New("write refused against a state that did not commit; retry")
		}
		for _, r := range again {
			c.answer(r, err)
		}
		return nil
	}
	return again
}

// answer sends r its outcome. The onAnswer hook (tests) sees each answer
// just before it leaves.
func (c *committer) answer(r *writeReq, err error) {
	if c.onAnswer != nil {
		c.onAnswer(err)
	}
	r.done <- err
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
