package storetest

import (
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/store"
)

func wantTenant(t *testing.T, s store.Store, want store.Tenant) {
	t.Helper()
	got, err := s.GetTenant(t.Context(), want.Name)
	must(t, err, "get tenant "+want.Name)
	if !sameTenant(got, want) {
		t.Fatalf("tenant %s:\n got %+v\nwant %+v", want.Name, got, want)
	}
}

func wantNoTenant(t *testing.T, s store.Store, name string) {
	t.Helper()
	_, err := s.GetTenant(t.Context(), name)
	wantErr(t, err, store.ErrNotFound, "get tenant "+name)
}

func mustCreateTenants(t *testing.T, s store.Store, names ...string) {
	t.Helper()
	for _, name := range names {
		must(t, s.CreateTenant(t.Context(), NewTenant(name)), "create tenant "+name)
	}
}

// wantPulsarToken checks the token both by ID and by MAC.
func wantPulsarToken(t *testing.T, s store.Store, want store.PulsarToken) {
	t.Helper()
	got, err := s.GetPulsarToken(t.Context(), want.ID)
	must(t, err, "get Pulsar token "+want.ID)
	if !samePulsarToken(got, want) {
		t.Fatalf("Pulsar token %s:\n got %+v\nwant %+v", want.ID, got, want)
	}
	got, err = s.GetPulsarTokenByMAC(t.Context(), want.MAC)
	must(t, err, "get Pulsar token by MAC of "+want.ID)
	if !samePulsarToken(got, want) {
		t.Fatalf("Pulsar token by MAC of %s:\n got %+v\nwant %+v", want.ID, got, want)
	}
}

// wantNoPulsarToken checks that neither the ID nor the MAC finds a token.
func wantNoPulsarToken(t *testing.T, s store.Store, id string, mac []byte) {
	t.Helper()
	_, err := s.GetPulsarToken(t.Context(), id)
	wantErr(t, err, store.ErrNotFound, "get Pulsar token "+id)
	_, err = s.GetPulsarTokenByMAC(t.Context(), mac)
	wantErr(t, err, store.ErrNotFound, fmt.Sprintf("get Pulsar token by MAC %x", mac[:4]))
}

// wantPulsarList checks that tenant lists exactly want, in that order, as
// whole records.
func wantPulsarList(t *testing.T, s store.Store, tenant string, want []store.PulsarToken) {
	t.Helper()
	got, err := s.ListPulsarTokens(t.Context(), tenant)
	must(t, err, "list Pulsar tokens of "+tenant)
	ids := func(toks []store.PulsarToken) (out []string) {
		for _, tk := range toks {
			out = append(out, tk.ID)
		}
		return out
	}
	if !slices.Equal(ids(got), ids(want)) {
		t.Fatalf("ListPulsarTokens(%s) IDs:\n got %v\nwant %v", tenant, ids(got), ids(want))
	}
	for i := range got {
		if !samePulsarToken(got[i], want[i]) {
			t.Fatalf("ListPulsarTokens(%s)[%d]:\n got %+v\nwant %+v", tenant, i, got[i], want[i])
		}
	}
}

// createPulsarTokens creates toks without a limit, concurrently
// (createConcurrently).
func createPulsarTokens(t *testing.T, s store.Store, toks []store.PulsarToken) {
	t.Helper()
	createConcurrently(t, toks, func(tk store.PulsarToken) string { return "Pulsar token " + tk.ID },
		func(tk store.PulsarToken) error { return s.CreatePulsarToken(t.Context(), tk, 0) })
}

func wantSigningKeys(t *testing.T, s store.Store, want ...store.SigningKey) {
	t.Helper()
	got, err := s.SigningKeys(t.Context())
	must(t, err, "get signing keys")
	if !sameSigningKeys(got, want) {
		t.Fatalf("signing keys:\n got %+v\nwant %+v", got, want)
	}
}

