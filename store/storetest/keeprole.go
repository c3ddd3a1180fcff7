package storetest

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/store"
)

// DeleteTokenKeepingRole: the guard that no delete removes the last live
// holder of a role, checked inside the delete's transaction.

// testDeleteTokenKeepingRole: which deletes the guard lets through, and
// that a refused one changes nothing.
func testDeleteTokenKeepingRole(t *testing.T, s store.Store) {
	ctx := t.Context()
	admin, other := RoleID(1), RoleID(2)
	mustCreateRoles(t, s, admin, other)
	now := Base.Add(time.Hour)

	only := NewToken(ClientID(1), admin, other)
	must(t, s.CreateToken(ctx, only), "create the only holder")
	wantErr(t, s.DeleteTokenKeepingRole(ctx, only.ClientID, admin, now), store.ErrLastHolder, "delete the only live holder")
	wantToken(t, s, only)
	wantErr(t, s.DeleteTokenKeepingRole(ctx, ClientID(99), admin, now), store.ErrNotFound, "delete an unknown token")

	// A holder that expired is no witness; one that expires later is.
	expired := NewToken(ClientID(2), admin)
	expired.Expiry = now.Add(-time.Minute)
	must(t, s.CreateToken(ctx, expired), "create an expired holder")
	wantErr(t, s.DeleteTokenKeepingRole(ctx, only.ClientID, admin, now), store.ErrLastHolder, "delete with only an expired other holder")
	expiring := NewToken(ClientID(3), admin)
	expiring.Expiry = now.Add(time.Minute)
	must(t, s.CreateToken(ctx, expiring), "create a holder that expires later")
	must(t, s.DeleteTokenKeepingRole(ctx, only.ClientID, admin, now), "delete with a live other holder")
	wantNoToken(t, s, only.ClientID)
	wantErr(t, s.DeleteTokenKeepingRole(ctx, expiring.ClientID, admin, now), store.ErrLastHolder, "delete the last live holder")

	// Expired targets and tokens without the role go unguarded.
	must(t, s.DeleteTokenKeepingRole(ctx, expired.ClientID, admin, now), "delete an expired holder")
	plain := NewToken(ClientID(4), other)
	must(t, s.CreateToken(ctx, plain), "create a token without the role")
	must(t, s.DeleteTokenKeepingRole(ctx, plain.ClientID, admin, now), "delete a token without the role")
	wantNoToken(t, s, plain.ClientID)

	// Like DeleteToken, a delete that goes through takes its auth tokens.
	second := NewToken(ClientID(5), admin)
	must(t, s.CreateToken(ctx, second), "create a second holder")
	at := NewAuthToken(1, store.PrincipalApplicationToken, expiring.ClientID)
	must(t, s.CreateAuthToken(ctx, at), "create an auth token")
	must(t, s.DeleteTokenKeepingRole(ctx, expiring.ClientID, admin, now), "delete one of two live holders")
	_, err := s.GetAuthToken(ctx, at.MAC)
	wantErr(t, err, store.ErrNotFound, "auth token of the deleted holder")
	wantToken(t, s, second)
}

// testConcurrentDeleteLastHolders: goroutines deleting the last two live
// holders at once, round after round: never both.
func testConcurrentDeleteLastHolders(t *testing.T, s store.Store) {
	mustCreateRoles(t, s, RoleID(1))
	raceLastHolders(t, s, s, 0)
}

// testSharedDeleteLastHolders is the same race through two handles on one
// store (two broker processes).
func testSharedDeleteLastHolders(t *testing.T, a, b store.Store) {
	mustCreateRoles(t, a, RoleID(1))
	eventually(t, "role visible to b", func() bool { _, err := b.GetRole(t.Context(), RoleID(1)); return err == nil })
	raceLastHolders(t, a, b, 1000)
}

// raceLastHolders runs rounds: two live holders of RoleID(1) (created
// through a; b must see them), deleted at once, one through a and one
// through b. Exactly one delete must succeed and the other be refused with
// ErrLastHolder; then the survivor is the next round's first holder.
func raceLastHolders(t *testing.T, a, b store.Store, ids int) {
	ctx := t.Context()
	role := RoleID(1)
	now := Base.Add(time.Hour)
	next := func() store.Token {
		ids++
		return NewToken(ClientID(ids), role)
	}
	survivor := next()
	must(t, a.CreateToken(ctx, survivor), "create the first holder")
	const rounds = 40
	for round := range rounds {
		fresh := next()
		must(t, a.CreateToken(ctx, fresh), "create a second holder")
		for _, id := range []string{survivor.ClientID, fresh.ClientID} {
			eventually(t, "holder visible to b", func() bool { _, err := b.GetToken(ctx, id); return err == nil })
		}
		targets := [2]string{survivor.ClientID, fresh.ClientID}
		if round%2 == 1 {
			targets[0], targets[1] = targets[1], targets[0]
		}
		var errs [2]error
		var wg sync.WaitGroup
		for i, s := range []store.Store{a, b} {
			wg.Go(func() { errs[i] = s.DeleteTokenKeepingRole(ctx, targets[i], role, now) })
		}
		wg.Wait()
		won := -1
		for i, err := range errs {
			switch {
			case err == nil:
				if won >= 0 {
					t.Fatalf("round %d: both deletes of the last two holders succeeded", round)
				}
				won = i
			case errors.Is(err, store.ErrLastHolder), errors.Is(err, store.ErrConflict):
				// Refused (or, on an optimistic backend, out of retries):
				// either way nothing was deleted.
			default:
				t.Fatalf("round %d: delete %s: %v", round, targets[i], err)
			}
		}
		if won < 0 {
			// Both refused: allowed only as conflicts, never both as
			// "last holder" (one of them was not the last).
			if errors.Is(errs[0], store.ErrLastHolder) && errors.Is(errs[1], store.ErrLastHolder) {
				t.Fatalf("round %d: both deletes refused as the last holder (%v; %v)", round, errs[0], errs[1])
			}
		}
		live := liveHolders(t, a, role, now)
		if len(live) == 0 {
			t.Fatalf("round %d: no live holder of the role left", round)
		}
		want := 2
		if won >= 0 {
			want = 1
		}
		if len(live) != want {
			t.Fatalf("round %d: %d live holders, want %d", round, len(live), want)
		}
		// Carry one holder on; delete any other plainly.
		survivor = live[0]
		for _, extra := range live[1:] {
			must(t, a.DeleteToken(ctx, extra.ClientID), "delete the extra holder")
		}
	}
}

// liveHolders lists the tokens holding role and live at now, as s sees
// them after catching up (a store.Syncer) with every write acknowledged.
func liveHolders(t *testing.T, s store.Store, role string, now time.Time) []store.Token {
	t.Helper()
	if sy, ok := s.(store.Syncer); ok {
		must(t, sy.Sync(t.Context()), "sync")
	}
	var out []store.Token
	after := ""
	for {
		page, next, err := s.ListTokens(t.Context(), after, 500)
		must(t, err, "list tokens")
		for _, tok := range page {
			if slices.Contains(tok.Roles, role) && !tok.Expired(now) {
				out = append(out, tok)
			}
		}
		if next == "" {
			return out
		}
		after = next
	}
}
