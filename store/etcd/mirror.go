package etcd

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/btree"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tokenbroker/tokenbroker/store"
)

// The mirror is an in-memory copy of every key under the installation's
// prefix, kept current by list-then-watch: a paginated Get of the prefix at
// one revision R, then a Watch from R+1. Every read of the store is served
// from it (no network round trip on the credential-check path), and every
// write transaction is built from it, guarded by compares on what it read
// (tx.go), so a stale mirror can make a write retry, never make it wrong.
//
// Recovery: if the watch is compacted away (it fell further behind than
// etcd's history keeps), the mirror reloads the whole prefix at a new
// revision and watches from there; on any other watch error (lost leader,
// broken connection) it re-watches from the revision it has applied, which
// loses nothing while that revision is still in etcd's history.

// item is one key of the mirror: the key without the installation prefix,
// its value (never mutated once stored) and its mod revision.
type item struct {
	key string
	val []byte
	mod int64
}

func itemLess(a, b item) bool { return a.key < b.key }

func newTree() *btree.BTreeG[item] { return btree.NewG(32, itemLess) }

type mirror struct {
	mu      sync.RWMutex
	tree    *btree.BTreeG[item]
	rev     int64         // every change up to rev has been applied, and seen by the change feed
	changed chan struct{} // closed (and replaced) whenever rev advances
	// applied is the revision the tree holds, which runs ahead of rev
	// while the change feed is being told of the latest events (see
	// apply). Read-your-writes waits on it, not on rev: a subscriber that
	// reads the store during that delivery must not wait for the delivery
	// it is part of.
	applied int64
	// fed is rev, readable without the lock (FeedBehind, on the Check path).
	fed atomic.Int64
}

func newMirror() *mirror {
	return &mirror{tree: newTree(), changed: make(chan struct{})}
}

// snapshot returns a copy-on-write clone of the tree and its revision: a
// writer builds its transaction on it without holding the lock.
func (m *mirror) snapshot() (*btree.BTreeG[item], int64) {
	m.mu.Lock() // Clone must not run concurrently with itself
	defer m.mu.Unlock()
	return m.tree.Clone(), m.rev
}

// current returns the applied revision and a channel closed when it next
// advances.
func (m *mirror) current() (int64, <-chan struct{}) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.rev, m.changed
}

func (m *mirror) advanceLocked(rev int64) {
	m.applied = max(m.applied, rev)
	if rev > m.rev {
		m.rev = rev
		m.fed.Store(rev)
		close(m.changed)
		m.changed = make(chan struct{})
	}
}

// replace swaps in a freshly loaded tree (after a compaction). Like
// apply, it leaves the revision to the caller (progress), so that the
// change feed runs in between.
func (m *mirror) replace(t *btree.BTreeG[item], rev int64) {
	m.mu.Lock()
	m.tree = t
	m.applied = max(m.applied, rev)
	m.mu.Unlock()
}

// apply applies one watch response's events to the tree and returns the
// response's last event revision, which the caller makes the applied
// revision (progress) once the change feed has seen the events: a write
// waiting for that revision then returns only after every subscriber has
// (changes.go). Events arrive in revision order and one revision is never
// split across responses. Between apply and progress, reads already see
// the events while the revision lags: a write transaction built meanwhile
// on the lagging base revision fails its range compares and retries, so
// the lag costs a retry, never a wrong write (tx.go).
func (m *mirror) apply(events []*clientv3.Event, strip int) (last int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, ev := range events {
		key := string(ev.Kv.Key[strip:])
		switch ev.Type {
		case mvccpb.PUT:
			m.tree.ReplaceOrInsert(item{key: key, val: ev.Kv.Value, mod: ev.Kv.ModRevision})
		case mvccpb.DELETE:
			m.tree.Delete(item{key: key})
		}
		last = ev.Kv.ModRevision
	}
	m.applied = max(m.applied, last)
	return last
}

func (m *mirror) progress(rev int64) {
	m.mu.Lock()
	m.advanceLocked(rev)
	m.mu.Unlock()
}

// loadPage bounds each Get of the initial load, so that a large prefix is
// never one huge response.
const loadPage = 5000