func testTenantCRUD(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenants, err := s.ListTenants(ctx)
	must(t, err, "list tenants")
	if len(tenants) != 0 {
		t.Fatalf("new store lists %d tenants", len(tenants))
	}

	mustCreateTenants(t, s, TenantName(3), TenantName(1), TenantName(2))
	wantTenant(t, s, NewTenant(TenantName(1)))

	dup := NewTenant(TenantName(1))
	dup.ClusterName = "duplicate"
	wantErr(t, s.CreateTenant(ctx, dup), store.ErrAlreadyExists, "create duplicate tenant")
	wantTenant(t, s, NewTenant(TenantName(1)))

	tenants, err = s.ListTenants(ctx)
	must(t, err, "list tenants")
	var names []string
	for i, tn := range tenants {
		names = append(names, tn.Name)
		if !sameTenant(tn, NewTenant(tn.Name)) {
			t.Fatalf("ListTenants[%d] = %+v, want the stored record", i, tn)
		}
	}
	if want := []string{TenantName(1), TenantName(2), TenantName(3)}; !slices.Equal(names, want) {
		t.Fatalf("ListTenants names = %v, want %v", names, want)
	}

	wantNoTenant(t, s, TenantName(9))
	wantErr(t, s.DeleteTenant(ctx, TenantName(9)), store.ErrNotFound, "delete unknown tenant")

	must(t, s.DeleteTenant(ctx, TenantName(2)), "delete tenant")
	wantNoTenant(t, s, TenantName(2))
	wantErr(t, s.DeleteTenant(ctx, TenantName(2)), store.ErrNotFound, "delete tenant twice")
	wantTenant(t, s, NewTenant(TenantName(1)))
	wantTenant(t, s, NewTenant(TenantName(3)))

	// The name is free again.
	again := NewTenant(TenantName(2))
	again.TokenFormat, again.SealedSecret = "rs256", nil
	must(t, s.CreateTenant(ctx, again), "re-create tenant")
	wantTenant(t, s, again)
}

// testDeleteTenantCascade: deleting a tenant removes exactly its Pulsar
// tokens, by ID, by MAC, from its list and from the expiry GC; the other
// tenant's stay. A re-created tenant starts empty, and the IDs and MACs of
// the cascaded tokens are free again.
func testDeleteTenantCascade(t *testing.T, s store.Store) {
	ctx := t.Context()
	a, b := TenantName(1), TenantName(2)
	mustCreateTenants(t, s, a, b)
	var ofA, ofB []store.PulsarToken
	for i := range 12 {
		tenant := a
		if i%2 == 1 {
			tenant = b
		}
		tk := NewPulsarToken(i, tenant)
		tk.IssuedAt = Base.Add(time.Duration(i) * time.Second)
		if i%3 == 0 {
			tk.Expiry = Base.Add(time.Hour)
		}
		if tenant == a {
			ofA = append(ofA, tk)
		} else {
			ofB = append(ofB, tk)
		}
	}
	createPulsarTokens(t, s, append(slices.Clone(ofA), ofB...))
	wantPulsarList(t, s, a, ofA)

	must(t, s.DeleteTenant(ctx, a), "delete tenant")
	wantNoTenant(t, s, a)
	for _, tk := range ofA {
		wantNoPulsarToken(t, s, tk.ID, tk.MAC)
	}
	for _, tk := range ofB {
		wantPulsarToken(t, s, tk)
	}
	wantPulsarList(t, s, a, nil)
	wantPulsarList(t, s, b, ofB)
	wantTenant(t, s, NewTenant(b))

	// Only b's expiring tokens are left to collect.
	n, err := s.DeleteExpiredPulsarTokens(ctx, Base.Add(time.Hour))
	must(t, err, "delete expired Pulsar tokens")
	if want := 2; n != want { // 3 and 9
		t.Fatalf("DeleteExpiredPulsarTokens removed %d, want %d", n, want)
	}

	mustCreateTenants(t, s, a)
	wantPulsarList(t, s, a, nil)
	reborn := ofA[0]
	must(t, s.CreatePulsarToken(ctx, reborn, 1), "re-create a cascaded token (ID and MAC) under limit 1")
	wantPulsarToken(t, s, reborn)
	wantPulsarList(t, s, a, []store.PulsarToken{reborn})
}

