package kvrecords

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
	"unicode/utf8"

	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/internal/kv"
)

const (
	// maxAuditFieldLen bounds each string field of an audit event.
	maxAuditFieldLen = 1024
	// maxAuditListLimit caps ListAuditEvents' page size.
	maxAuditListLimit = 1000
	// auditScanChunk bounds the entries one read transaction of
	// ListAuditEvents scans: a filter that matches little walks the log in
	// several short transactions instead of holding one open throughout.
	auditScanChunk = 1000
)

// checkAuditEvent validates an event: an Action, and string fields of at
// most maxAuditFieldLen bytes of valid UTF-8 (the encoding would silently
// replace invalid bytes; an audit record must read back as written). The
// Seq is ignored (the store assigns it). Times outside years 0-9999 are
// refused by the encoding.
func checkAuditEvent(e store.AuditEvent) error {
	if e.Action == "" {
		return errors.New("action is required")
	}
	fields := []struct {
		name, v string
	}{
		{"RequestID", e.RequestID}, {"ActorKind", e.ActorKind}, {"ActorID", e.ActorID},
		{"Action", e.Action}, {"TargetKind", e.TargetKind}, {"TargetID", e.TargetID},
		{"Outcome", e.Outcome}, {"Detail", e.Detail},
	}
	for _, f := range fields {
		if len(f.v) > maxAuditFieldLen {
			return fmt.Errorf("%s longer than %d bytes (%d)", f.name, maxAuditFieldLen, len(f.v))
		}
		if !utf8.ValidString(f.v) {
			return fmt.Errorf("%s is not valid UTF-8", f.name)
		}
	}
	return nil
}

// appendAuditTx validates e and appends it under the next Seq; a zero Time
// becomes the current time. e is a copy: nothing of the caller's changes.
func appendAuditTx(tx kv.Tx, e store.AuditEvent) error {
	if err := checkAuditEvent(e); err != nil {
		return err
	}
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	val, err := encodeAuditEvent(e)
	if err != nil {
		return err
	}
	return appendEncodedAuditTx(tx, val)
}

// appendEncodedAuditTx appends an event encoded by encodeAuditEvent under
// the next Seq. val must not be modified afterwards (the backend may keep
// it until commit).
func appendEncodedAuditTx(tx kv.Tx, val []byte) error {
	b := tx.Bucket(bucketAudit)
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	return b.Put(be64(seq), val)
}

// AppendAuditEvents implements store.Store. Every event is validated before
// anything is written; one invalid event fails the call and nothing of it
// is written. Each event gets the next Seq in slice order (a Seq the caller
// set is ignored); a zero Time becomes the commit-time clock. An audit event
// carried by ctx is not recorded for this call (the events are the record).
// An empty call writes nothing.
func (s *Records) AppendAuditEvents(ctx context.Context, events []store.AuditEvent) error {
	for i, e := range events {
		if err := checkAuditEvent(e); err != nil {
			return fmt.Errorf("append audit events: event %d (action %q): %w", i, e.Action, err)
		}
	}
	if len(events) == 0 {
		return nil
	}
	events = append([]store.AuditEvent(nil), events...) // the caller may reuse its slice once we return
	// In a backend with bounded transactions: consecutive transactions,
	// each atomic and in order (the events are validated above, so only a
	// backend failure can stop the sequence part-way; Seqs stay gap-free).
	written, err := s.inChunks(store.WithAudit(ctx, nil), len(events), s.perTxn(1), func(ctx context.Context, lo, hi int) error {
		return s.update(ctx, func(tx kv.Tx) error {
			for _, e := range events[lo:hi] {
				if err := appendAuditTx(tx, e); err != nil {
					return err
				}
			}
			return nil
		})
	})
	if err != nil {
		return chunksErr("append audit events", len(events), "events", written, err)
	}
	return nil
}

// ListAuditEvents implements store.Store. A Limit above 1000 is capped at
// 1000. The scan starts after AfterSeq and goes on until Limit events match
// or the log ends, in read transactions of at most auditScanChunk entries
// each (the Time filter cannot use the key order: Times are the callers'
// and need not increase with Seq). A page is therefore not one snapshot,
// but Seqs only grow with commits, so paging with AfterSeq = the last
// returned Seq visits every event exactly once. ctx is checked between
// transactions.
func (s *Records) ListAuditEvents(ctx context.Context, q store.AuditQuery) ([]store.AuditEvent, error) {
	limit := q.Limit
	switch {
	case limit <= 0:
		limit = defaultListLimit
	case limit > maxAuditListLimit:
		limit = maxAuditListLimit
	}
	inRange := func(t time.Time) bool {
		return (q.From.IsZero() || !t.Before(q.From)) && (q.To.IsZero() || t.Before(q.To))
	}
	var list []store.AuditEvent
	after := q.AfterSeq
	for done := after == math.MaxUint64; !done; {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("list audit events: %w", err)
		}
		err := s.view(func(tx kv.Tx) error {
			c := tx.Bucket(bucketAudit).Cursor()
			k, v := c.Seek(be64(after + 1))
			for scanned := 0; scanned < auditScanChunk; scanned++ {
				if k == nil {
					done = true
					return nil
				}
				if len(k) != 8 {
					return fmt.Errorf("corrupt audit key %x", k)
				}
				seq := binary.BigEndian.Uint64(k)
				e, err := decodeAuditEvent(seq, v)
				if err != nil {
					return fmt.Errorf("audit event %d: %w", seq, err)
				}
				after = seq
				if inRange(e.Time) {
					list = append(list, e)
					if len(list) == limit {
						done = true
						return nil
					}
				}
				if seq == math.MaxUint64 {
					done = true
					return nil
				}
				k, v = c.Next()
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("list audit events: %w", err)
		}
	}
	return list, nil
}

// CheckAuditEvent validates an event before a backend's committer accepts
// the write carrying it.
func CheckAuditEvent(e store.AuditEvent) error { return checkAuditEvent(e) }

// AppendAuditTx appends e to the audit log in tx: a backend's committer
// runs it in the transaction of the write the event records.
func AppendAuditTx(tx kv.Tx, e store.AuditEvent) error { return appendAuditTx(tx, e) }

// EncodeAuditEvent validates and encodes e as AppendAuditTx stores it, so
// that a committer can encode an event before its transaction and append
// it with AppendEncodedAuditTx. e.Time must be set (AppendAuditTx gives a
// zero Time the commit's clock, which is not known before).
func EncodeAuditEvent(e store.AuditEvent) ([]byte, error) {
	if e.Time.IsZero() {
		return nil, errors.New("time is required")
	}
	if err := checkAuditEvent(e); err != nil {
		return nil, err
	}
	return encodeAuditEvent(e)
}

// AppendEncodedAuditTx appends an event EncodeAuditEvent encoded, as
// AppendAuditTx appends it. val must not be modified afterwards.
func AppendEncodedAuditTx(tx kv.Tx, val []byte) error { return appendEncodedAuditTx(tx, val) }
