package etcd

import "github.com/tokenbroker/tokenbroker/store/internal/kvrecords"

// Stored-record kinds reported by RecordCounts: the same kinds as
// store/bolt's, so the metrics gauge is the same on both backends.
const (
	CountApplicationTokens = "application_token"
	CountAuthTokens        = "auth_token"
	CountPulsarTokens      = "pulsar_token"
	CountUsers             = "user"
)

// RecordCounts returns how many application tokens (including databases'
// scoped tokens), authorization tokens, Pulsar tokens and users are stored,
// as the local mirror has them. Expired ones count until garbage collection
// deletes them. It walks the keys of four buckets in a copy-on-write
// snapshot of the mirror, without decoding a record or asking etcd: cheap
// enough for a metrics scrape every few seconds (linear in the records, so
// not for a per-call path), and it never holds up readers or the watch.
func (s *Store) RecordCounts() (map[string]int, error) {
	if err := s.Stale(); err != nil {
		return nil, err
	}
	tree, _ := s.m.snapshot()
	out := make(map[string]int, 4)
	for kind, bucket := range map[string][]byte{
		CountApplicationTokens: kvrecords.BucketTokens,
		CountAuthTokens:        kvrecords.BucketAuthTokens,
		CountPulsarTokens:      kvrecords.BucketPulsar,
		CountUsers:             kvrecords.BucketUsers,
	} {
		// Keys of a bucket are "<bucket>/<key>": the range ["<bucket>/",
		// "<bucket>0") holds exactly them ('0' follows '/').
		n := 0
		tree.AscendRange(item{key: string(bucket) + "/"}, item{key: string(bucket) + "0"}, func(item) bool {
			n++
			return true
		})
		out[kind] = n
	}
	return out, nil
}
