package clustertest_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	tbv1 "github.com/tokenbroker/tokenbroker/gen/tokenbroker/v1"
	"github.com/tokenbroker/tokenbroker/server/clustertest"
	"github.com/tokenbroker/tokenbroker/server/policy"
)

// cpuTime is this process's user+system CPU time. The replicas and the
// benchmark's clients share the process (the etcd members do not), so CPU
// per Check includes the client side of the call.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCheckReplicas: Check throughput with the load spread over 1, 2
// and 3 replicas of one cluster (the 1-replica figure is the baseline of
// the same run). On one small machine the replicas share its cores, so
// expect no scaling; cpu-ns/check says what one Check costs.
//
//	go test ./server/clustertest -run '^$' -bench CheckReplicas -benchtime 3s
func BenchmarkCheckReplicas(b *testing.B) {
	c := clustertest.Start(b, clustertest.Options{})
	org := policy.OrgDRN(c.OrgID)
	for n := 1; n <= len(c.Replicas); n++ {
		b.Run(fmt.Sprintf("replicas=%d", n), func(b *testing.B) {
			var next atomic.Uint64
			cpu0 := cpuTime()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				r := c.Replicas[next.Add(1)%uint64(n)]
				req := &tbv1.CheckRequest{Credential: c.AdminToken, Action: "org-token-read", Resource: org}
				for pb.Next() {
					res, err := r.Auth.Check(context.Background(), req)
					if err != nil || !res.GetAllowed() {
						b.Errorf("Check: %v, %v", res, err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/check")
		})
	}
}

// BenchmarkRevokePropagation: how long after a delete is answered on A
// replica B refuses the token, while all replicas serve a Check load.
// Reports p50 and p99 (one sample per iteration).
//
//	go test ./server/clustertest -run '^$' -bench RevokePropagation -benchtime 200x
func BenchmarkRevokePropagation(b *testing.B) {
	c := clustertest.Start(b, clustertest.Options{})
	org := policy.OrgDRN(c.OrgID)
	admin := clustertest.Ctx(context.Background(), c.AdminToken)
	a, rb := c.Replicas[0], c.Replicas[1]

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, r := range c.Replicas {
		for range 2 {
			wg.Go(func() {
				req := &tbv1.CheckRequest{Credential: c.AdminToken, Action: "org-token-read", Resource: org}
				for ctx.Err() == nil {
					_, _ = r.Auth.Check(ctx, req)
				}
			})
		}
	}
	defer func() { stop(); wg.Wait() }()

	refused := func(tok string) bool {
		res, err := rb.Auth.Check(context.Background(), &tbv1.CheckRequest{Credential: tok, Action: "org-token-read", Resource: org})
		return err == nil && res.GetReason() == "CREDENTIAL_INVALID"
	}
	samples := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		tok, err := a.Tokens.CreateToken(admin, &tbv1.CreateTokenRequest{Roles: []string{policy.RWUserID}})
		if err != nil {
			b.Fatal(err)
		}
		for refused(tok.Token) { // until B sees the new token
			time.Sleep(100 * time.Microsecond)
		}
		b.StartTimer()
		if _, err := a.Tokens.DeleteToken(admin, &tbv1.DeleteTokenRequest{ClientId: tok.ClientId}); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		deadline := start.Add(30 * time.Second)
		for !refused(tok.Token) {
			if time.Now().After(deadline) {
				b.Fatal("revoke not seen on B within 30 s")
			}
		}
		samples = append(samples, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(samples)
	b.ReportMetric(float64(samples[len(samples)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(samples[len(samples)*99/100].Microseconds()), "p99-µs")
}
