// Package storetest is the conformance suite of store.Store. A backend is
// done when its test calls Run and passes, under -race.
package storetest

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/store"
)

// caseTimeout is far above what any case needs; reaching it means a
// deadlock, which the watchdog turns into a stack dump instead of a CI job
// that hangs until its global timeout.
const caseTimeout = 60 * time.Second

type testCase struct {
	name string
	run  func(t *testing.T, s store.Store)
}

var cases = []testCase{
	{"OrganizationNotFoundBeforeBootstrap", testOrganizationNotFound},
	{"Bootstrap", testBootstrap},
	{"BootstrapUnknownRole", testBootstrapUnknownRole},
	{"CreateTokenUnknownRole", testCreateTokenUnknownRole},
	{"RoleCRUD", testRoleCRUD},
	{"ListRolesPage", testListRolesPage},
	{"UpdateRoleClosureError", testUpdateRoleClosureError},
	{"UpdateRoleCannotChangeID", testUpdateRoleCannotChangeID},
	{"DeleteRoleInUse", testDeleteRoleInUse},
	{"TokenCRUD", testTokenCRUD},
	{"ReturnedRecordsAreCopies", testCopies},
	{"TimesRoundTripInUTC", testTimesUTC},
	{"ListTokensPagination", testPagination},
	{"ListTokensStableUnderChurn", testPaginationUnderChurn},
	{"RecordTokenUse", testRecordTokenUse},
	{"DeleteExpiredTokens", testDeleteExpired},
	{"DeleteExpiredTokensMany", testDeleteExpiredMany},
	{"ConcurrentCreateTokens", testConcurrentCreates},
	{"ConcurrentUpdateRole", testConcurrentUpdateRole},
	{"ConcurrentCreateSameToken", testConcurrentCreateSame},
	{"ConcurrentDeleteRoleAndCreateToken", testDeleteRoleRace},
	{"UserCRUD", testUserCRUD},
	{"CreateUserUnknownRole", testCreateUserUnknownRole},
	{"ListUsersOrderedByUsername", testListUsersOrder},
	{"ListUsersPage", testListUsersPage},
	{"UpdateUserClosureError", testUpdateUserClosureError},
	{"UpdateUserCannotChangeIDOrUsername", testUpdateUserCannotChangeIDOrUsername},
	{"UpdateUserRoles", testUpdateUserRoles},
	{"DeleteRoleHeldByUser", testDeleteRoleHeldByUser},
	{"UserRecordsAreCopies", testUserCopies},
	{"ConcurrentDeleteRoleAndCreateUser", testDeleteRoleAndCreateUserRace},
	{"AuthTokenCRUD", testAuthTokenCRUD},
	{"ResolveAuthToken", testResolveAuthToken},
	{"CreateAuthTokenMissingPrincipal", testCreateAuthTokenMissingPrincipal},
	{"RecordAuthTokenUse", testRecordAuthTokenUse},
	{"DeleteIdleAuthTokens", testDeleteIdleAuthTokens},
	{"DeleteIdleAuthTokensMany", testDeleteIdleAuthTokensMany},
	{"DeleteIdleAuthTokensOrphans", testDeleteIdleAuthTokensOrphans},
	{"DeleteTokenCascadesToAuthTokens", testDeleteTokenCascade},
	{"DeleteUserCascadesToAuthTokens", testDeleteUserCascade},
	{"UserAndAuthTokenTimesRoundTripInUTC", testAuthTokenTimesUTC},
	{"ConcurrentAuthTokenUseAndIdleGC", testConcurrentAuthTokenUseAndIdleGC},
	{"ConcurrentCreateAuthTokenAndDeleteToken", testCreateAuthTokenAndDeleteTokenRace},
	{"TenantCRUD", testTenantCRUD},
	{"ListTenantsPage", testListTenantsPage},
	{"DeleteTenantCascadesToPulsarTokens", testDeleteTenantCascade},
	{"PulsarTokenCRUD", testPulsarTokenCRUD},
	{"ListPulsarTokensOrderedByIssuedAtThenID", testListPulsarTokensOrder},
	{"ListPulsarTokensPage", testListPulsarTokensPage},
	{"CreatePulsarTokenUnknownTenant", testCreatePulsarTokenUnknownTenant},
	{"PulsarTokenLimit", testPulsarTokenLimit},
	{"ConcurrentCreatePulsarTokensAtLimit", testConcurrentPulsarTokenLimit},
	{"ConcurrentCreatePulsarTokenAndDeleteTenant", testCreatePulsarTokenAndDeleteTenantRace},
	{"DeleteExpiredPulsarTokens", testDeleteExpiredPulsarTokens},
	{"DeleteExpiredPulsarTokensMany", testDeleteExpiredPulsarTokensMany},
	{"SigningKeys", testSigningKeys},
	{"TenantAndPulsarRecordsAreCopies", testTenantAndPulsarCopies},
	{"TenantPulsarAndSigningKeyTimesRoundTripInUTC", testTenantAndPulsarTimesUTC},
	{"DatabaseCRUD", testDatabaseCRUD},
	{"CreateDatabaseIDTaken", testCreateDatabaseTaken},
	{"ListDatabasesOrderedByCreatedAtThenID", testListDatabasesOrder},
	{"ListDatabasesPage", testListDatabasesPage},
	{"UpdateDatabaseClosureError", testUpdateDatabaseClosureError},
	{"UpdateDatabaseCannotChangeIDOrUsage", testUpdateDatabaseCannotChangeIDOrUsage},
	{"RecordDatabaseUsage", testRecordDatabaseUsage},
	{"ConcurrentRecordDatabaseUsage", testConcurrentRecordDatabaseUsage},
	{"DatabaseTimesRoundTripInUTC", testDatabaseTimesUTC},
	{"NamespaceStatsPutAndList", testNamespaceStatsPutAndList},
	{"NamespaceStatsReplace", testNamespaceStatsReplace},
	{"ListNamespaceStatsPage", testListNamespaceStatsPage},
	{"PutNamespaceStatsUnknownTenant", testPutNamespaceStatsUnknownTenant},
	{"DeleteTenantRemovesNamespaceStats", testDeleteTenantRemovesNamespaceStats},
	{"NamespaceStatsTimesRoundTripInUTC", testNamespaceStatsTimesUTC},
	{"NamespaceStatsAreCopies", testNamespaceStatsCopies},
	{"AuditedWriteRecordsEvent", testAuditedWrite},
	{"AuditEventIsValueAtWriteTime", testAuditEventValueAtWriteTime},
	{"AppendAndListAuditEvents", testAppendAndListAuditEvents},
	{"ListAuditEventsTimeFilter", testListAuditEventsTimeFilter},
	{"AuditTimesRoundTripInUTC", testAuditTimesUTC},
	{"ConcurrentAuditedWrites", testConcurrentAuditedWrites},
	{"RotateToken", testRotateToken},
	{"RotateTokenRefusals", testRotateTokenRefusals},
	{"RotatedTokenExpiresWithItsGrace", testRotatedTokenExpires},
	{"UpdateOrganization", testUpdateOrganization},
	{"UpdateTenant", testUpdateTenant},
	{"SigningKeyPhases", testSigningKeyPhases},
	{"UseAfterClose", testUseAfterClose},
	{"DeleteTokenCascadesToManyAuthTokens", testDeleteTokenCascadeMany},
	{"DeleteUserCascadesToManyAuthTokens", testDeleteUserCascadeMany},
	{"DeleteTenantCascadesToManyPulsarTokens", testDeleteTenantCascadeMany},
	{"RecordTokenUseMany", testRecordUseMany},
	{"RecordAuthTokenUseMany", testRecordAuthTokenUseMany},
	{"RecordDatabaseUsageMany", testRecordDatabaseUsageMany},
	{"PutNamespaceStatsMany", testPutNamespaceStatsMany},
	{"ConcurrentPutNamespaceStatsAndDeleteTenant", testConcurrentPutNamespaceStatsAndDeleteTenant},
	{"AppendLargeAuditEvents", testAppendLargeAuditEvents},
	{"DeleteTokenKeepingRole", testDeleteTokenKeepingRole},
	{"ConcurrentDeleteLastHoldersOfRole", testConcurrentDeleteLastHolders},
	{"ChangeFeed", testChangeFeed},
	{"ChangeWindows", testChangeWindows},
}

