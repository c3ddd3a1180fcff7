package policy

import (
	"slices"

	"github.com/tokenbroker/tokenbroker/store"
)

// IDs of the 16 default roles. Where public Astra fixtures show an ID, it is
// used, so that clients with IDs hard-coded keep working. The others were
// generated once (first 16 bytes of SHA-1("tokenbroker default role:" + name),
// with UUID version 5 and RFC 4122 variant bits) and are fixed forever:
// tokens and stored records refer to them.
const (
	OrganizationAdministratorID = "ad0566b5-2a67-49de-89e8-92258c2f2c98" // observed (2025 astra-cli fixture)
	DatabaseAdministratorID     = "507708a1-fcd5-5b00-b5c3-b90142a6f19d"
	BillingAdminID              = "a81643b8-c5d1-5325-88d6-64090a0430c9"
	UIViewOnlyID                = "71cdcd84-c6d9-55d7-b8cd-a6a6969e530a"
	AdminUserID                 = "43745b73-ad46-46e4-b826-c15d06d2cea0" // observed (astra-cli fixture)
	RWUserID                    = "b57513ce-db5c-54c3-8e8c-9fdff195d52e"
	ROUserID                    = "5d5d0d83-c7b8-535c-a8af-909244e3f683"
	AdminSvcAcctID              = "a18643a7-91db-5cf7-a756-d573a2f7416e"
	RWSvcAcctID                 = "b4ed0e9e-67e8-47b6-8b58-c6629be961a9" // observed (astra-cli fixture, SDK test)
	ROSvcAcctID                 = "16a4b1d7-a615-41f8-95ca-52b0280f4d77" // observed (astra-cli fixture)
	APIAdminUserID              = "67c4b5dc-dd3f-4b2d-be51-09be12836d57" // observed (astra-cli fixture)
	APIRWUserID                 = "09783c8f-80b7-56a7-ad0e-183bdb3df2a5"
	APIROUserID                 = "45563f7e-527b-5b66-b4cd-801cf698ce83"
	APIAdminSvcAcctID           = "3fb93abd-7abe-4a3d-9f71-9ded80070a4a" // observed (2021 docs example)
	APIRWSvcAcctID              = "7d495c01-ab73-5a7f-97ac-50a5128e70ef"
	APIROSvcAcctID              = "ceb008b6-4d77-5c0a-bbbe-9ee8c5351a55"
)

// Action groups, named as in the reference (§2.6), to keep the role table
// below readable and checkable against it.
var (
	// dataActions (DATA): keyspace and table DDL/DML plus the REST and
	// GraphQL APIs; 19 actions. db-cql is separate because "API" roles lack it.
	dataActions = []string{
		"db-all-keyspace-create", "db-all-keyspace-describe",
		"db-keyspace-alter", "db-keyspace-authorize", "db-keyspace-create",
		"db-keyspace-describe", "db-keyspace-drop", "db-keyspace-grant",
		"db-keyspace-modify",
		"db-table-alter", "db-table-authorize", "db-table-create",
		"db-table-describe", "db-table-drop", "db-table-grant",
		"db-table-modify", "db-table-select",
		"db-graphql", "db-rest",
	}
	// orgDBActions (ORGDB): the 8 org-db-* actions of the spec enum.
	orgDBActions = []string{
		"org-db-view", "org-db-create", "org-db-terminate", "org-db-expand",
		"org-db-suspend", "org-db-passwordreset", "org-db-addpeering",
		"org-db-managemigratorproxy",
	}
	mgmtActions    = []string{"db-manage-privateendpoint", "db-manage-region"}
	billingActions = []string{"org-billing-read", "org-billing-write"}
	// additions2025 are the actions the 2025 astra-cli fixture shows on top
	// of the old docs matrix for Admin User (and Organization Administrator).
	additions2025 = []string{"org-cmk-read", "org-cmk-write", "db-data-import", "db-manage-thirdpartymetrics"}
	// rwUserActions is "R/W User" of the docs matrix; the RO and Svc Acct
	// variants are derived from it, as the reference describes them.
	rwUserActions = []string{
		"accesslist-read", "db-all-keyspace-describe", "db-keyspace-describe",
		"db-table-describe", "db-table-select", "db-table-modify",
		"db-cql", "db-graphql", "db-rest", "org-db-view", "org-user-read",
	}
)

// Resource sets of default roles, before org substitution.
var (
	dataResources = []string{
		OrgDRN(OrgPlaceholder),
		OrgDRN(OrgPlaceholder) + ":db:*",
		OrgDRN(OrgPlaceholder) + ":db:*:keyspace:*",
		OrgDRN(OrgPlaceholder) + ":db:*:keyspace:*:table:*",
	}
	streamResources   = append(slices.Clone(dataResources), StreamDRN(OrgPlaceholder, "*"))
	orgAdminResources = append(slices.Clone(streamResources), OrgDRN(OrgPlaceholder)+":role:*")
)

