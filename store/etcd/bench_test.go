package etcd_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/bolt"
	"github.com/tokenbroker/tokenbroker/store/etcd"
	"github.com/tokenbroker/tokenbroker/store/etcd/etcdtest"
	"github.com/tokenbroker/tokenbroker/store/storetest"
)

// The etcd backend next to the bbolt backend, in one run: durable token
// creation by 64 concurrent writers (each with an audit event, as the
// broker writes them), and the store's share of a credential check
// (ResolveAuthToken, then GetToken). bbolt fsyncs its file; etcd commits
// through its raft log and fsyncs its WAL, on one local member.

func benchBackends(b *testing.B) map[string]func(b *testing.B) store.Store {
	return map[string]func(b *testing.B) store.Store{
		"bolt": func(b *testing.B) store.Store {
			s, err := bolt.Open(filepath.Join(b.TempDir(), "bench.db"), bolt.Options{})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = s.Close() })
			return s
		},
		"etcd": func(b *testing.B) store.Store { return openTemp(b, etcd.Options{}) },
	}
}

func withRoles(b *testing.B, s store.Store) store.Store {
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

func BenchmarkCreateToken64(b *testing.B) {
	for _, name := range []string{"bolt", "etcd"} {
		open := benchBackends(b)[name]
		b.Run(name, func(b *testing.B) {
			s := withRoles(b, open(b))
			procs := runtime.GOMAXPROCS(0)
			b.SetParallelism((64 + procs - 1) / procs)
			var next atomic.Int64
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					n := int(next.Add(1))
					tok := benchToken(n)
					ev := storetest.NewAuditEvent("TokenService.CreateToken", "token", tok.ClientID)
					if err := s.CreateToken(store.WithAudit(context.Background(), &ev), tok); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creates/s")
		})
	}
}

func BenchmarkResolveCheck(b *testing.B) {
	const tokens, perToken = 1_000, 10
	const n = tokens * perToken
	for _, name := range []string{"bolt", "etcd"} {
		open := benchBackends(b)[name]
		b.Run(name, func(b *testing.B) {
			s := withRoles(b, open(b))
			fill(b, tokens, func(i int) error { return s.CreateToken(context.Background(), benchToken(i)) })
			fill(b, n, func(i int) error {
				return s.CreateAuthToken(context.Background(),
					storetest.NewAuthToken(i, store.PrincipalApplicationToken, storetest.ClientID(i/perToken)))
			})
			macs := make([][]byte, n)
			for i := range macs {
				macs[i] = storetest.AuthMAC(i)
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					at, err := s.ResolveAuthToken(context.Background(), macs[rand.IntN(n)])
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
}

// fill runs create(0..n-1) from 32 goroutines (group commit makes large
// fixtures quick on both backends).
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

// BenchmarkBytesPerToken measures what one token costs in etcd's database
// (its quota counts the backend size): run with -benchtime=20000x. It uses
// a member of its own, so that only these writes count, and reports the
// growth of the backend (DbSize) and of its live part (DbSizeInUse) per
// token created with an audit event, as the broker creates them.
func BenchmarkBytesPerToken(b *testing.B) {
	srv, err := etcdtest.Start()
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Stop()
	s, err := etcd.Open(context.Background(), etcd.Options{Endpoints: []string{srv.Endpoint}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	withRoles(b, s)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{srv.Endpoint}, Logger: zap.NewNop()})
	if err != nil {
		b.Fatal(err)
	}
	defer cli.Close()
	status := func() (int64, int64) {
		st, err := cli.Status(context.Background(), srv.Endpoint)
		if err != nil {
			b.Fatal(err)
		}
		return st.DbSize, st.DbSizeInUse
	}
	size0, inUse0 := status()
	b.ResetTimer()
	fill(b, b.N, func(i int) error {
		tok := benchToken(i)
		ev := storetest.NewAuditEvent("TokenService.CreateToken", "token", tok.ClientID)
		return s.CreateToken(store.WithAudit(context.Background(), &ev), tok)
	})
	b.StopTimer()
	size1, inUse1 := status()
	b.ReportMetric(float64(size1-size0)/float64(b.N), "db-bytes/token")
	b.ReportMetric(float64(inUse1-inUse0)/float64(b.N), "in-use-bytes/token")
}

// BenchmarkUseFlush: one flush of the last-use times of 1,000 application
// tokens (RecordTokenUse), as the view writes them every 10 s; on etcd it
// is split into transactions within MaxTxnOps.
func BenchmarkUseFlush(b *testing.B) {
	const tokens = 1_000
	for _, name := range []string{"bolt", "etcd"} {
		open := benchBackends(b)[name]
		b.Run(name, func(b *testing.B) {
			s := withRoles(b, open(b))
			for n := range tokens {
				if err := s.CreateToken(context.Background(), benchToken(n)); err != nil {
					b.Fatal(err)
				}
			}
			used := make(map[string]time.Time, tokens)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				for n := range tokens {
					used[storetest.ClientID(n)] = storetest.Base.Add(time.Duration(i+1) * time.Second)
				}
				if err := s.RecordTokenUse(context.Background(), used); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkStatsReport: 1,000 namespaces of 20 tenants stored as one
// report (PutNamespaceStats) and, for comparison, as ten reports of 100.
func BenchmarkStatsReport(b *testing.B) {
	const tenants, namespaces = 20, 1000
	for _, name := range []string{"bolt", "etcd"} {
		open := benchBackends(b)[name]
		for _, parts := range []int{1, 10} {
			b.Run(fmt.Sprintf("%s/%dx%d", name, parts, namespaces/parts), func(b *testing.B) {
				s := open(b)
				report := make([]store.NamespaceStats, namespaces)
				for i := range report {
					tenant := storetest.TenantName(i % tenants)
					if i < tenants {
						if err := s.CreateTenant(context.Background(), storetest.NewTenant(tenant)); err != nil {
							b.Fatal(err)
						}
					}
					report[i] = storetest.NewNamespaceStats(tenant, fmt.Sprintf("ns-%04d", i))
				}
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					for p := range parts {
						part := report[p*namespaces/parts : (p+1)*namespaces/parts]
						if err := s.PutNamespaceStats(context.Background(), part); err != nil {
							b.Fatal(err)
						}
					}
				}
			})
		}
	}
}
