package etcd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/tokenbroker/tokenbroker/store"
)

var _ store.Elector = (*Store)(nil)

// Leadership of the cluster-wide background jobs is an etcd election
// (client/v3/concurrency): each broker holds a session (a lease the client
// keeps alive) and campaigns under one key prefix; the oldest candidate
// leads. A leader that stops resigns at once; one that dies or is cut off
// loses its lease after ElectionTTL, and the next candidate takes over.
// Leading is false while the store's view is stale, so a replica cut off
// from etcd stops its jobs even before its lease runs out. The jobs are
// idempotent (deleting what has expired, pruning, a rotation whose guarded
// transaction refuses a second prepared key), so an overlap of two leaders
// for at most one lease TTL around a partition does no harm.

// DefaultElectionTTL is the default Options.ElectionTTL.
const DefaultElectionTTL = 5 * time.Second

type election struct {
	once    sync.Once
	started atomic.Bool
	done    chan struct{}
	leading atomic.Bool
}

// electionPrefix is beside the installation's prefix, not under it, so
// that candidates' keys never enter the mirror.
func (s *Store) electionPrefix() string {
	return strings.TrimSuffix(s.prefix, "/") + ".election/jobs"
}

// Leading implements store.Elector.
func (s *Store) Leading() bool {
	s.elect.once.Do(func() {
		if s.closed.Load() {
			return
		}
		s.elect.done = make(chan struct{})
		s.elect.started.Store(true)
		go s.campaignLoop()
	})
	return s.elect.leading.Load() && s.Stale() == nil
}

func (s *Store) campaignLoop() {
	defer close(s.elect.done)
	host, _ := os.Hostname()
	var nonce [6]byte
	_, _ = rand.Read(nonce[:])
	id := host + "/" + hex.EncodeToString(nonce[:])
	ttl := max(int(s.opts.ElectionTTL/time.Second), 1)
	backoff := 100 * time.Millisecond
	wait := func() bool {
		select {
		case <-s.bg.Done():
			return false
		case <-time.After(backoff):
			backoff = min(2*backoff, 2*time.Second)
			return true
		}
	}
	for s.bg.Err() == nil {
		sess, err := concurrency.NewSession(s.cli, concurrency.WithTTL(ttl), concurrency.WithContext(s.bg))
		if err != nil {
			if !wait() {
				return
			}
			continue
		}
		e := concurrency.NewElection(sess, s.electionPrefix())
		if err := e.Campaign(s.bg, id); err != nil {
			_ = sess.Close()
			if !wait() {
				return
			}
			continue
		}
		backoff = 100 * time.Millisecond
		s.elect.leading.Store(true)
		s.log.Info("leading the cluster's background jobs", "candidate", id)
		select {
		case <-sess.Done():
			s.log.Warn("lost the lease of the background jobs' leadership", "candidate", id)
		case <-s.bg.Done():
		}
		s.elect.leading.Store(false)
		// Resign, so that another broker takes over at once rather than
		// after the lease TTL (a no-op if the lease is gone).
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = e.Resign(ctx)
		cancel()
		_ = sess.Close()
	}
}