func testPulsarTokenCRUD(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustCreateTenants(t, s, TenantName(1))
	tok := NewPulsarToken(1, TenantName(1))
	tok.Expiry = Base.Add(24 * time.Hour)
	tok.Type = "admin"
	must(t, s.CreatePulsarToken(ctx, tok, 0), "create Pulsar token")
	wantPulsarToken(t, s, tok)

	sameID := NewPulsarToken(2, TenantName(1))
	sameID.ID = tok.ID
	wantErr(t, s.CreatePulsarToken(ctx, sameID, 0), store.ErrAlreadyExists, "create Pulsar token with a taken ID")
	_, err := s.GetPulsarTokenByMAC(ctx, sameID.MAC)
	wantErr(t, err, store.ErrNotFound, "get the refused token by its MAC")
	sameMAC := NewPulsarToken(3, TenantName(1))
	sameMAC.MAC = tok.MAC
	wantErr(t, s.CreatePulsarToken(ctx, sameMAC, 0), store.ErrAlreadyExists, "create Pulsar token with a taken MAC")
	_, err = s.GetPulsarToken(ctx, sameMAC.ID)
	wantErr(t, err, store.ErrNotFound, "get the refused token by its ID")
	wantPulsarToken(t, s, tok)
	wantPulsarList(t, s, TenantName(1), []store.PulsarToken{tok})

	wantNoPulsarToken(t, s, PulsarTokenID(9), PulsarMAC(9))
	_, err = s.GetPulsarTokenByMAC(ctx, nil)
	wantErr(t, err, store.ErrNotFound, "get Pulsar token by an empty MAC")
	wantErr(t, s.DeletePulsarToken(ctx, PulsarTokenID(9)), store.ErrNotFound, "delete unknown Pulsar token")

	must(t, s.DeletePulsarToken(ctx, tok.ID), "delete Pulsar token")
	wantNoPulsarToken(t, s, tok.ID, tok.MAC)
	wantErr(t, s.DeletePulsarToken(ctx, tok.ID), store.ErrNotFound, "delete Pulsar token twice")
	wantPulsarList(t, s, TenantName(1), nil)
	wantTenant(t, s, NewTenant(TenantName(1)))

	// ID and MAC are free again, with nothing left over: the tenant holds
	// one token, as far as the limit can tell.
	again := NewPulsarToken(1, TenantName(1))
	must(t, s.CreatePulsarToken(ctx, again, 1), "re-create Pulsar token under limit 1")
	wantPulsarToken(t, s, again)
	wantErr(t, s.CreatePulsarToken(ctx, NewPulsarToken(4, TenantName(1)), 1), store.ErrLimitReached,
		"second token under limit 1")
}

// testListPulsarTokensOrder: a tenant's tokens come ordered by IssuedAt,
// then ID, whatever the creation order, including times before 1970 and
// tokens issued at the same instant; other tenants' tokens never appear.
func testListPulsarTokensOrder(t *testing.T, s store.Store) {
	ctx := t.Context()
	list, err := s.ListPulsarTokens(ctx, TenantName(1))
	must(t, err, "list Pulsar tokens of an unknown tenant")
	if len(list) != 0 {
		t.Fatalf("unknown tenant lists %d tokens", len(list))
	}
	// "tenant-0001" is a prefix of "tenant-00010": the lists must not mix.
	t1, t10 := TenantName(1), TenantName(1)+"0"
	mustCreateTenants(t, s, t1, t10)
	issued := []time.Time{
		Base.Add(time.Hour), Base, Base.Add(-time.Hour), Base, Base.Add(time.Microsecond),
		time.Date(1969, time.July, 20, 20, 17, 0, 0, time.UTC), Base.Add(time.Hour),
		time.Date(2100, time.January, 1, 0, 0, 0, 0, time.UTC), Base,
	}
	var mine, theirs []store.PulsarToken
	for i, at := range issued {
		tk := NewPulsarToken(len(issued)-i, t1) // IDs descend as i ascends
		tk.IssuedAt = at
		mine = append(mine, tk)
		other := NewPulsarToken(100+i, t10)
		other.IssuedAt = at
		theirs = append(theirs, other)
	}
	all := append(slices.Clone(mine), theirs...)
	rand.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	createPulsarTokens(t, s, all)

	order := func(a, b store.PulsarToken) int {
		return cmp.Or(a.IssuedAt.Compare(b.IssuedAt), cmp.Compare(a.ID, b.ID))
	}
	slices.SortFunc(mine, order)
	slices.SortFunc(theirs, order)
	wantPulsarList(t, s, t1, mine)
	wantPulsarList(t, s, t10, theirs)

	// Deleting from the middle keeps the order of the rest.
	must(t, s.DeletePulsarToken(ctx, mine[3].ID), "delete Pulsar token")
	wantPulsarList(t, s, t1, slices.Delete(slices.Clone(mine), 3, 4))
}

