package kvrecords

import "github.com/tokenbroker/tokenbroker/store/internal/kv"

// For a backend that splits a cascading delete (Backend.Cascade) into
// transactions of its own: what to scan, and how to delete one chunk of
// dependents so that the indexes stay consistent.

// AuthTokensOf returns the auth_tokens_by_principal bucket and the prefix
// of a principal's keys in it.
func AuthTokensOf(kind, principalID string) (bucket, prefix []byte) {
	return bucketAuthByPrinc, principalPrefix(kind, principalID)
}

// PulsarTokensOf returns the pulsar_tokens_by_tenant bucket and the prefix
// of a tenant's keys in it.
func PulsarTokensOf(tenant string) (bucket, prefix []byte) {
	return bucketPulsarByTenant, tenantPrefix(tenant)
}

// NamespaceStatsOf returns the namespace_stats bucket and the prefix of a
// tenant's keys in it.
func NamespaceStatsOf(tenant string) (bucket, prefix []byte) {
	return bucketNamespaceStats, tenantPrefix(tenant)
}

// DeleteAuthTokensTx deletes the auth tokens under keys, keys of
// auth_tokens_by_principal starting with prefix (AuthTokensOf), with their
// index entries, as the cascade's final transaction would.
func DeleteAuthTokensTx(tx kv.Tx, prefix []byte, keys [][]byte) error {
	_, err := deleteAuthTokensByKeys(tx, prefix, keys)
	return err
}

// DeletePulsarTokensTx deletes the Pulsar tokens under keys, keys of
// pulsar_tokens_by_tenant starting with prefix (PulsarTokensOf), with their
// index entries, as the cascade's final transaction would.
func DeletePulsarTokensTx(tx kv.Tx, prefix []byte, keys [][]byte) error {
	return deletePulsarTokensByKeys(tx, prefix, keys)
}

// DeleteNamespaceStatsTx deletes the namespace_stats entries under keys.
func DeleteNamespaceStatsTx(tx kv.Tx, keys [][]byte) error {
	for _, k := range keys {
		if err := tx.Bucket(bucketNamespaceStats).Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// TenantExistsTx reports whether a tenant of that name exists in tx.
func TenantExistsTx(tx kv.Tx, tenant string) bool {
	return tx.Bucket(bucketTenants).Get([]byte(tenant)) != nil
}
