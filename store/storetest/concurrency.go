package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
	wantErr(t, s.CreateUser(ctx, NewUser(UserID(1), Username(1), RoleID(1))), store.ErrClosed, "create user after close")
	_, err = s.GetUserByName(ctx, Username(1))
	wantErr(t, err, store.ErrClosed, "get user by name after close")
	_, err = s.GetAuthToken(ctx, AuthMAC(1))
	wantErr(t, err, store.ErrClosed, "get auth token after close")
	wantErr(t, s.RecordAuthTokenUse(ctx, map[string]time.Time{string(AuthMAC(1)): Base}), store.ErrClosed,
		"record auth token use after close")
	_, err = s.DeleteIdleAuthTokens(ctx, Base)
	wantErr(t, err, store.ErrClosed, "delete idle auth tokens after close")
	wantErr(t, s.CreateTenant(ctx, NewTenant(TenantName(1))), store.ErrClosed, "create tenant after close")
	_, err = s.ListTenants(ctx)
	wantErr(t, err, store.ErrClosed, "list tenants after close")
	wantErr(t, s.CreatePulsarToken(ctx, NewPulsarToken(1, TenantName(1)), 0), store.ErrClosed,
		"create Pulsar token after close")
	_, err = s.GetPulsarTokenByMAC(ctx, PulsarMAC(1))
	wantErr(t, err, store.ErrClosed, "get Pulsar token by MAC after close")
	_, err = s.ListPulsarTokens(ctx, TenantName(1))
	wantErr(t, err, store.ErrClosed, "list Pulsar tokens after close")
	_, err = s.DeleteExpiredPulsarTokens(ctx, Base)
	wantErr(t, err, store.ErrClosed, "delete expired Pulsar tokens after close")
	_, err = s.SigningKeys(ctx)
	wantErr(t, err, store.ErrClosed, "get signing keys after close")
	wantErr(t, s.UpdateSigningKeys(ctx, func(k []store.SigningKey) ([]store.SigningKey, error) { return k, nil }),
		store.ErrClosed, "update signing keys after close")
	wantErr(t, s.CreateDatabase(ctx, NewDatabase(1), NewDatabaseRole(1), NewDatabaseToken(1)), store.ErrClosed,
		"create database after close")
	_, err = s.ListDatabases(ctx)
	wantErr(t, err, store.ErrClosed, "list databases after close")
	wantErr(t, s.RecordDatabaseUsage(ctx, []store.UsageDelta{{DatabaseID: DatabaseID(1), Month: "2030-01",
		Usage: store.Usage{Reads: 1}}}), store.ErrClosed, "record database usage after close")
	_, err = s.GetDatabaseUsage(ctx, DatabaseID(1), "2030-01")
	wantErr(t, err, store.ErrClosed, "get database usage after close")
	wantErr(t, s.PutNamespaceStats(ctx, []store.NamespaceStats{NewNamespaceStats(TenantName(1), "ns")}), store.ErrClosed,
		"put namespace stats after close")
	_, err = s.ListNamespaceStats(ctx, TenantName(1))
	wantErr(t, err, store.ErrClosed, "list namespace stats after close")
	wantErr(t, s.AppendAuditEvents(ctx, []store.AuditEvent{NewAuditEvent("Test.Refused", "", "")}), store.ErrClosed,
		"append audit events after close")
	_, err = s.ListAuditEvents(ctx, store.AuditQuery{})
	wantErr(t, err, store.ErrClosed, "list audit events after close")
	ev := NewAuditEvent("RoleService.CreateRole", "role", RoleID(2))
	wantErr(t, s.CreateRole(store.WithAudit(ctx, &ev), NewRole(RoleID(2))), store.ErrClosed, "audited create role after close")
}

