package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"go.etcd.io/bbolt"
)

// Every bucket of the file is declared here, once, and created at open time.
// A change to any key or value layout below must bump schemaVersion, so that
// an older binary refuses the file instead of misreading it.
//
// Schema version 1:
//
//	meta              schema_version               → "1"
//	org               "org"                        → orgRecord (JSON)
//	roles             roleID                       → roleRecord (JSON)
//	tokens            clientID                     → tokenRecord (JSON)
//	tokens_by_role    roleID 0x00 clientID         → be64 expiry unix nanos (0 = never)
//	tokens_by_expiry  be64 expiry unix nanos ‖ clientID → "" (tokens with an expiry only)
//
// The two token indexes are written and deleted in the same transaction as
// the token record, so they never disagree with it.
const schemaVersion = "1"

var (
	bucketMeta           = []byte("meta")
	bucketOrg            = []byte("org")
	bucketRoles          = []byte("roles")
	bucketTokens         = []byte("tokens")
	bucketTokensByRole   = []byte("tokens_by_role")
	bucketTokensByExpiry = []byte("tokens_by_expiry")

	allBuckets = [][]byte{
		bucketMeta, bucketOrg, bucketRoles, bucketTokens,
		bucketTokensByRole, bucketTokensByExpiry,
	}

	keySchemaVersion = []byte("schema_version") // in meta
	keyOrg           = []byte("org")            // in org: the single organization
)

// ErrUnsupportedSchema is returned by Open for a file whose schema version
// this binary does not know (typically written by a newer tokenbroker).
var ErrUnsupportedSchema = errors.New("unsupported schema version")

// initSchema checks the schema version and creates any missing bucket. It
// runs in the open transaction, so a refused file is left untouched.
func initSchema(tx *bbolt.Tx) error {
	var version []byte
	if meta := tx.Bucket(bucketMeta); meta != nil {
		version = meta.Get(keySchemaVersion)
	}
	switch {
	case version == nil:
		// Only a file with no buckets at all is new. Anything else is some
		// other application's data (or damage) that we must not "adopt".
		if err := tx.ForEach(func([]byte, *bbolt.Bucket) error {
			return errors.New("file has buckets but no schema version")
		}); err != nil {
			return fmt.Errorf("not a tokenbroker database: %w", err)
		}
	case string(version) != schemaVersion:
		return fmt.Errorf("file has schema version %q, this binary supports %q (was it written by a newer tokenbroker?): %w",
			version, schemaVersion, ErrUnsupportedSchema)
	}
	for _, name := range allBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	if version == nil {
		return tx.Bucket(bucketMeta).Put(keySchemaVersion, []byte(schemaVersion))
	}
	return nil
}

// maxIDLen bounds IDs so that index keys (roleID 0x00 clientID) stay far
// below bbolt's key size limit.
const maxIDLen = 256

// checkID rejects IDs that would break the key layout: empty keys are
// invalid in bbolt, and a 0x00 byte would make tokens_by_role prefixes
// ambiguous.
func checkID(kind, id string) error {
	switch {
	case id == "":
		return fmt.Errorf("empty %s ID", kind)
	case len(id) > maxIDLen:
		return fmt.Errorf("%s ID longer than %d bytes", kind, maxIDLen)
	}
	for i := 0; i < len(id); i++ {
		if id[i] == 0 {
			return fmt.Errorf("%s ID contains a NUL byte", kind)
		}
	}
	return nil
}

// expiryNanos maps an expiry to the 8-byte index value: 0 for "never",
// otherwise unix nanos clamped to [1, MaxInt64] (UnixNano is undefined
// outside 1678-2262, and 0 is reserved). Clamping is monotonic, so range
// scans stay correct; exact comparisons use the token record itself.
func expiryNanos(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	switch {
	case t.Before(time.Unix(0, 1)):
		return 1
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	}
	return uint64(t.UnixNano())
}

func be64(v uint64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), v)
}

// roleIndexPrefix is the tokens_by_role prefix of every token holding roleID.
func roleIndexPrefix(roleID string) []byte {
	return append([]byte(roleID), 0)
}

func roleIndexKey(roleID, clientID string) []byte {
	return append(roleIndexPrefix(roleID), clientID...)
}

func expiryIndexKey(nanos uint64, clientID string) []byte {
	return append(be64(nanos), clientID...)
}
