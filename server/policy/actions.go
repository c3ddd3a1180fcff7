package policy

import "slices"

// catalogue is every action a role may name. Astra's OpenAPI spec
// (PolicyAction) lists 43; Astra's own default roles and docs use 12 more,
// and the spec's security list names org-db-readpeering. A custom role
// copied from Astra must validate here, so all 56 are accepted even where
// this broker enforces only a few of them.
var catalogue = func() []string {
	a := []string{
		// Spec PolicyAction enum (43).
		"org-read", "org-write", "org-audits-read",
		"org-billing-read", "org-billing-write",
		"org-user-read", "org-user-write",
		"org-role-read", "org-role-write", "org-role-delete",
		"org-token-read", "org-token-write",
		"org-external-auth-read", "org-external-auth-write",
		"org-notification-write",
		"org-db-view", "org-db-create", "org-db-terminate", "org-db-expand",
		"org-db-suspend", "org-db-passwordreset", "org-db-addpeering",
		"org-db-managemigratorproxy",
		"db-all-keyspace-create", "db-all-keyspace-describe",
		"db-keyspace-alter", "db-keyspace-authorize", "db-keyspace-create",
		"db-keyspace-describe", "db-keyspace-drop", "db-keyspace-grant",
		"db-keyspace-modify",
		"db-table-alter", "db-table-authorize", "db-table-create",
		"db-table-describe", "db-table-drop", "db-table-grant",
		"db-table-modify", "db-table-select",
		"db-cql", "db-rest", "db-graphql",
		// Not in the enum, seen in docs and default roles (12).
		"accesslist-read", "accesslist-write",
		"db-manage-privateendpoint", "db-manage-region",
		"db-manage-telemetry", "db-manage-thirdpartymetrics",
		"db-data-import",
		"org-cmk-read", "org-cmk-write",
		"org-integrations-read", "org-integrations-write",
		"org-stream-manage",
		// Only in the spec's global security list.
		"org-db-readpeering",
	}
	slices.Sort(a)
	return a
}()

var knownActions = func() map[string]bool {
	m := make(map[string]bool, len(catalogue))
	for _, a := range catalogue {
		m[a] = true
	}
	return m
}()

// Actions returns the full action catalogue, sorted. The slice is a copy.
func Actions() []string { return slices.Clone(catalogue) }

// KnownAction reports whether a is in the action catalogue. Names are
// case-sensitive, as in Astra.
func KnownAction(a string) bool { return knownActions[a] }
