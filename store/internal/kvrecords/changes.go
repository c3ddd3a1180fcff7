package kvrecords

import "github.com/tokenbroker/tokenbroker/store"

// changeKinds maps each record bucket to the kind of record it holds, for
// the backends' change feeds (store.ChangeNotifier). Index and data buckets
// (tokens_by_role, database_usage, ...) are absent: they change in the same
// transaction as a record that is reported, or hold nothing anyone keeps
// beside the store, so both backends report the same changes for the same
// write.
var changeKinds = map[string]store.ChangeKind{
	string(bucketOrg):         store.ChangeOrganization,
	string(bucketRoles):       store.ChangeRole,
	string(bucketSigningKeys): store.ChangeSigningKeys,
	string(bucketDatabases):   store.ChangeDatabase,
	string(bucketTokens):      store.ChangeToken,
	string(bucketAuthTokens):  store.ChangeAuthToken,
	string(bucketPulsar):      store.ChangePulsarToken,
	string(bucketTenants):     store.ChangeTenant,
	string(bucketUsers):       store.ChangeUser,
	string(bucketAudit):       store.ChangeAudit,
}

// ChangeKindOf returns the kind of record bucket holds, and false for a
// bucket whose writes are not reported.
func ChangeKindOf(bucket string) (store.ChangeKind, bool) {
	k, ok := changeKinds[bucket]
	return k, ok
}
