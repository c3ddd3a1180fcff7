package kvrecords

import (
	"encoding/binary"
	"fmt"

	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/internal/records"
)

// Schema version 2 changed only value encodings: the buckets below held
// JSON records in version 1 and hold protobuf ones in version 2 (the same
// keys; every other bucket is unchanged). Both backends migrate a version-1
// store at open by converting every value of these buckets
// (store/bolt/migrate.go, store/etcd/migrate.go).

// V1Conversion converts the values of one bucket from version 1 to 2.
type V1Conversion struct {
	Bucket []byte
	// Convert returns the version-2 value of the version-1 value v stored
	// under key, or converted false if v is already a valid version-2
	// value (a migration that was interrupted, or run by another broker
	// at the same time, converted it). Anything else is an error naming
	// the bucket and key.
	Convert func(key, v []byte) (v2 []byte, converted bool, err error)
}

// V1Conversions lists every bucket whose values changed encoding in
// schema version 2.
var V1Conversions = []V1Conversion{
	{bucketOrg, convertV1(records.DecodeV1Org, records.EncodeOrg, records.DecodeOrg)},
	{bucketRoles, convertV1(records.DecodeV1Role, records.EncodeRole, records.DecodeRole)},
	{bucketTenants, convertV1(records.DecodeV1Tenant, records.EncodeTenant, records.DecodeTenant)},
	{bucketSigningKeys, convertV1(records.DecodeV1SigningKeys, records.EncodeSigningKeys, records.DecodeSigningKeys)},
	{bucketDatabases, convertV1(records.DecodeV1Database, records.EncodeDatabase, records.DecodeDatabase)},
	{bucketDatabaseUsage, convertV1(records.DecodeV1Usage, records.EncodeUsage, records.DecodeUsage)},
	{bucketNamespaceStats, convertV1(records.DecodeV1NamespaceStats, records.EncodeNamespaceStats, records.DecodeNamespaceStats)},
	{bucketAudit, convertV1Audit},
}

func convertV1[T any](v1 func([]byte) (T, error), encode func(T) ([]byte, error), v2 func([]byte) (T, error)) func(key, v []byte) ([]byte, bool, error) {
	return func(key, v []byte) ([]byte, bool, error) {
		if !records.IsV1JSON(v) {
			if _, err := v2(v); err != nil {
				return nil, false, fmt.Errorf("key %q: neither a version-1 nor a version-2 record: %w", key, err)
			}
			return nil, false, nil
		}
		r, err := v1(v)
		if err == nil {
			var b []byte
			if b, err = encode(r); err == nil {
				return b, true, nil
			}
		}
		return nil, false, fmt.Errorf("key %q: %w", key, err)
	}
}

func convertV1Audit(key, v []byte) ([]byte, bool, error) {
	if len(key) != 8 {
		return nil, false, fmt.Errorf("corrupt audit key %x", key)
	}
	seq := binary.BigEndian.Uint64(key)
	decodeV2 := func(b []byte) (store.AuditEvent, error) { return records.DecodeAuditEvent(seq, b) }
	decodeV1 := func(b []byte) (store.AuditEvent, error) { return records.DecodeV1AuditEvent(seq, b) }
	return convertV1(decodeV1, records.EncodeAuditEvent, decodeV2)(key, v)
}
