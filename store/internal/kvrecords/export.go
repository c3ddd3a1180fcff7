package kvrecords

// Names for the backends (the etcd change feed maps buckets to record
// kinds) and their internal tests (records they build or inspect by hand);
// the record code itself does not use these.

const (
	MaxAuditFieldLen  = maxAuditFieldLen
	MaxAuditListLimit = maxAuditListLimit
	MaxNamespaceLen   = maxNamespaceLen
	MaxTenantLen      = maxTenantLen
	MaxUsernameLen    = maxUsernameLen
)

var (
	Be64                 = be64
	BucketAudit          = bucketAudit
	BucketAuthByUse      = bucketAuthByUse
	BucketOrg            = bucketOrg
	BucketTokensByExpiry = bucketTokensByExpiry
	BucketDatabaseUsage  = bucketDatabaseUsage
	BucketDatabases      = bucketDatabases
	BucketNamespaceStats = bucketNamespaceStats
	BucketPulsarByTenant = bucketPulsarByTenant
	BucketRoles          = bucketRoles
	BucketSigningKeys    = bucketSigningKeys
	BucketTenants        = bucketTenants
	BucketTokensByRole   = bucketTokensByRole
	BucketUsersByName    = bucketUsersByName
	DecodeAuditEvent     = decodeAuditEvent
	DecodeOrg            = decodeOrg
	DecodeSigningKeys    = decodeSigningKeys
	DecodeTenant         = decodeTenant
	DecodeToken          = decodeToken
	EncodeNamespaceStats = encodeNamespaceStats
	EncodeOrg            = encodeOrg
	EncodeRole           = encodeRole
	NamespaceStatsKey    = namespaceStatsKey
	PulsarTenantKey      = pulsarTenantKey
	RoleIndexKey         = roleIndexKey
	UsageKey             = usageKey
)
