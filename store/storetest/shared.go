package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/store"
)

// RunShared is the conformance suite for backends that several brokers
// share (etcd): newPair returns two handles on one fresh store, as two
// broker processes would hold. Writes through either must be atomic and
// linearizable together, audit Seqs gap-free across both, and each handle
// must read what the other wrote once its change feed delivers it (eventually
// waits for that with a generous bound; it never depends on timing).
func RunShared(t *testing.T, newPair func(t *testing.T) (a, b store.Store)) {
	for _, c := range []struct {
		name string
		run  func(t *testing.T, a, b store.Store)
	}{
		{"BootstrapExactlyOnce", testSharedBootstrapOnce},
		{"ConcurrentCreateSameToken", testSharedCreateSame},
		{"ConcurrentUpdateRole", testSharedUpdateRole},
		{"AuditSeqGapFreeAcrossWriters", testSharedAuditSeq},
		{"DeleteRoleAndCreateTokenRace", testSharedDeleteRoleRace},
		{"ReadsOtherWriters", testSharedReads},
		{"DeleteLastHoldersOfRoleRace", testSharedDeleteLastHolders},
		{"FeedReportsOtherWriters", testSharedFeed},
	} {
		t.Run(c.name, func(t *testing.T) {
			defer watchdog(t.Name())()
			a, b := newPair(t)
			c.run(t, a, b)
		})
	}
}

// eventually polls cond until it holds, for at most a minute.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after a minute", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func testSharedBootstrapOnce(t *testing.T, a, b store.Store) {
	ctx := t.Context()
	mustCreateRoles(t, a, RoleID(1))
	eventually(t, "role visible to b", func() bool { _, err := b.GetRole(ctx, RoleID(1)); return err == nil })
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, s := range []store.Store{a, b} {
		wg.Go(func() {
			org := NewOrganization()
			org.Name = fmt.Sprintf("org-%d", i)
			errs[i] = s.Bootstrap(ctx, org, NewToken(ClientID(i), RoleID(1)))
		})
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, store.ErrAlreadyExists):
			t.Fatalf("bootstrap: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d bootstraps succeeded, want exactly 1 (errors %v)", won, errs)
	}
	orgA, err := a.GetOrganization(ctx)
	must(t, err, "get organization")
	eventually(t, "b sees the same organization", func() bool {
		orgB, err := b.GetOrganization(ctx)
		return err == nil && orgB.Name == orgA.Name
	})
}

func testSharedCreateSame(t *testing.T, a, b store.Store) {
	ctx := t.Context()
	mustCreateRoles(t, a, RoleID(1))
	eventually(t, "role visible to b", func() bool { _, err := b.GetRole(ctx, RoleID(1)); return err == nil })
	const each = 16
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for g := range 2 * each {
		s := []store.Store{a, b}[g%2]
		wg.Go(func() {
			err := s.CreateToken(ctx, NewToken(ClientID(1), RoleID(1)))
			switch {
			case err == nil:
				mu.Lock()
				won++
				mu.Unlock()
			case !errors.Is(err, store.ErrAlreadyExists):
				t.Errorf("create token: %v", err)
			}
		})
	}
	wg.Wait()
	if won != 1 {
		t.Fatalf("%d creates of one client ID succeeded, want 1", won)
	}
}

func testSharedUpdateRole(t *testing.T, a, b store.Store) {
	ctx := t.Context()
	mustCreateRoles(t, a, RoleID(1))
	eventually(t, "role visible to b", func() bool { _, err := b.GetRole(ctx, RoleID(1)); return err == nil })
	const goroutines = 40
	var wg sync.WaitGroup
	for g := range goroutines {
		s := []store.Store{a, b}[g%2]
		wg.Go(func() {
			_, err := s.UpdateRole(ctx, RoleID(1), func(r store.Role) (store.Role, error) {
				r.Actions = append(r.Actions, fmt.Sprintf("action-%02d", g))
				return r, nil
			})
			if err != nil {
				t.Errorf("update role: %v", err)
			}
		})
	}
	wg.Wait()
	want := NewRole(RoleID(1)).Actions
	for g := range goroutines {
		want = append(want, fmt.Sprintf("action-%02d", g))
	}
	slices.Sort(want)
	for name, s := range map[string]store.Store{"a": a, "b": b} {
		eventually(t, "every update visible to "+name, func() bool {
			r, err := s.GetRole(ctx, RoleID(1))
			if err != nil {
				return false
			}
			got := slices.Clone(r.Actions)
			slices.Sort(got)
			return slices.Equal(got, want)
		})
	}
}