// Run runs every case in its own subtest with a fresh store from newStore.
// newStore should register its cleanup with t.Cleanup; one case closes the
// store itself, so the cleanup must accept Close returning ErrClosed.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			defer watchdog(t.Name())()
			c.run(t, newStore(t))
		})
	}
}

// watchdog panics with every goroutine's stack if the case is still running
// after caseTimeout. The stacks go in the panic message because a hung
// test's t.Log output would never be printed.
func watchdog(name string) (stop func()) {
	timer := time.AfterFunc(caseTimeout, func() {
		buf := make([]byte, 1<<20)
		for {
			n := runtime.Stack(buf, true)
			if n < len(buf) {
				buf = buf[:n]
				break
			}
			buf = make([]byte, 2*len(buf))
		}
		panic(fmt.Sprintf("storetest: %s still running after %s (deadlock?); all goroutines:\n\n%s", name, caseTimeout, buf))
	})
	return func() { timer.Stop() }
}

func wantErr(t *testing.T, err, target error, what string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want one wrapping %q", what, err, target)
	}
}

func must(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func mustCreateRoles(t *testing.T, s store.Store, ids ...string) {
	t.Helper()
	for _, id := range ids {
		must(t, s.CreateRole(t.Context(), NewRole(id)), "create role "+id)
	}
}

func wantToken(t *testing.T, s store.Store, want store.Token) {
	t.Helper()
	got, err := s.GetToken(t.Context(), want.ClientID)
	must(t, err, "get token "+want.ClientID)
	if !sameToken(got, want) {
		t.Fatalf("token %s:\n got %+v\nwant %+v", want.ClientID, got, want)
	}
}

func wantNoToken(t *testing.T, s store.Store, clientID string) {
	t.Helper()
	_, err := s.GetToken(t.Context(), clientID)
	wantErr(t, err, store.ErrNotFound, "get token "+clientID)
}

func wantRole(t *testing.T, s store.Store, want store.Role) {
	t.Helper()
	got, err := s.GetRole(t.Context(), want.ID)
	must(t, err, "get role "+want.ID)
	if !sameRole(got, want) {
		t.Fatalf("role %s:\n got %+v\nwant %+v", want.ID, got, want)
	}
}

func testOrganizationNotFound(t *testing.T, s store.Store) {
	_, err := s.GetOrganization(t.Context())
	wantErr(t, err, store.ErrNotFound, "get organization before bootstrap")
}

func testBootstrap(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustCreateRoles(t, s, RoleID(1))
	org, tok := NewOrganization(), NewToken(ClientID(1), RoleID(1))
	must(t, s.Bootstrap(ctx, org, tok), "bootstrap")

	got, err := s.GetOrganization(ctx)
	must(t, err, "get organization")
	if !sameOrg(got, org) {
		t.Fatalf("organization:\n got %+v\nwant %+v", got, org)
	}
	wantToken(t, s, tok)

	org2 := org
	org2.Name = "another-org"
	err = s.Bootstrap(ctx, org2, NewToken(ClientID(2), RoleID(1)))
	wantErr(t, err, store.ErrAlreadyExists, "second bootstrap")
	wantNoToken(t, s, ClientID(2))
	got, err = s.GetOrganization(ctx)
	must(t, err, "get organization")
	if !sameOrg(got, org) {
		t.Fatalf("organization changed by refused bootstrap: %+v", got)
	}
}

func testBootstrapUnknownRole(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustCreateRoles(t, s, RoleID(1))
	err := s.Bootstrap(ctx, NewOrganization(), NewToken(ClientID(1), RoleID(1), RoleID(9)))
	wantErr(t, err, store.ErrNotFound, "bootstrap with unknown role")
	_, err = s.GetOrganization(ctx)
	wantErr(t, err, store.ErrNotFound, "organization after failed bootstrap")
	wantNoToken(t, s, ClientID(1))

	// Nothing half-written blocks a correct retry.
	must(t, s.Bootstrap(ctx, NewOrganization(), NewToken(ClientID(1), RoleID(1))), "bootstrap retry")
}

func testCreateTokenUnknownRole(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustCreateRoles(t, s, RoleID(1))
	err := s.CreateToken(ctx, NewToken(ClientID(1), RoleID(1), RoleID(9)))
	wantErr(t, err, store.ErrNotFound, "create token with unknown role")
	if !strings.Contains(err.Error(), RoleID(9)) {
		t.Errorf("error %q does not name the missing role %s", err, RoleID(9))
	}
	wantNoToken(t, s, ClientID(1))
	// No index entry may survive either: the known role is not "in use".
	must(t, s.DeleteRole(ctx, RoleID(1), Base), "delete role held by no token")
}

func testRoleCRUD(t *testing.T, s store.Store) {
	ctx := t.Context()
	roles, err := s.ListRoles(ctx)
	must(t, err, "list roles")
	if len(roles) != 0 {
		t.Fatalf("new store lists %d roles", len(roles))
	}

	mustCreateRoles(t, s, RoleID(3), RoleID(1), RoleID(2))
	wantRole(t, s, NewRole(RoleID(1)))

	dup := NewRole(RoleID(1))
	dup.Name = "duplicate"
	wantErr(t, s.CreateRole(ctx, dup), store.ErrAlreadyExists, "create duplicate role")
	wantRole(t, s, NewRole(RoleID(1)))

	roles, err = s.ListRoles(ctx)
	must(t, err, "list roles")
	var ids []string
	for _, r := range roles {
		ids = append(ids, r.ID)
	}
	if want := []string{RoleID(1), RoleID(2), RoleID(3)}; fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Fatalf("ListRoles IDs = %v, want %v", ids, want)
	}

	_, err = s.GetRole(ctx, RoleID(9))
	wantErr(t, err, store.ErrNotFound, "get unknown role")
	_, err = s.UpdateRole(ctx, RoleID(9), func(r store.Role) (store.Role, error) { return r, nil })
	wantErr(t, err, store.ErrNotFound, "update unknown role")
	wantErr(t, s.DeleteRole(ctx, RoleID(9), Base), store.ErrNotFound, "delete unknown role")

	want := NewRole(RoleID(2))
	want.Description = "updated"
	want.Actions = append(want.Actions, "db-manage")
	want.UpdatedAt = Base.Add(time.Minute)
	got, err := s.UpdateRole(ctx, RoleID(2), func(r store.Role) (store.Role, error) {
		r.Description = "updated"
		r.Actions = append(r.Actions, "db-manage")
		r.UpdatedAt = Base.Add(time.Minute)
		return r, nil
	})
	must(t, err, "update role")
	if !sameRole(got, want) {
		t.Fatalf("UpdateRole returned %+v, want %+v", got, want)
	}
	wantRole(t, s, want)

	must(t, s.DeleteRole(ctx, RoleID(2), Base), "delete role")
	_, err = s.GetRole(ctx, RoleID(2))
	wantErr(t, err, store.ErrNotFound, "get deleted role")
	wantErr(t, s.DeleteRole(ctx, RoleID(2), Base), store.ErrNotFound, "delete role twice")
}

