package bolt

import (
	"errors"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/tokenbroker/tokenbroker/store/internal/kvrecords"
)

// Every bucket of the file is declared here, once, and created at open time.
// A change to any key or value layout below must bump schemaVersion, so that
// an older binary refuses the file instead of misreading it.
//
// Schema version 2 (values are the storage protobuf messages of
// proto/tokenbroker/storage/v1, encoded by store/internal/records):
//
//	meta              schema_version               → "2"
//	org               "org"                        → OrgRecord
//	roles             roleID                       → RoleRecord
//	tokens            clientID                     → TokenRecord (client_id left empty: the key holds it)
//	tokens_by_role    roleID 0x00 clientID         → be64 expiry unix nanos (0 = never)
//	tokens_by_expiry  be64 expiry unix nanos ‖ clientID → "" (tokens with an expiry only)
//	users             userID                       → UserRecord
//	users_by_name     username                     → userID
//	users_by_role     roleID 0x00 userID           → ""
//	auth_tokens       mac                          → AuthTokenRecord
//	auth_tokens_by_principal  kind 0x00 principalID 0x00 mac → ""
//	auth_tokens_by_use        be64 last-used unix nanos ‖ mac → ""
//	tenants           name                         → TenantRecord
//	pulsar_tokens     id                           → PulsarTokenRecord
//	pulsar_tokens_by_mac      mac                  → id
//	pulsar_tokens_by_tenant   tenant 0x00 be64 issued-at ‖ id → be64 expiry unix nanos (0 = never)
//	pulsar_tokens_by_expiry   be64 expiry unix nanos ‖ id → "" (tokens with an expiry only)
//	signing_keys      "keys"                       → SigningKeysRecord: the whole set
//	databases         id                           → DatabaseRecord, incl. the usage totals
//	database_usage    id 0x00 "2006-01"            → UsageRecord: one database's usage in one month
//	namespace_stats   tenant 0x00 namespace        → NamespaceStatsRecord: the latest snapshot of one namespace
//	audit             be64 seq                     → AuditEventRecord: one audit event
//
// The issued-at part of pulsar_tokens_by_tenant is the stored IssuedAt in
// unix nanos with the sign bit flipped (issuedKey), which orders every
// storable time exactly, so a prefix scan lists a tenant's tokens by
// IssuedAt then ID, and its values count the live ones without decoding a
// record.
//
// Every index is written and deleted in the same transaction as the record
// it derives from, so it never disagrees with it; deletions derive the keys
// from the stored record, never from what a caller passed in.
//
// The users and auth_tokens buckets were added within version 1: adding an
// empty bucket changes no existing layout, and initSchema creates missing
// buckets in files written before. (A binary from before their addition
// ignores them, so after a downgrade DeleteToken would not cascade and
// DeleteRole would not see users. The orphan pass of DeleteIdleAuthTokens
// collects what the first leaves behind.) The tenant, Pulsar token and
// signing key buckets were added the same way; a binary from before them
// ignores them entirely (no bucket of theirs refers to an older one).
// The database buckets were added the same way: an older binary ignores
// them, and DeleteRole never consulted them (a database names its role, but
// does not hold it: the database's token does, through tokens_by_role).
// database_usage is not an index: its entries are data, kept consistent with
// the totals in databases by writing both in one transaction (the totals
// are the sums of the months, and LastUsage their maximum).
// namespace_stats was added the same way, and is data too: one snapshot per
// namespace, replaced whole by PutNamespaceStats and deleted with its tenant
// (DeleteTenant). Its keys sort by tenant, then namespace (bytewise), so a
// prefix scan lists one tenant's namespaces in order. A binary from before
// it ignores it, so after a downgrade DeleteTenant would leave the tenant's
// snapshots behind; CreateTenant therefore drops any snapshots still under
// its name, so that a re-created tenant never inherits them.
// audit was added the same way, and is data too: an append-only log whose
// keys are the bucket's own sequence (NextSequence), big-endian so that
// bytewise order is Seq order. The sequence lives in the bucket and rolls
// back with its transaction, so committed Seqs increase with commit order
// and a reader that has seen Seq n never later sees a new event below it.
// A binary from before it ignores it (its writes are simply not audited).
//
// Schema version 1 had the same buckets and keys, and the same values in
// tokens (but for the client ID, which version 2 no longer repeats in the
// value; both forms decode alike), users, auth_tokens and pulsar_tokens; org, roles, tenants,
// signing_keys, databases, database_usage, namespace_stats and audit held
// JSON. Open migrates a version-1 file to version 2 in its open
// transaction (migrate.go), so a crash part way leaves it at version 1.
// Version 2 is refused by a version-1 binary (a downgrade needs the backup
// taken before the upgrade).
const schemaVersion = "2"

