package kvrecords

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// The key layout shared by every backend: each bucket below is a bbolt
// bucket in store/bolt and a key sub-prefix in store/etcd, holding the same
// keys and the same values (store/internal/records). The layout itself is
// documented in store/bolt/schema.go and store/etcd/schema.go.

var (
	bucketMeta           = []byte("meta")
	bucketOrg            = []byte("org")
	bucketRoles          = []byte("roles")
	bucketTokens         = []byte("tokens")
	bucketTokensByRole   = []byte("tokens_by_role")
	bucketTokensByExpiry = []byte("tokens_by_expiry")
	bucketUsers          = []byte("users")
	bucketUsersByName    = []byte("users_by_name")
	bucketUsersByRole    = []byte("users_by_role")
	bucketAuthTokens     = []byte("auth_tokens")
	bucketAuthByPrinc    = []byte("auth_tokens_by_principal")
	bucketAuthByUse      = []byte("auth_tokens_by_use")
	bucketTenants        = []byte("tenants")
	bucketPulsar         = []byte("pulsar_tokens")
	bucketPulsarByMAC    = []byte("pulsar_tokens_by_mac")
	bucketPulsarByTenant = []byte("pulsar_tokens_by_tenant")
	bucketPulsarByExpiry = []byte("pulsar_tokens_by_expiry")
	bucketSigningKeys    = []byte("signing_keys")
	bucketDatabases      = []byte("databases")
	bucketDatabaseUsage  = []byte("database_usage")
	bucketNamespaceStats = []byte("namespace_stats")
	bucketAudit          = []byte("audit")

	// Buckets lists every bucket of the layout, for a backend that
	// creates them (store/bolt).
	Buckets = [][]byte{
		bucketMeta, bucketOrg, bucketRoles, bucketTokens,
		bucketTokensByRole, bucketTokensByExpiry,
		bucketUsers, bucketUsersByName, bucketUsersByRole,
		bucketAuthTokens, bucketAuthByPrinc, bucketAuthByUse,
		bucketTenants, bucketPulsar, bucketPulsarByMAC,
		bucketPulsarByTenant, bucketPulsarByExpiry, bucketSigningKeys,
		bucketDatabases, bucketDatabaseUsage, bucketNamespaceStats,
		bucketAudit,
	}

	// The buckets a backend reads itself (schema, sequences, counts).
	BucketMeta       = bucketMeta
	BucketTokens     = bucketTokens
	BucketAuthTokens = bucketAuthTokens
	BucketPulsar     = bucketPulsar
	BucketUsers      = bucketUsers

	keyOrg         = []byte("org")  // in org: the single organization
	keySigningKeys = []byte("keys") // in signing_keys: the whole key set
)

// maxIDLen bounds IDs so that index keys (roleID 0x00 clientID) stay
// below bbolt's key size limit and far below etcd's request limits.
const maxIDLen = 256

// checkID rejects IDs that would break the key layout: empty keys are
// invalid in bbolt (and kept invalid here, so that
// both backends accept the same records), and a 0x00 byte would make tokens_by_role prefixes
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

// maxUsernameLen bounds usernames, which are keys of users_by_name.
const maxUsernameLen = 256

func checkUsername(name string) error {
	if name == "" || len(name) > maxUsernameLen {
		return fmt.Errorf("username must be 1 to %d bytes, got %d", maxUsernameLen, len(name))
	}
	return nil
}

// maxMACLen bounds auth-token and Pulsar-token MACs (32 bytes for
// HMAC-SHA256), which are keys of auth_tokens and pulsar_tokens_by_mac and
// suffixes of both auth-token index keys.
const maxMACLen = 64

// checkMAC validates the MAC of a kind of token ("auth token", "Pulsar
// token").
func checkMAC(kind string, mac []byte) error {
	if len(mac) == 0 || len(mac) > maxMACLen {
		return fmt.Errorf("%s MAC must be 1 to %d bytes, got %d", kind, maxMACLen, len(mac))
	}
	return nil
}

// maxTenantLen bounds tenant names, which are keys of tenants and prefixes
// of pulsar_tokens_by_tenant keys.
const maxTenantLen = 64

// checkTenantName accepts what Pulsar accepts as a tenant name,
// [A-Za-z0-9_.-], 1 to maxTenantLen bytes. In particular a name never
// holds 0x00, so the pulsar_tokens_by_tenant prefix of one tenant is never
// a prefix of another's.
func checkTenantName(name string) error {
	if name == "" || len(name) > maxTenantLen {
		return fmt.Errorf("tenant name must be 1 to %d characters, got %d", maxTenantLen, len(name))
	}
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '.', c == '-':
		default:
			return fmt.Errorf("tenant name %q: character %q is not allowed (only letters, digits, '_', '.' and '-')", name, c)
		}
	}
	return nil
}

// maxNamespaceLen bounds namespace names (the part after "tenant/"), which
// are suffixes of namespace_stats keys.
const maxNamespaceLen = 128