func testCreatePulsarTokenUnknownTenant(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustCreateTenants(t, s, TenantName(1))
	tok := NewPulsarToken(1, TenantName(2))
	for _, limit := range []int{0, 5} {
		err := s.CreatePulsarToken(ctx, tok, limit)
		wantErr(t, err, store.ErrNotFound, fmt.Sprintf("create Pulsar token of an unknown tenant (limit %d)", limit))
		wantNoPulsarToken(t, s, tok.ID, tok.MAC)
	}
	wantPulsarList(t, s, TenantName(2), nil)

	// Nothing half-written blocks a correct retry, nor counts against the
	// tenant once it exists.
	mustCreateTenants(t, s, TenantName(2))
	must(t, s.CreatePulsarToken(ctx, tok, 1), "create Pulsar token once the tenant exists")
	wantPulsarToken(t, s, tok)
}

// testPulsarTokenLimit: the limit counts the tenant's tokens live at the
// new token's IssuedAt (expiry after it, or none); reaching it fails with
// ErrLimitReached and writes nothing; limit <= 0 is no limit; tenants are
// counted separately.
func testPulsarTokenLimit(t *testing.T, s store.Store) {
	ctx := t.Context()
	a, b := TenantName(1), TenantName(2)
	mustCreateTenants(t, s, a, b)
	const limit = 3
	tok := func(n int, issued, expiry time.Time) store.PulsarToken {
		tk := NewPulsarToken(n, a)
		tk.IssuedAt, tk.Expiry = issued, expiry
		return tk
	}
	create := func(tk store.PulsarToken, limit int) {
		t.Helper()
		must(t, s.CreatePulsarToken(ctx, tk, limit), fmt.Sprintf("create Pulsar token %s under limit %d", tk.ID, limit))
		wantPulsarToken(t, s, tk)
	}
	refuse := func(tk store.PulsarToken, limit int) {
		t.Helper()
		wantErr(t, s.CreatePulsarToken(ctx, tk, limit), store.ErrLimitReached,
			fmt.Sprintf("create Pulsar token %s under limit %d", tk.ID, limit))
		wantNoPulsarToken(t, s, tk.ID, tk.MAC)
	}

	t0 := Base
	t1 := Base.Add(time.Microsecond)
	create(tok(1, t0, time.Time{}), limit)        // never expires
	create(tok(2, t0, t0.Add(time.Hour)), limit)  // live throughout
	create(tok(3, t0, t1), limit)                 // expires at t1
	refuse(tok(4, t0, time.Time{}), limit)        // 3 live at t0
	refuse(tok(4, t0.Add(-time.Hour), t1), limit) // 3 live (more so) earlier
	before := []store.PulsarToken{tok(1, t0, time.Time{}), tok(2, t0, t0.Add(time.Hour)), tok(3, t0, t1)}
	wantPulsarList(t, s, a, before)

	// At t1 token 3 has expired (expiry == IssuedAt of the new one): a slot.
	create(tok(4, t1, time.Time{}), limit)
	refuse(tok(5, t1, time.Time{}), limit) // 1, 2 and 4 are live at t1

	// The other tenant has its own count.
	create(NewPulsarToken(10, b), 1)
	refuse(NewPulsarToken(11, b), 1)

	// No limit.
	create(tok(5, t1, time.Time{}), 0)
	create(tok(6, t1, time.Time{}), -1)
	refuse(tok(7, t1, time.Time{}), 5) // 1, 2, 4, 5, 6

	// Deleting a token frees its slot; a larger limit admits more.
	must(t, s.DeletePulsarToken(ctx, tok(6, t1, time.Time{}).ID), "delete Pulsar token")
	create(tok(7, t1, time.Time{}), 5)
	create(tok(8, t1, time.Time{}), 6)
	refuse(tok(9, t1, time.Time{}), 6)
	// Once token 2 has expired, there is room again.
	create(tok(9, t0.Add(time.Hour), time.Time{}), 6)
}

