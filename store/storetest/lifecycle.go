package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/store"
)

// Credential lifecycle: token rotation, the organization's token policy,
// tenant secret rotation and phased signing keys.

func rotateInto(next store.Token, retiresAt, at time.Time) func(store.Token) (store.Token, error) {
	return func(old store.Token) (store.Token, error) {
		old.Expiry, old.RotatedTo, old.RotatedAt = retiresAt, next.ClientID, at
		return old, nil
	}
}

func testRotateToken(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustCreateRoles(t, s, RoleID(1), RoleID(2))
	old := NewToken(ClientID(1), RoleID(1), RoleID(2))
	old.Expiry = Base.Add(90 * 24 * time.Hour)
	must(t, s.CreateToken(ctx, old), "create token")
	must(t, s.CreateAuthToken(ctx, NewAuthToken(1, store.PrincipalApplicationToken, old.ClientID)), "create auth token")

	next := NewToken(ClientID(2), RoleID(1), RoleID(2))
	next.Expiry = Base.Add(91 * 24 * time.Hour)
	grace := Base.Add(2 * time.Minute)
	got, err := s.RotateToken(ctx, old.ClientID, next, rotateInto(next, grace, Base))
	must(t, err, "rotate token")
	want := old
	want.Expiry, want.RotatedTo, want.RotatedAt = grace, next.ClientID, Base
	if !sameToken(got, want) {
		t.Fatalf("returned old token:\n got %+v\nwant %+v", got, want)
	}
	wantToken(t, s, want)
	wantToken(t, s, next)

	// The principal's expiry seen through its auth tokens is the grace end.
	res, err := s.ResolveAuthToken(ctx, AuthMAC(1))
	must(t, err, "resolve auth token")
	if !res.Expiry.Equal(grace) {
		t.Fatalf("resolved expiry %v, want %v", res.Expiry, grace)
	}
	// A role held by the successor is still in use after the old one is gone.
	wantErr(t, s.DeleteRole(ctx, RoleID(1), grace.Add(time.Hour)), store.ErrInUse, "delete role held by the successor")
}

func testRotateTokenRefusals(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustCreateRoles(t, s, RoleID(1))
	old := NewToken(ClientID(1), RoleID(1))
	must(t, s.CreateToken(ctx, old), "create token")
	taken := NewToken(ClientID(3), RoleID(1))
	must(t, s.CreateToken(ctx, taken), "create token")
	next := NewToken(ClientID(2), RoleID(1))

	_, err := s.RotateToken(ctx, ClientID(9), next, rotateInto(next, Base, Base))
	wantErr(t, err, store.ErrNotFound, "rotate unknown token")
	wantNoToken(t, s, next.ClientID)

	errRefused := errors.New("refused by closure")
	_, err = s.RotateToken(ctx, old.ClientID, next, func(tok store.Token) (store.Token, error) {
		tok.Expiry = Base
		return tok, errRefused
	})
	wantErr(t, err, errRefused, "rotate whose closure fails")
	wantToken(t, s, old)
	wantNoToken(t, s, next.ClientID)

	// A taken successor ID: nothing changes, not even the old record.
	_, err = s.RotateToken(ctx, old.ClientID, taken, rotateInto(taken, Base, Base))
	wantErr(t, err, store.ErrAlreadyExists, "rotate into a taken client ID")
	wantToken(t, s, old)

	// The successor's roles must exist.
	ghost := NewToken(ClientID(4), RoleID(7))
	_, err = s.RotateToken(ctx, old.ClientID, ghost, rotateInto(ghost, Base, Base))
	wantErr(t, err, store.ErrNotFound, "rotate into a token with an unknown role")
	wantToken(t, s, old)
	wantNoToken(t, s, ghost.ClientID)

	for name, bad := range map[string]func(store.Token) store.Token{
		"client ID":  func(tok store.Token) store.Token { tok.ClientID = ClientID(5); return tok },
		"roles":      func(tok store.Token) store.Token { tok.Roles = nil; return tok },
		"secret MAC": func(tok store.Token) store.Token { tok.SecretMAC = []byte("other"); return tok },
	} {
		_, err := s.RotateToken(ctx, old.ClientID, next, func(tok store.Token) (store.Token, error) { return bad(tok), nil })
		if err == nil {
			t.Fatalf("rotation changing the %s succeeded", name)
		}
		wantToken(t, s, old)
		wantNoToken(t, s, next.ClientID)
	}
}

