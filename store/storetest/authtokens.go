package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/store"
)

func wantAuthToken(t *testing.T, s store.Store, want store.AuthToken) {
	t.Helper()
	got, err := s.GetAuthToken(t.Context(), want.MAC)
	must(t, err, fmt.Sprintf("get auth token %x", want.MAC[:4]))
	if !sameAuthToken(got, want) {
		t.Fatalf("auth token %x:\n got %+v\nwant %+v", want.MAC[:4], got, want)
	}
}

func wantNoAuthToken(t *testing.T, s store.Store, mac []byte) {
	t.Helper()
	_, err := s.GetAuthToken(t.Context(), mac)
	wantErr(t, err, store.ErrNotFound, fmt.Sprintf("get auth token %x", mac[:4]))
}

// createAuthTokens creates toks concurrently (createConcurrently).
func createAuthTokens(t *testing.T, s store.Store, toks []store.AuthToken) {
	t.Helper()
	createConcurrently(t, toks, func(at store.AuthToken) string { return fmt.Sprintf("auth token %x", at.MAC[:4]) },
		func(at store.AuthToken) error { return s.CreateAuthToken(t.Context(), at) })
}

// principals creates an application token ClientID(1) and a user
// UserID(1), both holding RoleID(1).
func principals(t *testing.T, s store.Store) (clientID, userID string) {
	t.Helper()
	mustCreateRoles(t, s, RoleID(1))
	must(t, s.CreateToken(t.Context(), NewToken(ClientID(1), RoleID(1))), "create token")
	must(t, s.CreateUser(t.Context(), NewUser(UserID(1), Username(1), RoleID(1))), "create user")
	return ClientID(1), UserID(1)
}

func testAuthTokenCRUD(t *testing.T, s store.Store) {
	ctx := t.Context()
	client, user := principals(t, s)
	a := NewAuthToken(1, store.PrincipalApplicationToken, client)
	b := NewAuthToken(2, store.PrincipalUser, user)
	for _, at := range []store.AuthToken{a, b} {
		must(t, s.CreateAuthToken(ctx, at), "create auth token")
		wantAuthToken(t, s, at)
	}

	dup := NewAuthToken(1, store.PrincipalUser, user)
	dup.CreatedAt = Base.Add(time.Hour)
	wantErr(t, s.CreateAuthToken(ctx, dup), store.ErrAlreadyExists, "create auth token with a taken MAC")
	wantAuthToken(t, s, a)

	wantNoAuthToken(t, s, AuthMAC(9))
	wantErr(t, s.DeleteAuthToken(ctx, AuthMAC(9)), store.ErrNotFound, "delete unknown auth token")

	must(t, s.DeleteAuthToken(ctx, a.MAC), "delete auth token")
	wantNoAuthToken(t, s, a.MAC)
	wantErr(t, s.DeleteAuthToken(ctx, a.MAC), store.ErrNotFound, "delete auth token twice")
	wantAuthToken(t, s, b)
	// Its principal is untouched.
	wantToken(t, s, NewToken(client, RoleID(1)))

	// The MAC is free again, and nothing of the first token is left: the
	// re-created one is idle only by its own LastUsed.
	again := NewAuthToken(1, store.PrincipalUser, user)
	again.LastUsed = Base.Add(time.Hour)
	must(t, s.CreateAuthToken(ctx, again), "re-create auth token")
	wantAuthToken(t, s, again)
	n, err := s.DeleteIdleAuthTokens(ctx, Base)
	must(t, err, "delete idle auth tokens")
	if n != 1 {
		t.Fatalf("DeleteIdleAuthTokens removed %d, want 1 (only the idle one of two)", n)
	}
	wantAuthToken(t, s, again)
	wantNoAuthToken(t, s, b.MAC)

	// Returned and given records are copies.
	in := NewAuthToken(3, store.PrincipalUser, user)
	want := NewAuthToken(3, store.PrincipalUser, user)
	must(t, s.CreateAuthToken(ctx, in), "create auth token")
	in.MAC[0] ^= 0xff
	got, err := s.GetAuthToken(ctx, want.MAC)
	must(t, err, "get auth token")
	got.MAC[0] ^= 0xff
	wantAuthToken(t, s, want)
}

