package bolt_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/bolt"
	"github.com/tokenbroker/tokenbroker/store/storetest"
)

// BenchmarkCreateTokenAsServed measures durable creation the way the broker
// does it, unlike BenchmarkCreateToken (whose client IDs are sequential and
// which records no audit event): 64 concurrent writers, client IDs shaped
// like the broker's, one role, and the call's audit event in the same
// transaction, on a store already holding 0, 10,000 or 100,000 tokens.
//
// "random" client IDs are 24 uniformly random letters (each create dirties
// its own leaf page of the token bucket and of the role index once the
// store is large); "ordered" ones start with a millisecond timestamp, as
// credential.New generates them (a batch appends to the right-most
// pages). Compare the rates across sizes within one run.
func BenchmarkCreateTokenAsServed(b *testing.B) {
	for _, ids := range []struct {
		name string
		gen  func(r *rand.Rand) string
	}{{"random", randomClientID}, {"ordered", orderedClientID}} {
		for _, stored := range []int{0, 10_000, 100_000} {
			// One store per case, filled once: testing.B calls the function
			// again with a larger b.N, and refilling 100,000 tokens each
			// time would dominate the run. Later calls find the creates of
			// the earlier ones stored too.
			var (
				s       *bolt.Store
				path    string
				created atomic.Int64
				seed    atomic.Uint64
			)
			parent := b
			b.Run(fmt.Sprintf("%s/stored=%d", ids.name, stored), func(b *testing.B) {
				if s == nil {
					path = filepath.Join(parent.TempDir(), "bench.db")
					var err error
					if s, err = bolt.Open(path, bolt.Options{}); err != nil {
						b.Fatal(err)
					}
					parent.Cleanup(func() { _ = s.Close() })
					if err := s.CreateRole(context.Background(), storetest.NewRole(storetest.RoleID(1))); err != nil {
						b.Fatal(err)
					}
					fill(b, stored, func(i int) error {
						r := rand.New(rand.NewPCG(uint64(i), 1))
						return s.CreateToken(context.Background(), storetest.NewToken(ids.gen(r), storetest.RoleID(1)))
					})
				}
				procs := runtime.GOMAXPROCS(0)
				b.SetParallelism((64 + procs - 1) / procs)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					r := rand.New(rand.NewPCG(seed.Add(1), 2))
					for pb.Next() {
						id := ids.gen(r)
						ctx := store.WithAudit(context.Background(), &store.AuditEvent{
							Time: time.Now().UTC(), RequestID: "bench-" + id[:8], ActorKind: "application-token",
							ActorID: storetest.ClientID(0), Action: "TokenService.CreateToken", Outcome: "success",
							TargetKind: "token", TargetID: id,
						})
						if err := s.CreateToken(ctx, storetest.NewToken(id, storetest.RoleID(1))); err != nil {
							b.Error(err)
							return
						}
					}
				})
				reportRate(b)
				b.StopTimer()
				if fi, err := os.Stat(path); err == nil {
					b.ReportMetric(float64(fi.Size())/float64(int64(stored)+created.Add(int64(b.N))), "file-B/token")
				}
			})
		}
	}
}

const idLetters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

func randomClientID(r *rand.Rand) string {
	b := make([]byte, 24)
	for i := range b {
		b[i] = idLetters[r.IntN(52)]
	}
	return string(b)
}

// orderedClientID: 8 letters of milliseconds since 2020, then 16 random.
func orderedClientID(r *rand.Rand) string {
	b := []byte(randomClientID(r))
	ms := uint64(time.Now().UnixMilli() - 1577836800000)
	for i := 7; i >= 0; i-- {
		b[i] = idLetters[ms%52]
		ms /= 52
	}
	return string(b)
}
