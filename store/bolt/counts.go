package bolt

import (
	"go.etcd.io/bbolt"

	"github.com/tokenbroker/tokenbroker/store/internal/kvrecords"
)

// Stored-record kinds reported by RecordCounts.
const (
	CountApplicationTokens = "application_token"
	CountAuthTokens        = "auth_token"
	CountPulsarTokens      = "pulsar_token"
	CountUsers             = "user"
)

// RecordCounts returns how many application tokens (including databases'
// scoped tokens), authorization tokens, Pulsar tokens and users are stored.
// Expired ones count until garbage collection deletes them. It reads bbolt's
// bucket statistics in one read transaction: a walk over the buckets'
// pages, without decoding a record, so it is cheap enough for a metrics
// scrape every few seconds but not for a per-call path.
func (s *Store) RecordCounts() (map[string]int, error) {
	out := make(map[string]int, 4)
	err := s.view(func(tx *bbolt.Tx) error {
		for kind, bucket := range map[string][]byte{
			CountApplicationTokens: kvrecords.BucketTokens,
			CountAuthTokens:        kvrecords.BucketAuthTokens,
			CountPulsarTokens:      kvrecords.BucketPulsar,
			CountUsers:             kvrecords.BucketUsers,
		} {
			if b := tx.Bucket(bucket); b != nil {
				out[kind] = b.Stats().KeyN
			}
		}
		return nil
	})
	return out, err
}
