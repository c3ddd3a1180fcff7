package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/store"
)

// listAudit returns the events q selects, checking that their Seqs are
// positive and strictly increasing and that there are at most its limit
// (100 when unset).
func listAudit(t *testing.T, s store.Store, q store.AuditQuery) []store.AuditEvent {
	t.Helper()
	got, err := s.ListAuditEvents(t.Context(), q)
	must(t, err, "list audit events")
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	if len(got) > limit {
		t.Fatalf("ListAuditEvents(%+v) returned %d events, limit %d", q, len(got), limit)
	}
	last := q.AfterSeq
	for i, e := range got {
		if e.Seq <= last {
			t.Fatalf("ListAuditEvents(%+v)[%d] has Seq %d after %d: not strictly increasing", q, i, e.Seq, last)
		}
		last = e.Seq
	}
	return got
}

// wantAuditEvents checks that the whole log (read through ListAuditEvents
// pages of 1000) is exactly want, in order, ignoring Seqs, and returns it.
func wantAuditEvents(t *testing.T, s store.Store, want []store.AuditEvent) []store.AuditEvent {
	t.Helper()
	var got []store.AuditEvent
	for {
		var after uint64
		if len(got) > 0 {
			after = got[len(got)-1].Seq
		}
		page := listAudit(t, s, store.AuditQuery{AfterSeq: after, Limit: 1000})
		if len(page) == 0 {
			break
		}
		got = append(got, page...)
	}
	if len(got) != len(want) {
		t.Fatalf("audit log holds %d events, want %d:\n got %+v\nwant %+v", len(got), len(want), got, want)
	}
	for i := range got {
		if !sameAuditEvent(got[i], want[i]) {
			t.Fatalf("audit event %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
	return got
}

// testAuditedWrite: a write whose context carries an event records it
// once, in the same transaction; a refused write records nothing; a write
// without an event records nothing; the caller's event is left as it was.
func testAuditedWrite(t *testing.T, s store.Store) {
	ctx := t.Context()
	wantAuditEvents(t, s, nil)

	ev := NewAuditEvent("RoleService.CreateRole", "role", RoleID(1))
	in := ev
	must(t, s.CreateRole(store.WithAudit(ctx, &in), NewRole(RoleID(1))), "audited create role")
	if in != ev {
		t.Fatalf("the store changed the caller's event:\n got %+v\nwant %+v", in, ev)
	}
	got := wantAuditEvents(t, s, []store.AuditEvent{ev})
	if got[0].Seq == 0 {
		t.Fatal("recorded event has Seq 0")
	}

	// Refused writes: a duplicate, a closure error, a missing record.
	wantErr(t, s.CreateRole(store.WithAudit(ctx, &in), NewRole(RoleID(1))), store.ErrAlreadyExists,
		"audited create duplicate role")
	errRefused := errors.New("refused by closure")
	_, err := s.UpdateRole(store.WithAudit(ctx, &in), RoleID(1), func(r store.Role) (store.Role, error) {
		return r, errRefused
	})
	wantErr(t, err, errRefused, "audited update whose closure fails")
	wantErr(t, s.DeleteToken(store.WithAudit(ctx, &in), ClientID(1)), store.ErrNotFound, "audited delete of unknown token")
	wantErr(t, s.CreateToken(store.WithAudit(ctx, &in), NewToken(ClientID(1), RoleID(9))), store.ErrNotFound,
		"audited create token with unknown role")
	wantAuditEvents(t, s, []store.AuditEvent{ev})

	// Writes without an event.
	must(t, s.CreateRole(ctx, NewRole(RoleID(2))), "create role")
	must(t, s.CreateToken(ctx, NewToken(ClientID(1), RoleID(1))), "create token")
	_, err = s.UpdateRole(ctx, RoleID(2), func(r store.Role) (store.Role, error) { return r, nil })
	must(t, err, "update role")
	wantAuditEvents(t, s, []store.AuditEvent{ev})

	// A second audited write, of another kind, with another event.
	ev2 := NewAuditEvent("TokenService.DeleteToken", "token", ClientID(1))
	ev2.Outcome, ev2.Time = "success", Base.Add(time.Minute)
	in2 := ev2
	must(t, s.DeleteToken(store.WithAudit(ctx, &in2), ClientID(1)), "audited delete token")
	if in2 != ev2 {
		t.Fatalf("the store changed the caller's event:\n got %+v\nwant %+v", in2, ev2)
	}
	got2 := wantAuditEvents(t, s, []store.AuditEvent{ev, ev2})
	if got2[0].Seq != got[0].Seq {
		t.Fatalf("first event's Seq changed from %d to %d", got[0].Seq, got2[0].Seq)
	}
	// The changes themselves happened.
	wantNoToken(t, s, ClientID(1))
	wantRole(t, s, NewRole(RoleID(1)))
}

// testAuditEventValueAtWriteTime: a call that writes twice with one event
// records it twice, each time with the targets it had at that write, and
// with what the write's closure set in it.
func testAuditEventValueAtWriteTime(t *testing.T, s store.Store) {
	ev := NewAuditEvent("RoleService.CreateRole", "role", RoleID(1))
	ctx := store.WithAudit(t.Context(), &ev)
	must(t, s.CreateRole(ctx, NewRole(RoleID(1))), "audited create role 1")
	ev.TargetID, ev.Detail = RoleID(2), "second write"
	must(t, s.CreateRole(ctx, NewRole(RoleID(2))), "audited create role 2")

	// A closure of the write may still change the event: the record is the
	// event as the write's transaction left it, not as the call handed it
	// over.
	_, err := s.UpdateRole(ctx, RoleID(2), func(r store.Role) (store.Role, error) {
		ev.Detail = "set by the closure"
		return r, nil
	})
	must(t, err, "audited update role 2")

	first := NewAuditEvent("RoleService.CreateRole", "role", RoleID(1))
	second := first
	second.TargetID, second.Detail = RoleID(2), "second write"
	third := second
	third.Detail = "set by the closure"
	wantAuditEvents(t, s, []store.AuditEvent{first, second, third})
	if ev.Seq != 0 {
		t.Fatalf("the store set the caller's Seq to %d", ev.Seq)
	}
}

// auditEvents returns n events of refused calls, the i-th at Base + i s.
func auditEvents(from, n int) []store.AuditEvent {
	events := make([]store.AuditEvent, n)
	for i := range events {
		e := NewAuditEvent("TokenService.CreateToken", "token", fmt.Sprintf("target-%04d", from+i))
		e.Outcome, e.Time = "denied", Base.Add(time.Duration(from+i)*time.Second)
		events[i] = e
	}
	return events
}

// testAppendAndListAuditEvents: appended events are listed in order, page
// by page with AfterSeq; the default page is 100; an event carried by the
// context of AppendAuditEvents is not recorded as well.
func testAppendAndListAuditEvents(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.AppendAuditEvents(ctx, nil), "append no audit events")
	wantAuditEvents(t, s, nil)

	events := auditEvents(0, 250)
	carried := NewAuditEvent("Test.Carried", "", "")
	must(t, s.AppendAuditEvents(store.WithAudit(ctx, &carried), events[:10]), "append audit events with an event in ctx")
	must(t, s.AppendAuditEvents(ctx, events[10:]), "append audit events")
	all := wantAuditEvents(t, s, events)

	var after uint64
	for i, want := range []int{100, 100, 50, 0} {
		page := listAudit(t, s, store.AuditQuery{AfterSeq: after, Limit: 100})
		if len(page) != want {
			t.Fatalf("page %d: %d events, want %d", i, len(page), want)
		}
		for j, e := range page {
			if e != all[100*i+j] {
				t.Fatalf("page %d, event %d:\n got %+v\nwant %+v", i, j, e, all[100*i+j])
			}
		}
		if len(page) > 0 {
			after = page[len(page)-1].Seq
		}
	}
	if page := listAudit(t, s, store.AuditQuery{}); len(page) != 100 || page[0] != all[0] {
		t.Fatalf("default query: %d events starting with %+v, want 100 starting with %+v", len(page), page[0], all[0])
	}
	if page := listAudit(t, s, store.AuditQuery{AfterSeq: all[248].Seq, Limit: 10}); len(page) != 1 || page[0] != all[249] {
		t.Fatalf("after the last but one: %+v, want only %+v", page, all[249])
	}
}

// testListAuditEventsTimeFilter: From is inclusive, To exclusive, zero
// bounds are open, and the filter combines with AfterSeq and Limit; a
// filter matching only the end of a long log still finds it.
func testListAuditEventsTimeFilter(t *testing.T, s store.Store) {
	ctx := t.Context()
	const n = 2500 // more than one read transaction's worth in some backends
	events := auditEvents(0, n)
	must(t, s.AppendAuditEvents(ctx, events[:n/2]), "append audit events")
	must(t, s.AppendAuditEvents(ctx, events[n/2:]), "append audit events")
	all := wantAuditEvents(t, s, events)
	at := func(i int) time.Time { return Base.Add(time.Duration(i) * time.Second) }

	check := func(what string, q store.AuditQuery, want []store.AuditEvent) {
		t.Helper()
		got := listAudit(t, s, q)
		if len(got) != len(want) {
			t.Fatalf("%s: %d events, want %d", what, len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s: event %d:\n got %+v\nwant %+v", what, i, got[i], want[i])
			}
		}
	}
	check("[10 s, 20 s)", store.AuditQuery{From: at(10), To: at(20)}, all[10:20])
	check("[10 s, 20 s) in another zone", store.AuditQuery{
		From: at(10).In(time.FixedZone("UTC-07:00", -7*3600)), To: at(20).In(time.FixedZone("UTC+09:00", 9*3600)),
	}, all[10:20])
	check("[10 s + 1 ns, 20 s + 1 ns)", store.AuditQuery{From: at(10).Add(1), To: at(20).Add(1)}, all[11:21])
	check("from 2495 s", store.AuditQuery{From: at(n - 5)}, all[n-5:])
	check("before 3 s", store.AuditQuery{To: at(3)}, all[:3])
	check("[10 s, 20 s) after the 15th", store.AuditQuery{AfterSeq: all[14].Seq, From: at(10), To: at(20)}, all[15:20])
	check("[10 s, 20 s) limit 4", store.AuditQuery{From: at(10), To: at(20), Limit: 4}, all[10:14])
	check("empty range", store.AuditQuery{From: at(20), To: at(20)}, nil)
	check("after everything", store.AuditQuery{From: at(n)}, nil)
	check("limit 1000", store.AuditQuery{Limit: 1000}, all[:1000])
}

// testAuditTimesUTC: an event's time comes back in UTC, at least to the
// microsecond, and the caller's time is left in its zone.
func testAuditTimesUTC(t *testing.T, s store.Store) {
	zone := time.FixedZone("UTC+05:30", 5*3600+30*60)
	at := time.Date(2031, time.March, 4, 5, 6, 7, 123456000, zone)
	ev := NewAuditEvent("RoleService.CreateRole", "role", RoleID(1))
	ev.Time = at
	must(t, s.CreateRole(store.WithAudit(t.Context(), &ev), NewRole(RoleID(1))), "audited create role")
	refused := NewAuditEvent("RoleService.DeleteRole", "role", RoleID(1))
	refused.Time, refused.Outcome = at.Add(time.Hour), "denied"
	must(t, s.AppendAuditEvents(t.Context(), []store.AuditEvent{refused}), "append audit event")
	if ev.Time != at {
		t.Fatalf("the store changed the caller's time to %v", ev.Time)
	}

	got := listAudit(t, s, store.AuditQuery{})
	if len(got) != 2 {
		t.Fatalf("%d events, want 2", len(got))
	}
	for i, want := range []time.Time{at, at.Add(time.Hour)} {
		if !got[i].Time.Equal(want) || got[i].Time.Location() != time.UTC {
			t.Errorf("event %d Time = %v (location %v), want %v in UTC", i, got[i].Time, got[i].Time.Location(), want)
		}
	}
}
