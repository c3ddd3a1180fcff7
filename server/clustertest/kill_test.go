package clustertest_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	tbv1 "github.com/tokenbroker/tokenbroker/gen/tokenbroker/v1"
	"github.com/tokenbroker/tokenbroker/server/clustertest"
	"github.com/tokenbroker/tokenbroker/server/policy"
)

// TestReplicaProcessSIGKILLedMidWrite: three replicas as real tokenbroker
// processes. Writers create and delete tokens through A over gRPC; A's
// process is SIGKILLed while they run. Every write A acknowledged must
// hold when read through B and C (acknowledged creates present,
// acknowledged deletes absent); writes whose answer never came may have
// happened or not. A restarted A must serve the same state at once,
// including writes made through B while it was down.
func TestReplicaProcessSIGKILLedMidWrite(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Processes: true})
	a, b, cc := c.Replicas[0], c.Replicas[1], c.Replicas[2]

	var (
		mu        sync.Mutex
		present   = map[string]bool{} // acknowledged creates not since deleted
		deleted   = map[string]bool{} // acknowledged deletes
		unknown   = map[string]bool{} // a delete whose answer never came
		acked     atomic.Int64
		failed    atomic.Int64
		wg        sync.WaitGroup
		killedPID = a.Process()
	)
	admin := clustertest.Ctx(context.Background(), c.AdminToken)
	for w := range 4 {
		wg.Go(func() {
			var mine []string // this writer's live tokens, oldest first
			for i := 0; ; i++ {
				ctx, cancel := context.WithTimeout(admin, 5*time.Second)
				var err error
				if i%3 == 2 && len(mine) > 0 { // every third write deletes
					id := mine[0]
					_, err = a.Tokens.DeleteToken(ctx, &tbv1.DeleteTokenRequest{ClientId: id})
					mu.Lock()
					if err == nil {
						delete(present, id)
						deleted[id] = true
						mine = mine[1:]
					} else {
						delete(present, id)
						unknown[id] = true
					}
					mu.Unlock()
				} else {
					var res *tbv1.CreateTokenResponse
					res, err = a.Tokens.CreateToken(ctx, &tbv1.CreateTokenRequest{Roles: []string{policy.RWUserID},
						Description: fmt.Sprintf("writer %d, write %d", w, i)})
					if err == nil {
						mu.Lock()
						present[res.GetClientId()] = true
						mu.Unlock()
						mine = append(mine, res.GetClientId())
					}
				}
				cancel()
				if err != nil {
					failed.Add(1)
					return // A is gone
				}
				acked.Add(1)
			}
		})
	}
	until(t, "writes under way through A", propagationBound, func() bool { return acked.Load() >= 60 })
	if !a.Kill() {
		t.Fatal("A's process did not die of SIGKILL")
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	t.Logf("A (pid %d) SIGKILLed under 4 writers: %d writes acknowledged (%d tokens present, %d deleted), %d unanswered (%d of them deletes)",
		killedPID, acked.Load(), len(present), len(deleted), failed.Load(), len(unknown))
	if len(deleted) == 0 {
		t.Fatal("no acknowledged delete before the kill: the test shows nothing about deletes")
	}

	// What B and C list must agree with every acknowledged write; their
	// watches may trail A's last commits by milliseconds, hence the wait.
	listed := func(r *clustertest.Replica) map[string]bool {
		ctx, cancel := context.WithTimeout(admin, 10*time.Second)
		defer cancel()
		res, err := r.Tokens.ListTokens(ctx, &tbv1.ListTokensRequest{})
		if err != nil {
			t.Fatalf("list tokens on replica %d: %v", r.Index, err)
		}
		out := map[string]bool{}
		for _, tok := range res.GetClients() {
			out[tok.GetClientId()] = true
		}
		return out
	}
	agrees := func(r *clustertest.Replica) (lost, resurrected int) {
		got := listed(r)
		for id := range present {
			if !got[id] {
				lost++
			}
		}
		for id := range deleted {
			if got[id] {
				resurrected++
			}
		}
		return lost, resurrected
	}
	for _, r := range []*clustertest.Replica{b, cc} {
		var lost, back int
		until(t, fmt.Sprintf("replica %d agrees with every acknowledged write", r.Index), propagationBound, func() bool {
			lost, back = agrees(r)
			return lost == 0 && back == 0
		})
	}

	// Written through B while A is down; then A restarts and, having
	// loaded the whole prefix before serving, agrees at once.
	extra := createToken(t, c, b, policy.RWUserID)
	present[extra.GetClientId()] = true
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if lost, back := agrees(a); lost > 0 || back > 0 {
		t.Fatalf("restarted A: %d acknowledged tokens missing, %d acknowledged deletes undone", lost, back)
	}
	// And it writes again.
	tok := createToken(t, c, a, policy.RWUserID)
	anyDB := policy.DatabaseDRN(c.OrgID, "x") + ":keyspace:k:table:t"
	for _, r := range c.Replicas {
		until(t, "a token created on the restarted A allowed everywhere", propagationBound, func() bool {
			return check(t, r, tok.GetToken(), "db-table-select", anyDB).GetAllowed()
		})
	}
}
