package kvrecords

import (
	"context"
	"fmt"
	"slices"

	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/internal/kv"
)

// prepareSigningKeys validates a key set and encodes it oldest first (by
// CreatedAt; keys created at the same instant keep the order given). It
// sorts a copy: the caller's slice is left as it was.
func prepareSigningKeys(keys []store.SigningKey) ([]byte, error) {
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		if err := checkKid(k.Kid); err != nil {
			return nil, err
		}
		if seen[k.Kid] {
			return nil, fmt.Errorf("signing key ID %q appears twice", k.Kid)
		}
		seen[k.Kid] = true
	}
	sorted := slices.Clone(keys)
	slices.SortStableFunc(sorted, func(a, b store.SigningKey) int {
		return a.CreatedAt.Compare(b.CreatedAt)
	})
	return encodeSigningKeys(sorted)
}

// SigningKeys implements store.Store.
func (s *Records) SigningKeys(ctx context.Context) ([]store.SigningKey, error) {
	var keys []store.SigningKey
	err := s.view(func(tx kv.Tx) error {
		var err error
		keys, err = decodeSigningKeys(tx.Bucket(bucketSigningKeys).Get(keySigningKeys))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("get signing keys: %w", err)
	}
	return keys, nil
}

// UpdateSigningKeys implements store.Store. As for UpdateRole, update runs
// on the committer goroutine inside the write transaction, on a fresh copy
// of the stored set each time. An empty result removes the stored set.
func (s *Records) UpdateSigningKeys(ctx context.Context, update func([]store.SigningKey) ([]store.SigningKey, error)) error {
	err := s.update(ctx, func(tx kv.Tx) error {
		b := tx.Bucket(bucketSigningKeys)
		cur, err := decodeSigningKeys(b.Get(keySigningKeys))
		if err != nil {
			return err
		}
		next, err := update(cur)
		if err != nil {
			return err
		}
		if len(next) == 0 {
			return b.Delete(keySigningKeys)
		}
		val, err := prepareSigningKeys(next)
		if err != nil {
			return err
		}
		return b.Put(keySigningKeys, val)
	})
	if err != nil {
		return fmt.Errorf("update signing keys: %w", err)
	}
	return nil
}