func testRotatedTokenExpires(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustCreateRoles(t, s, RoleID(1))
	old := NewToken(ClientID(1), RoleID(1)) // never expires until rotated
	must(t, s.CreateToken(ctx, old), "create token")
	must(t, s.CreateAuthToken(ctx, NewAuthToken(1, store.PrincipalApplicationToken, old.ClientID)), "create auth token")
	next := NewToken(ClientID(2), RoleID(1))
	grace := Base.Add(2 * time.Minute)
	_, err := s.RotateToken(ctx, old.ClientID, next, rotateInto(next, grace, Base))
	must(t, err, "rotate token")

	n, err := s.DeleteExpiredTokens(ctx, grace.Add(-time.Second))
	must(t, err, "delete expired inside the grace")
	if n != 0 {
		t.Fatalf("deleted %d tokens inside the grace", n)
	}
	n, err = s.DeleteExpiredTokens(ctx, grace)
	must(t, err, "delete expired at the grace end")
	if n != 1 {
		t.Fatalf("deleted %d tokens at the grace end, want 1", n)
	}
	wantNoToken(t, s, old.ClientID)
	wantToken(t, s, next)
	_, err = s.GetAuthToken(ctx, AuthMAC(1))
	wantErr(t, err, store.ErrNotFound, "auth token of the retired token")
	// The role is now held only by the successor, which never expires.
	wantErr(t, s.DeleteRole(ctx, RoleID(1), grace.Add(time.Hour)), store.ErrInUse, "delete role held by the successor")
}

func testUpdateOrganization(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, err := s.UpdateOrganization(ctx, func(o store.Organization) (store.Organization, error) { return o, nil })
	wantErr(t, err, store.ErrNotFound, "update organization before bootstrap")

	mustCreateRoles(t, s, RoleID(1))
	org := NewOrganization()
	must(t, s.Bootstrap(ctx, org, NewToken(ClientID(1), RoleID(1))), "bootstrap")

	policy := store.TokenPolicy{MaxTokenLifetime: 30 * 24 * time.Hour, MaxPulsarTokenLifetime: 7 * 24 * time.Hour,
		UpdatedAt: Base.Add(time.Hour).In(time.FixedZone("east", 3600)), UpdatedBy: ClientID(1)}
	got, err := s.UpdateOrganization(ctx, func(o store.Organization) (store.Organization, error) {
		if !sameOrg(o, org) {
			t.Errorf("closure got %+v, want %+v", o, org)
		}
		o.TokenPolicy = policy
		return o, nil
	})
	must(t, err, "update organization")
	want := org
	want.TokenPolicy = policy
	if !sameOrg(got, want) || got.TokenPolicy.UpdatedAt.Location() != time.UTC {
		t.Fatalf("returned organization:\n got %+v\nwant %+v", got, want)
	}
	stored, err := s.GetOrganization(ctx)
	must(t, err, "get organization")
	if !sameOrg(stored, want) {
		t.Fatalf("stored organization:\n got %+v\nwant %+v", stored, want)
	}

	errRefused := errors.New("refused by closure")
	_, err = s.UpdateOrganization(ctx, func(o store.Organization) (store.Organization, error) {
		o.TokenPolicy = store.TokenPolicy{}
		return o, errRefused
	})
	wantErr(t, err, errRefused, "update whose closure fails")
	for name, bad := range map[string]func(store.Organization) store.Organization{
		"ID":        func(o store.Organization) store.Organization { o.ID = RoleID(9); return o },
		"key check": func(o store.Organization) store.Organization { o.KeyCheck = []byte("x"); return o },
	} {
		if _, err := s.UpdateOrganization(ctx, func(o store.Organization) (store.Organization, error) { return bad(o), nil }); err == nil {
			t.Fatalf("update changing the %s succeeded", name)
		}
	}
	// Clearing the policy round-trips too.
	_, err = s.UpdateOrganization(ctx, func(o store.Organization) (store.Organization, error) {
		o.TokenPolicy = store.TokenPolicy{}
		return o, nil
	})
	must(t, err, "clear policy")
	stored, err = s.GetOrganization(ctx)
	must(t, err, "get organization")
	if !sameOrg(stored, org) {
		t.Fatalf("after clearing:\n got %+v\nwant %+v", stored, org)
	}
}

