package clustertest_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	tbv1 "github.com/tokenbroker/tokenbroker/gen/tokenbroker/v1"
	"github.com/tokenbroker/tokenbroker/server/clustertest"
	"github.com/tokenbroker/tokenbroker/server/policy"
	"github.com/tokenbroker/tokenbroker/store/etcd"
)

// TestConcurrentGuards: writes whose rule spans several records, issued on
// two replicas at the same instant, round after round. The rule must hold
// as if they had run on one replica: it is checked in the write's own etcd
// transaction, never by a lock of one process.
func TestConcurrentGuards(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{})
	a, b := c.Replicas[0], c.Replicas[1]
	// The store, opened beside the replicas, to read what they wrote.
	st, err := etcd.Open(context.Background(), etcd.Options{Endpoints: c.Etcd.Endpoints(), Prefix: c.Prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })

	t.Run("SigningKeyRotatedOnTwoReplicasAtOnce", func(t *testing.T) {
		rotateSigningKeysAtOnce(t, c, st, a, b)
	})
	// Last: it deletes the bootstrap admin token.
	t.Run("LastTwoAdminTokensDeletedOnTwoReplicasAtOnce", func(t *testing.T) {
		deleteLastAdminTokensAtOnce(t, c, a, b)
	})
}

// atOnce runs f on replicas a and b concurrently and returns their errors.
func atOnce(a, b *clustertest.Replica, f func(i int, r *clustertest.Replica) error) [2]error {
	var errs [2]error
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, r := range []*clustertest.Replica{a, b} {
		wg.Go(func() {
			<-start
			errs[i] = f(i, r)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// deleteLastAdminTokensAtOnce: the two last live Organization
// Administrator tokens each delete themselves, one on A and one on B, at
// the same time: exactly one delete succeeds and the other is refused
// (409), so one live admin token always remains. Many rounds, alternating
// which token goes to which replica.
func deleteLastAdminTokensAtOnce(t *testing.T, c *clustertest.Cluster, a, b *clustertest.Replica) {
	org := policy.OrgDRN(c.OrgID)
	visible := func(tok string) {
		for _, r := range c.Replicas {
			until(t, "admin token known on every replica", propagationBound, func() bool {
				return check(t, r, tok, "org-token-read", org).GetAllowed()
			})
		}
	}
	type adminTok struct{ id, token string }
	create := func(by string) adminTok {
		res, err := a.Tokens.CreateToken(clustertest.Ctx(t.Context(), by), &tbv1.CreateTokenRequest{Roles: []string{policy.OrganizationAdministratorID}})
		if err != nil {
			t.Fatal(err)
		}
		return adminTok{res.GetClientId(), res.GetToken()}
	}
	// Start from exactly one admin token: a new one, the bootstrap one gone.
	survivor := create(c.AdminToken)
	visible(survivor.token)
	bootstrapID := ""
	list, err := a.Tokens.ListTokens(clustertest.Ctx(t.Context(), survivor.token), &tbv1.ListTokensRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range list.GetClients() {
		if tok.GetClientId() != survivor.id {
			bootstrapID = tok.GetClientId()
		}
	}
	if _, err := a.Tokens.DeleteToken(clustertest.Ctx(t.Context(), survivor.token), &tbv1.DeleteTokenRequest{ClientId: bootstrapID}); err != nil {
		t.Fatalf("delete the bootstrap admin token: %v", err)
	}

	const rounds = 25
	refusedOn := [2]int{}
	for round := range rounds {
		fresh := create(survivor.token)
		visible(fresh.token)
		pair := [2]adminTok{survivor, fresh}
		if round%2 == 1 {
			pair[0], pair[1] = pair[1], pair[0]
		}
		errs := atOnce(a, b, func(i int, r *clustertest.Replica) error {
			ctx, cancel := context.WithTimeout(clustertest.Ctx(context.Background(), pair[i].token), 10*time.Second)
			defer cancel()
			_, err := r.Tokens.DeleteToken(ctx, &tbv1.DeleteTokenRequest{ClientId: pair[i].id})
			return err
		})
		won := -1
		for i, err := range errs {
			switch status.Code(err) {
			case codes.OK:
				if won >= 0 {
					t.Fatalf("round %d: both of the last two admin tokens were deleted", round)
				}
				won = i
			case codes.FailedPrecondition:
				refusedOn[i]++
			default:
				t.Fatalf("round %d: delete on replica %d: %v", round, i, err)
			}
		}
		if won < 0 {
			t.Fatalf("round %d: both deletes refused (%v; %v)", round, errs[0], errs[1])
		}
		deleted, kept := pair[won], pair[1-won]
		for _, r := range c.Replicas {
			until(t, "the deleted admin token refused everywhere", propagationBound, func() bool {
				return check(t, r, deleted.token, "org-token-read", org).GetReason() == "CREDENTIAL_INVALID"
			})
			if !check(t, r, kept.token, "org-token-read", org).GetAllowed() {
				t.Fatalf("round %d: the refused delete's token is not allowed on replica %d", round, r.Index)
			}
		}
		survivor = kept
	}
	list, err = b.Tokens.ListTokens(clustertest.Ctx(t.Context(), survivor.token), &tbv1.ListTokensRequest{})
	if err != nil {
		t.Fatal(err)
	}
	admins := 0
	for _, tok := range list.GetClients() {
		for _, r := range tok.GetRoles() {
			if r == policy.OrganizationAdministratorID {
				admins++
			}
		}
	}
	if admins != 1 {
		t.Fatalf("%d admin tokens after the rounds, want 1", admins)
	}
	t.Logf("%d rounds of two replicas deleting the last two admin tokens at once: one delete refused per round (on A %d times, on B %d)",
		rounds, refusedOn[0], refusedOn[1])
}

// rotateSigningKeysAtOnce: A and B rotate the Pulsar signing key at the
// same time, round after round, in each phase. Every rotation is one
// guarded transaction over the whole key set, so:
//   - two immediate rotations are two rotations in a serial order: both
//     answer, the second retires the first's key (its previous is the
//     first's kid), and one key is active afterwards;
//   - two prepares: one prepared key; the other is refused (409);
//   - two activations of it: one activates; the other is refused (409).
//
// After each round every replica signs with the one active key, and a
// Pulsar token issued on each replica is accepted by every replica.
func rotateSigningKeysAtOnce(t *testing.T, c *clustertest.Cluster, st *etcd.Store, a, b *clustertest.Replica) {
	admin := clustertest.Ctx(context.Background(), c.AdminToken)
	tenant := "rotation-tenant"
	if _, err := a.Pulsar.CreateTenant(admin, &tbv1.CreateTenantRequest{TenantName: tenant, ClusterName: "pulsar-cluster"}); err != nil {
		t.Fatal(err)
	}
	stream := policy.StreamDRN(c.OrgID, tenant)
	rotate := func(phase string) [2]*tbv1.RotateSigningKeyResponse {
		var out [2]*tbv1.RotateSigningKeyResponse
		errs := atOnce(a, b, func(i int, r *clustertest.Replica) error {
			ctx, cancel := context.WithTimeout(admin, 10*time.Second)
			defer cancel()
			res, err := r.Pulsar.RotateSigningKey(ctx, &tbv1.RotateSigningKeyRequest{Phase: phase})
			out[i] = res
			return err
		})
		for i, err := range errs {
			if err != nil && status.Code(err) != codes.FailedPrecondition {
				t.Fatalf("rotate (phase %q) on replica %d: %v", phase, i, err)
			}
		}
		return out
	}
	// keys reads the key set from etcd (after catching up): the active
	// kid and the pending one ("" if none), failing unless there is
	// exactly one active key and at most one pending.
	keys := func(what string) (active, pending string) {
		if err := st.Sync(t.Context()); err != nil {
			t.Fatal(err)
		}
		ks, err := st.SigningKeys(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		var actives, pendings []string
		for _, k := range ks {
			switch {
			case k.Pending:
				pendings = append(pendings, k.Kid)
			case k.RetiredAt.IsZero():
				actives = append(actives, k.Kid)
			}
		}
		if len(actives) != 1 || len(pendings) > 1 {
			t.Fatalf("%s: active keys %v, pending %v; want exactly one active, at most one pending", what, actives, pendings)
		}
		if len(pendings) == 1 {
			pending = pendings[0]
		}
		return actives[0], pending
	}
	// agree waits until every replica signs with active (and publishes
	// pending as the next key), then issues a Pulsar token on each and
	// checks that every replica accepts every one.
	agree := func(what, active, pending string) {
		for _, r := range c.Replicas {
			until(t, what+": replica signs with the active key", propagationBound, func() bool {
				k, err := r.Pulsar.GetTenantTokenKeys(admin, &tbv1.GetTenantTokenKeysRequest{Tenant: tenant})
				return err == nil && k.GetKid() == active && k.GetNextKid() == pending
			})
		}
		for _, issuer := range c.Replicas {
			tok, err := issuer.Pulsar.CreatePulsarToken(admin, &tbv1.CreatePulsarTokenRequest{Tenant: tenant})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range c.Replicas {
				until(t, fmt.Sprintf("%s: token issued on replica %d accepted on replica %d", what, issuer.Index, r.Index), propagationBound, func() bool {
					return check(t, r, tok.GetToken(), "", stream).GetAllowed()
				})
			}
		}
	}

	before, _ := keys("at the start")
	const rounds = 5 // each rotation generates an RSA key
	for round := range rounds {
		// Immediate: both succeed, in a serial order.
		res := rotate("")
		if res[0] == nil || res[1] == nil {
			t.Fatalf("round %d: an immediate rotation was refused: %v, %v", round, res[0], res[1])
		}
		first, second := res[0], res[1]
		if second.GetPreviousKid() != first.GetKid() {
			first, second = second, first
		}
		if first.GetPreviousKid() != before || second.GetPreviousKid() != first.GetKid() || first.GetKid() == second.GetKid() {
			t.Fatalf("round %d: immediate rotations not serial: from %s, answers %v and %v", round, before, res[0], res[1])
		}
		active, pending := keys(fmt.Sprintf("round %d, immediate", round))
		if active != second.GetKid() || pending != "" {
			t.Fatalf("round %d: active key %s (pending %q), want the later rotation's %s", round, active, pending, second.GetKid())
		}
		agree(fmt.Sprintf("round %d, immediate", round), active, "")

		// Prepare: one new pending key.
		res = rotate("prepare")
		if (res[0] == nil) == (res[1] == nil) {
			t.Fatalf("round %d: two prepares at once: %v and %v; want exactly one", round, res[0], res[1])
		}
		prepared := res[0]
		if prepared == nil {
			prepared = res[1]
		}
		if active2, pending := keys(fmt.Sprintf("round %d, prepare", round)); active2 != active || pending != prepared.GetKid() {
			t.Fatalf("round %d: after prepare: active %s pending %s, want %s and %s", round, active2, pending, active, prepared.GetKid())
		}
		agree(fmt.Sprintf("round %d, prepare", round), active, prepared.GetKid())

		// Activate: the prepared key, once.
		res = rotate("activate")
		if (res[0] == nil) == (res[1] == nil) {
			t.Fatalf("round %d: two activations at once: %v and %v; want exactly one", round, res[0], res[1])
		}
		activated := res[0]
		if activated == nil {
			activated = res[1]
		}
		if activated.GetKid() != prepared.GetKid() || activated.GetPreviousKid() != active {
			t.Fatalf("round %d: activation %v; want %s replacing %s", round, activated, prepared.GetKid(), active)
		}
		if active2, pending := keys(fmt.Sprintf("round %d, activate", round)); active2 != prepared.GetKid() || pending != "" {
			t.Fatalf("round %d: after activate: active %s pending %q, want %s", round, active2, pending, prepared.GetKid())
		}
		agree(fmt.Sprintf("round %d, activate", round), prepared.GetKid(), "")
		before = prepared.GetKid()
	}
	t.Logf("%d rounds of concurrent rotations on two replicas (immediate, prepare, activate): one active key throughout; tokens from every replica accepted on every replica", rounds)
}
