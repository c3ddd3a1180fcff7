package bolt

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/storetest"
)

// TestAuditedBatchRerun queues audited writes into one batch, some of
// which fail after writing. The batch is rolled back and re-run around
// each failure; only the committed runs' events may remain: one per
// successful write, none for a failed one, under consecutive Seqs (the
// rolled-back sequence numbers are reused).
func TestAuditedBatchRerun(t *testing.T) {
	s, _ := openTest(t, Options{})
	release, blocked := blockCommitter(t, s)

	const n = 12
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ev := storetest.NewAuditEvent("Test.Write", "key", fmt.Sprintf("key-%02d", i))
			ctx := store.WithAudit(context.Background(), &ev)
			errs[i] = s.w.do(ctx, func(tx *bbolt.Tx) error {
				if err := tx.Bucket(testBucket).Put([]byte(ev.TargetID), []byte("v")); err != nil {
					return err
				}
				if i%4 == 1 {
					return fmt.Errorf("request %d fails after writing", i)
				}
				return nil
			})
		})
	}
	waitQueued(t, s, n)
	release()
	if err := <-blocked; err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	events, err := s.ListAuditEvents(context.Background(), store.AuditQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	targets := map[string]bool{}
	for i, e := range events {
		if e.Seq != uint64(i+1) {
			t.Errorf("event %d has Seq %d, want %d", i, e.Seq, i+1)
		}
		if targets[e.TargetID] {
			t.Errorf("event of %s recorded twice", e.TargetID)
		}
		targets[e.TargetID] = true
	}
	for i := range n {
		failing := i%4 == 1
		key := fmt.Sprintf("key-%02d", i)
		if (errs[i] != nil) != failing {
			t.Errorf("request %d: error %v, want failing=%v", i, errs[i], failing)
		}
		if targets[key] == failing {
			t.Errorf("request %d (failing=%v): event recorded=%v", i, failing, targets[key])
		}
	}
	if want := n - n/4; len(events) != want {
		t.Errorf("%d events, want %d", len(events), want)
	}
}

// TestAuditEventValidation: an invalid event fails the call that carries
// it, and nothing of that call is written.
func TestAuditEventValidation(t *testing.T) {
	s, _ := openTest(t, Options{})
	ctx := context.Background()
	valid := storetest.NewAuditEvent("Test.Valid", "role", storetest.RoleID(1))
	for name, mutate := range map[string]func(*store.AuditEvent){
		"no action":            func(e *store.AuditEvent) { e.Action = "" },
		"long request ID":      func(e *store.AuditEvent) { e.RequestID = strings.Repeat("r", maxAuditFieldLen+1) },
		"long detail":          func(e *store.AuditEvent) { e.Detail = strings.Repeat("d", maxAuditFieldLen+1) },
		"invalid UTF-8":        func(e *store.AuditEvent) { e.ActorID = "\xff" },
		"time after 9999":      func(e *store.AuditEvent) { e.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) },
		"long target ID":       func(e *store.AuditEvent) { e.TargetID = strings.Repeat("t", maxAuditFieldLen+1) },
		"long outcome":         func(e *store.AuditEvent) { e.Outcome = strings.Repeat("o", maxAuditFieldLen+1) },
		"long actor kind":      func(e *store.AuditEvent) { e.ActorKind = strings.Repeat("a", maxAuditFieldLen+1) },
		"long target kind":     func(e *store.AuditEvent) { e.TargetKind = strings.Repeat("k", maxAuditFieldLen+1) },
		"long action":          func(e *store.AuditEvent) { e.Action = strings.Repeat("x", maxAuditFieldLen+1) },
		"long actor ID":        func(e *store.AuditEvent) { e.ActorID = strings.Repeat("i", maxAuditFieldLen+1) },
		"invalid UTF-8 detail": func(e *store.AuditEvent) { e.Detail = "ok\xc3" },
	} {
		bad := valid
		mutate(&bad)
		if err := s.AppendAuditEvents(ctx, []store.AuditEvent{valid, bad}); err == nil {
			t.Errorf("%s: AppendAuditEvents accepted the event", name)
		}
		if err := s.CreateRole(store.WithAudit(ctx, &bad), storetest.NewRole(storetest.RoleID(1))); err == nil {
			t.Errorf("%s: audited CreateRole accepted the event", name)
		}
	}
	if _, err := s.GetRole(ctx, storetest.RoleID(1)); err == nil {
		t.Error("a write with an invalid audit event was written")
	}
	if events, err := s.ListAuditEvents(ctx, store.AuditQuery{}); err != nil || len(events) != 0 {
		t.Errorf("after refused calls: %d events, err %v; want none", len(events), err)
	}

	// The limit is inclusive.
	long := valid
	long.Detail = strings.Repeat("d", maxAuditFieldLen)
	if err := s.AppendAuditEvents(ctx, []store.AuditEvent{long}); err != nil {
		t.Errorf("detail of %d bytes: %v", maxAuditFieldLen, err)
	}
}

// TestAuditZeroTimeIsCommitTime: an event without a time is stored with
// the current time, in UTC; the caller's event keeps its zero time.
func TestAuditZeroTimeIsCommitTime(t *testing.T) {
	s, _ := openTest(t, Options{})
	ctx := context.Background()
	ev := storetest.NewAuditEvent("RoleService.CreateRole", "role", storetest.RoleID(1))
	ev.Time = time.Time{}
	before := time.Now()
	if err := s.CreateRole(store.WithAudit(ctx, &ev), storetest.NewRole(storetest.RoleID(1))); err != nil {
		t.Fatal(err)
	}
	refused := ev
	if err := s.AppendAuditEvents(ctx, []store.AuditEvent{refused}); err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	if !ev.Time.IsZero() {
		t.Errorf("the caller's event got time %v", ev.Time)
	}
	events, err := s.ListAuditEvents(ctx, store.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 {
		t.Fatalf("%d events, want 2", len(events))
	}
	for i, e := range events {
		if e.Time.Before(before) || e.Time.After(after) || e.Time.Location() != time.UTC {
			t.Errorf("event %d Time = %v, want a UTC time in [%v, %v]", i, e.Time, before, after)
		}
	}
}

// TestListAuditEventsBounds: Limit is capped at 1000, and AfterSeq at the
// top of the range selects nothing (no overflow to the start).
func TestListAuditEventsBounds(t *testing.T) {
	s, _ := openTest(t, Options{})
	ctx := context.Background()
	events := make([]store.AuditEvent, maxAuditListLimit+50)
	for i := range events {
		events[i] = storetest.NewAuditEvent("Test.Refused", "token", fmt.Sprint(i))
	}
	if err := s.AppendAuditEvents(ctx, events); err != nil {
		t.Fatal(err)
	}
	got, err := s.ListAuditEvents(ctx, store.AuditQuery{Limit: math.MaxInt})
	if err != nil || len(got) != maxAuditListLimit {
		t.Fatalf("Limit MaxInt: %d events, err %v; want %d", len(got), err, maxAuditListLimit)
	}
	got, err = s.ListAuditEvents(ctx, store.AuditQuery{AfterSeq: math.MaxUint64})
	if err != nil || len(got) != 0 {
		t.Fatalf("AfterSeq MaxUint64: %d events, err %v; want none", len(got), err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.ListAuditEvents(cancelled, store.AuditQuery{}); err == nil {
		t.Fatal("ListAuditEvents with a cancelled context succeeded")
	}
}
