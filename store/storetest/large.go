package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/store"
)

// Cascades larger than one etcd transaction holds (128 operations by
// default): a backend may split them into a crash-safe sequence, but the
// outcome must be the same as for small ones, and the audit event is
// recorded once, with the delete.

const manyDependents = 150

func testDeleteTokenCascadeMany(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustCreateRoles(t, s, RoleID(1))
	a, b := NewToken(ClientID(1), RoleID(1)), NewToken(ClientID(2), RoleID(1))
	createTokens(t, s, []store.Token{a, b})
	var ofA []store.AuthToken
	for i := range manyDependents {
		ofA = append(ofA, NewAuthToken(i, store.PrincipalApplicationToken, a.ClientID))
	}
	other := NewAuthToken(manyDependents, store.PrincipalApplicationToken, b.ClientID)
	createAuthTokens(t, s, append(ofA, other))

	ev := NewAuditEvent("TokenService.DeleteToken", "token", a.ClientID)
	must(t, s.DeleteToken(store.WithAudit(ctx, &ev), a.ClientID), "delete token")
	if _, err := s.GetToken(ctx, a.ClientID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetToken after delete: %v, want ErrNotFound", err)
	}
	for _, at := range ofA {
		wantNoAuthToken(t, s, at.MAC)
	}
	wantAuthToken(t, s, other)
	wantAuditEvents(t, s, []store.AuditEvent{ev})
	n, err := s.DeleteIdleAuthTokens(ctx, Base)
	must(t, err, "delete idle auth tokens")
	if n != 1 {
		t.Fatalf("DeleteIdleAuthTokens removed %d, want 1 (the survivor)", n)
	}
}

func testDeleteUserCascadeMany(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustCreateRoles(t, s, RoleID(1))
	u := NewUser(UserID(1), Username(1), RoleID(1))
	must(t, s.CreateUser(ctx, u), "create user")
	var toks []store.AuthToken
	for i := range manyDependents {
		toks = append(toks, NewAuthToken(i, store.PrincipalUser, u.ID))
	}
	createAuthTokens(t, s, toks)
	must(t, s.DeleteUser(ctx, u.ID), "delete user")
	if _, err := s.GetUser(ctx, u.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetUser after delete: %v, want ErrNotFound", err)
	}
	for _, at := range toks {
		wantNoAuthToken(t, s, at.MAC)
	}
}

func testDeleteTenantCascadeMany(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := TenantName(1)
	mustCreateTenants(t, s, a)
	var toks []store.PulsarToken
	for i := range manyDependents {
		tk := NewPulsarToken(i, a)
		tk.IssuedAt = Base.Add(time.Duration(i) * time.Second)
		toks = append(toks, tk)
	}
	createPulsarTokens(t, s, toks)
	must(t, s.DeleteTenant(ctx, a), "delete tenant")
	wantNoTenant(t, s, a)
	for _, tk := range toks {
		wantNoPulsarToken(t, s, tk.ID, tk.MAC)
	}
	if list, err := s.ListPulsarTokens(ctx, a); err != nil || len(list) != 0 {
		t.Fatalf("ListPulsarTokens after delete: %d tokens, %v", len(list), err)
	}
}

// testRecordUseMany records use times for more records than one etcd
// transaction holds.
func testRecordUseMany(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustCreateRoles(t, s, RoleID(1))
	var toks []store.Token
	used := map[string]time.Time{}
	for i := range manyDependents {
		tk := NewToken(ClientID(i), RoleID(1))
		toks = append(toks, tk)
		used[tk.ClientID] = Base.Add(time.Duration(i+1) * time.Minute)
	}
	createTokens(t, s, toks)
	must(t, s.RecordTokenUse(ctx, used), "record token use")
	for id, when := range used {
		got, err := s.GetToken(ctx, id)
		must(t, err, "get token")
		if !got.LastUsed.Equal(when) {
			t.Fatalf("token %s LastUsed = %v, want %v", id, got.LastUsed, when)
		}
	}
}
