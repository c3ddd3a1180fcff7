package policy

import "slices"

// databaseTokenActions are the most a database's own token may do on it:
// use the data APIs, read and write table data, and describe the schema.
var databaseTokenActions = []string{
	"org-db-view", "db-cql", "db-rest", "db-graphql",
	"db-all-keyspace-describe", "db-keyspace-describe",
	"db-table-describe", "db-table-select", "db-table-modify",
}

// DatabaseTokenActions returns the actions a database's own role may hold
// (a fresh slice). The role created with a database gets those of them its
// creator holds (docs/roles.md, "Databases' own roles").
func DatabaseTokenActions() []string { return slices.Clone(databaseTokenActions) }
