package bolt

import (
	"context"
	"fmt"
	"io"

	"go.etcd.io/bbolt"

	"github.com/tokenbroker/tokenbroker/store"
)

var _ store.Snapshotter = (*Store)(nil)

// Snapshot implements store.Snapshotter: it writes the whole database file
// as one read transaction sees it (bbolt's Tx.WriteTo), so the copy is
// consistent and opens as a bbolt file by itself. Writers keep committing
// meanwhile; while the snapshot runs, pages freed by them cannot be reused,
// so the file may grow by what is written during it.
func (s *Store) Snapshot(ctx context.Context, w io.Writer) (int64, error) {
	var n int64
	err := s.view(func(tx *bbolt.Tx) error {
		var err error
		n, err = tx.WriteTo(ctxWriter{ctx: ctx, w: w})
		return err
	})
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			// bbolt wraps writer errors without %w; report the cause.
			err = ctxErr
		}
		return n, fmt.Errorf("snapshot: %w", err)
	}
	return n, nil
}

// ctxWriter fails writes once ctx is done, so a snapshot for a client that
// went away ends (and releases its read transaction) at the next chunk.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}