func testUpdateRoleClosureError(t *testing.T, s store.Store) {
	mustCreateRoles(t, s, RoleID(1))
	errRefused := errors.New("refused by closure")
	_, err := s.UpdateRole(t.Context(), RoleID(1), func(r store.Role) (store.Role, error) {
		r.Name = "must not be stored"
		return r, errRefused
	})
	wantErr(t, err, errRefused, "update whose closure fails")
	wantRole(t, s, NewRole(RoleID(1)))
}

func testUpdateRoleCannotChangeID(t *testing.T, s store.Store) {
	mustCreateRoles(t, s, RoleID(1))
	_, err := s.UpdateRole(t.Context(), RoleID(1), func(r store.Role) (store.Role, error) {
		r.ID = RoleID(2)
		r.Name = "renamed"
		return r, nil
	})
	if err == nil {
		t.Fatal("UpdateRole changed the ID without error")
	}
	wantRole(t, s, NewRole(RoleID(1)))
	_, err = s.GetRole(t.Context(), RoleID(2))
	wantErr(t, err, store.ErrNotFound, "get role under the new ID")
}

func testDeleteRoleInUse(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := Base
	mustCreateRoles(t, s, RoleID(1), RoleID(2), RoleID(3), RoleID(4))
	holder := func(n int, role string, expiry time.Time) store.Token {
		tok := NewToken(ClientID(n), role)
		tok.Expiry = expiry
		must(t, s.CreateToken(ctx, tok), "create token")
		return tok
	}
	never := holder(1, RoleID(1), time.Time{})
	holder(2, RoleID(2), now.Add(time.Microsecond))
	holder(3, RoleID(3), now) // expiry == now: expired
	holder(4, RoleID(4), now.Add(-time.Hour))

	for _, id := range []string{RoleID(1), RoleID(2)} {
		wantErr(t, s.DeleteRole(ctx, id, now), store.ErrInUse, "delete role held by a live token")
		wantRole(t, s, NewRole(id))
	}
	for _, id := range []string{RoleID(3), RoleID(4)} {
		must(t, s.DeleteRole(ctx, id, now), "delete role held only by an expired token")
	}

	must(t, s.DeleteToken(ctx, never.ClientID), "delete token")
	must(t, s.DeleteRole(ctx, RoleID(1), now), "delete role after its token was deleted")
}