// testConcurrentAuthTokenUseAndIdleGC races RecordAuthTokenUse from 32
// goroutines against DeleteIdleAuthTokens looping in another. Each round
// creates idle tokens, then releases the GC and the workers together: all
// workers use one shared "hot" token and each its own one, at times after
// idleSince. Per token, the GC may win (the token is gone and later uses
// are skipped) or a use may win (the token is no longer idle and must
// survive). What must never happen is a lost update: a token seen with a
// recorded use after idleSince that is deleted afterwards, or a survivor
// whose LastUsed is not the latest use.
func testConcurrentAuthTokenUseAndIdleGC(t *testing.T, s store.Store) {
	ctx := t.Context()
	client, user := principals(t, s)
	idleSince := Base.Add(time.Hour)
	const workers, rounds = 32, 30
	hot := func(r int) int { return r * (workers + 1) }
	own := func(g, r int) int { return r*(workers+1) + 1 + g }
	newToken := func(n int) store.AuthToken {
		if n%2 == 1 {
			return NewAuthToken(n, store.PrincipalUser, user)
		}
		return NewAuthToken(n, store.PrincipalApplicationToken, client)
	}
	// Recently used ones, which no GC may touch.
	const freshBase, freshN = rounds * (workers + 1), 10
	var fresh []store.AuthToken
	for n := freshBase; n < freshBase+freshN; n++ {
		tk := newToken(n)
		tk.LastUsed = idleSince.Add(time.Second)
		fresh = append(fresh, tk)
	}
	createAuthTokens(t, s, fresh)

	var (
		mu       sync.Mutex
		latest   = map[int]time.Time{} // latest use recorded per token
		observed = map[int]bool{}      // seen alive after a use was recorded
		removed  int                   // as reported by DeleteIdleAuthTokens
	)
	gc := func(start <-chan struct{}, stop <-chan struct{}) {
		<-start
		for {
			n, err := s.DeleteIdleAuthTokens(ctx, idleSince)
			mu.Lock()
			removed += n
			mu.Unlock()
			if err != nil {
				t.Errorf("delete idle auth tokens: %v", err)
				return
			}
			select {
			case <-stop:
				return
			default:
			}
		}
	}
	use := func(g, r int) {
		at := idleSince.Add(time.Duration(r*workers+g+1) * time.Microsecond)
		used := []int{hot(r), own(g, r)}
		mu.Lock()
		for _, n := range used {
			if at.After(latest[n]) {
				latest[n] = at
			}
		}
		mu.Unlock()
		if err := s.RecordAuthTokenUse(ctx, map[string]time.Time{
			string(AuthMAC(used[0])): at, string(AuthMAC(used[1])): at,
		}); err != nil {
			t.Errorf("record auth token use: %v", err)
			return
		}
		for _, n := range used {
			got, err := s.GetAuthToken(ctx, AuthMAC(n))
			switch {
			case errors.Is(err, store.ErrNotFound):
				continue // the GC won
			case err != nil:
				t.Errorf("get auth token %d: %v", n, err)
				return
			case got.LastUsed.Before(at):
				t.Errorf("auth token %d: LastUsed %v right after a use at %v was recorded", n, got.LastUsed, at)
				return
			}
			mu.Lock()
			observed[n] = true
			mu.Unlock()
		}
	}

	for r := range rounds {
		var toks []store.AuthToken
		for n := hot(r); n <= own(workers-1, r); n++ {
			toks = append(toks, newToken(n)) // idle: LastUsed is Base
		}
		createAuthTokens(t, s, toks)

		start, stop := make(chan struct{}), make(chan struct{})
		var gcDone, wg sync.WaitGroup
		gcDone.Go(func() { gc(start, stop) })
		for g := range workers {
			wg.Go(func() {
				<-start
				use(g, r)
			})
		}
		close(start)
		wg.Wait()
		close(stop)
		gcDone.Wait()
		if t.Failed() {
			return
		}
	}

	survivors, seen := 0, 0
	for n := range freshBase {
		got, err := s.GetAuthToken(ctx, AuthMAC(n))
		if errors.Is(err, store.ErrNotFound) {
			if observed[n] {
				t.Errorf("lost update: auth token %d was seen used after idleSince, then deleted as idle", n)
			}
			continue
		}
		must(t, err, "get auth token")
		survivors++
		if observed[n] {
			seen++
		}
		if !got.LastUsed.Equal(latest[n]) {
			t.Errorf("lost update: auth token %d has LastUsed %v, latest recorded use %v", n, got.LastUsed, latest[n])
		}
	}
	for _, tk := range fresh {
		wantAuthToken(t, s, tk)
	}
	if want := freshBase - survivors; removed != want {
		t.Errorf("DeleteIdleAuthTokens reported %d removals, but %d tokens are gone", removed, want)
	}
	t.Logf("%d of %d contested tokens survived (%d seen alive after use)", survivors, freshBase, seen)
}

// testCreateAuthTokenAndDeleteTokenRace: an auth token minted while its
// application token is deleted either fails with ErrNotFound or is removed
// by the cascade; it never outlives its principal.
func testCreateAuthTokenAndDeleteTokenRace(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustCreateRoles(t, s, RoleID(1))
	for round := range 20 {
		tok := NewToken(ClientID(round), RoleID(1))
		must(t, s.CreateToken(ctx, tok), "create token")
		at := NewAuthToken(round, store.PrincipalApplicationToken, tok.ClientID)
		var createErr, deleteErr error
		var wg sync.WaitGroup
		wg.Go(func() { createErr = s.CreateAuthToken(ctx, at) })
		wg.Go(func() { deleteErr = s.DeleteToken(ctx, tok.ClientID) })
		wg.Wait()

		must(t, deleteErr, fmt.Sprintf("round %d: delete token", round))
		if createErr != nil {
			wantErr(t, createErr, store.ErrNotFound, fmt.Sprintf("round %d: create auth token", round))
		}
		wantNoAuthToken(t, s, at.MAC)
	}
}

// testConcurrentAuditedWrites: concurrent audited writes, which the
// backend may commit together, each record their own event exactly once,
// under distinct Seqs.
func testConcurrentAuditedWrites(t *testing.T, s store.Store) {
	mustCreateRoles(t, s, RoleID(1))
	const goroutines = 32
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			ev := NewAuditEvent("TokenService.CreateToken", "token", ClientID(g))
			if err := s.CreateToken(store.WithAudit(t.Context(), &ev), NewToken(ClientID(g), RoleID(1))); err != nil {
				t.Errorf("audited create token %s: %v", ClientID(g), err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	got := listAudit(t, s, store.AuditQuery{Limit: 1000})
	if len(got) != goroutines {
		t.Fatalf("%d audit events after %d audited writes", len(got), goroutines)
	}
	seqs, targets := map[uint64]bool{}, map[string]bool{}
	for _, e := range got {
		if seqs[e.Seq] || targets[e.TargetID] {
			t.Fatalf("duplicate Seq %d or target %s in %+v", e.Seq, e.TargetID, got)
		}
		seqs[e.Seq], targets[e.TargetID] = true, true
		if want := NewAuditEvent("TokenService.CreateToken", "token", e.TargetID); !sameAuditEvent(e, want) {
			t.Fatalf("audit event:\n got %+v\nwant %+v", e, want)
		}
	}
	for g := range goroutines {
		if !targets[ClientID(g)] {
			t.Fatalf("no audit event of token %s", ClientID(g))
		}
		wantToken(t, s, NewToken(ClientID(g), RoleID(1)))
	}
}
