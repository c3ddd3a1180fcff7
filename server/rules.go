package server

import (
	tbv1 "github.com/tokenbroker/tokenbroker/gen/tokenbroker/v1"
	"github.com/tokenbroker/tokenbroker/server/broker"
	"github.com/tokenbroker/tokenbroker/server/policy"
)

// rule is the authorization rule of one RPC.
type rule struct {
	// public methods need no credential of the caller: health and
	// reflection, and the calls whose credential is in the request itself
	// (login, Check), which the broker throttles instead.
	public bool
	// anyPrincipal methods need a valid credential but no permission: they
	// act only on the credential presented (revoking it), or filter their
	// answer by the caller's permissions (listing databases).
	anyPrincipal bool
	// notFound, when set, is the answer to a caller lacking the permission:
	// the same as for a resource that does not exist, so that existence
	// does not leak (databases, as Astra's spec lists no 403 for them).
	notFound func(req any) error
	// noAudit skips the audit event: for calls on the hot path or made by
	// machines at high rates, whose changes the audit log does not cover
	// (Check, stats reports, health, reflection).
	noAudit bool
	// action the caller's roles must allow, on resource.
	action string
	// resource returns the DRN the action is checked on; nil means the
	// organization itself (drn:astra:org:<orgId>), as Astra does for the
	// org-level permissions.
	resource func(orgID string, req any) string
}

// Names of infrastructure methods that are public on purpose: load
// balancers and operators (grpcurl) must reach them without a credential.
const (
	healthCheck      = "/grpc.health.v1.Health/Check"
	healthWatch      = "/grpc.health.v1.Health/Watch"
	healthList       = "/grpc.health.v1.Health/List"
	reflectionV1     = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
	reflectionV1Alph = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
)

