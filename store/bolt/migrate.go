package bolt

import (
	"bytes"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/tokenbroker/tokenbroker/store/internal/kvrecords"
)

// migrateChunk bounds how many converted values are held in memory before
// they are written: bbolt does not allow writing to a bucket while a
// cursor walks it, so values are read in chunks, then written.
const migrateChunk = 1000

// migrateV1 converts a schema version 1 file to version 2 inside the open
// transaction: every value of the buckets that version 1 stored as JSON
// (kvrecords.V1Conversions) is decoded and re-encoded as protobuf, then the
// version is set. It is one bbolt transaction, so a crash or an error part
// way leaves the version-1 file exactly as it was; an older binary can then
// still open it. It returns how many values it converted.
func migrateV1(tx *bbolt.Tx) (int, error) {
	converted := 0
	for _, c := range kvrecords.V1Conversions {
		b := tx.Bucket(c.Bucket)
		if b == nil {
			continue // added within version 1 after this file was written: nothing to convert
		}
		setFillPercent(b, c.Bucket) // rewriting every page: pack sequential buckets
		type kv struct{ k, v []byte }
		var after []byte
		for {
			chunk := make([]kv, 0, migrateChunk)
			cur := b.Cursor()
			k, v := cur.First()
			if after != nil {
				if k, v = cur.Seek(after); bytes.Equal(k, after) {
					k, v = cur.Next()
				}
			}
			for ; k != nil && len(chunk) < migrateChunk; k, v = cur.Next() {
				nv, ok, err := c.Convert(k, v)
				if err != nil {
					return 0, fmt.Errorf("migrate schema version 1 to %s: bucket %s: %w", schemaVersion, c.Bucket, err)
				}
				if ok {
					// k is only valid in this transaction: copy it, since
					// the puts below may move the page it points into.
					chunk = append(chunk, kv{bytes.Clone(k), nv})
				}
				after = bytes.Clone(k)
			}
			for _, e := range chunk {
				if err := b.Put(e.k, e.v); err != nil {
					return 0, fmt.Errorf("migrate schema version 1 to %s: bucket %s: %w", schemaVersion, c.Bucket, err)
				}
			}
			converted += len(chunk)
			if k == nil {
				break
			}
		}
	}
	if err := tx.Bucket(bucketMeta).Put(keySchemaVersion, []byte(schemaVersion)); err != nil {
		return 0, err
	}
	return converted, nil
}
