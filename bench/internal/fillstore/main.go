// Command fillstore adds application tokens and authorization tokens,
// each with the audit event the broker records with it, straight into a
// stopped broker's bbolt file, for start-up measurements (bench/startup.sh)
// that need a large store without the hours of creating it through the
// API. The tokens are shaped as the broker makes them (time-ordered client
// IDs, one role, a MAC) but their secrets are random and discarded: they
// are for size, never for a Check.
//
//	go run ./bench/internal/fillstore -data DIR/tokenbroker.db -role ROLE_ID -tokens 1000000 -auth 100000
package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"log"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenbroker/tokenbroker/server/credential"
	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/bolt"
)

func main() {
	data := flag.String("data", "", "the broker's bbolt file (the broker must be stopped)")
	role := flag.String("role", "", "the role ID every token holds (it must exist in the store)")
	tokens := flag.Int("tokens", 1_000_000, "application tokens to add")
	auth := flag.Int("auth", 100_000, "authorization tokens to add (principal: the added application tokens, in turn)")
	workers := flag.Int("workers", 64, "concurrent writers (the group committer batches them)")
	flag.Parse()
	if *data == "" || *role == "" {
		log.Fatal("fillstore: -data and -role are required")
	}
	if *auth > 0 && *tokens <= 0 {
		log.Fatal("fillstore: -auth needs -tokens > 0 (their principals are the added application tokens)")
	}
	s, err := bolt.Open(*data, bolt.Options{})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	r, err := s.GetRole(ctx, *role)
	if err != nil {
		log.Fatalf("fillstore: role %s: %v", *role, err)
	}
	org, actor := r.OrgID, "fillstore"
	start := time.Now()
	ids := make([]string, *tokens)
	run(*tokens, *workers, func(i int) error {
		cred, err := credential.New()
		if err != nil {
			return err
		}
		ids[i] = cred.ClientID
		return s.CreateToken(withAudit(ctx, actor, "TokenService.CreateToken", "token", cred.ClientID), store.Token{
			ClientID: cred.ClientID, OrgID: org, Roles: []string{*role}, Description: "scale",
			SecretMAC: random(32), GeneratedOn: time.Now().UTC(), CreatedBy: actor,
		})
	})
	log.Printf("fillstore: %d application tokens in %s", *tokens, time.Since(start).Round(time.Millisecond))
	start = time.Now()
	run(*auth, *workers, func(i int) error {
		now := time.Now().UTC()
		return s.CreateAuthToken(withAudit(ctx, actor, "AuthService.CreateAuthToken", "auth_token", ""), store.AuthToken{
			MAC: random(32), OrgID: org, PrincipalKind: store.PrincipalApplicationToken,
			PrincipalID: ids[i%len(ids)], CreatedAt: now, LastUsed: now,
		})
	})
	log.Printf("fillstore: %d authorization tokens in %s", *auth, time.Since(start).Round(time.Millisecond))
	if err := s.Close(); err != nil {
		log.Fatal(err)
	}
}

var seq atomic.Uint64

// withAudit attaches an audit event shaped as the gRPC interceptor fills it.
func withAudit(ctx context.Context, actor, action, kind, target string) context.Context {
	return store.WithAudit(ctx, &store.AuditEvent{
		Time: time.Now().UTC(), RequestID: "fill-" + strconv.FormatUint(seq.Add(1), 36),
		ActorKind: store.PrincipalApplicationToken, ActorID: actor,
		Action: action, TargetKind: kind, TargetID: target, Outcome: "success",
	})
}

// run calls create(i) for every i below n from the given number of
// goroutines and stops at the first error.
func run(n, workers int, create func(i int) error) {
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n && failed.Load() == nil; i += workers {
				if err := create(i); err != nil {
					err = fmt.Errorf("item %d: %w", i, err)
					failed.CompareAndSwap(nil, &err)
				}
			}
		}()
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		log.Fatalf("fillstore: %v", *err)
	}
}

func random(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}