// testConcurrentPulsarTokenLimit races 20 creators for 5 slots: exactly 5
// win, the others get ErrLimitReached, and the winners are what is stored.
func testConcurrentPulsarTokenLimit(t *testing.T, s store.Store) {
	const goroutines, limit = 20, 5
	for round := range 5 {
		tenant := TenantName(round)
		mustCreateTenants(t, s, tenant)
		var (
			wg      sync.WaitGroup
			wins    atomic.Int32
			mu      sync.Mutex
			winners []store.PulsarToken
		)
		for g := range goroutines {
			wg.Go(func() {
				tk := NewPulsarToken(round*goroutines+g, tenant)
				switch err := s.CreatePulsarToken(t.Context(), tk, limit); {
				case err == nil:
					wins.Add(1)
					mu.Lock()
					winners = append(winners, tk)
					mu.Unlock()
				case !errors.Is(err, store.ErrLimitReached):
					t.Errorf("losing create: got %v, want ErrLimitReached", err)
				}
			})
		}
		wg.Wait()
		if n := wins.Load(); n != limit {
			t.Fatalf("round %d: %d creates succeeded under limit %d", round, n, limit)
		}
		slices.SortFunc(winners, func(a, b store.PulsarToken) int { return cmp.Compare(a.ID, b.ID) })
		wantPulsarList(t, s, tenant, winners) // same IssuedAt: ordered by ID
	}
}

// testCreatePulsarTokenAndDeleteTenantRace: a token created while its
// tenant is deleted either fails with ErrNotFound or is removed by the
// cascade; it never outlives its tenant.
func testCreatePulsarTokenAndDeleteTenantRace(t *testing.T, s store.Store) {
	ctx := t.Context()
	for round := range 20 {
		tenant := TenantName(round)
		mustCreateTenants(t, s, tenant)
		tk := NewPulsarToken(round, tenant)
		var createErr, deleteErr error
		var wg sync.WaitGroup
		wg.Go(func() { createErr = s.CreatePulsarToken(ctx, tk, 5) })
		wg.Go(func() { deleteErr = s.DeleteTenant(ctx, tenant) })
		wg.Wait()

		must(t, deleteErr, fmt.Sprintf("round %d: delete tenant", round))
		if createErr != nil {
			wantErr(t, createErr, store.ErrNotFound, fmt.Sprintf("round %d: create Pulsar token", round))
		}
		wantNoPulsarToken(t, s, tk.ID, tk.MAC)
	}
}

