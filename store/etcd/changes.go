package etcd

import (
	"github.com/tokenbroker/tokenbroker/store/internal/kvrecords"

	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tokenbroker/tokenbroker/store"
)

var (
	_ store.ChangeNotifier = (*Store)(nil)
	_ store.Freshness      = (*Store)(nil)
	_ store.Syncer         = (*Store)(nil)
)

// Sync implements store.Syncer.
func (s *Store) Sync(ctx context.Context) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.CallTimeout)
	defer cancel()
	return s.sync(ctx)
}

// The change feed: every watch response the mirror applies is reported to
// subscribers as one batch of store.Change values, after the mirror's
// reads return it and before the mirror's revision advances past it
// (watchLoop). A write of this process returns only once the mirror has
// reached its revision, so a subscriber has seen the write's changes
// before the write returns: what it keeps beside the store follows this
// process's writes at once (read-your-writes), and other processes' writes
// as fast as the watch delivers them. The watch delivers writes of every
// process sharing the prefix, including this one's.

// Subscribe implements store.ChangeNotifier.
func (s *Store) Subscribe(fn func([]store.Change)) (cancel func()) {
	return s.feed.Subscribe(fn)
}

// SubscribeWindows implements store.ChangeNotifier: a watch response's
// window opens before the mirror applies it and closes once the feed has
// delivered it (mirror.go).
func (s *Store) SubscribeWindows(opening, closing func([]store.Change)) (cancel func()) {
	return s.feed.SubscribeWindows(opening, closing)
}

// publish calls every subscriber with changes (from the watch goroutine:
// batches arrive in commit order).
func (s *Store) publish(changes []store.Change) { s.feed.Publish(changes) }

// changesOf turns watch events into changes. Only the record buckets are
// reported by kind (their index entries change in the same transaction);
// the mapping is the one store/bolt uses (kvrecords.ChangeKindOf).
func changesOf(events []*clientv3.Event, strip int) []store.Change {
	out := make([]store.Change, 0, len(events))
	for _, ev := range events {
		key := string(ev.Kv.Key[strip:])
		bucket, rest, _ := strings.Cut(key, "/")
		kind, ok := kvrecords.ChangeKindOf(bucket)
		if !ok {
			continue
		}
		out = append(out, store.Change{Kind: kind, Key: rest, Deleted: ev.Type == mvccpb.DELETE})
	}
	return out
}

// Freshness. The mirror is known to be current as of the start of the last
// successful sync: a linearizable read gives etcd's revision at that
// moment, and the sync returns once the mirror has applied it (from the
// watch's events or a progress notification, which etcd sends only once
// the watch has delivered everything up to the revision it names). A
// background loop syncs every StaleAfter/4; if no sync has succeeded for
// StaleAfter (every member down, this process cut off from the leader, a
// watch that cannot resume), reads fail with store.ErrUnavailable rather
// than answer from a view that may lack a revoke, until a sync succeeds
// again.

// freshness tracks when the mirror was last proven current.
type freshness struct {
	after time.Duration // the bound
	at    atomic.Int64  // unix nanos of the last proof
}

// markFresh records that the mirror was current at t (never moving the
// record back).
func (s *Store) markFresh(t time.Time) {
	n := t.UnixNano()
	for {
		old := s.fresh.at.Load()
		if n <= old || s.fresh.at.CompareAndSwap(old, n) {
			return
		}
	}
}

// Stale implements store.Freshness.
func (s *Store) Stale() error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	age := time.Since(time.Unix(0, s.fresh.at.Load()))
	if age > s.fresh.after {
		return fmt.Errorf("etcd view last known current %s ago (bound %s): %w",
			age.Round(time.Millisecond), s.fresh.after, store.ErrUnavailable)
	}
	return nil
}

// freshnessLoop proves the mirror current every StaleAfter/4 until s.bg
// ends.
func (s *Store) freshnessLoop() {
	defer close(s.freshDone)
	tick := time.NewTicker(max(s.fresh.after/4, time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-s.bg.Done():
			return
		case <-tick.C:
		}
		start := time.Now()
		ctx, cancel := context.WithTimeout(s.bg, s.fresh.after)
		if err := s.sync(ctx); err == nil {
			s.markFresh(start)
		}
		cancel()
	}
}