func testCreateAuthTokenMissingPrincipal(t *testing.T, s store.Store) {
	ctx := t.Context()
	client, user := principals(t, s)
	for i, at := range []store.AuthToken{
		NewAuthToken(1, store.PrincipalApplicationToken, ClientID(9)),
		NewAuthToken(2, store.PrincipalUser, UserID(9)),
		// The kind names the namespace: a user ID is no client ID.
		NewAuthToken(3, store.PrincipalApplicationToken, user),
		NewAuthToken(4, store.PrincipalUser, client),
	} {
		err := s.CreateAuthToken(ctx, at)
		wantErr(t, err, store.ErrNotFound, fmt.Sprintf("case %d: create auth token for missing %s %s", i, at.PrincipalKind, at.PrincipalID))
		wantNoAuthToken(t, s, at.MAC)
	}

	bad := NewAuthToken(5, "robot", client)
	err := s.CreateAuthToken(ctx, bad)
	if err == nil {
		t.Fatal("CreateAuthToken accepted an unknown principal kind")
	}
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrAlreadyExists) {
		t.Errorf("unknown principal kind: got %v, want an error that is neither ErrNotFound nor ErrAlreadyExists", err)
	}
	wantNoAuthToken(t, s, bad.MAC)
}

func testRecordAuthTokenUse(t *testing.T, s store.Store) {
	ctx := t.Context()
	client, user := principals(t, s)
	a := NewAuthToken(1, store.PrincipalApplicationToken, client)
	b := NewAuthToken(2, store.PrincipalUser, user)
	createAuthTokens(t, s, []store.AuthToken{a, b})

	t1 := Base.Add(time.Hour)
	must(t, s.RecordAuthTokenUse(ctx, map[string]time.Time{
		string(a.MAC): t1, string(b.MAC): t1, string(AuthMAC(99)): t1,
	}), "record use, one MAC unknown")
	a.LastUsed, b.LastUsed = t1, t1
	wantAuthToken(t, s, a)
	wantAuthToken(t, s, b)
	wantNoAuthToken(t, s, AuthMAC(99))

	must(t, s.RecordAuthTokenUse(ctx, map[string]time.Time{string(a.MAC): t1.Add(-time.Minute)}), "record earlier use")
	wantAuthToken(t, s, a)

	t2 := t1.Add(time.Minute)
	must(t, s.RecordAuthTokenUse(ctx, map[string]time.Time{string(a.MAC): t2}), "record later use")
	a.LastUsed = t2
	wantAuthToken(t, s, a)
	wantAuthToken(t, s, b)

	must(t, s.RecordAuthTokenUse(ctx, nil), "record no use")

	// Idleness follows the recorded time: b is idle at t1, a is not.
	n, err := s.DeleteIdleAuthTokens(ctx, t1)
	must(t, err, "delete idle auth tokens")
	if n != 1 {
		t.Fatalf("DeleteIdleAuthTokens(t1) removed %d, want 1", n)
	}
	wantAuthToken(t, s, a)
	wantNoAuthToken(t, s, b.MAC)
}