// rules maps every RPC the server registers to its authorization rule. The
// interceptor denies any method missing here (fail closed), and
// TestEveryMethodHasARule walks the registered services to prove that no
// method was forgotten.
var rules = map[string]rule{
	healthCheck:      {public: true, noAudit: true},
	healthWatch:      {public: true, noAudit: true},
	healthList:       {public: true, noAudit: true},
	reflectionV1:     {public: true, noAudit: true},
	reflectionV1Alph: {public: true, noAudit: true},

	tbv1.TokenService_CreateToken_FullMethodName: {action: "org-token-write"},
	tbv1.TokenService_ListTokens_FullMethodName:  {action: "org-token-read"},
	tbv1.TokenService_DeleteToken_FullMethodName: {action: "org-token-write"},
	// Rotation creates one token and retires another, bulk revocation
	// deletes: both need token write, and the broker applies the per-token
	// rules of create and delete (grantable roles) on top.
	tbv1.TokenService_RotateToken_FullMethodName:  {action: "org-token-write"},
	tbv1.TokenService_RevokeTokens_FullMethodName: {action: "org-token-write"},
	// The lifetime policy is organization configuration.
	tbv1.TokenService_GetTokenPolicy_FullMethodName:    {action: "org-read"},
	tbv1.TokenService_UpdateTokenPolicy_FullMethodName: {action: "org-write"},

	tbv1.TokenService_ListRoles_FullMethodName:  {action: "org-role-read"},
	tbv1.TokenService_GetRole_FullMethodName:    {action: "org-role-read"},
	tbv1.TokenService_CreateRole_FullMethodName: {action: "org-role-write"},
	tbv1.TokenService_UpdateRole_FullMethodName: {action: "org-role-write"},
	tbv1.TokenService_DeleteRole_FullMethodName: {action: "org-role-delete"},

	tbv1.TokenService_GetCurrentOrg_FullMethodName: {action: "org-read"},

	tbv1.AuthService_CreateAuthToken_FullMethodName:   {public: true},
	tbv1.AuthService_GenerateAuthToken_FullMethodName: {public: true},
	tbv1.AuthService_Check_FullMethodName:             {public: true, noAudit: true},
	tbv1.AuthService_RevokeAuthToken_FullMethodName:   {anyPrincipal: true},

	tbv1.AuthService_CreateUser_FullMethodName:        {action: "org-user-write"},
	tbv1.AuthService_ListUsers_FullMethodName:         {action: "org-user-read"},
	tbv1.AuthService_GetUser_FullMethodName:           {action: "org-user-read"},
	tbv1.AuthService_DeleteUser_FullMethodName:        {action: "org-user-write"},
	tbv1.AuthService_ResetUserPassword_FullMethodName: {action: "org-user-write"},

	// Streaming: org-stream-manage on the tenant's DRN, or on stream:* for
	// calls that span tenants.
	tbv1.PulsarTokenService_CreateTenant_FullMethodName:       {action: streamManage, resource: tenantDRN},
	tbv1.PulsarTokenService_ListTenants_FullMethodName:        {action: streamManage, resource: allTenantsDRN},
	tbv1.PulsarTokenService_GetTenant_FullMethodName:          {action: streamManage, resource: tenantDRN},
	tbv1.PulsarTokenService_DeleteTenant_FullMethodName:       {action: streamManage, resource: tenantDRN},
	tbv1.PulsarTokenService_CreatePulsarToken_FullMethodName:  {action: streamManage, resource: tenantDRN},
	tbv1.PulsarTokenService_ListPulsarTokens_FullMethodName:   {action: streamManage, resource: tenantDRN},
	tbv1.PulsarTokenService_GetPulsarToken_FullMethodName:     {action: streamManage, resource: tenantDRN},
	tbv1.PulsarTokenService_DeletePulsarToken_FullMethodName:  {action: streamManage, resource: tenantDRN},
	tbv1.PulsarTokenService_GetTenantTokenKeys_FullMethodName: {action: streamManage, resource: tenantDRN},
	tbv1.PulsarTokenService_RotateSigningKey_FullMethodName:   {action: streamManage, resource: allTenantsDRN},
	tbv1.PulsarTokenService_RotateTenantSecret_FullMethodName: {action: streamManage, resource: tenantDRN},

	tbv1.PulsarTokenService_ReportNamespaceStats_FullMethodName: {action: streamManage, resource: allTenantsDRN, noAudit: true},
	// Self-authorizing: accepts a tenant's Pulsar JWT, which the
	// interceptor's authentication does not (see broker.NamespaceStats).
	tbv1.PulsarTokenService_GetNamespaceStats_FullMethodName: {public: true},

	tbv1.AuditService_ListAuditEvents_FullMethodName:   {action: "org-audits-read"},
	tbv1.AuditService_FollowAuditEvents_FullMethodName: {action: "org-audits-read"},

	// A backup is a copy of every credential record (keyed hashes) and
	// sealed key: only for holders of org-write, which among the default
	// roles only the Organization Administrator has. Audited by the
	// service itself (a read records nothing otherwise).
	tbv1.AdminService_Backup_FullMethodName: {action: "org-write"},

	tbv1.DatabaseService_CreateDatabase_FullMethodName:    {action: "org-db-create"},
	tbv1.DatabaseService_ListDatabases_FullMethodName:     {anyPrincipal: true}, // filtered by org-db-view per database
	tbv1.DatabaseService_GetDatabase_FullMethodName:       {action: "org-db-view", resource: databaseDRN, notFound: databaseNotFound},
	tbv1.DatabaseService_TerminateDatabase_FullMethodName: {action: "org-db-terminate", resource: databaseDRN, notFound: databaseNotFound},
	tbv1.DatabaseService_GetDatabaseUsage_FullMethodName:  {action: "org-db-view", resource: databaseDRN, notFound: databaseNotFound},
}

// databaseDRN is drn:astra:org:<org>:db:<id> for requests naming a database.
func databaseDRN(orgID string, req any) string {
	var id string
	if r, ok := req.(interface{ GetDatabaseId() string }); ok {
		id = r.GetDatabaseId()
	}
	return policy.DatabaseDRN(orgID, id)
}

func databaseNotFound(req any) error {
	var id string
	if r, ok := req.(interface{ GetDatabaseId() string }); ok {
		id = r.GetDatabaseId()
	}
	return broker.DatabaseNotFound(id)
}

const streamManage = "org-stream-manage"

// tenantDRN is drn:astra:org:<org>:stream:<tenant> for requests naming a
// tenant. A request without one is checked on an impossible DRN (the empty
// tenant), so it is denied rather than widened to stream:*.
func tenantDRN(orgID string, req any) string {
	var name string
	switch r := req.(type) {
	case interface{ GetTenantName() string }:
		name = r.GetTenantName()
	case interface{ GetTenant() string }:
		name = r.GetTenant()
	}
	return policy.StreamDRN(orgID, name)
}

// allTenantsDRN is drn:astra:org:<org>:stream:*.
func allTenantsDRN(orgID string, _ any) string { return policy.StreamDRN(orgID, "*") }

// resourceFor returns the DRN a rule is checked on.
func (r rule) resourceFor(orgID string, req any) string {
	if r.resource != nil {
		return r.resource(orgID, req)
	}
	return policy.OrgDRN(orgID)
}
