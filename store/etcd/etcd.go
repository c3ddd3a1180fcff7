// Package etcd is the etcd backend of store.Store: every record and index
// entry is a key under one prefix per installation, so that several brokers
// can share one store and survive the loss of a machine.
//
// Reads are served from a local in-memory mirror of the prefix, kept current
// by an etcd watch (mirror.go): checking a credential makes no network round
// trip. Writes go through a group committer (committer.go) that builds each
// batch as one etcd transaction from the mirror, guarded by compares on
// everything it read (tx.go), and returns only after etcd has committed it
// (durable on a quorum) and the local mirror has applied it, so a process
// always reads its own writes. The key layout is in schema.go; the stored
// encodings are store/internal/records, the same bytes as store/bolt, and
// the record logic is store/internal/kvrecords, shared with store/bolt (kv.go).
package etcd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/internal/feed"
	"github.com/tokenbroker/tokenbroker/store/internal/kvrecords"
)

var _ store.Store = (*Store)(nil)

const (
	// DefaultPrefix is the key prefix of an installation unless configured.
	DefaultPrefix      = "/tokenbroker/"
	defaultCallTimeout = 5 * time.Second
	defaultDialTimeout = 5 * time.Second
	defaultMaxBatch    = 1000
	// defaultMaxTxnBytes stays well below etcd's default
	// --max-request-bytes (1.5 MiB) to leave room for the request framing.
	defaultMaxTxnBytes = 1 << 20
	// gcChunk bounds the records one garbage-collection transaction
	// deletes, so that it stays within etcd's 128 operations (a token is
	// 2 to 4 keys, plus its auth tokens' 3 each).
	gcChunk = 25
	// maxConflictRetries bounds how often a batch is rebuilt after another
	// writer won a compare (then callers get store.ErrConflict).
	maxConflictRetries = 32
)

// DefaultMaxTxnOps is etcd's default --max-txn-ops, and the least
// Options.MaxTxnOps Open accepts: the writes of a fixed size are sized for
// it (rotating a token of 50 roles, the most the API gives one, with its
// audit event is about 110 operations; the chunks of garbage collection
// and of split cascades are up to 100).
const DefaultMaxTxnOps = 128

// Options configures Open.
type Options struct {
	// Endpoints are the etcd client URLs or host:port pairs (required).
	Endpoints []string
	// TLS, if set, is used to connect (CA, client certificate).
	TLS *tls.Config
	// Username and Password authenticate to etcd when set.
	Username, Password string
	// Prefix is the key prefix of this installation; "" means
	// DefaultPrefix. It must end with "/".
	Prefix string
	// CallTimeout bounds each etcd request (and each store call's wait for
	// it); 0 means 5 s.
	CallTimeout time.Duration
	// DialTimeout bounds connecting at Open; 0 means 5 s.
	DialTimeout time.Duration
	// MaxTxnOps is the most compares, and the most operations, one
	// transaction holds: set it to the server's --max-txn-ops, never above
	// (etcd refuses larger transactions). 0 means etcd's default, 128,
	// which is also the least accepted. Writes whose size depends on their
	// input (use-time flushes, database usage, namespace statistics, audit
	// batches) are split into transactions of at most this many
	// (docs/storage.md); a larger setting makes fewer, larger ones.
	MaxTxnOps int
	// MaxTxnBytes bounds one transaction's request size; it must stay
	// below the server's --max-request-bytes. 0 means 1 MiB (etcd's
	// default limit is 1.5 MiB).
	MaxTxnBytes int
	// MaxBatch caps how many writes share one transaction; 0 means 1000.
	MaxBatch int
	// Logger receives operational messages; nil discards them. Keys and
	// values are never logged.
	Logger *slog.Logger
	// StaleAfter bounds how old the local view may be known to be before
	// reads fail with store.ErrUnavailable (changes.go); 0 means
	// DefaultStaleAfter.
	StaleAfter time.Duration
	// ElectionTTL is the lease of the background jobs' leadership
	// (election.go): how long a dead leader's jobs wait for a successor;
	// 0 means DefaultElectionTTL. Whole seconds.
	ElectionTTL time.Duration
	// OnCommit, if set, is called after every group commit with the number
	// of writes in the batch and how long the batch took (running the write
	// functions, the etcd transactions, and the local mirror applying
	// them; retries after conflicts included). It runs on the committer
	// goroutine: it must be quick and must not write to the store. For
	// metrics, like store/bolt's Options.OnCommit.
	OnCommit func(batch int, took time.Duration)
}

// DefaultStaleAfter is the default Options.StaleAfter: a replica cut off
// from etcd answers from its last view for at most this long.
const DefaultStaleAfter = 5 * time.Second