func testUpdateTenant(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, err := s.UpdateTenant(ctx, TenantName(1), func(tn store.Tenant) (store.Tenant, error) { return tn, nil })
	wantErr(t, err, store.ErrNotFound, "update unknown tenant")

	tn := NewTenant(TenantName(1))
	must(t, s.CreateTenant(ctx, tn), "create tenant")
	must(t, s.CreatePulsarToken(ctx, NewPulsarToken(1, tn.Name), 0), "create pulsar token")
	want := tn
	want.PreviousSealedSecret = tn.SealedSecret
	want.SealedSecret = []byte("a new sealed secret")
	want.PreviousSecretRetiresAt = Base.Add(time.Hour)
	got, err := s.UpdateTenant(ctx, tn.Name, func(cur store.Tenant) (store.Tenant, error) {
		cur.PreviousSealedSecret, cur.SealedSecret = cur.SealedSecret, []byte("a new sealed secret")
		cur.PreviousSecretRetiresAt = Base.Add(time.Hour)
		return cur, nil
	})
	must(t, err, "update tenant")
	if !sameTenant(got, want) {
		t.Fatalf("returned tenant:\n got %+v\nwant %+v", got, want)
	}
	stored, err := s.GetTenant(ctx, tn.Name)
	must(t, err, "get tenant")
	if !sameTenant(stored, want) {
		t.Fatalf("stored tenant:\n got %+v\nwant %+v", stored, want)
	}
	// Its tokens are untouched.
	if _, err := s.GetPulsarToken(ctx, PulsarTokenID(1)); err != nil {
		t.Fatalf("pulsar token after tenant update: %v", err)
	}

	errRefused := errors.New("refused by closure")
	_, err = s.UpdateTenant(ctx, tn.Name, func(cur store.Tenant) (store.Tenant, error) {
		cur.SealedSecret = nil
		return cur, errRefused
	})
	wantErr(t, err, errRefused, "update whose closure fails")
	if _, err := s.UpdateTenant(ctx, tn.Name, func(cur store.Tenant) (store.Tenant, error) {
		cur.Name = TenantName(2)
		return cur, nil
	}); err == nil {
		t.Fatal("update changing the name succeeded")
	}
	// Dropping the previous secret round-trips as none.
	_, err = s.UpdateTenant(ctx, tn.Name, func(cur store.Tenant) (store.Tenant, error) {
		cur.PreviousSealedSecret, cur.PreviousSecretRetiresAt = nil, time.Time{}
		return cur, nil
	})
	must(t, err, "drop previous secret")
	stored, err = s.GetTenant(ctx, tn.Name)
	must(t, err, "get tenant")
	want.PreviousSealedSecret, want.PreviousSecretRetiresAt = nil, time.Time{}
	if !sameTenant(stored, want) {
		t.Fatalf("after dropping:\n got %+v\nwant %+v", stored, want)
	}
}

func testSigningKeyPhases(t *testing.T, s store.Store) {
	ctx := t.Context()
	active, pending := NewSigningKey(1), NewSigningKey(2)
	active.ActivatedAt = Base.Add(30 * time.Minute).In(time.FixedZone("west", -7200))
	pending.Pending = true
	must(t, s.UpdateSigningKeys(ctx, func(keys []store.SigningKey) ([]store.SigningKey, error) {
		return append(keys, active, pending), nil
	}), "store keys")
	wantSigningKeys(t, s, active, pending)
	keys, err := s.SigningKeys(ctx)
	must(t, err, "signing keys")
	if keys[0].ActivatedAt.Location() != time.UTC || !keys[1].ActivatedAt.IsZero() || !keys[1].Pending || keys[0].Pending {
		t.Fatalf("phases not kept: %+v", keys)
	}
}