// schemaVersion1 is the version Open migrates from.
const schemaVersion1 = "1"

// fillPercent is how full bbolt packs the pages of a bucket whose keys only
// ever grow (audit: its own sequence). bbolt splits a page at its
// FillPercent, 50% by default, which suits random inserts; with ascending
// keys every page but the last is never written again, so splitting at 50%
// would leave the bucket half empty for good. FillPercent is not stored in
// the file: it is set on the bucket in every write transaction (writeTx in
// changes.go, the committer's; boltTx in kv.go).
//
// Application tokens and their role and expiry indexes are keyed by
// time-ordered client IDs (server/credential) or by an expiry that is
// mostly now + a fixed lifetime, so they too grow mostly at the right
// edge; they keep 10% headroom for the odd insert elsewhere (a token
// imported with an older client ID) and for records that grow in place.
// So does auth_tokens_by_use, keyed by last use: a login adds its token at
// now, and a use moves the entry to the flushed last-use time, at most a
// flush interval (10 s) behind now, so inserts land in the last pages and
// the older pages only lose entries (to later uses and to collection).
var fillPercent = map[string]float64{
	string(kvrecords.BucketAudit):          1.0,
	string(kvrecords.BucketTokens):         0.9,
	string(kvrecords.BucketTokensByRole):   0.9,
	string(kvrecords.BucketTokensByExpiry): 0.9,
	string(kvrecords.BucketAuthByUse):      0.9,
}

// setFillPercent applies fillPercent to b, the bucket named name.
func setFillPercent(b *bbolt.Bucket, name []byte) {
	if f, ok := fillPercent[string(name)]; ok && b != nil {
		b.FillPercent = f
	}
}

var (
	// The buckets are those of the shared layout (store/internal/kvrecords).
	allBuckets = kvrecords.Buckets
	bucketMeta = kvrecords.BucketMeta

	keySchemaVersion = []byte("schema_version") // in meta
)

// ErrUnsupportedSchema is returned by Open for a file whose schema version
// this binary does not know (typically written by a newer tokenbroker).
var ErrUnsupportedSchema = errors.New("unsupported schema version")

// schemaIsCurrent reports whether tx's file is at schemaVersion with every
// bucket present: Open then has nothing to write. Any other file goes
// through initSchema, which refuses, migrates or completes it.
func schemaIsCurrent(tx *bbolt.Tx) bool {
	meta := tx.Bucket(bucketMeta)
	if meta == nil || string(meta.Get(keySchemaVersion)) != schemaVersion {
		return false
	}
	for _, name := range allBuckets {
		if tx.Bucket(name) == nil {
			return false
		}
	}
	return true
}

// initSchema checks the schema version, migrates a version-1 file and
// creates any missing bucket. It runs in the open transaction, so a refused
// file is left untouched and a failed migration leaves the file at version
// 1. It returns how many records it migrated.
func initSchema(tx *bbolt.Tx) (migrated int, err error) {
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
			return 0, fmt.Errorf("not a tokenbroker database: %w", err)
		}
	case string(version) == schemaVersion1:
	case string(version) != schemaVersion:
		return 0, fmt.Errorf("file has schema version %q, this binary supports %q (and migrates %q) (was it written by a newer tokenbroker?): %w",
			version, schemaVersion, schemaVersion1, ErrUnsupportedSchema)
	}
	for _, name := range allBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return 0, fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	switch string(version) {
	case "":
		return 0, tx.Bucket(bucketMeta).Put(keySchemaVersion, []byte(schemaVersion))
	case schemaVersion1:
		return migrateV1(tx)
	}
	return 0, nil
}