func testDeleteExpiredPulsarTokens(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := Base
	a, b := TenantName(1), TenantName(2)
	mustCreateTenants(t, s, a, b)
	tok := func(n int, tenant string, expiry time.Time) store.PulsarToken {
		tk := NewPulsarToken(n, tenant)
		tk.IssuedAt, tk.Expiry = now.Add(-2*time.Hour), expiry
		return tk
	}
	never := tok(1, a, time.Time{})
	past := tok(2, a, now.Add(-time.Hour))
	atNow := tok(3, b, now) // expiry == now: expired
	future := tok(4, b, now.Add(time.Microsecond))
	createPulsarTokens(t, s, []store.PulsarToken{never, past, atNow, future})

	n, err := s.DeleteExpiredPulsarTokens(ctx, now)
	must(t, err, "delete expired Pulsar tokens")
	if n != 2 {
		t.Fatalf("DeleteExpiredPulsarTokens removed %d, want 2", n)
	}
	wantPulsarToken(t, s, never)
	wantPulsarToken(t, s, future)
	for _, gone := range []store.PulsarToken{past, atNow} {
		wantNoPulsarToken(t, s, gone.ID, gone.MAC)
	}
	wantPulsarList(t, s, a, []store.PulsarToken{never})
	wantPulsarList(t, s, b, []store.PulsarToken{future})
	wantTenant(t, s, NewTenant(a))
	wantTenant(t, s, NewTenant(b))

	// A token re-created under a collected ID without expiry must survive.
	reborn := tok(2, a, time.Time{})
	must(t, s.CreatePulsarToken(ctx, reborn, 0), "re-create collected token")
	n, err = s.DeleteExpiredPulsarTokens(ctx, now)
	must(t, err, "delete expired Pulsar tokens again")
	if n != 0 {
		t.Fatalf("second DeleteExpiredPulsarTokens removed %d, want 0", n)
	}
	wantPulsarToken(t, s, reborn)

	n, err = s.DeleteExpiredPulsarTokens(ctx, now.Add(time.Microsecond))
	must(t, err, "delete expired Pulsar tokens later")
	if n != 1 {
		t.Fatalf("later DeleteExpiredPulsarTokens removed %d, want 1", n)
	}
	wantNoPulsarToken(t, s, future.ID, future.MAC)
	wantPulsarList(t, s, a, []store.PulsarToken{never, reborn})
	wantPulsarList(t, s, b, nil)
}

// testDeleteExpiredPulsarTokensMany covers a backlog larger than one
// deletion batch.
func testDeleteExpiredPulsarTokensMany(t *testing.T, s store.Store) {
	now := Base
	mustCreateTenants(t, s, TenantName(1))
	const expired, live = 2100, 10
	var toks []store.PulsarToken
	for i := range expired + live {
		tk := NewPulsarToken(i, TenantName(1))
		tk.IssuedAt = now.Add(-time.Hour)
		tk.Expiry = now.Add(time.Duration(expired-i) * -time.Millisecond) // before now for i < expired
		if i >= expired {
			tk.Expiry = now.Add(time.Hour)
		}
		toks = append(toks, tk)
	}
	createPulsarTokens(t, s, toks)

	n, err := s.DeleteExpiredPulsarTokens(t.Context(), now)
	must(t, err, "delete expired Pulsar tokens")
	if n != expired {
		t.Fatalf("DeleteExpiredPulsarTokens removed %d, want %d", n, expired)
	}
	wantPulsarList(t, s, TenantName(1), toks[expired:])
}

