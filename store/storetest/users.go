package storetest

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/store"
)

func wantUser(t *testing.T, s store.Store, want store.User) {
	t.Helper()
	got, err := s.GetUser(t.Context(), want.ID)
	must(t, err, "get user "+want.ID)
	if !sameUser(got, want) {
		t.Fatalf("user %s:\n got %+v\nwant %+v", want.ID, got, want)
	}
	got, err = s.GetUserByName(t.Context(), want.Username)
	must(t, err, "get user by name "+want.Username)
	if !sameUser(got, want) {
		t.Fatalf("user named %s:\n got %+v\nwant %+v", want.Username, got, want)
	}
}

func wantNoUser(t *testing.T, s store.Store, id, username string) {
	t.Helper()
	_, err := s.GetUser(t.Context(), id)
	wantErr(t, err, store.ErrNotFound, "get user "+id)
	_, err = s.GetUserByName(t.Context(), username)
	wantErr(t, err, store.ErrNotFound, "get user by name "+username)
}

func testUserCRUD(t *testing.T, s store.Store) {
	ctx := t.Context()
	users, err := s.ListUsers(ctx)
	must(t, err, "list users")
	if len(users) != 0 {
		t.Fatalf("new store lists %d users", len(users))
	}
	mustCreateRoles(t, s, RoleID(1), RoleID(2))

	u := NewUser(UserID(1), Username(1), RoleID(1), RoleID(2))
	must(t, s.CreateUser(ctx, u), "create user")
	wantUser(t, s, u)

	dupID := NewUser(UserID(1), Username(2), RoleID(1))
	wantErr(t, s.CreateUser(ctx, dupID), store.ErrAlreadyExists, "create user with a taken ID")
	wantUser(t, s, u)
	_, err = s.GetUserByName(ctx, Username(2))
	wantErr(t, err, store.ErrNotFound, "username of the refused user")

	dupName := NewUser(UserID(2), Username(1), RoleID(1))
	wantErr(t, s.CreateUser(ctx, dupName), store.ErrAlreadyExists, "create user with a taken username")
	wantUser(t, s, u)
	_, err = s.GetUser(ctx, UserID(2))
	wantErr(t, err, store.ErrNotFound, "ID of the refused user")

	// Usernames compare exactly: one differing only in case is another.
	other := NewUser(UserID(3), strings.ToUpper(Username(1)), RoleID(2))
	must(t, s.CreateUser(ctx, other), "create user whose name differs only in case")
	wantUser(t, s, other)
	wantUser(t, s, u)

	wantNoUser(t, s, UserID(9), Username(9))
	_, err = s.UpdateUser(ctx, UserID(9), func(u store.User) (store.User, error) { return u, nil })
	wantErr(t, err, store.ErrNotFound, "update unknown user")
	wantErr(t, s.DeleteUser(ctx, UserID(9)), store.ErrNotFound, "delete unknown user")

	want := u
	want.PasswordHash = "$argon2id$v=19$m=65536,t=3,p=4$bmV3$bmV3"
	want.Roles = []string{RoleID(2)}
	want.UpdatedAt = Base.Add(time.Minute)
	got, err := s.UpdateUser(ctx, u.ID, func(u store.User) (store.User, error) {
		u.PasswordHash = want.PasswordHash
		u.Roles = []string{RoleID(2)}
		u.UpdatedAt = Base.Add(time.Minute)
		return u, nil
	})
	must(t, err, "update user")
	if !sameUser(got, want) {
		t.Fatalf("UpdateUser returned %+v, want %+v", got, want)
	}
	wantUser(t, s, want)

	must(t, s.DeleteUser(ctx, u.ID), "delete user")
	wantNoUser(t, s, u.ID, u.Username)
	wantErr(t, s.DeleteUser(ctx, u.ID), store.ErrNotFound, "delete user twice")
	wantUser(t, s, other)

	// The ID and the username are free again, with nothing left over.
	again := NewUser(UserID(1), Username(1), RoleID(1))
	must(t, s.CreateUser(ctx, again), "re-create user")
	wantUser(t, s, again)
	users, err = s.ListUsers(ctx)
	must(t, err, "list users")
	if len(users) != 2 {
		t.Fatalf("ListUsers returned %d users, want 2", len(users))
	}
}

