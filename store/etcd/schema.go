package etcd

import "github.com/tokenbroker/tokenbroker/store/internal/kvrecords"

// The key layout of an installation, under its prefix P (default
// "/tokenbroker/"). Each bucket of store/bolt is a sub-prefix "P<bucket>/",
// holding the same keys and the same values (the storage protobuf messages
// of store/internal/records), so the two backends differ only in how a
// transaction is made:
//
//	P meta/schema_version                   → "2" (written once, on an empty prefix, checked at open)
//	P meta/seq/audit                        → be64: the last audit Seq (Bucket.NextSequence)
//	P org/org                               → organization, incl. the key check value
//	P roles/<roleID>                        → role
//	P tokens/<clientID>                     → token: the MAC, never the token (not the client ID: the key holds it)
//	P tokens_by_role/<roleID>0x00<clientID> → be64 expiry
//	P tokens_by_expiry/<be64 expiry><clientID> → ""
//	P users/<userID>                        → user: argon2id hash, never the password
//	P users_by_name/<username>              → userID
//	P users_by_role/<roleID>0x00<userID>    → ""
//	P auth_tokens/<mac>                     → auth token
//	P auth_tokens_by_principal/<kind>0x00<id>0x00<mac> → ""
//	P auth_tokens_by_use/<be64 last use><mac> → ""
//	P tenants/<name>                        → tenant (the HS256 secret sealed)
//	P pulsar_tokens/<id>                    → Pulsar token: the MAC, never the JWT
//	P pulsar_tokens_by_mac/<mac>            → id
//	P pulsar_tokens_by_tenant/<tenant>0x00<be64 issued><id> → be64 expiry
//	P pulsar_tokens_by_expiry/<be64 expiry><id> → ""
//	P signing_keys/keys                     → the key set (private keys sealed)
//	P databases/<id>                        → database with its usage totals
//	P database_usage/<id>0x00<YYYY-MM>      → usage
//	P namespace_stats/<tenant>0x00<namespace> → snapshot
//	P audit/<be64 seq>                      → audit event
//
// A change to any key or value layout must bump schemaVersion, so that an
// older binary refuses the prefix instead of misreading it.
//
// Schema version 1 had the same keys; org, roles, tenants, signing_keys,
// databases, database_usage, namespace_stats and audit held JSON. Open
// migrates a version-1 prefix (migrate.go); while it runs, the version is
// schemaMigrating, which a version-1 binary refuses.
const schemaVersion = "2"

// schemaVersion1 is the version Open migrates from.
const schemaVersion1 = "1"

// keySchemaVersion is the schema version key (relative to the prefix).
const keySchemaVersion = "meta/schema_version"

// bucketMeta holds the schema version and the sequence counters (tx.go).
var bucketMeta = kvrecords.BucketMeta