func testSigningKeys(t *testing.T, s store.Store) {
	ctx := t.Context()
	wantSigningKeys(t, s) // none yet

	errRefused := errors.New("refused by closure")
	err := s.UpdateSigningKeys(ctx, func(keys []store.SigningKey) ([]store.SigningKey, error) {
		return append(keys, NewSigningKey(1)), errRefused
	})
	wantErr(t, err, errRefused, "update whose closure fails")
	wantSigningKeys(t, s)

	k1, k2, k3 := NewSigningKey(1), NewSigningKey(2), NewSigningKey(3)
	must(t, s.UpdateSigningKeys(ctx, func(keys []store.SigningKey) ([]store.SigningKey, error) {
		if len(keys) != 0 {
			t.Errorf("closure got %d keys, want none", len(keys))
		}
		return append(keys, k1), nil
	}), "add first key")
	wantSigningKeys(t, s, k1)

	// Oldest first, whatever order the closure returns.
	must(t, s.UpdateSigningKeys(ctx, func(keys []store.SigningKey) ([]store.SigningKey, error) {
		return append(keys, k3, k2), nil
	}), "add two keys")
	wantSigningKeys(t, s, k1, k2, k3)

	// The closure sees the current set; a failing one changes nothing, even
	// after modifying what it was given.
	err = s.UpdateSigningKeys(ctx, func(keys []store.SigningKey) ([]store.SigningKey, error) {
		if !sameSigningKeys(keys, []store.SigningKey{k1, k2, k3}) {
			t.Errorf("closure got %+v, want the stored set", keys)
		}
		keys[0].RetiredAt = Base
		keys[0].PublicDER[0] ^= 0xff
		return keys, errRefused
	})
	wantErr(t, err, errRefused, "update whose closure fails")
	wantSigningKeys(t, s, k1, k2, k3)

	for name, bad := range map[string]func([]store.SigningKey) []store.SigningKey{
		"duplicate kid": func(keys []store.SigningKey) []store.SigningKey {
			dup := NewSigningKey(4)
			dup.Kid = k2.Kid
			return append(keys, dup)
		},
		"duplicate key": func(keys []store.SigningKey) []store.SigningKey { return append(keys, keys[0]) },
		"empty kid": func(keys []store.SigningKey) []store.SigningKey {
			k := NewSigningKey(4)
			k.Kid = ""
			return append(keys, k)
		},
	} {
		err := s.UpdateSigningKeys(ctx, func(keys []store.SigningKey) ([]store.SigningKey, error) {
			return bad(keys), nil
		})
		if err == nil {
			t.Fatalf("UpdateSigningKeys accepted a set with a %s", name)
		}
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrAlreadyExists) {
			t.Errorf("%s: got %v, want an error that is neither ErrNotFound nor ErrAlreadyExists", name, err)
		}
		wantSigningKeys(t, s, k1, k2, k3)
	}

	// Retire the oldest and drop nothing; then replace the whole set.
	retired := k1
	retired.RetiredAt = Base.Add(10 * time.Hour)
	must(t, s.UpdateSigningKeys(ctx, func(keys []store.SigningKey) ([]store.SigningKey, error) {
		keys[0].RetiredAt = retired.RetiredAt
		return keys, nil
	}), "retire a key")
	wantSigningKeys(t, s, retired, k2, k3)
	k4 := NewSigningKey(4)
	must(t, s.UpdateSigningKeys(ctx, func([]store.SigningKey) ([]store.SigningKey, error) {
		return []store.SigningKey{k4}, nil
	}), "replace the set")
	wantSigningKeys(t, s, k4)

	// Returned and given keys are copies.
	given := []store.SigningKey{NewSigningKey(4), NewSigningKey(5)}
	must(t, s.UpdateSigningKeys(ctx, func([]store.SigningKey) ([]store.SigningKey, error) {
		return given, nil
	}), "store a set")
	given[0].PublicDER[0] ^= 0xff
	given[1].SealedPrivate[0] ^= 0xff
	given[1].Kid = "mutated"
	got, err := s.SigningKeys(ctx)
	must(t, err, "get signing keys")
	got[0].PublicDER[0] ^= 0xff
	got[0].SealedPrivate[0] ^= 0xff
	got[1].Kid = "mutated"
	wantSigningKeys(t, s, NewSigningKey(4), NewSigningKey(5))

	// An empty result empties the set.
	must(t, s.UpdateSigningKeys(ctx, func([]store.SigningKey) ([]store.SigningKey, error) {
		return nil, nil
	}), "empty the set")
	wantSigningKeys(t, s)
}