// Store is a store.Store over etcd. It is safe for concurrent use.
type Store struct {
	*kvrecords.Records // the store.Store operations (kv.go)

	cli       *clientv3.Client
	prefix    string
	opts      Options
	log       *slog.Logger
	m         *mirror
	w         *committer
	bg        context.Context
	stop      context.CancelFunc
	watchDone chan struct{}
	closed    atomic.Bool
	// rewatch and reloads let tests make the watch fall behind a
	// compaction and see the mirror recover.
	rewatch chan int64
	reloads atomic.Int64
	// feed and fresh are the change feed and the staleness bound
	// (changes.go).
	feed      feed.Feed
	fresh     freshness
	freshDone chan struct{}
	elect     election
	// progressc carries waitRev's requests for a progress notification to
	// progressLoop (mirror.go); progressRequests counts those sent.
	progressc        chan struct{}
	progressDone     chan struct{}
	progressRequests atomic.Int64
	// written is the highest revision this process committed whose wait
	// for the mirror timed out (it was committed, so it answered success).
	// Reads wait until the mirror has applied it (rlockCurrent), so a
	// write that returned is visible to every later read here.
	written atomic.Int64
}

// ErrUnsupportedSchema is returned by Open for a prefix whose schema version
// this binary does not know (typically written by a newer tokenbroker).
var ErrUnsupportedSchema = errors.New("unsupported schema version")

// Open connects to etcd, checks (or, on an empty prefix, writes) the schema
// version, loads the mirror and starts watching.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if len(opts.Endpoints) == 0 {
		return nil, errors.New("open etcd store: no endpoints")
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if !strings.HasPrefix(opts.Prefix, "/") || !strings.HasSuffix(opts.Prefix, "/") {
		return nil, fmt.Errorf("open etcd store: prefix %q must start and end with '/'", opts.Prefix)
	}
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = defaultCallTimeout
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = defaultDialTimeout
	}
	switch {
	case opts.MaxTxnOps == 0:
		opts.MaxTxnOps = DefaultMaxTxnOps
	case opts.MaxTxnOps < DefaultMaxTxnOps:
		return nil, fmt.Errorf("open etcd store: MaxTxnOps %d is below %d, the operations some single writes need (set etcd's --max-txn-ops to at least %d)",
			opts.MaxTxnOps, DefaultMaxTxnOps, DefaultMaxTxnOps)
	}
	if opts.MaxTxnBytes <= 0 {
		opts.MaxTxnBytes = defaultMaxTxnBytes
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = defaultMaxBatch
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.ElectionTTL <= 0 {
		opts.ElectionTTL = DefaultElectionTTL
	}
	if opts.StaleAfter <= 0 {
		opts.StaleAfter = DefaultStaleAfter
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   opts.Endpoints,
		TLS:         opts.TLS,
		Username:    opts.Username,
		Password:    opts.Password,
		DialTimeout: opts.DialTimeout,
		Logger:      zap.NewNop(), // errors reach the caller; the client's own chatter is not ours to log
	})
	if err != nil {
		return nil, etcdErr("open etcd store: connect", err)
	}
	s := &Store{cli: cli, prefix: opts.Prefix, opts: opts, log: opts.Logger, m: newMirror(), watchDone: make(chan struct{}), rewatch: make(chan int64),
		freshDone: make(chan struct{}), progressc: make(chan struct{}, 1),
		progressDone: make(chan struct{})}
	s.fresh.after = opts.StaleAfter
	s.bg, s.stop = context.WithCancel(context.Background())
	if err := s.init(ctx); err != nil {
		s.stop()
		_ = cli.Close()
		return nil, fmt.Errorf("open etcd store %s: %w", opts.Prefix, err)
	}
	s.w = newCommitter(s, opts.MaxBatch)
	s.Records = kvrecords.New(backend{s}, kvrecords.Limits{GCChunk: gcChunk, TxnOps: opts.MaxTxnOps})
	s.log.Info("store opened", "backend", "etcd", "prefix", opts.Prefix, "schema_version", schemaVersion,
		"revision", s.m.rev, "max_txn_ops", opts.MaxTxnOps)
	return s, nil
}

