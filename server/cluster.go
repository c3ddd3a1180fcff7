package server

import (
	"context"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/tokenbroker/tokenbroker/store"
)

// freshnessPoll is how often a replica over a shared store re-checks that
// its view of the store is current, to report it in health.
const freshnessPoll = 250 * time.Millisecond

// watchFreshness reports NOT_SERVING (gRPC health, and so /healthz) while
// a shared store's local view is not known to be current (store.Freshness;
// the store's own reads fail closed meanwhile), and SERVING again once it
// is. Stores without the notion (bbolt) are always current.
func (s *Server) watchFreshness(ctx context.Context, services []string) {
	f, ok := s.store.(store.Freshness)
	if !ok {
		return
	}
	s.loops.Add(1)
	go func() {
		defer s.loops.Done()
		t := time.NewTicker(freshnessPoll)
		defer t.Stop()
		serving := true
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			err := f.Stale()
			if now := err == nil; now != serving {
				serving = now
				status := healthpb.HealthCheckResponse_SERVING
				if !serving {
					status = healthpb.HealthCheckResponse_NOT_SERVING
					s.log.Warn("store view is stale; refusing calls until it is current", "err", err)
				} else {
					s.log.Info("store view is current again; serving")
				}
				for _, svc := range append([]string{""}, services...) {
					s.health.SetServingStatus(svc, status)
				}
			}
		}
	}()
}

// leadingFunc is the broker's test for running the cluster-wide background
// jobs: the store's election when several brokers share it, nil (always
// run them) otherwise.
func leadingFunc(st store.Store) func() bool {
	if el, ok := st.(store.Elector); ok {
		return el.Leading
	}
	return nil
}

// LeadsBackgroundJobs reports whether this server runs the cluster-wide
// background jobs: always with a store of its own, and while it holds the
// election with a shared one.
func (s *Server) LeadsBackgroundJobs() bool {
	if f := leadingFunc(s.store); f != nil {
		return f()
	}
	return true
}