func testTenantAndPulsarCopies(t *testing.T, s store.Store) {
	ctx := t.Context()
	want := NewTenant(TenantName(1))
	in := NewTenant(TenantName(1))
	must(t, s.CreateTenant(ctx, in), "create tenant")
	// The store must not keep the caller's slices.
	in.SealedSecret[0] ^= 0xff
	wantTenant(t, s, want)
	got, err := s.GetTenant(ctx, want.Name)
	must(t, err, "get tenant")
	got.SealedSecret[0] ^= 0xff
	list, err := s.ListTenants(ctx)
	must(t, err, "list tenants")
	list[0].SealedSecret[0] ^= 0xff
	wantTenant(t, s, want)

	wantTok := NewPulsarToken(1, TenantName(1))
	inTok := NewPulsarToken(1, TenantName(1))
	must(t, s.CreatePulsarToken(ctx, inTok, 0), "create Pulsar token")
	inTok.MAC[0] ^= 0xff
	wantPulsarToken(t, s, wantTok)
	gotTok, err := s.GetPulsarToken(ctx, wantTok.ID)
	must(t, err, "get Pulsar token")
	gotTok.MAC[0] ^= 0xff
	gotTok, err = s.GetPulsarTokenByMAC(ctx, wantTok.MAC)
	must(t, err, "get Pulsar token by MAC")
	gotTok.MAC[0] ^= 0xff
	toks, err := s.ListPulsarTokens(ctx, TenantName(1))
	must(t, err, "list Pulsar tokens")
	toks[0].MAC[0] ^= 0xff
	wantPulsarToken(t, s, wantTok)
}

func testTenantAndPulsarTimesUTC(t *testing.T, s store.Store) {
	ctx := t.Context()
	zone := time.FixedZone("UTC+09:45", 9*3600+45*60)
	at := time.Date(2031, time.March, 4, 5, 6, 7, 123456000, zone)
	check := func(what string, got, want time.Time) {
		t.Helper()
		if !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("%s = %v (location %v), want %v in UTC", what, got, got.Location(), want)
		}
	}

	tn := NewTenant(TenantName(1))
	tn.CreatedAt = at
	must(t, s.CreateTenant(ctx, tn), "create tenant")
	gotTenant, err := s.GetTenant(ctx, tn.Name)
	must(t, err, "get tenant")
	check("tenant CreatedAt", gotTenant.CreatedAt, at)

	tk := NewPulsarToken(1, tn.Name)
	tk.IssuedAt, tk.Expiry = at, at.Add(24*time.Hour)
	must(t, s.CreatePulsarToken(ctx, tk, 0), "create Pulsar token")
	gotTok, err := s.GetPulsarTokenByMAC(ctx, tk.MAC)
	must(t, err, "get Pulsar token by MAC")
	check("Pulsar token IssuedAt", gotTok.IssuedAt, at)
	check("Pulsar token Expiry", gotTok.Expiry, at.Add(24*time.Hour))
	plain := NewPulsarToken(2, tn.Name) // zero Expiry
	must(t, s.CreatePulsarToken(ctx, plain, 0), "create Pulsar token")
	gotTok, err = s.GetPulsarToken(ctx, plain.ID)
	must(t, err, "get Pulsar token")
	if !gotTok.Expiry.IsZero() {
		t.Errorf("zero Pulsar token Expiry came back as %v", gotTok.Expiry)
	}

	k := NewSigningKey(1)
	k.CreatedAt, k.RetiredAt = at, at.Add(time.Hour)
	fresh := NewSigningKey(2) // zero RetiredAt
	fresh.CreatedAt = at.Add(time.Minute).In(time.Local)
	must(t, s.UpdateSigningKeys(ctx, func([]store.SigningKey) ([]store.SigningKey, error) {
		return []store.SigningKey{k, fresh}, nil
	}), "store signing keys")
	keys, err := s.SigningKeys(ctx)
	must(t, err, "get signing keys")
	if len(keys) != 2 {
		t.Fatalf("%d signing keys, want 2", len(keys))
	}
	check("signing key CreatedAt", keys[0].CreatedAt, at)
	check("signing key RetiredAt", keys[0].RetiredAt, at.Add(time.Hour))
	check("signing key CreatedAt", keys[1].CreatedAt, at.Add(time.Minute))
	if !keys[1].RetiredAt.IsZero() {
		t.Errorf("zero signing key RetiredAt came back as %v", keys[1].RetiredAt)
	}
}