// actionSet returns the sorted union of groups.
func actionSet(groups ...[]string) []string {
	var out []string
	for _, g := range groups {
		out = append(out, g...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// without returns set minus the given actions.
func without(set []string, drop ...string) []string {
	return slices.DeleteFunc(slices.Clone(set), func(a string) bool { return slices.Contains(drop, a) })
}

type defaultRole struct {
	id, name, description string
	actions, resources    []string
}

// defaultRoles are Astra's 16 default roles with the newest permission sets
// the reference knows (docs matrix plus the 2025 fixture's additions, plus
// org-stream-manage where the streaming docs grant it). See docs/roles.md for
// the uncertain points.
var defaultRoles = func() []defaultRole {
	rwSvc := without(rwUserActions, "org-db-view", "org-user-read") // Svc Accts can't list DBs or users
	roles := []defaultRole{
		{
			OrganizationAdministratorID, "Organization Administrator",
			"Full access to the organization, its databases, streaming, roles, users, tokens and billing",
			actionSet(
				[]string{"accesslist-read", "accesslist-write", "db-cql"}, dataActions, mgmtActions,
				[]string{"org-audits-read"}, billingActions, orgDBActions,
				[]string{"org-external-auth-read", "org-external-auth-write", "org-notification-write", "org-read",
					"org-role-read", "org-role-write", "org-role-delete",
					"org-token-read", "org-token-write", "org-user-read", "org-user-write", "org-write"},
				additions2025,
				[]string{"org-integrations-read", "org-integrations-write", "org-stream-manage"},
				// In no observed default role (only in the spec's security list);
				// granted here so the Organization Administrator holds the whole
				// catalogue and can delegate any action in a custom role.
				[]string{"db-manage-telemetry", "org-db-readpeering"},
			),
			orgAdminResources,
		},
		{
			DatabaseAdministratorID, "Database Administrator",
			"Manage all databases, their data and access lists, and application tokens",
			actionSet(
				[]string{"accesslist-read", "accesslist-write", "db-cql"}, dataActions, mgmtActions, orgDBActions,
				[]string{"org-token-read", "org-token-write", "org-user-read"},
			),
			dataResources,
		},
		{
			BillingAdminID, "Billing Admin",
			"Read and manage billing; view databases and users",
			actionSet(billingActions, []string{"org-db-view", "org-user-read"}),
			dataResources,
		},
		{
			UIViewOnlyID, "UI View Only",
			"View databases, access lists and users",
			actionSet([]string{"accesslist-read", "org-db-view", "org-user-read"}),
			dataResources,
		},
		{
			AdminUserID, "Admin User",
			"Manage databases, their data, billing and users",
			actionSet(dataActions, []string{"db-cql"}, mgmtActions, billingActions, orgDBActions,
				[]string{"org-read", "org-user-read", "org-user-write"}, additions2025),
			dataResources,
		},
		{
			RWUserID, "R/W User",
			"Read and write table data in all databases",
			actionSet(rwUserActions),
			dataResources,
		},
		{
			ROUserID, "RO User",
			"Read table data in all databases",
			without(actionSet(rwUserActions), "db-table-modify"),
			dataResources,
		},
		{
			AdminSvcAcctID, "Admin Svc Acct",
			"Service account: manage databases, their data, billing, users and streaming",
			actionSet(dataActions, []string{"db-cql"}, mgmtActions, billingActions, orgDBActions,
				[]string{"org-user-read", "org-user-write", "org-stream-manage"}),
			streamResources,
		},
		{
			RWSvcAcctID, "R/W Svc Acct",
			"Service account: read and write table data in all databases",
			actionSet(rwSvc),
			dataResources,
		},
		{
			ROSvcAcctID, "RO Svc Acct",
			"Service account: read table data in all databases",
			without(actionSet(rwSvc), "db-table-modify"),
			dataResources,
		},
		{
			APIAdminUserID, "API Admin User",
			"Manage databases, their data (no CQL), billing, users and streaming",
			actionSet([]string{"accesslist-read"}, dataActions, mgmtActions, billingActions, orgDBActions,
				[]string{"org-user-read", "org-user-write", "org-stream-manage"}),
			streamResources,
		},
		{
			APIRWUserID, "API R/W User",
			"Read and write table data in all databases through the APIs (no CQL)",
			without(actionSet(rwUserActions), "db-cql"),
			dataResources,
		},
		{
			APIROUserID, "API RO User",
			"Read table data in all databases through the APIs (no CQL)",
			without(actionSet(rwUserActions), "db-cql", "db-table-modify"),
			dataResources,
		},
		{
			APIAdminSvcAcctID, "API Admin Svc Acct",
			"Service account: manage databases, their data (no CQL), billing, users and streaming",
			// As the docs GET example shows it: no db-cql and no MGMT.
			actionSet([]string{"accesslist-read"}, dataActions, billingActions, orgDBActions,
				[]string{"org-user-read", "org-user-write", "org-stream-manage"}),
			streamResources,
		},
		{
			APIRWSvcAcctID, "API R/W Svc Acct",
			"Service account: read and write table data in all databases through the APIs (no CQL)",
			without(actionSet(rwSvc), "db-cql"),
			dataResources,
		},
		{
			APIROSvcAcctID, "API RO Svc Acct",
			"Service account: read table data in all databases through the APIs (no CQL)",
			without(actionSet(rwSvc), "db-cql", "db-table-modify"),
			dataResources,
		},
	}
	return roles
}()

var defaultRoleIDs = func() map[string]bool {
	m := make(map[string]bool, len(defaultRoles))
	for _, r := range defaultRoles {
		m[r.id] = true
	}
	return m
}()

// DefaultRoles returns the 16 default roles for orgID, in Astra's order
// (Organization Administrator first). They are Builtin, their Effect is
// allow, and their resources keep OrgPlaceholder, as Astra shows them;
// Compile substitutes it. Every call returns fresh slices the caller may
// modify.
func DefaultRoles(orgID string) []store.Role {
	out := make([]store.Role, len(defaultRoles))
	for i, d := range defaultRoles {
		out[i] = store.Role{
			ID:          d.id,
			OrgID:       orgID,
			Name:        d.name,
			Description: d.description,
			Resources:   slices.Clone(d.resources),
			Actions:     slices.Clone(d.actions),
			Effect:      EffectAllow,
			Builtin:     true,
		}
	}
	return out
}

// IsDefaultRoleID reports whether id is one of the 16 default role IDs.
func IsDefaultRoleID(id string) bool { return defaultRoleIDs[id] }
