package broker

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/tokenbroker/tokenbroker/server/credential"
	"github.com/tokenbroker/tokenbroker/server/policy"
	"github.com/tokenbroker/tokenbroker/store"
)

// Database statuses.
const (
	DBActive     = "ACTIVE"
	DBTerminated = "TERMINATED"
)

// DBTypeVector is the only database type Astra's API names.
const DBTypeVector = "vector"

// systemKeyspaces are the keyspaces CQL drivers read on connect; a
// database's own token may read them (as Astra's DB-scoped roles do).
var systemKeyspaces = []string{"system", "system_schema", "system_virtual_schema"}

// writeActions count as writes when metering; every other db action on a
// database counts as a read.
var writeActions = map[string]bool{
	"db-all-keyspace-create": true, "db-keyspace-create": true, "db-keyspace-alter": true,
	"db-keyspace-drop": true, "db-keyspace-modify": true, "db-keyspace-grant": true,
	"db-keyspace-authorize": true, "db-table-create": true, "db-table-alter": true,
	"db-table-drop": true, "db-table-modify": true, "db-table-grant": true,
	"db-table-authorize": true, "db-data-import": true,
}

var (
	keyspaceRE = regexp.MustCompile(`^[A-Za-z0-9_]{1,48}$`)
	// placementRE is the grammar of cloudProvider, tier and region (Astra's
	// values are like "GCP", "serverless", "us-east1"); the region also
	// goes into data API host names.
	placementRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{0,64}$`)
)

// maxDatabaseNameLen bounds a database name, in characters.
const maxDatabaseNameLen = 128

func (in DatabaseInput) validate() error {
	if in.Name == "" {
		return Invalid("name: required")
	}
	if err := validateText("name", in.Name, maxDatabaseNameLen); err != nil {
		return err
	}
	if in.Keyspace != "" && !keyspaceRE.MatchString(in.Keyspace) {
		return Invalid("keyspace: 1 to 48 letters, digits or '_'")
	}
	if in.DBType != "" && in.DBType != DBTypeVector {
		return Invalid("dbType: must be %q or absent", DBTypeVector)
	}
	if in.CapacityUnits < 0 || in.CapacityUnits > 100 {
		return Invalid("capacityUnits: must be 1 to 100")
	}
	for _, f := range []struct{ name, v string }{{"cloudProvider", in.CloudProvider}, {"tier", in.Tier}, {"region", in.Region}} {
		if !placementRE.MatchString(f.v) {
			return Invalid("%s: at most 64 letters, digits, '_', '.' or '-'", f.name)
		}
	}
	return nil
}

// grantableActions returns those of actions that caller holds on every
// one of resources, in their order.
func (b *Broker) grantableActions(caller *Principal, resources, actions []string) []string {
	if caller == nil || caller.perms == nil {
		return nil
	}
	var out []string
	for _, a := range actions {
		probe := store.Role{Resources: resources, Actions: []string{a}, Effect: policy.EffectAllow}
		if _, _, ok := caller.perms.Covers(probe); ok {
			out = append(out, a)
		}
	}
	return out
}

// DatabaseInput is a database to register.
type DatabaseInput struct {
	Name, Keyspace, CloudProvider, Tier, Region string
	DBType                                      string // "vector" or ""
	CapacityUnits                               int
}

// CreatedDatabase is a new database with its scoped role and its token.
type CreatedDatabase struct {
	store.Database
	Token IssuedToken
}

// CreateDatabase registers a database, creates a role scoped to it (its
// DRN, its keyspace's tables, and the system keyspaces drivers read) and an
// application token holding that role, in one transaction. The role holds
// those of databaseTokenActions that the caller holds itself on every one
// of those resources: a creator without db-cql (the "API" default roles)
// gets a token without db-cql rather than a refusal.
func (b *Broker) CreateDatabase(ctx context.Context, caller *Principal, in DatabaseInput) (CreatedDatabase, error) {
	if err := in.validate(); err != nil {
		return CreatedDatabase{}, err
	}
	if in.Keyspace == "" {
		in.Keyspace = "default_keyspace"
	}
	if in.CapacityUnits == 0 {
		in.CapacityUnits = 1
	}
	now := b.now().UTC()
	db := store.Database{
		ID: uuid.NewString(), OrgID: b.org.ID, OwnerID: caller.ID,
		Name: in.Name, Keyspace: in.Keyspace, CloudProvider: in.CloudProvider, Tier: in.Tier, DBType: in.DBType,
		CapacityUnits: in.CapacityUnits, Region: in.Region, Status: DBActive, CreatedAt: now,
	}
	dbDRN := policy.DatabaseDRN(b.org.ID, db.ID)
	resources := []string{policy.OrgDRN(b.org.ID), dbDRN,
		dbDRN + ":keyspace:" + db.Keyspace, dbDRN + ":keyspace:" + db.Keyspace + ":table:*"}
	for _, ks := range systemKeyspaces {
		resources = append(resources, dbDRN+":keyspace:"+ks, dbDRN+":keyspace:"+ks+":table:*")
	}
	role := store.Role{
		ID: uuid.NewString(), OrgID: b.org.ID, Name: "Database " + db.Name + " (" + db.ID[:8] + ")",
		Description: "Read and write the data of database " + db.ID,
		Resources:   resources, Actions: b.grantableActions(caller, resources, policy.DatabaseTokenActions()), Effect: policy.EffectAllow,
		UpdatedAt: now, UpdatedBy: caller.ID,
	}
	if len(role.Actions) == 0 {
		return CreatedDatabase{}, Denied("cannot create a token for the database: caller holds none of %q on it", policy.DatabaseTokenActions())
	}
	db.RoleID = role.ID
	if err := b.mayGrant(caller, role); err != nil {
		return CreatedDatabase{}, err
	}
	cred, err := credential.New()
	if err != nil {
		return CreatedDatabase{}, err
	}
	tok := store.Token{
		ClientID: cred.ClientID, OrgID: b.org.ID, Roles: []string{role.ID},
		Description: "token of database " + db.Name, SecretMAC: b.mac.Sum(cred.Token),
		GeneratedOn: now, CreatedBy: caller.ID,
	}
	// The organization's lifetime policy bounds database tokens too.
	if tok.Expiry, err = b.applyTokenPolicy(now, time.Time{}); err != nil {
		return CreatedDatabase{}, err
	}
	auditTarget(ctx, "database", db.ID)
	// The view has the role (and meters the database) once this returns.
	if err := b.st.CreateDatabase(ctx, db, role, tok); err != nil {
		return CreatedDatabase{}, fmt.Errorf("create database: %w", err)
	}
	b.log.InfoContext(ctx, "database created", "database_id", db.ID, "role_id", role.ID, "client_id", tok.ClientID, "by", caller.ID)
	return CreatedDatabase{Database: db, Token: IssuedToken{Token: tok, Secret: cred.Secret, Bearer: cred.Token}}, nil
}

// GetDatabase returns a database with its totals, including uses not yet
// persisted (the view merges them), so the counters match the Checks made
// so far.
func (b *Broker) GetDatabase(ctx context.Context, id string) (store.Database, error) {
	if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
		return store.Database{}, DatabaseNotFound(id)
	}
	db, err := b.st.GetDatabase(ctx, id)
	if b.caughtUp(ctx, err) {
		db, err = b.st.GetDatabase(ctx, id)
	}
	if errors.Is(err, store.ErrNotFound) {
		return store.Database{}, DatabaseNotFound(id)
	}
	if err != nil {
		return store.Database{}, fmt.Errorf("get database: %w", err)
	}
	return db, nil
}

// DatabaseNotFound is the one answer for an unknown database and for one
// the caller may not see (so that existence does not leak).
func DatabaseNotFound(id string) error {
	return NotFound("database %q not found", truncate(id, 64))
}

// DatabaseFilter holds listDatabases' query parameters.
type DatabaseFilter struct {
	Include       string // "" or "nonterminated", "all", or a status (case-insensitive)
	Provider      string // "" or "ALL", or a cloud provider (case-insensitive)
	StartingAfter string // "" or a database ID: the page after it
	Limit         int    // 1..100 when LimitSet; default 25
	LimitSet      bool
	// Paged selects paging beyond Astra instead of Limit: at most PageSize
	// databases (1..MaxDatabasePageSize) after After (a database ID from a
	// page token) and StartingAfter.
	Paged    bool
	PageSize int
	After    string
}

// MaxDatabasePageSize bounds PageSize.
const MaxDatabasePageSize = 1000

// databaseScanPage is how many records each store read of ListDatabases
// holds: the filters and the caller's permissions apply to each record, so
// one answer may take several reads, each short.
const databaseScanPage = 500

// Values of the include parameter (Astra's spec): "nonterminated", "all",
// or one of these statuses.
var includeStatuses = map[string]bool{
	"active": true, "pending": true, "preparing": true, "prepared": true, "initializing": true,
	"parked": true, "parking": true, "unparking": true, "terminating": true, "terminated": true,
	"resizing": true, "error": true, "maintenance": true, "hibernating": true, "hibernated": true,
	"resuming": true,
}

var providers = map[string]bool{"all": true, "gcp": true, "aws": true, "azure": true}

const defaultDatabasePage, maxDatabasePage = 25, 100

func (f *DatabaseFilter) normalize() error {
	f.Include = strings.ToLower(f.Include)
	if f.Include == "" {
		f.Include = "nonterminated"
	}
	if f.Include != "nonterminated" && f.Include != "all" && !includeStatuses[f.Include] {
		return Invalid("include: %q is not one of nonterminated, all or a database status such as active", truncate(f.Include, 32))
	}
	f.Provider = strings.ToLower(f.Provider)
	if f.Provider == "" {
		f.Provider = "all"
	}
	if !providers[f.Provider] {
		return Invalid("provider: %q is not one of ALL, GCP, AWS or Azure", truncate(f.Provider, 32))
	}
	if f.StartingAfter != "" {
		if err := validateUUID("starting_after", f.StartingAfter); err != nil {
			return err
		}
	}
	if f.Paged {
		switch {
		case f.LimitSet:
			return Invalid("limit: not with pageSize or pageToken (use one kind of paging)")
		case f.After != "" && validateUUID("pageToken", f.After) != nil:
			return Invalid("pageToken: not a page token returned by this list")
		}
		f.Limit = min(max(f.PageSize, 1), MaxDatabasePageSize)
		return nil
	}
	switch {
	case !f.LimitSet:
		f.Limit = defaultDatabasePage
	case f.Limit < 1 || f.Limit > maxDatabasePage:
		return Invalid("limit: must be 1 to %d", maxDatabasePage)
	}
	return nil
}

func (f *DatabaseFilter) matches(db store.Database) bool {
	switch f.Include {
	case "all":
	case "nonterminated":
		if db.Status == DBTerminated || db.Status == "TERMINATING" {
			return false
		}
	default:
		if !strings.EqualFold(db.Status, f.Include) {
			return false
		}
	}
	return f.Provider == "all" || strings.EqualFold(db.CloudProvider, f.Provider)
}

// ListDatabases returns the databases the caller may view that match f, in
// ID order, at most f.Limit after f.StartingAfter (or f.After), and the ID to
// continue after ("" when no further database matches). It reads the store
// one bounded page at a time, so an answer costs memory for f.Limit
// databases whatever the number stored.
func (b *Broker) ListDatabases(ctx context.Context, caller *Principal, f DatabaseFilter) ([]store.Database, string, error) {
	if err := f.normalize(); err != nil {
		return nil, "", err
	}
	after := max(strings.ToLower(f.StartingAfter), f.After)
	var out []store.Database
	for {
		page, next, err := b.st.ListDatabasesPage(ctx, after, databaseScanPage) // with unflushed usage (the view)
		if err != nil {
			return nil, "", fmt.Errorf("list databases: %w", err)
		}
		for _, db := range page {
			if !f.matches(db) || !caller.Allows("org-db-view", policy.DatabaseDRN(b.org.ID, db.ID)) {
				continue
			}
			if len(out) == f.Limit {
				return out, out[len(out)-1].ID, nil // one more matches: a next page exists
			}
			out = append(out, db)
		}
		if next == "" {
			return out, "", nil
		}
		after = next
	}
}

// TerminateDatabase marks a database terminated. Its token and role stay
// (delete them to revoke access); Astra keeps terminated databases listed.
func (b *Broker) TerminateDatabase(ctx context.Context, caller *Principal, id string) error {
	if _, err := b.GetDatabase(ctx, id); err != nil {
		return err
	}
	now := b.now().UTC()
	auditTarget(ctx, "database", id)
	_, err := b.st.UpdateDatabase(ctx, id, func(db store.Database) (store.Database, error) {
		if db.Status == DBTerminated {
			return db, &Error{Kind: KindFailedPrecondition, Msg: fmt.Sprintf("database %q is already terminated", id)}
		}
		db.Status, db.TerminatedAt = DBTerminated, now
		return db, nil
	})
	if KindOf(err) != 0 {
		return err
	}
	if err != nil {
		return fmt.Errorf("terminate database: %w", err)
	}
	b.log.InfoContext(ctx, "database terminated", "database_id", id, "by", caller.ID)
	return nil
}

// DatabaseUsage returns a database's usage in a month ("" = this month).
func (b *Broker) DatabaseUsage(ctx context.Context, id, month string) (string, store.Usage, error) {
	if month == "" {
		month = b.now().UTC().Format("2006-01")
	}
	if _, err := time.Parse("2006-01", month); err != nil {
		return "", store.Usage{}, Invalid("month: %q is not a month like 2026-11", truncate(month, 16))
	}
	if _, err := b.GetDatabase(ctx, id); err != nil {
		return "", store.Usage{}, err
	}
	u, err := b.st.GetDatabaseUsage(ctx, id, month) // with unflushed usage (the view)
	if err != nil {
		return "", store.Usage{}, fmt.Errorf("get database usage: %w", err)
	}
	return month, u, nil
}