func testCreateUserUnknownRole(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustCreateRoles(t, s, RoleID(1))
	u := NewUser(UserID(1), Username(1), RoleID(1), RoleID(9))
	err := s.CreateUser(ctx, u)
	wantErr(t, err, store.ErrNotFound, "create user with unknown role")
	if !strings.Contains(err.Error(), RoleID(9)) {
		t.Errorf("error %q does not name the missing role %s", err, RoleID(9))
	}
	wantNoUser(t, s, u.ID, u.Username)
	// No index entry survived: the known role is held by nobody.
	must(t, s.DeleteRole(ctx, RoleID(1), Base), "delete role held by no user")

	mustCreateRoles(t, s, RoleID(1), RoleID(9))
	must(t, s.CreateUser(ctx, u), "create user once its roles exist")
	wantUser(t, s, u)
}

func testListUsersOrder(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustCreateRoles(t, s, RoleID(1))
	// User IDs ascend as usernames descend, so an ID-ordered list fails.
	const n = 20
	for _, i := range []int{7, 3, 19, 0, 11, 4, 15, 8, 1, 12, 16, 2, 9, 5, 18, 13, 6, 10, 17, 14} {
		must(t, s.CreateUser(ctx, NewUser(UserID(n-i), Username(i), RoleID(1))), "create user")
	}
	users, err := s.ListUsers(ctx)
	must(t, err, "list users")
	if len(users) != n {
		t.Fatalf("ListUsers returned %d users, want %d", len(users), n)
	}
	for i, u := range users {
		if want := NewUser(UserID(n-i), Username(i), RoleID(1)); !sameUser(u, want) {
			t.Fatalf("ListUsers[%d] = %+v, want %+v (ordered by username)", i, u, want)
		}
	}
}

func testUpdateUserClosureError(t *testing.T, s store.Store) {
	mustCreateRoles(t, s, RoleID(1))
	u := NewUser(UserID(1), Username(1), RoleID(1))
	must(t, s.CreateUser(t.Context(), u), "create user")
	errRefused := errors.New("refused by closure")
	_, err := s.UpdateUser(t.Context(), u.ID, func(u store.User) (store.User, error) {
		u.PasswordHash = "must not be stored"
		return u, errRefused
	})
	wantErr(t, err, errRefused, "update whose closure fails")
	wantUser(t, s, u)
}

func testUpdateUserCannotChangeIDOrUsername(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustCreateRoles(t, s, RoleID(1))
	u := NewUser(UserID(1), Username(1), RoleID(1))
	must(t, s.CreateUser(ctx, u), "create user")

	_, err := s.UpdateUser(ctx, u.ID, func(u store.User) (store.User, error) {
		u.ID = UserID(2)
		u.PasswordHash = "changed"
		return u, nil
	})
	if err == nil {
		t.Fatal("UpdateUser changed the ID without error")
	}
	_, err = s.UpdateUser(ctx, u.ID, func(u store.User) (store.User, error) {
		u.Username = Username(2)
		u.PasswordHash = "changed"
		return u, nil
	})
	if err == nil {
		t.Fatal("UpdateUser changed the username without error")
	}
	wantUser(t, s, u)
	wantNoUser(t, s, UserID(2), Username(2))
}