func testSharedAuditSeq(t *testing.T, a, b store.Store) {
	ctx := t.Context()
	mustCreateRoles(t, a, RoleID(1))
	eventually(t, "role visible to b", func() bool { _, err := b.GetRole(ctx, RoleID(1)); return err == nil })
	const goroutines, each = 16, 8
	var wg sync.WaitGroup
	for g := range goroutines {
		s := []store.Store{a, b}[g%2]
		wg.Go(func() {
			for i := range each {
				id := ClientID(g*each + i)
				ev := NewAuditEvent("TokenService.CreateToken", "token", id)
				if err := s.CreateToken(store.WithAudit(ctx, &ev), NewToken(id, RoleID(1))); err != nil {
					t.Errorf("create token %s: %v", id, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	const n = goroutines * each
	var events []store.AuditEvent
	eventually(t, "every event visible to b", func() bool {
		page, err := b.ListAuditEvents(ctx, store.AuditQuery{Limit: 1000})
		events = page
		return err == nil && len(page) == n
	})
	seen := map[string]bool{}
	for i, e := range events {
		if e.Seq != uint64(i+1) {
			t.Fatalf("event %d has Seq %d, want %d (Seqs must be gap-free)", i, e.Seq, i+1)
		}
		if seen[e.TargetID] {
			t.Fatalf("event for %s recorded twice", e.TargetID)
		}
		seen[e.TargetID] = true
		if _, err := b.GetToken(ctx, e.TargetID); err != nil {
			t.Fatalf("event for %s, but the token: %v", e.TargetID, err)
		}
	}
}

// testSharedDeleteRoleRace: one handle deletes a role while the other
// creates tokens holding it; afterwards either the role exists or no token
// holds it.
func testSharedDeleteRoleRace(t *testing.T, a, b store.Store) {
	ctx := t.Context()
	for round := range 10 {
		role := RoleID(100 + round)
		mustCreateRoles(t, a, role)
		eventually(t, "role visible to b", func() bool { _, err := b.GetRole(ctx, role); return err == nil })
		var wg sync.WaitGroup
		var created []string
		var mu sync.Mutex
		wg.Go(func() {
			if err := a.DeleteRole(ctx, role, Base); err != nil && !errors.Is(err, store.ErrInUse) {
				t.Errorf("delete role: %v", err)
			}
		})
		wg.Go(func() {
			for i := range 4 {
				id := ClientID(round*10 + i)
				err := b.CreateToken(ctx, NewToken(id, role))
				switch {
				case err == nil:
					mu.Lock()
					created = append(created, id)
					mu.Unlock()
				case !errors.Is(err, store.ErrNotFound):
					t.Errorf("create token: %v", err)
				}
			}
		})
		wg.Wait()
		if _, err := a.GetRole(ctx, role); errors.Is(err, store.ErrNotFound) {
			for _, id := range created {
				if _, err := a.GetToken(ctx, id); err == nil {
					t.Fatalf("round %d: role deleted but token %s holds it", round, id)
				}
			}
		}
	}
}

func testSharedReads(t *testing.T, a, b store.Store) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	mustCreateRoles(t, a, RoleID(1))
	tok := NewToken(ClientID(1), RoleID(1))
	eventually(t, "role visible to b", func() bool { _, err := b.GetRole(ctx, RoleID(1)); return err == nil })
	must(t, b.CreateToken(ctx, tok), "create token through b")
	eventually(t, "token visible to a", func() bool { _, err := a.GetToken(ctx, tok.ClientID); return err == nil })
	must(t, a.DeleteToken(ctx, tok.ClientID), "delete token through a")
	eventually(t, "delete visible to b", func() bool {
		_, err := b.GetToken(ctx, tok.ClientID)
		return errors.Is(err, store.ErrNotFound)
	})
}
