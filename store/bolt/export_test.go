package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/internal/kvrecords"
)

// VerifyIndexes checks, in one read transaction, that every index holds
// exactly the entries its records derive and the references the store
// maintains (kvrecords.VerifyIndexes), and that every audit entry is a
// valid event under a Seq the bucket's sequence has reached. It returns nil
// for a closed store.
func VerifyIndexes(s *Store) error {
	err := s.view(func(tx *bbolt.Tx) error {
		return kvrecords.VerifyIndexes(boltTx{tx}, func() error { return verifyAudit(tx) })
	})
	if errors.Is(err, store.ErrClosed) {
		return nil
	}
	return err
}

// verifyAudit checks every audit entry: an 8-byte key no greater than the
// bucket's sequence (so NextSequence never reuses a Seq), and a record
// that decodes, has a time and passes checkAuditEvent.
func verifyAudit(tx *bbolt.Tx) error {
	b := tx.Bucket(bucketAudit)
	return b.ForEach(func(k, v []byte) error {
		if len(k) != 8 {
			return fmt.Errorf("corrupt audit key %x", k)
		}
		seq := binary.BigEndian.Uint64(k)
		if seq == 0 || seq > b.Sequence() {
			return fmt.Errorf("audit Seq %d outside (0, %d]", seq, b.Sequence())
		}
		e, err := decodeAuditEvent(seq, v)
		if err != nil {
			return err
		}
		if e.Time.IsZero() {
			return fmt.Errorf("audit event %d has no time", seq)
		}
		if err := checkAuditEvent(e); err != nil {
			return fmt.Errorf("audit event %d: %w", seq, err)
		}
		return nil
	})
}

// FreelistSaved reports whether the closed or open file at path holds a
// saved free-page list (freelist.go).
func FreelistSaved(path string) (saved, ok bool) { return freelistSaved(path) }