// testUpdateUserRoles: the role references move with the record, and a
// role that does not exist is refused as at creation.
func testUpdateUserRoles(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustCreateRoles(t, s, RoleID(1), RoleID(2), RoleID(3))
	u := NewUser(UserID(1), Username(1), RoleID(1), RoleID(2))
	must(t, s.CreateUser(ctx, u), "create user")

	_, err := s.UpdateUser(ctx, u.ID, func(u store.User) (store.User, error) {
		u.Roles = append(u.Roles, RoleID(9))
		return u, nil
	})
	wantErr(t, err, store.ErrNotFound, "update user to hold an unknown role")
	wantUser(t, s, u)

	u.Roles = []string{RoleID(2), RoleID(3)}
	_, err = s.UpdateUser(ctx, u.ID, func(got store.User) (store.User, error) {
		got.Roles[0] = RoleID(3) // in place: [3 2]
		slices.Reverse(got.Roles)
		return got, nil
	})
	must(t, err, "update user roles")
	wantUser(t, s, u)
	must(t, s.DeleteRole(ctx, RoleID(1), Base), "delete role the user no longer holds")
	for _, r := range []string{RoleID(2), RoleID(3)} {
		wantErr(t, s.DeleteRole(ctx, r, Base), store.ErrInUse, "delete role the user now holds")
	}
}

func testDeleteRoleHeldByUser(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustCreateRoles(t, s, RoleID(1), RoleID(2))
	a := NewUser(UserID(1), Username(1), RoleID(1), RoleID(2))
	b := NewUser(UserID(2), Username(2), RoleID(2))
	must(t, s.CreateUser(ctx, a), "create user")
	must(t, s.CreateUser(ctx, b), "create user")

	for _, r := range []string{RoleID(1), RoleID(2)} {
		wantErr(t, s.DeleteRole(ctx, r, Base), store.ErrInUse, "delete role held by a user")
		wantRole(t, s, NewRole(r))
	}
	must(t, s.DeleteUser(ctx, a.ID), "delete user")
	must(t, s.DeleteRole(ctx, RoleID(1), Base), "delete role after its only user was deleted")
	wantErr(t, s.DeleteRole(ctx, RoleID(2), Base), store.ErrInUse, "delete role still held by another user")
	must(t, s.DeleteUser(ctx, b.ID), "delete user")
	must(t, s.DeleteRole(ctx, RoleID(2), Base), "delete role after its last user was deleted")
}

func testUserCopies(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustCreateRoles(t, s, RoleID(1), RoleID(2))
	u := NewUser(UserID(1), Username(1), RoleID(1), RoleID(2))
	in := u
	in.Roles = slices.Clone(u.Roles)
	must(t, s.CreateUser(ctx, in), "create user")
	in.Roles[0] = "mutated" // the store must not keep the caller's slice
	wantUser(t, s, u)

	got, err := s.GetUser(ctx, u.ID)
	must(t, err, "get user")
	got.Roles[0] = "mutated"
	got, err = s.GetUserByName(ctx, u.Username)
	must(t, err, "get user by name")
	got.Roles[0] = "mutated"
	list, err := s.ListUsers(ctx)
	must(t, err, "list users")
	list[0].Roles[0] = "mutated"
	got, err = s.UpdateUser(ctx, u.ID, func(u store.User) (store.User, error) { return u, nil })
	must(t, err, "update user")
	got.Roles[0] = "mutated"
	wantUser(t, s, u)
}

// testDeleteRoleAndCreateUserRace: exactly one of DeleteRole and a
// CreateUser holding that role succeeds, never both and never neither.
func testDeleteRoleAndCreateUserRace(t *testing.T, s store.Store) {
	ctx := t.Context()
	for round := range 20 {
		role := RoleID(round)
		mustCreateRoles(t, s, role)
		u := NewUser(UserID(round), Username(round), role)
		var createErr, deleteErr error
		var wg sync.WaitGroup
		wg.Go(func() { createErr = s.CreateUser(ctx, u) })
		wg.Go(func() { deleteErr = s.DeleteRole(ctx, role, Base) })
		wg.Wait()

		switch {
		case createErr == nil && errors.Is(deleteErr, store.ErrInUse):
			wantUser(t, s, u)
			wantRole(t, s, NewRole(role))
		case errors.Is(createErr, store.ErrNotFound) && deleteErr == nil:
			wantNoUser(t, s, u.ID, u.Username)
		default:
			t.Fatalf("round %d: create user: %v; delete role: %v", round, createErr, deleteErr)
		}
	}
}
