// Package bolt is the bbolt backend of store.Store: a single local file,
// one writer at a time, readers in parallel.
//
// Writes go through a group committer (committer.go): each write returns
// only after the transaction holding it is committed and fsynced, and
// concurrent writes share commits. A write whose context ends before the
// committer reaches it is not written and returns the context's error; once
// it is in a batch, the caller waits for that commit. Reads run in the
// caller's goroutine in short read-only transactions. The bucket layout is
// in schema.go and the stored encodings in records.go.
package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/tokenbroker/tokenbroker/store"
)

var _ store.Store = (*Store)(nil)

const (
	defaultMaxBatch    = 1000
	defaultLockTimeout = 2 * time.Second
	defaultListLimit   = 100
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
}

// Store is a store.Store backed by one bbolt file. It is safe for
// concurrent use. Calls after Close fail with an error wrapping
// store.ErrClosed.
type Store struct {
	db     *bbolt.DB
	log    *slog.Logger
	w      *committer
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

	// NoSync stays false: durability of acknowledged writes depends on it.
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout: opts.LockTimeout,
		// As etcd does: don't rewrite the freelist on every commit (it is
		// rebuilt by a scan at open, cheap at our sizes), which removes
		// pages from every fsync'd commit; keep it in a hash map, which
		// stays fast as the file grows.
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
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := db.Update(initSchema); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}

	s := &Store{db: db, log: opts.Logger}
	s.w = newCommitter(db, opts.Logger, opts.MaxBatch)
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

// getOne reads the record under key in bucket and decodes it; a missing
// key is store.ErrNotFound. what names the record kind in errors.
func getOne[T any](s *Store, bucket []byte, key, what string, decode func([]byte) (T, error)) (T, error) {
	var out T
	err := s.view(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucket).Get([]byte(key))
		if v == nil {
			return store.ErrNotFound
		}
		var err error
		out, err = decode(v)
		return err
	})
	if err != nil {
		var zero T
		return zero, fmt.Errorf("get %s %q: %w", what, key, err)
	}
	return out, nil
}

// listAll decodes every record of bucket in key order, in one read
// transaction: only for buckets that stay small (roles, tenants,
// databases).
func listAll[T any](s *Store, bucket []byte, what string, decode func([]byte) (T, error)) ([]T, error) {
	var out []T
	err := s.view(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(_, v []byte) error {
			rec, err := decode(v)
			if err != nil {
				return err
			}
			out = append(out, rec)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", what, err)
	}
	return out, nil
}

// GetOrganization implements store.Store.
func (s *Store) GetOrganization(ctx context.Context) (store.Organization, error) {
	var org store.Organization
	err := s.view(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucketOrg).Get(keyOrg)
		if v == nil {
			return store.ErrNotFound
		}
		var err error
		org, err = decodeOrg(v)
		return err
	})
	if err != nil {
		return store.Organization{}, fmt.Errorf("get organization: %w", err)
	}
	return org, nil
}

// UpdateOrganization implements store.Store (closure rules as for
// UpdateRole).
func (s *Store) UpdateOrganization(ctx context.Context, update func(store.Organization) (store.Organization, error)) (store.Organization, error) {
	var stored []byte
	err := s.w.do(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketOrg)
		v := b.Get(keyOrg)
		if v == nil {
			return store.ErrNotFound
		}
		cur, err := decodeOrg(v)
		if err != nil {
			return err
		}
		next, err := update(cur)
		if err != nil {
			return err
		}
		if next.ID != cur.ID || !bytes.Equal(next.KeyCheck, cur.KeyCheck) {
			return errors.New("update must not change the organization ID or key check")
		}
		val, err := encodeOrg(next)
		if err != nil {
			return err
		}
		if err := b.Put(keyOrg, val); err != nil {
			return err
		}
		stored = val
		return nil
	})
	if err != nil {
		return store.Organization{}, fmt.Errorf("update organization: %w", err)
	}
	o, err := decodeOrg(stored)
	if err != nil {
		return store.Organization{}, fmt.Errorf("update organization: %w", err)
	}
	return o, nil
}

// Bootstrap implements store.Store.
func (s *Store) Bootstrap(ctx context.Context, org store.Organization, first store.Token) error {
	orgVal, err := encodeOrg(org)
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	tokVal, err := prepareToken(first)
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	err = s.w.do(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketOrg)
		if b.Get(keyOrg) != nil {
			return fmt.Errorf("organization: %w", store.ErrAlreadyExists)
		}
		if err := createTokenTx(tx, first, tokVal); err != nil {
			return fmt.Errorf("first token %q: %w", first.ClientID, err)
		}
		return b.Put(keyOrg, orgVal)
	})
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	return nil
}
