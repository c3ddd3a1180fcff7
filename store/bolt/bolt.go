// Package bolt is the bbolt backend of store.Store: a single local file,
// one writer at a time, readers in parallel.
//
// Writes go through a group committer (committer.go): each write returns
// only after the transaction holding it is committed and fsynced, and
// concurrent writes share commits. A write whose context ends before the
// committer reaches it is not written and returns the context's error; once
// it is in a batch, the caller waits for that commit. Reads run in the
// caller's goroutine in short read-only transactions. The bucket layout is
// in schema.go; the record logic (how each operation reads and writes
// records and index entries) is store/internal/kvrecords, shared with
// store/etcd, run on bbolt through the adapters in kv.go. The change feed
// (store.ChangeNotifier) reports each committed batch before its writers
// are answered (changes.go).
package bolt

import (
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/internal/feed"
	"github.com/tokenbroker/tokenbroker/store/internal/kvrecords"
)

var _ store.Store = (*Store)(nil)

const (
	defaultMaxBatch    = 1000
	defaultLockTimeout = 2 * time.Second
	// gcChunk bounds DeleteExpiredTokens and DeleteIdleAuthTokens
	// transactions (and their scans) so that collecting a
	// large backlog neither holds a long read transaction nor builds one
	// huge write transaction that stalls every other writer.
	gcChunk = 1000
)

// ErrLocked is returned by Open when another process holds the file.
var ErrLocked = errors.New("database is locked by another process")

// Options configures Open. The zero value is usable.
type Options struct {
	// Logger receives operational messages; nil discards them. Records and
	// MACs are never logged.
	Logger *slog.Logger
	// MaxBatch caps how many writes share one commit (and how many may
	// queue for the next one); 0 means 1000.
	MaxBatch int
	// LockTimeout is how long Open waits for the file lock held by another
	// process before failing with ErrLocked; 0 means 2 s.
	LockTimeout time.Duration
	// OnCommit, if set, is called after every group commit with the number
	// of writes in the batch and how long the batch took (running the write
	// functions, commit and fsync, and the change feed's subscribers, which
	// run before the batch is answered). It runs on the committer
	// goroutine: it must be quick and must not write to the store. For
	// metrics.
	OnCommit func(batch int, took time.Duration)
}

// Store is a store.Store backed by one bbolt file. It is safe for
// concurrent use. Calls after Close fail with an error wrapping
// store.ErrClosed.
type Store struct {
	*kvrecords.Records // the store.Store operations (kv.go)

	db     *bbolt.DB
	log    *slog.Logger
	w      *committer
	feed   feed.Feed // the change feed (changes.go)
	closed atomic.Bool
}

// Open opens (creating if needed) the database file at path. The parent
// directory must exist. The file is created with mode 0600: it holds MACs
// and metadata that only the broker should read.
func Open(path string, opts Options) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = defaultMaxBatch
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = defaultLockTimeout
	}

	// After a crash bbolt rebuilds its free-page list by walking every
	// page of the file; ask the kernel to read the file ahead of that walk.
	readAheadIfFreelistAbsent(path, opts.Logger)

	// NoSync stays false: durability of acknowledged writes depends on it.
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout: opts.LockTimeout,
		// As etcd does: don't rewrite the free-page list on every commit,
		// which removes pages from every fsync'd commit; keep it in a hash
		// map, which stays fast as the file grows. A clean Close saves it
		// (saveFreelist), so only an open after a crash rebuilds it by
		// walking the whole file.
		NoFreelistSync: true,
		FreelistType:   bbolt.FreelistMapType,
		// Reserve address space up front so growth does not remap the file,
		// which blocks readers (the credential-check path) behind a writer.
		// This is virtual memory, not RAM.
		InitialMmapSize: 1 << 30,
	})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("open %s: gave up after %s: %w", path, opts.LockTimeout, ErrLocked)
	}
	if errors.Is(err, berrors.ErrInvalid) || errors.Is(err, berrors.ErrChecksum) || errors.Is(err, berrors.ErrVersionMismatch) {
		return nil, fmt.Errorf("open %s: not a usable tokenbroker database (not a bbolt file, or a damaged one): %w; restore it from backup, or point --data elsewhere", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	// A current file is opened without a write: a commit here would drop
	// the free-page list a clean Close saved (see saveFreelist).
	var current bool
	_ = db.View(func(tx *bbolt.Tx) error { current = schemaIsCurrent(tx); return nil })
	var migrated int
	if !current {
		if err := db.Update(func(tx *bbolt.Tx) (err error) { migrated, err = initSchema(tx); return err }); err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
	}
	if migrated > 0 {
		opts.Logger.Info("store migrated", "path", path, "from_schema_version", schemaVersion1,
			"to_schema_version", schemaVersion, "records", migrated)
	}

	s := &Store{db: db, log: opts.Logger}
	s.w = newCommitter(db, opts.Logger, opts.MaxBatch, opts.OnCommit, &s.feed)
	s.Records = kvrecords.New(backend{s}, kvrecords.Limits{GCChunk: gcChunk})
	s.log.Info("store opened", "path", path, "schema_version", schemaVersion, "max_batch", opts.MaxBatch)
	return s, nil
}

// Close commits the writes already handed to the committer, then closes the
// file (waiting for running reads). Calls after Close fail with ErrClosed.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return fmt.Errorf("close: %w", store.ErrClosed)
	}
	s.w.close()
	s.saveFreelist()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close database: %w", err)
	}
	s.log.Info("store closed")
	return nil
}

// view runs a read-only transaction in the caller's goroutine. fn must copy
// whatever it keeps out of tx (decoding does).
func (s *Store) view(fn func(*bbolt.Tx) error) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	err := s.db.View(fn)
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return store.ErrClosed // lost a race with Close
	}
	return err
}
