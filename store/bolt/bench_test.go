package bolt_test

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/bolt"
	"github.com/tokenbroker/tokenbroker/store/storetest"
)

// Benchmarks use realistic records: three roles and a 32-byte MAC. Every
// create is a durable commit (fsync), so the figures depend on the disk.

func benchStore(b *testing.B) *bolt.Store {
	b.Helper()
	s, err := bolt.Open(filepath.Join(b.TempDir(), "bench.db"), bolt.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	for r := 1; r <= 3; r++ {
		if err := s.CreateRole(context.Background(), storetest.NewRole(storetest.RoleID(r))); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

func benchToken(n int) store.Token {
	return storetest.NewToken(storetest.ClientID(n), storetest.RoleID(1), storetest.RoleID(2), storetest.RoleID(3))
}

func reportRate(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
}

// BenchmarkCreateToken measures durable token creation by 64 concurrent
// writers (group commit at work) and by one writer (one commit per token).
func BenchmarkCreateToken(b *testing.B) {
	b.Run("concurrent64", func(b *testing.B) {
		s := benchStore(b)
		procs := runtime.GOMAXPROCS(0)
		b.SetParallelism((64 + procs - 1) / procs) // RunParallel starts parallelism × GOMAXPROCS goroutines
		var next atomic.Int64
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := s.CreateToken(context.Background(), benchToken(int(next.Add(1)))); err != nil {
					b.Error(err)
					return
				}
			}
		})
		reportRate(b)
	})
	b.Run("sequential", func(b *testing.B) {
		s := benchStore(b)
		b.ResetTimer()
		for i := range b.N {
			if err := s.CreateToken(context.Background(), benchToken(i)); err != nil {
				b.Fatal(err)
			}
		}
		reportRate(b)
	})
}

// BenchmarkGetToken measures parallel reads of random tokens among 10,000.
func BenchmarkGetToken(b *testing.B) {
	const n = 10_000
	s := benchStore(b)
	fill(b, n, func(i int) error { return s.CreateToken(context.Background(), benchToken(i)) })
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.GetToken(context.Background(), storetest.ClientID(rand.IntN(n))); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reads/s")
}

// BenchmarkGetAuthToken measures parallel reads of random auth tokens among
// 10,000 (ten per application token): alone, and followed by the GetToken
// of its principal, which is the store's share of one credential check.
func BenchmarkGetAuthToken(b *testing.B) {
	const tokens, perToken = 1_000, 10
	const n = tokens * perToken
	s := benchStore(b)
	fill(b, tokens, func(i int) error { return s.CreateToken(context.Background(), benchToken(i)) })
	fill(b, n, func(i int) error {
		return s.CreateAuthToken(context.Background(),
			storetest.NewAuthToken(i, store.PrincipalApplicationToken, storetest.ClientID(i/perToken)))
	})
	macs := make([][]byte, n)
	for i := range macs {
		macs[i] = storetest.AuthMAC(i)
	}

	b.Run("alone", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.GetAuthToken(context.Background(), macs[rand.IntN(n)]); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reads/s")
	})
	b.Run("with-principal", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				at, err := s.GetAuthToken(context.Background(), macs[rand.IntN(n)])
				if err == nil {
					_, err = s.GetToken(context.Background(), at.PrincipalID)
				}
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checks/s")
	})
}

// fill runs create(0..n-1) from 32 goroutines, so that group commit makes
// setting up a large fixture quick.
func fill(b *testing.B, n int, create func(i int) error) {
	b.Helper()
	const workers = 32
	errc := make(chan error, workers)
	for w := range workers {
		go func() {
			for i := w; i < n; i += workers {
				if err := create(i); err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
	}
	for range workers {
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
	}
}