// load reads every key under the prefix at one revision, page by page.
func (s *Store) load(ctx context.Context) (*btree.BTreeG[item], int64, error) {
	t := newTree()
	var rev int64
	from := s.prefix
	end := clientv3.GetPrefixRangeEnd(s.prefix)
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(loadPage)}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		cctx, cancel := context.WithTimeout(ctx, s.opts.CallTimeout)
		resp, err := s.cli.Get(cctx, from, opts...)
		cancel()
		if err != nil {
			return nil, 0, err
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for _, kv := range resp.Kvs {
			t.ReplaceOrInsert(item{key: string(kv.Key[len(s.prefix):]), val: kv.Value, mod: kv.ModRevision})
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return t, rev, nil
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// watchLoop keeps the mirror current until s.bg is cancelled (Close).
func (s *Store) watchLoop(rev int64) {
	defer close(s.watchDone)
	backoff := 50 * time.Millisecond
	for s.bg.Err() == nil {
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(s.bg))
		wch := s.cli.Watch(wctx, s.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1),
			clientv3.WithProgressNotify())
		compacted := false
	events:
		for {
			var resp clientv3.WatchResponse
			var ok bool
			select {
			case resp, ok = <-wch:
			case from := <-s.rewatch: // tests: re-watch from an older revision
				rev = from
				break events
			}
			if !ok {
				break
			}
			if resp.CompactRevision != 0 || errors.Is(resp.Err(), rpctypes.ErrCompacted) {
				compacted = true
				break
			}
			if err := resp.Err(); err != nil {
				s.log.Warn("etcd watch failed; re-watching", "err", err.Error(), "from_revision", rev+1)
				break
			}
			if resp.IsProgressNotify() {
				s.m.progress(resp.Header.Revision)
			} else if len(resp.Events) > 0 {
				changes := changesOf(resp.Events, len(s.prefix))
				s.feed.Open(changes) // before any read can see them
				last := s.m.apply(resp.Events, len(s.prefix))
				s.publish(changes)
				s.m.progress(last) // after the feed: see apply
				s.feed.Close(changes)
			}
			rev, _ = s.m.current()
			backoff = 50 * time.Millisecond
		}
		cancel()
		if s.bg.Err() != nil {
			return
		}
		if compacted {
			s.log.Warn("etcd watch fell behind compaction; reloading the mirror", "applied_revision", rev)
			t, r, err := s.load(s.bg)
			if err != nil {
				s.log.Warn("reloading the mirror failed; retrying", "err", err.Error())
			} else {
				all := []store.Change{{Kind: store.ChangeAll}}
				s.feed.Open(all)
				s.m.replace(t, r)
				s.reloads.Add(1)
				s.publish(all)
				s.m.progress(r)
				s.feed.Close(all)
				rev = r
				continue
			}
		}
		select {
		case <-s.bg.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// Progress notifications. A mirror that must reach a revision made by a
// write outside its prefix (another installation's prefix, the election's
// keys) receives no event for it; only a progress notification, which etcd
// sends on the watch's stream once it has delivered everything up to the
// revision it names, proves the mirror current. Two properties of etcd's
// client and server shape how they are asked for:
//   - the client picks the gRPC stream of a request by its context's
//     outgoing metadata, so a request made with a caller's context (which
//     may carry metadata of its own) can land on a stream without the
//     mirror's watch and never be answered: every request is made by one
//     goroutine with the watch's own metadata (progressLoop);
//   - the server drops (does not defer) a request while the watch is not
//     yet synced or its start revision is ahead of the member's, e.g. just
//     after a re-watch on an idle cluster: waitRev repeats its request
//     until the mirror has caught up.

// progressAfter is how long waitRev waits for the watch's events before it
// first asks for a progress notification; progressEvery caps the pause
// between repeated requests.
const (
	progressAfter = 2 * time.Millisecond
	progressEvery = 100 * time.Millisecond
)

// requestProgress asks progressLoop for a progress notification; requests
// made while one is pending are merged into it.
func (s *Store) requestProgress() {
	select {
	case s.progressc <- struct{}{}:
	default:
	}
}

// progressLoop sends the requested progress requests until s.bg ends, with
// the metadata the watch is opened with (watchLoop), so that they reach
// its stream.
func (s *Store) progressLoop() {
	defer close(s.progressDone)
	ctx := clientv3.WithRequireLeader(s.bg)
	for {
		select {
		case <-s.bg.Done():
			return
		case <-s.progressc:
			s.progressRequests.Add(1)
			_ = s.cli.RequestProgress(ctx)
		}
	}
}

// waitRev waits until the mirror has applied revision rev (bounded by ctx).
func (s *Store) waitRev(ctx context.Context, rev int64) error {
	wait := progressAfter
	for {
		cur, changed := s.m.current()
		if cur >= rev {
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-changed:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("waiting for the local mirror to reach revision %d (at %d): %w", rev, cur, ctx.Err())
		case <-t.C:
			s.requestProgress()
			wait = min(2*wait, progressEvery)
		}
		t.Stop()
	}
}

// sync makes the mirror at least as current as etcd was when sync was
// called (one linearizable read, then waiting for the watch): reads after
// it see every write acknowledged anywhere before it.
func (s *Store) sync(ctx context.Context) error {
	resp, err := s.cli.Get(ctx, s.prefix+keySchemaVersion, clientv3.WithCountOnly())
	if err != nil {
		return etcdErr("read revision", err)
	}
	return s.waitRev(ctx, resp.Header.Revision)
}
