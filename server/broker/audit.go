package broker

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenbroker/tokenbroker/store"
)

// Audit outcomes.
const (
	AuditSuccess         = "success"
	AuditDenied          = "denied"
	AuditUnauthenticated = "unauthenticated"
)

// auditTarget names what the current call changes, in the audit event the
// call carries (store.WithAudit): the store records the event, with these
// targets, in the same transaction as the write that follows.
func auditTarget(ctx context.Context, kind, id string) {
	if ev := store.AuditFrom(ctx); ev != nil {
		ev.TargetKind, ev.TargetID = kind, id
	}
}

// auditActor names who acts, for calls authenticated by the broker itself
// (login) rather than by the interceptor.
func auditActor(ctx context.Context, kind, id string) {
	if ev := store.AuditFrom(ctx); ev != nil {
		ev.ActorKind, ev.ActorID = kind, id
	}
}

// refusedAudit buffers audit events of refused calls and writes them in
// the background, in batches: writing each synchronously would let a flood
// of unauthenticated requests force a disk sync apiece. A full buffer drops
// events (counted, and logged at flush), so the buffer bounds memory.
type refusedAudit struct {
	ch      chan store.AuditEvent
	dropped atomic.Int64
	// flushing serialises flushes: a flush that finds the queue empty
	// while another flush is still writing what it drained must wait for
	// that write, or it would return before events queued ahead of its
	// call are stored (the periodic flush and Shutdown's, or a test's, may
	// overlap).
	flushing sync.Mutex
	// unwritten is the batch whose write failed last (the store
	// unreachable, a full disk, the flush's context ended): the next flush
	// writes it first, so a failing store delays these events rather than
	// losing them. One batch at most, so memory stays bounded; a write
	// whose outcome the store could not tell (a commit error) may be
	// stored twice, which an audit log prefers to a gap. Guarded by
	// flushing.
	unwritten []store.AuditEvent
}

const refusedAuditBuffer = 10_000

func newRefusedAudit() *refusedAudit {
	return &refusedAudit{ch: make(chan store.AuditEvent, refusedAuditBuffer)}
}

// RecordRefused queues the audit event of a refused call.
func (b *Broker) RecordRefused(ev store.AuditEvent) {
	select {
	case b.refused.ch <- ev:
	default:
		b.refused.dropped.Add(1)
	}
}

// FlushAudit writes the queued events of refused calls, in batches of up
// to 1000, until the queue is empty. When it returns nil, every event
// queued before the call is stored, also when another flush ran meanwhile.
// When a write fails, its batch is kept for the next flush.
func (b *Broker) FlushAudit(ctx context.Context) error {
	b.refused.flushing.Lock()
	defer b.refused.flushing.Unlock()
	if n := b.refused.dropped.Swap(0); n > 0 {
		b.log.WarnContext(ctx, "audit buffer full: refused-call events dropped", "count", n)
	}
	for {
		batch := b.refused.unwritten
		b.refused.unwritten = nil
		if batch == nil {
			batch = make([]store.AuditEvent, 0, 64)
		}
	drain:
		for len(batch) < 1000 {
			select {
			case ev := <-b.refused.ch:
				batch = append(batch, ev)
			default:
				break drain
			}
		}
		if len(batch) == 0 {
			return nil
		}
		if err := b.st.AppendAuditEvents(ctx, batch); err != nil {
			b.refused.unwritten = batch
			return fmt.Errorf("write audit events: %w", err)
		}
	}
}

const maxAuditPage = 1000

// ListAuditEvents pages through the audit log. The page token is the last
// returned sequence number (opaque to callers).
func (b *Broker) ListAuditEvents(ctx context.Context, from, to time.Time, pageToken string, size int) ([]store.AuditEvent, string, error) {
	if size == 0 {
		size = 100
	}
	if size < 0 || size > maxAuditPage {
		return nil, "", Invalid("pageSize: 1 to %d", maxAuditPage)
	}
	var after uint64
	if pageToken != "" {
		raw, err := base64.RawURLEncoding.DecodeString(pageToken)
		if err != nil || len(raw) != 8 {
			return nil, "", Invalid("pageToken: not a token from a previous response")
		}
		after = binary.BigEndian.Uint64(raw)
	}
	if !from.IsZero() && !to.IsZero() && !to.After(from) {
		return nil, "", Invalid("to must be after from")
	}
	events, err := b.st.ListAuditEvents(ctx, store.AuditQuery{AfterSeq: after, From: from, To: to, Limit: size})
	if err != nil {
		return nil, "", fmt.Errorf("list audit events: %w", err)
	}
	next := ""
	if len(events) == size {
		next = AuditPageToken(events[len(events)-1].Seq)
	}
	return events, next, nil
}

// AuditPageToken is the page token that continues the audit log after seq.
func AuditPageToken(seq uint64) string {
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], seq)
	return base64.RawURLEncoding.EncodeToString(buf[:])
}

// FollowAuditEvents calls send for each event after afterSeq (0: only new
// ones) until ctx ends. started is called once with the sequence number it
// starts after, before any event is sent, so a caller can tell its client
// exactly where the stream begins. It polls the store (so it works with
// any backend) every poll interval.
func (b *Broker) FollowAuditEvents(ctx context.Context, afterSeq uint64, poll time.Duration, started func(afterSeq uint64) error, send func(store.AuditEvent) error) error {
	if afterSeq == 0 {
		last, err := b.lastAuditSeq(ctx)
		if err != nil {
			return err
		}
		afterSeq = last
	}
	if err := started(afterSeq); err != nil {
		return err
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		events, err := b.st.ListAuditEvents(ctx, store.AuditQuery{AfterSeq: afterSeq, Limit: maxAuditPage})
		if err != nil {
			return fmt.Errorf("follow audit events: %w", err)
		}
		for _, ev := range events {
			if err := send(ev); err != nil {
				return err
			}
			afterSeq = ev.Seq
		}
		if len(events) == maxAuditPage {
			continue // more are waiting
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// lastAuditSeq returns the newest event's sequence number (0 if none).
func (b *Broker) lastAuditSeq(ctx context.Context) (uint64, error) {
	var last uint64
	for {
		events, err := b.st.ListAuditEvents(ctx, store.AuditQuery{AfterSeq: last, Limit: maxAuditPage})
		if err != nil {
			return 0, fmt.Errorf("read audit log: %w", err)
		}
		if len(events) == 0 {
			return last, nil
		}
		last = events[len(events)-1].Seq
	}
}