func testTokenCRUD(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustCreateRoles(t, s, RoleID(1), RoleID(2), RoleID(3))
	tok := NewToken(ClientID(1), RoleID(1), RoleID(2), RoleID(3))
	tok.Expiry = Base.Add(24 * time.Hour)
	must(t, s.CreateToken(ctx, tok), "create token")
	wantToken(t, s, tok)

	dup := NewToken(ClientID(1), RoleID(1))
	dup.Description = "duplicate"
	wantErr(t, s.CreateToken(ctx, dup), store.ErrAlreadyExists, "create duplicate token")
	wantToken(t, s, tok)

	wantNoToken(t, s, ClientID(2))
	wantErr(t, s.DeleteToken(ctx, ClientID(2)), store.ErrNotFound, "delete unknown token")

	must(t, s.DeleteToken(ctx, tok.ClientID), "delete token")
	wantNoToken(t, s, tok.ClientID)
	wantErr(t, s.DeleteToken(ctx, tok.ClientID), store.ErrNotFound, "delete token twice")

	// The ID is free again, with nothing left over from the first token.
	again := NewToken(ClientID(1), RoleID(2))
	must(t, s.CreateToken(ctx, again), "re-create token")
	wantToken(t, s, again)
}

func testCopies(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustCreateRoles(t, s, RoleID(1))
	org, tok := NewOrganization(), NewToken(ClientID(1), RoleID(1))
	in := tok
	in.Roles = append([]string(nil), tok.Roles...)
	in.SecretMAC = append([]byte(nil), tok.SecretMAC...)
	must(t, s.Bootstrap(ctx, org, in), "bootstrap")
	// The store must not keep the caller's slices either.
	in.Roles[0], in.SecretMAC[0] = "mutated", ^in.SecretMAC[0]
	wantToken(t, s, tok)

	got, err := s.GetToken(ctx, tok.ClientID)
	must(t, err, "get token")
	got.Roles[0], got.SecretMAC[0] = "mutated", ^got.SecretMAC[0]
	page, _, err := s.ListTokens(ctx, "", 10)
	must(t, err, "list tokens")
	page[0].Roles[0], page[0].SecretMAC[0] = "mutated", ^page[0].SecretMAC[0]
	wantToken(t, s, tok)

	r, err := s.GetRole(ctx, RoleID(1))
	must(t, err, "get role")
	r.Actions[0], r.Resources[0] = "mutated", "mutated"
	roles, err := s.ListRoles(ctx)
	must(t, err, "list roles")
	roles[0].Actions[0] = "mutated"
	r, err = s.UpdateRole(ctx, RoleID(1), func(r store.Role) (store.Role, error) { return r, nil })
	must(t, err, "update role")
	r.Actions[0] = "mutated"
	wantRole(t, s, NewRole(RoleID(1)))

	o, err := s.GetOrganization(ctx)
	must(t, err, "get organization")
	o.KeyCheck[0] = ^o.KeyCheck[0]
	o, err = s.GetOrganization(ctx)
	must(t, err, "get organization")
	if !sameOrg(o, org) {
		t.Fatalf("organization changed through a returned slice: %+v", o)
	}
}

