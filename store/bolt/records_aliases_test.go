package bolt

import "github.com/tokenbroker/tokenbroker/store/internal/kvrecords"

// The shared layout and encodings under the names the tests use.

const (
	maxAuditFieldLen  = kvrecords.MaxAuditFieldLen
	maxAuditListLimit = kvrecords.MaxAuditListLimit
	maxNamespaceLen   = kvrecords.MaxNamespaceLen
	maxTenantLen      = kvrecords.MaxTenantLen
	maxUsernameLen    = kvrecords.MaxUsernameLen
)

var (
	be64                 = kvrecords.Be64
	bucketAudit          = kvrecords.BucketAudit
	bucketAuthTokens     = kvrecords.BucketAuthTokens
	bucketDatabaseUsage  = kvrecords.BucketDatabaseUsage
	bucketDatabases      = kvrecords.BucketDatabases
	bucketNamespaceStats = kvrecords.BucketNamespaceStats
	bucketPulsar         = kvrecords.BucketPulsar
	bucketPulsarByTenant = kvrecords.BucketPulsarByTenant
	bucketRoles          = kvrecords.BucketRoles
	bucketSigningKeys    = kvrecords.BucketSigningKeys
	bucketTenants        = kvrecords.BucketTenants
	bucketTokens         = kvrecords.BucketTokens
	bucketTokensByRole   = kvrecords.BucketTokensByRole
	bucketUsers          = kvrecords.BucketUsers
	bucketUsersByName    = kvrecords.BucketUsersByName
	decodeAuditEvent     = kvrecords.DecodeAuditEvent
	decodeOrg            = kvrecords.DecodeOrg
	decodeSigningKeys    = kvrecords.DecodeSigningKeys
	decodeTenant         = kvrecords.DecodeTenant
	decodeToken          = kvrecords.DecodeToken
	encodeNamespaceStats = kvrecords.EncodeNamespaceStats
	encodeOrg            = kvrecords.EncodeOrg
	encodeRole           = kvrecords.EncodeRole
	namespaceStatsKey    = kvrecords.NamespaceStatsKey
	pulsarTenantKey      = kvrecords.PulsarTenantKey
	roleIndexKey         = kvrecords.RoleIndexKey
	usageKey             = kvrecords.UsageKey
)