// checkNamespaceName accepts the same characters as checkTenantName,
// [A-Za-z0-9_.-], 1 to maxNamespaceLen bytes. It is the namespace's own
// name, without its tenant: a '/' is refused.
func checkNamespaceName(name string) error {
	if name == "" || len(name) > maxNamespaceLen {
		return fmt.Errorf("namespace name must be 1 to %d characters, got %d", maxNamespaceLen, len(name))
	}
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '.', c == '-':
		default:
			return fmt.Errorf("namespace name %q: character %q is not allowed (only letters, digits, '_', '.' and '-')", name, c)
		}
	}
	return nil
}

// maxKidLen bounds signing key IDs.
const maxKidLen = 256

func checkKid(kid string) error {
	if kid == "" || len(kid) > maxKidLen {
		return fmt.Errorf("signing key ID must be 1 to %d bytes, got %d", maxKidLen, len(kid))
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

// usersByRoleKey is the users_by_role key of a user holding roleID; its
// prefix is roleIndexPrefix(roleID), as in tokens_by_role.
func usersByRoleKey(roleID, userID string) []byte {
	return append(roleIndexPrefix(roleID), userID...)
}

// principalPrefix is the auth_tokens_by_principal prefix of every auth token
// minted for one principal. Neither part contains 0x00 (checkID), so the
// prefix of one principal is never a prefix of another's.
func principalPrefix(kind, principalID string) []byte {
	b := make([]byte, 0, len(kind)+len(principalID)+2)
	b = append(append(b, kind...), 0)
	return append(append(b, principalID...), 0)
}

func principalKey(kind, principalID string, mac []byte) []byte {
	return append(principalPrefix(kind, principalID), mac...)
}

// splitPrincipalKey parses an auth_tokens_by_principal key. The MAC is the
// rest of the key after the second 0x00 and may itself contain 0x00.
func splitPrincipalKey(k []byte) (kind, principalID string, mac []byte, err error) {
	i := bytes.IndexByte(k, 0)
	if i > 0 {
		if j := bytes.IndexByte(k[i+1:], 0); j > 0 && i+1+j+1 < len(k) {
			return string(k[:i]), string(k[i+1 : i+1+j]), k[i+1+j+1:], nil
		}
	}
	return "", "", nil, fmt.Errorf("corrupt auth_tokens_by_principal key %x", k)
}

// useNanos maps LastUsed to the 8-byte prefix of auth_tokens_by_use: unix
// nanos clamped to [0, MaxInt64], the zero time ("never used") included in
// 0. Clamping is monotonic, so a range scan up to useNanos(idleSince) finds
// every candidate; the exact comparison uses the record.
func useNanos(t time.Time) uint64 {
	switch {
	case t.Before(time.Unix(0, 0)):
		return 0
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	}
	return uint64(t.UnixNano())
}

func useIndexKey(lastUsed time.Time, mac []byte) []byte {
	return append(be64(useNanos(lastUsed)), mac...)
}

// tenantPrefix is the pulsar_tokens_by_tenant prefix of every token of
// tenant, and the namespace_stats prefix of every snapshot of its
// namespaces (checkTenantName: no 0x00 in the name, so the prefix of one
// tenant is never a prefix of another's).
func tenantPrefix(tenant string) []byte {
	return append([]byte(tenant), 0)
}

// issuedKey maps stored IssuedAt nanos (nanos: non-zero, within int64) to
// 8 bytes whose bytewise order is the order of the times: flipping the sign
// bit turns two's complement into offset binary. No clamping is needed.
func issuedKey(issuedNanos int64) uint64 {
	return uint64(issuedNanos) ^ (1 << 63)
}

// pulsarTenantKey is the pulsar_tokens_by_tenant key of a token.
func pulsarTenantKey(tenant string, issuedNanos int64, id string) []byte {
	b := make([]byte, 0, len(tenant)+1+8+len(id))
	b = append(append(b, tenant...), 0)
	b = binary.BigEndian.AppendUint64(b, issuedKey(issuedNanos))
	return append(b, id...)
}

// monthLayout is the format of a usage month: a calendar month in UTC.
const monthLayout = "2006-01"

// checkMonth accepts exactly the "2006-01" form (four-digit year, two-digit
// month 01-12), so that one month has one key in database_usage.
func checkMonth(month string) error {
	m, err := time.Parse(monthLayout, month)
	if err != nil || m.Format(monthLayout) != month {
		return fmt.Errorf("month %q is not of the form YYYY-MM", month)
	}
	return nil
}

// usageKey is the database_usage key of one database's month. The ID holds
// no 0x00 (checkID) and the month is fixed-length, so the prefix of one
// database is never a prefix of another's.
func usageKey(databaseID, month string) []byte {
	b := make([]byte, 0, len(databaseID)+1+len(month))
	b = append(append(b, databaseID...), 0)
	return append(b, month...)
}

// namespaceStatsKey is the namespace_stats key of one namespace of tenant:
// tenantPrefix(tenant) followed by the namespace name.
func namespaceStatsKey(tenant, namespace string) []byte {
	b := make([]byte, 0, len(tenant)+1+len(namespace))
	b = append(append(b, tenant...), 0)
	return append(b, namespace...)
}