// init checks the schema version, writing it if the prefix is empty (one
// guarded transaction, so two brokers starting together agree) and
// migrating a version-1 prefix (migrate.go), then loads the mirror and
// starts the watch.
func (s *Store) init(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, s.opts.CallTimeout)
	defer cancel()
	verKey := s.prefix + keySchemaVersion
	if cur, err := s.cli.Get(cctx, verKey); err == nil && len(cur.Kvs) == 1 && string(cur.Kvs[0].Value) == schemaVersion {
		return s.loadAndWatch(ctx) // the common case: no range compare over the whole prefix
	}
	resp, err := s.cli.Txn(cctx).
		If(clientv3.Compare(clientv3.CreateRevision(s.prefix), "=", 0).WithPrefix()).
		Then(clientv3.OpPut(verKey, schemaVersion)).
		Else(clientv3.OpGet(verKey)).
		Commit()
	if err != nil {
		return etcdErr("check schema version", err)
	}
	if !resp.Succeeded {
		kvs := resp.Responses[0].GetResponseRange().Kvs
		switch {
		case len(kvs) == 0:
			return fmt.Errorf("not a tokenbroker prefix: it holds keys but no schema version")
		case string(kvs[0].Value) == schemaVersion1 || string(kvs[0].Value) == schemaMigrating:
			if err := s.migrateV1(ctx, string(kvs[0].Value)); err != nil { // migrate.go
				return err
			}
		case string(kvs[0].Value) != schemaVersion:
			return fmt.Errorf("prefix has schema version %q, this binary supports %q (and migrates %q) (was it written by a newer tokenbroker?): %w",
				kvs[0].Value, schemaVersion, schemaVersion1, ErrUnsupportedSchema)
		}
	}
	return s.loadAndWatch(ctx)
}

func (s *Store) loadAndWatch(ctx context.Context) error {
	t, rev, err := s.load(ctx)
	if err != nil {
		return etcdErr("load", err)
	}
	s.m.replace(t, rev)
	s.m.progress(rev)
	s.markFresh(time.Now())
	go s.watchLoop(rev)
	go s.progressLoop()
	go s.freshnessLoop()
	return nil
}

// Close commits the writes already handed to the committer, stops the watch
// and disconnects. Calls after Close fail with ErrClosed.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return fmt.Errorf("close: %w", store.ErrClosed)
	}
	s.w.close()
	s.stop()
	<-s.watchDone
	<-s.freshDone
	<-s.progressDone
	s.elect.once.Do(func() {}) // no campaign starts after Close
	if s.elect.started.Load() {
		<-s.elect.done
	}
	if err := s.cli.Close(); err != nil && !errors.Is(err, context.Canceled) {
		return etcdErr("close", err)
	}
	s.log.Info("store closed", "backend", "etcd")
	return nil
}

// view runs fn on the mirror as it is now (no network round trip). Within
// this process it sees every write that has returned; writes made by other
// processes appear once the watch delivers them.
func (s *Store) view(fn func(*Tx) error) error {
	if err := s.Stale(); err != nil {
		return err
	}
	if err := s.rlockCurrent(); err != nil {
		return err
	}
	defer s.m.mu.RUnlock()
	return fn(newReadTx(s.m.tree, s.m.rev))
}

// rlockCurrent takes the mirror's read lock once the mirror has applied
// every write this process committed: read-your-writes on one broker. A
// write normally returns only after its own revision is applied, so this
// waits only after a write whose wait for the mirror timed out (it was
// committed, so it answered success). If the mirror does not catch up
// within CallTimeout the read fails closed (store.ErrUnavailable) rather
// than answer from a view older than a write it acknowledged.
func (s *Store) rlockCurrent() error {
	for {
		s.m.mu.RLock()
		w := s.written.Load()
		if s.m.applied >= w {
			return nil
		}
		s.m.mu.RUnlock()
		ctx, cancel := context.WithTimeout(s.bg, s.opts.CallTimeout)
		err := s.waitRev(ctx, w)
		cancel()
		if err != nil {
			return fmt.Errorf("etcd: the local view lacks this broker's own write: %v: %w", err, store.ErrUnavailable)
		}
	}
}

// FeedBehind implements store.FeedLag: a write this process acknowledged
// after its wait for the mirror timed out is not yet through the change
// feed. Two atomic loads; normally written is 0.
func (s *Store) FeedBehind() bool {
	w := s.written.Load()
	return w != 0 && w > s.m.fed.Load()
}

// noteWritten records a revision this process committed (see written).
func (s *Store) noteWritten(rev int64) {
	for {
		cur := s.written.Load()
		if rev <= cur || s.written.CompareAndSwap(cur, rev) {
			return
		}
	}
}

// etcdErr wraps an etcd client error so that no etcd type escapes the
// package: context errors stay recognisable, anything else becomes text.
func etcdErr(what string, err error) error {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("etcd %s: %w", what, context.DeadlineExceeded)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("etcd %s: %w", what, context.Canceled)
	}
	return fmt.Errorf("etcd %s: %v", what, err)
}
