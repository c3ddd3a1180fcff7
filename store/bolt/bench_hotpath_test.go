package bolt_test

import (
	"context"
	"testing"

	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/storetest"
)

// BenchmarkResolveAuthToken and BenchmarkGetPulsarTokenByMAC measure the
// store's share of a credential check in one goroutine, with allocations:
// resolving an auth token with its principal, and finding a Pulsar token by
// its MAC, among 10,000.
func BenchmarkResolveAuthToken(b *testing.B) {
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
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := s.ResolveAuthToken(context.Background(), macs[i%n]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetPulsarTokenByMAC(b *testing.B) {
	const n = 10_000
	s := benchStore(b)
	tenant := storetest.TenantName(1)
	if err := s.CreateTenant(context.Background(), storetest.NewTenant(tenant)); err != nil {
		b.Fatal(err)
	}
	fill(b, n, func(i int) error {
		return s.CreatePulsarToken(context.Background(), storetest.NewPulsarToken(i, tenant), 0)
	})
	macs := make([][]byte, n)
	for i := range macs {
		macs[i] = storetest.PulsarMAC(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := s.GetPulsarTokenByMAC(context.Background(), macs[i%n]); err != nil {
			b.Fatal(err)
		}
	}
}