func testTimesUTC(t *testing.T, s store.Store) {
	ctx := t.Context()
	zone := time.FixedZone("UTC+05:30", 5*3600+30*60)
	at := time.Date(2031, time.March, 4, 5, 6, 7, 123456000, zone)

	role := NewRole(RoleID(1))
	role.UpdatedAt = at
	must(t, s.CreateRole(ctx, role), "create role")
	org := NewOrganization()
	org.CreatedAt = at
	tok := NewToken(ClientID(1), RoleID(1))
	tok.GeneratedOn, tok.Expiry = at, at.Add(24*time.Hour)
	must(t, s.Bootstrap(ctx, org, tok), "bootstrap")
	plain := NewToken(ClientID(2)) // zero Expiry and LastUsed
	must(t, s.CreateToken(ctx, plain), "create token")
	must(t, s.RecordTokenUse(ctx, map[string]time.Time{tok.ClientID: at.Add(time.Hour)}), "record token use")

	check := func(what string, got, want time.Time) {
		t.Helper()
		if !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("%s = %v (location %v), want %v in UTC", what, got, got.Location(), want)
		}
	}
	gotRole, err := s.GetRole(ctx, role.ID)
	must(t, err, "get role")
	check("role UpdatedAt", gotRole.UpdatedAt, at)
	gotOrg, err := s.GetOrganization(ctx)
	must(t, err, "get organization")
	check("organization CreatedAt", gotOrg.CreatedAt, at)
	gotTok, err := s.GetToken(ctx, tok.ClientID)
	must(t, err, "get token")
	check("token GeneratedOn", gotTok.GeneratedOn, at)
	check("token Expiry", gotTok.Expiry, at.Add(24*time.Hour))
	check("token LastUsed", gotTok.LastUsed, at.Add(time.Hour))

	gotPlain, err := s.GetToken(ctx, plain.ClientID)
	must(t, err, "get token")
	if !gotPlain.Expiry.IsZero() || !gotPlain.LastUsed.IsZero() {
		t.Errorf("zero times came back as Expiry %v, LastUsed %v", gotPlain.Expiry, gotPlain.LastUsed)
	}
}