func testDeleteIdleAuthTokens(t *testing.T, s store.Store) {
	ctx := t.Context()
	client, user := principals(t, s)
	idleSince := Base.Add(time.Hour)
	at := func(n int, lastUsed time.Time) store.AuthToken {
		tk := NewAuthToken(n, store.PrincipalApplicationToken, client)
		if n%2 == 0 {
			tk = NewAuthToken(n, store.PrincipalUser, user)
		}
		tk.LastUsed = lastUsed
		return tk
	}
	past := at(1, idleSince.Add(-time.Hour))
	atIdle := at(2, idleSince) // LastUsed == idleSince: idle
	never := at(3, time.Time{})
	later := at(4, idleSince.Add(time.Microsecond))
	moved := at(5, idleSince.Add(-time.Minute)) // idle until its use is recorded
	createAuthTokens(t, s, []store.AuthToken{past, atIdle, never, later, moved})
	moved.LastUsed = idleSince.Add(time.Minute)
	must(t, s.RecordAuthTokenUse(ctx, map[string]time.Time{string(moved.MAC): moved.LastUsed}), "record use")

	n, err := s.DeleteIdleAuthTokens(ctx, idleSince)
	must(t, err, "delete idle auth tokens")
	if n != 3 {
		t.Fatalf("DeleteIdleAuthTokens removed %d, want 3", n)
	}
	for _, gone := range []store.AuthToken{past, atIdle, never} {
		wantNoAuthToken(t, s, gone.MAC)
	}
	wantAuthToken(t, s, later)
	wantAuthToken(t, s, moved)
	// The principals stay.
	wantToken(t, s, NewToken(client, RoleID(1)))
	wantUser(t, s, NewUser(user, Username(1), RoleID(1)))

	n, err = s.DeleteIdleAuthTokens(ctx, idleSince)
	must(t, err, "delete idle auth tokens again")
	if n != 0 {
		t.Fatalf("second DeleteIdleAuthTokens removed %d, want 0", n)
	}
	n, err = s.DeleteIdleAuthTokens(ctx, idleSince.Add(time.Microsecond))
	must(t, err, "delete idle auth tokens later")
	if n != 1 {
		t.Fatalf("later DeleteIdleAuthTokens removed %d, want 1", n)
	}
	wantNoAuthToken(t, s, later.MAC)
	wantAuthToken(t, s, moved)
}

// testDeleteIdleAuthTokensMany covers a backlog larger than one deletion
// batch.
func testDeleteIdleAuthTokensMany(t *testing.T, s store.Store) {
	client, user := principals(t, s)
	idleSince := Base
	const idle, live = 2100, 10
	var toks []store.AuthToken
	for i := range idle + live {
		kind, id := store.PrincipalApplicationToken, client
		if i%3 == 0 {
			kind, id = store.PrincipalUser, user
		}
		tk := NewAuthToken(i, kind, id)
		tk.LastUsed = idleSince.Add(time.Duration(idle-i) * -time.Millisecond) // before idleSince for i < idle
		if i >= idle {
			tk.LastUsed = idleSince.Add(time.Hour)
		}
		toks = append(toks, tk)
	}
	createAuthTokens(t, s, toks)

	n, err := s.DeleteIdleAuthTokens(t.Context(), idleSince)
	must(t, err, "delete idle auth tokens")
	if n != idle {
		t.Fatalf("DeleteIdleAuthTokens removed %d, want %d", n, idle)
	}
	for i, tk := range toks {
		if i >= idle {
			wantAuthToken(t, s, tk)
		} else if i%97 == 0 {
			wantNoAuthToken(t, s, tk.MAC)
		}
	}
}

// testDeleteIdleAuthTokensOrphans: the contract lets a backend leave the
// auth tokens of an expired application token to DeleteIdleAuthTokens
// (DeleteExpiredTokens does not promise to cascade), which must then remove
// them even though they are not idle.
func testDeleteIdleAuthTokensOrphans(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustCreateRoles(t, s, RoleID(1))
	expiring := NewToken(ClientID(1), RoleID(1))
	expiring.Expiry = Base
	live := NewToken(ClientID(2), RoleID(1))
	createTokens(t, s, []store.Token{expiring, live})
	recent := Base.Add(time.Hour)
	orphan := NewAuthToken(1, store.PrincipalApplicationToken, expiring.ClientID)
	kept := NewAuthToken(2, store.PrincipalApplicationToken, live.ClientID)
	orphan.LastUsed, kept.LastUsed = recent, recent
	createAuthTokens(t, s, []store.AuthToken{orphan, kept})

	n, err := s.DeleteExpiredTokens(ctx, Base)
	must(t, err, "delete expired tokens")
	if n != 1 {
		t.Fatalf("DeleteExpiredTokens removed %d, want 1", n)
	}
	_, err = s.GetAuthToken(ctx, orphan.MAC)
	leftBehind := err == nil
	if !leftBehind {
		wantErr(t, err, store.ErrNotFound, "get auth token of an expired token")
	}

	n, err = s.DeleteIdleAuthTokens(ctx, Base) // nothing is idle
	must(t, err, "delete idle auth tokens")
	if want := map[bool]int{true: 1, false: 0}[leftBehind]; n != want {
		t.Fatalf("DeleteIdleAuthTokens removed %d, want %d (orphan left behind by DeleteExpiredTokens: %v)", n, want, leftBehind)
	}
	wantNoAuthToken(t, s, orphan.MAC)
	wantAuthToken(t, s, kept)
}

