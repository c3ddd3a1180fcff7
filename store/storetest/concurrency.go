package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tokenbroker/tokenbroker/store"
)

// These cases are meant for -race. They check outcomes only, never timing.

func testConcurrentCreates(t *testing.T, s store.Store) {
	mustCreateRoles(t, s, RoleID(1), RoleID(2), RoleID(3))
	const goroutines, each = 64, 20
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				tok := NewToken(ClientID(g*each+i), RoleID(1), RoleID(2), RoleID(3))
				if err := s.CreateToken(t.Context(), tok); err != nil {
					t.Errorf("create token %s: %v", tok.ClientID, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for n := range goroutines * each {
		wantToken(t, s, NewToken(ClientID(n), RoleID(1), RoleID(2), RoleID(3)))
	}
	if seen := listAll(t, s, 500, nil); len(seen) != goroutines*each {
		t.Fatalf("ListTokens sees %d tokens, want %d", len(seen), goroutines*each)
	}
}

// testConcurrentUpdateRole: each closure appends one distinct action to
// what it read; a lost update would drop one.
func testConcurrentUpdateRole(t *testing.T, s store.Store) {
	mustCreateRoles(t, s, RoleID(1))
	const goroutines = 50
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			_, err := s.UpdateRole(t.Context(), RoleID(1), func(r store.Role) (store.Role, error) {
				r.Actions = append(r.Actions, fmt.Sprintf("action-%02d", g))
				return r, nil
			})
			if err != nil {
				t.Errorf("update role: %v", err)
			}
		})
	}
	wg.Wait()

	r, err := s.GetRole(t.Context(), RoleID(1))
	must(t, err, "get role")
	want := NewRole(RoleID(1)).Actions
	for g := range goroutines {
		want = append(want, fmt.Sprintf("action-%02d", g))
	}
	got := slices.Clone(r.Actions)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("actions after %d concurrent updates:\n got %v\nwant %v", goroutines, got, want)
	}
}

func testConcurrentCreateSame(t *testing.T, s store.Store) {
	mustCreateRoles(t, s, RoleID(1))
	const goroutines = 64
	var (
		wg     sync.WaitGroup
		wins   atomic.Int32
		winner atomic.Value // the description that was stored
	)
	for g := range goroutines {
		wg.Go(func() {
			tok := NewToken(ClientID(1), RoleID(1))
			tok.Description = fmt.Sprintf("writer %d", g)
			switch err := s.CreateToken(t.Context(), tok); {
			case err == nil:
				wins.Add(1)
				winner.Store(tok.Description)
			case !errors.Is(err, store.ErrAlreadyExists):
				t.Errorf("losing create: got %v, want ErrAlreadyExists", err)
			}
		})
	}
	wg.Wait()
	if n := wins.Load(); n != 1 {
		t.Fatalf("%d creates of the same client ID succeeded, want exactly 1", n)
	}
	got, err := s.GetToken(t.Context(), ClientID(1))
	must(t, err, "get token")
	if got.Description != winner.Load() {
		t.Fatalf("stored token is from %q, but %q was told it won", got.Description, winner.Load())
	}
}

// testDeleteRoleRace races DeleteRole against CreateToken of a live token
// holding that role: exactly one may succeed, never both (a token holding
// a deleted role) and never neither.
func testDeleteRoleRace(t *testing.T, s store.Store) {
	ctx := t.Context()
	for round := range 20 {
		role := RoleID(round)
		mustCreateRoles(t, s, role)
		tok := NewToken(ClientID(round), role)
		var createErr, deleteErr error
		var wg sync.WaitGroup
		wg.Go(func() { createErr = s.CreateToken(ctx, tok) })
		wg.Go(func() { deleteErr = s.DeleteRole(ctx, role, Base) })
		wg.Wait()

		switch {
		case createErr == nil && errors.Is(deleteErr, store.ErrInUse):
			wantToken(t, s, tok)
			wantRole(t, s, NewRole(role))
		case errors.Is(createErr, store.ErrNotFound) && deleteErr == nil:
			wantNoToken(t, s, tok.ClientID)
		default:
			t.Fatalf("round %d: create token: %v; delete role: %v", round, createErr, deleteErr)
		}
	}
}

func testUseAfterClose(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustCreateRoles(t, s, RoleID(1))
	must(t, s.Close(), "close")

	_, err := s.GetRole(ctx, RoleID(1))
	wantErr(t, err, store.ErrClosed, "get role after close")
	_, err = s.ListRoles(ctx)
	wantErr(t, err, store.ErrClosed, "list roles after close")
	wantErr(t, s.CreateToken(ctx, NewToken(ClientID(1), RoleID(1))), store.ErrClosed, "create token after close")
	wantErr(t, s.DeleteRole(ctx, RoleID(1), Base), store.ErrClosed, "delete role after close")
}