// testDeleteTokenCascade: deleting an application token removes exactly
// the auth tokens minted from it, also when a user has the same ID.
func testDeleteTokenCascade(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustCreateRoles(t, s, RoleID(1))
	a, b := NewToken(ClientID(1), RoleID(1)), NewToken(ClientID(2), RoleID(1))
	createTokens(t, s, []store.Token{a, b})
	twin := NewUser(a.ClientID, Username(1), RoleID(1)) // a user whose ID is a's client ID
	must(t, s.CreateUser(ctx, twin), "create user")

	var ofA, others []store.AuthToken
	for i := range 12 {
		switch i % 3 {
		case 0:
			ofA = append(ofA, NewAuthToken(i, store.PrincipalApplicationToken, a.ClientID))
		case 1:
			others = append(others, NewAuthToken(i, store.PrincipalApplicationToken, b.ClientID))
		case 2:
			others = append(others, NewAuthToken(i, store.PrincipalUser, twin.ID))
		}
	}
	createAuthTokens(t, s, append(slices.Clone(ofA), others...))

	must(t, s.DeleteToken(ctx, a.ClientID), "delete token")
	for _, at := range ofA {
		wantNoAuthToken(t, s, at.MAC)
	}
	for _, at := range others {
		wantAuthToken(t, s, at)
	}
	wantUser(t, s, twin)

	// Nothing of the cascaded tokens is left in any index: every survivor
	// is counted once, and the cascaded ones not at all.
	n, err := s.DeleteIdleAuthTokens(ctx, Base)
	must(t, err, "delete idle auth tokens")
	if n != len(others) {
		t.Fatalf("DeleteIdleAuthTokens removed %d, want %d", n, len(others))
	}
}

// testDeleteUserCascade is testDeleteTokenCascade for users.
func testDeleteUserCascade(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustCreateRoles(t, s, RoleID(1))
	u, v := NewUser(UserID(1), Username(1), RoleID(1)), NewUser(UserID(2), Username(2), RoleID(1))
	must(t, s.CreateUser(ctx, u), "create user")
	must(t, s.CreateUser(ctx, v), "create user")
	twin := NewToken(ClientID(1), RoleID(1))
	twin.ClientID = u.ID // an application token whose client ID is u's ID
	must(t, s.CreateToken(ctx, twin), "create token")

	var ofU, others []store.AuthToken
	for i := range 12 {
		switch i % 3 {
		case 0:
			ofU = append(ofU, NewAuthToken(i, store.PrincipalUser, u.ID))
		case 1:
			others = append(others, NewAuthToken(i, store.PrincipalUser, v.ID))
		case 2:
			others = append(others, NewAuthToken(i, store.PrincipalApplicationToken, twin.ClientID))
		}
	}
	createAuthTokens(t, s, append(slices.Clone(ofU), others...))

	must(t, s.DeleteUser(ctx, u.ID), "delete user")
	for _, at := range ofU {
		wantNoAuthToken(t, s, at.MAC)
	}
	for _, at := range others {
		wantAuthToken(t, s, at)
	}
	wantToken(t, s, twin)

	n, err := s.DeleteIdleAuthTokens(ctx, Base)
	must(t, err, "delete idle auth tokens")
	if n != len(others) {
		t.Fatalf("DeleteIdleAuthTokens removed %d, want %d", n, len(others))
	}
}

func testAuthTokenTimesUTC(t *testing.T, s store.Store) {
	ctx := t.Context()
	zone := time.FixedZone("UTC-03:30", -(3*3600 + 30*60))
	at := time.Date(2031, time.March, 4, 5, 6, 7, 123456000, zone)
	check := func(what string, got, want time.Time) {
		t.Helper()
		if !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("%s = %v (location %v), want %v in UTC", what, got, got.Location(), want)
		}
	}

	mustCreateRoles(t, s, RoleID(1))
	u := NewUser(UserID(1), Username(1), RoleID(1))
	u.CreatedAt, u.UpdatedAt = at, at.Add(time.Second)
	must(t, s.CreateUser(ctx, u), "create user")
	gotUser, err := s.GetUser(ctx, u.ID)
	must(t, err, "get user")
	check("user CreatedAt", gotUser.CreatedAt, at)
	check("user UpdatedAt", gotUser.UpdatedAt, at.Add(time.Second))
	gotUser, err = s.UpdateUser(ctx, u.ID, func(u store.User) (store.User, error) {
		u.UpdatedAt = at.Add(time.Minute)
		return u, nil
	})
	must(t, err, "update user")
	check("updated user UpdatedAt", gotUser.UpdatedAt, at.Add(time.Minute))

	a := NewAuthToken(1, store.PrincipalUser, u.ID)
	a.CreatedAt, a.LastUsed = at, at
	must(t, s.CreateAuthToken(ctx, a), "create auth token")
	got, err := s.GetAuthToken(ctx, a.MAC)
	must(t, err, "get auth token")
	check("auth token CreatedAt", got.CreatedAt, at)
	check("auth token LastUsed", got.LastUsed, at)
	must(t, s.RecordAuthTokenUse(ctx, map[string]time.Time{string(a.MAC): at.Add(time.Hour)}), "record use")
	got, err = s.GetAuthToken(ctx, a.MAC)
	must(t, err, "get auth token")
	check("recorded auth token LastUsed", got.LastUsed, at.Add(time.Hour))

	never := NewAuthToken(2, store.PrincipalUser, u.ID)
	never.LastUsed = time.Time{}
	must(t, s.CreateAuthToken(ctx, never), "create auth token")
	got, err = s.GetAuthToken(ctx, never.MAC)
	must(t, err, "get auth token")
	if !got.LastUsed.IsZero() {
		t.Errorf("zero LastUsed came back as %v", got.LastUsed)
	}
}

// testResolveAuthToken: the auth token comes back with its principal's
// current roles (and expiry, for an application token), and an auth token
// whose principal is gone resolves to ErrNotFound.
func testResolveAuthToken(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustCreateRoles(t, s, RoleID(1), RoleID(2))
	tok := NewToken(ClientID(1), RoleID(1), RoleID(2))
	tok.Expiry = Base.Add(time.Hour)
	must(t, s.CreateToken(ctx, tok), "create token")
	must(t, s.CreateUser(ctx, NewUser(UserID(1), Username(1), RoleID(2))), "create user")
	viaApp := NewAuthToken(1, store.PrincipalApplicationToken, ClientID(1))
	viaUser := NewAuthToken(2, store.PrincipalUser, UserID(1))
	must(t, s.CreateAuthToken(ctx, viaApp), "create auth token (app)")
	must(t, s.CreateAuthToken(ctx, viaUser), "create auth token (user)")

	r, err := s.ResolveAuthToken(ctx, viaApp.MAC)
	must(t, err, "resolve (app)")
	if !sameAuthToken(r.AuthToken, viaApp) || !slices.Equal(r.Roles, tok.Roles) || !r.Expiry.Equal(tok.Expiry) {
		t.Fatalf("resolve (app) = %+v, want token %+v with roles %v and expiry %v", r, viaApp, tok.Roles, tok.Expiry)
	}
	r, err = s.ResolveAuthToken(ctx, viaUser.MAC)
	must(t, err, "resolve (user)")
	if !sameAuthToken(r.AuthToken, viaUser) || !slices.Equal(r.Roles, []string{RoleID(2)}) || !r.Expiry.IsZero() {
		t.Fatalf("resolve (user) = %+v, want roles [%s] and no expiry", r, RoleID(2))
	}
	r.Roles[0] = "mutated"
	if r2, _ := s.ResolveAuthToken(ctx, viaUser.MAC); r2.Roles[0] != RoleID(2) {
		t.Fatal("ResolveAuthToken returned roles aliasing stored state")
	}

	_, err = s.ResolveAuthToken(ctx, NewAuthToken(99, store.PrincipalUser, UserID(1)).MAC)
	wantErr(t, err, store.ErrNotFound, "resolve unknown MAC")
	must(t, s.DeleteUser(ctx, UserID(1)), "delete user")
	_, err = s.ResolveAuthToken(ctx, viaUser.MAC)
	wantErr(t, err, store.ErrNotFound, "resolve after the user is deleted")
}
