// Package store defines the persistence contract of tokenbroker: a narrow,
// transport-free interface that every backend (store/bolt, store/etcd) must
// implement, plus the domain records it stores.
//
// Guarantees every backend must give (checked by store/storetest):
//   - A write whose context carries an audit event (WithAudit) records the
//     event in the same transaction as the change (for a write in several
//     transactions, below, in its last one: recorded once, when the write
//     is complete).
//   - A write returns only after it is durable: a crash after a successful
//     return never loses it.
//   - A record and all of its index entries are written in one atomic
//     transaction; no reader ever sees half of a record's write.
//   - A write of many independent items, whose size grows with its input
//     (RecordTokenUse, RecordAuthTokenUse, RecordDatabaseUsage,
//     PutNamespaceStats, AppendAuditEvents), writes each item whole or not
//     at all, and returns success only once every item is stored. bbolt
//     writes it in one transaction; etcd, whose transactions are bounded
//     (etcd.Options.MaxTxnOps, etcd's --max-txn-ops), in consecutive
//     transactions of as many items as fit, so an error part way may leave
//     the earlier items stored: each method says what its caller then
//     sees (docs/storage.md, "etcd's limits"). A delete whose cascade does
//     not fit in one bounded transaction likewise deletes the dependents
//     first and the record last (DeleteToken).
//   - Errors are the sentinels of errors.go (wrapped with context), never
//     driver errors a caller would have to recognise.
//   - Times round-trip in UTC with at least microsecond precision.
//   - Returned records are copies: callers may mutate them freely.
//
// Secrets never reach this package in plaintext: tokens are stored as keyed
// MACs computed by the caller (server/credential), so a copy of the database
// file yields no usable credential.
package store

import (
	"context"
	"io"
	"time"
)

// Snapshotter is implemented by backends that can write a consistent copy
// of their whole database while they serve (store/bolt: the bbolt file as
// of one read transaction). It is optional, so Store stays the same for
// every backend: a distributed backend is backed up with its own tooling
// (etcd: etcdctl snapshot save), and online backup reports it unsupported.
type Snapshotter interface {
	// Snapshot writes the copy to w and returns the bytes written. Writes
	// committed before the call are in it; later ones are not. It stops
	// with ctx's error when ctx ends, or with w's first error.
	Snapshot(ctx context.Context, w io.Writer) (int64, error)
}

// ChangeNotifier is every backend's change feed: it tells a process about
// the records written to the store, so that what is kept in memory beside
// the store (server/view: the compiled roles, the signing keys, the token
// policy, the metered databases) follows every write. store/bolt reports
// its own commits (only one process opens the file); store/etcd reports its
// watch, which carries the writes of every process sharing the store.
type ChangeNotifier interface {
	// Subscribe calls fn with the changes of each committed batch, in
	// commit order, after the store's own reads already return them, and
	// before any write of this process that made them returns to its
	// caller: a subscriber that refreshes what it keeps from fn is current
	// for the next call after a write (read-your-writes). fn runs on the
	// backend's update path: it must be quick, may read the store, and
	// must not write to it or wait for anything that does. After a reload
	// of the whole store (the backend lost track of single changes), fn is
	// called once with a Change of kind ChangeAll. cancel stops the calls.
	Subscribe(fn func([]Change)) (cancel func())
	// SubscribeWindows calls opening with the changes of each batch
	// before any read of this process can see them (bbolt: before its
	// commit; etcd: before the mirror applies the watch response), and
	// closing with the same changes once they are visible and Subscribe's
	// subscribers have seen them, or once the batch has failed. Windows
	// follow one another in commit order, never overlapping. What a
	// subscriber keeps from earlier reads can be kept exact with it: from
	// opening to closing, a read may already return the batch's state
	// while Subscribe has not reported it yet, so what the batch changes
	// must be neither answered from memory nor filled from a read
	// (server/view's credential records). opening and closing run on the
	// backend's update path: quick, and without reading the store.
	SubscribeWindows(opening, closing func([]Change)) (cancel func())
}

// Change is one record created, updated or deleted.
type Change struct {
	Kind ChangeKind
	// Key identifies the record within its kind (a role ID, a client ID,
	// ...); it is opaque bytes for index entries and may be empty.
	Key     string
	Deleted bool
}

// ChangeKind names the kind of record a Change concerns.
type ChangeKind string

// Change kinds: one per kind of record. Index entries are not reported
// (they change in the same transaction as their record). ChangeOther is
// reserved for kinds a backend cannot name.
const (
	ChangeAll          ChangeKind = "all" // everything may have changed
	ChangeOrganization ChangeKind = "organization"
	ChangeRole         ChangeKind = "role"
	ChangeSigningKeys  ChangeKind = "signing-keys"
	ChangeDatabase     ChangeKind = "database"
	ChangeToken        ChangeKind = "token"
	ChangeAuthToken    ChangeKind = "auth-token"
	ChangePulsarToken  ChangeKind = "pulsar-token"
	ChangeTenant       ChangeKind = "tenant"
	ChangeUser         ChangeKind = "user"
	ChangeAudit        ChangeKind = "audit"
	ChangeOther        ChangeKind = "other"
)

// Freshness is implemented by backends that serve reads from a local view
// of a shared store (store/etcd): Stale reports an error once that view may
// be older than the backend's documented bound (its watch is broken and
// cannot resume), and nil while it is current. Reads of such a backend fail
// closed in that state, and the server reports NOT_SERVING.
type Freshness interface {
	Stale() error
}

// FeedLag is implemented by backends whose change feed can lag a write
// this process acknowledged (store/etcd, after a write whose wait for its
// watch timed out: the write is committed, so it answered success).
// FeedBehind reports whether such a write has not been delivered by the
// feed yet. What is kept from the feed (server/view's credential caches)
// must not answer then: the store's own reads wait for that write.
type FeedLag interface {
	FeedBehind() bool
}

// Syncer is implemented by backends that serve reads from a local view of
// a shared store (store/etcd): Sync returns once the view holds every write
// acknowledged anywhere before Sync was called (one round trip). Callers
// use it before answering "not found" to a management call, since the
// record may have been created by another process an instant ago; never on
// the credential-check path.
type Syncer interface {
	Sync(ctx context.Context) error
}

// Elector is implemented by backends that several broker processes share
// (store/etcd): Leading reports whether this process currently leads the
// cluster-wide background jobs (expiry sweeps, pruning, scheduled key
// rotation), so that they run once per cluster, not once per process. The
// first call starts campaigning; leadership passes to another process when
// the leader stops or loses its lease.
type Elector interface {
	Leading() bool
}

// Store is the persistence contract. Methods are safe for concurrent use.
type Store interface {
	// GetOrganization returns the organization this broker serves, or
	// ErrNotFound before the first bootstrap.
	GetOrganization(ctx context.Context) (Organization, error)
	// Bootstrap atomically records the organization and its first
	// application token. It returns ErrAlreadyExists (and writes nothing)
	// when an organization is already recorded. The token's roles must
	// exist, as for CreateToken.
	Bootstrap(ctx context.Context, org Organization, first Token) error

	// UpdateOrganization runs update on the organization record and stores
	// its result in one transaction (same closure rules as UpdateRole). ID
	// and KeyCheck cannot be changed. ErrNotFound before the bootstrap.
	UpdateOrganization(ctx context.Context, update func(Organization) (Organization, error)) (Organization, error)

	// CreateRole stores a new role; ErrAlreadyExists if the ID is taken.
	CreateRole(ctx context.Context, r Role) error
	// GetRole returns ErrNotFound for an unknown ID.
	GetRole(ctx context.Context, id string) (Role, error)
	// ListRoles returns every role, ordered by ID.
	ListRoles(ctx context.Context) ([]Role, error)
	// ListRolesPage returns up to limit roles with IDs greater than after,
	// in ID order, and the ID to continue after ("" when there are no
	// more). limit <= 0 means 100. Paging visits every role that existed
	// throughout exactly once.
	ListRolesPage(ctx context.Context, after string, limit int) (roles []Role, next string, err error)
	// UpdateRole runs update on the current record and stores its result in
	// one transaction. If update returns an error, nothing is written and
	// that error is returned unchanged (wrapped). update may run more than
	// once (backends with optimistic concurrency retry it), so it must have
	// no side effects, must be quick and must not call the Store (it may run
	// on the backend's single writer); it should modify the record it is
	// given rather than build a new one. The ID cannot be changed.
	// ErrNotFound if absent.
	UpdateRole(ctx context.Context, id string, update func(Role) (Role, error)) (Role, error)
	// DeleteRole removes a role. It returns ErrNotFound for an unknown ID and
	// ErrInUse when a user or a live token (one without an expiry, or whose
	// expiry is after now) still holds the role; then nothing is deleted.
	DeleteRole(ctx context.Context, id string, now time.Time) error

	// CreateToken stores a new application token. It returns
	// ErrAlreadyExists if the client ID is taken, and an error wrapping
	// ErrNotFound (naming the role) if any of its roles does not exist;
	// the existence check and the write are one transaction.
	CreateToken(ctx context.Context, t Token) error
	// GetToken returns the token with this client ID, or ErrNotFound.
	GetToken(ctx context.Context, clientID string) (Token, error)
	// ListTokens returns up to limit tokens with client IDs greater than
	// after, in ascending client-ID order, and the cursor for the next page
	// ("" when there is none). limit <= 0 means a backend default (100).
	// Pages are stable: paging through with the returned cursor visits
	// every token that existed throughout, exactly once.
	ListTokens(ctx context.Context, after string, limit int) (tokens []Token, next string, err error)
	// RotateToken replaces a token by a successor in one transaction:
	// update runs on the current record of clientID (same closure rules as
	// UpdateRole; ClientID, Roles and SecretMAC cannot be changed, Expiry,
	// RotatedTo and RotatedAt may), its result is stored with its index
	// entries (the expiry index follows Expiry), and next is created as
	// CreateToken would (its roles must exist). ErrNotFound if clientID is
	// absent; ErrAlreadyExists if next's client ID is taken. It returns the
	// stored old record.
	RotateToken(ctx context.Context, clientID string, next Token, update func(Token) (Token, error)) (Token, error)
	// DeleteToken removes a token, its index entries and every auth token
	// minted from it; ErrNotFound if absent. It is one transaction whenever
	// it fits (always on bbolt). On etcd, auth tokens too many for one
	// transaction are deleted first, 25 per transaction, and the token
	// last, with the rest and its audit event: a success
	// means all of it is gone; an error part way leaves the token with
	// fewer auth tokens (some sessions ended early), and calling again
	// finishes it.
	DeleteToken(ctx context.Context, clientID string) error
	// RecordTokenUse sets LastUsed for each client ID, keeping the later of
	// the stored and given times. Unknown IDs (tokens deleted meanwhile) are
	// skipped, not an error. Each token's time is written whole, and success
	// means every one is stored: on bbolt in one transaction, on etcd in
	// transactions of up to MaxTxnOps − 2 tokens, in client-ID order. After
	// an error the earlier ones may be stored; sending them again changes
	// nothing (the later time is kept).
	RecordTokenUse(ctx context.Context, lastUsed map[string]time.Time) error
	// DeleteExpiredTokens removes every token whose expiry is at or before
	// now (with the same cascade as DeleteToken) and returns how many it
	// removed. It may work in several transactions: after an error, some
	// tokens may be removed, and the count says how many.
	DeleteExpiredTokens(ctx context.Context, now time.Time) (int, error)
	// DeleteTokenKeepingRole is DeleteToken guarded so that it never
	// removes the last token holding role that is live at now: when the
	// token holds role and is live, another live token holding role (the
	// witness, found in the same transaction) must exist, and the delete
	// commits only if the witness is still there, unchanged, when it does;
	// otherwise it returns ErrLastHolder and deletes nothing. Two such
	// deletes racing on the last two holders (in one process or in
	// several sharing the store) therefore never both succeed. A token
	// that does not hold role, or is expired, is deleted as by DeleteToken.
	DeleteTokenKeepingRole(ctx context.Context, clientID, role string, now time.Time) error

	// CreateUser stores a database user. ErrAlreadyExists if the ID or the
	// username is taken (usernames are unique, compared exactly); an error
	// wrapping ErrNotFound if one of its roles does not exist.
	CreateUser(ctx context.Context, u User) error
	// GetUser returns ErrNotFound for an unknown ID.
	GetUser(ctx context.Context, id string) (User, error)
	// GetUserByName returns the user with that exact username, or ErrNotFound.
	GetUserByName(ctx context.Context, username string) (User, error)
	// ListUsers returns every user, ordered by username (bytewise).
	ListUsers(ctx context.Context) ([]User, error)
	// UpdateUser is UpdateRole's counterpart for users (same closure rules).
	// ID and Username cannot be changed. Roles may change; new roles must
	// exist (an error wrapping ErrNotFound otherwise).
	UpdateUser(ctx context.Context, id string, update func(User) (User, error)) (User, error)
	// DeleteUser removes a user and every auth token minted from it, as
	// DeleteToken does (one transaction whenever it fits; on etcd, many
	// auth tokens first, the user last). ErrNotFound if absent.
	DeleteUser(ctx context.Context, id string) error
	// ListUsersPage returns up to limit users with usernames greater than
	// after (bytewise), in username order, and the username to continue
	// after ("" when there are no more). limit <= 0 means 100. Paging with
	// the returned cursor visits every user that existed throughout
	// exactly once.
	ListUsersPage(ctx context.Context, after string, limit int) (users []User, next string, err error)

	// CreateAuthToken stores an authorization token. Its principal (the
	// application token or user named by PrincipalKind/PrincipalID) must
	// exist, checked in the same transaction: an error wrapping ErrNotFound
	// otherwise. ErrAlreadyExists if the MAC is taken.
	CreateAuthToken(ctx context.Context, t AuthToken) error
	// GetAuthToken returns the auth token with this MAC, or ErrNotFound.
	GetAuthToken(ctx context.Context, mac []byte) (AuthToken, error)
	// ResolveAuthToken returns the auth token with this MAC together with
	// its principal's current roles and expiry, read in one transaction (a
	// consistent snapshot, and one read instead of two on the hot path).
	// ErrNotFound if the token or its principal does not exist.
	ResolveAuthToken(ctx context.Context, mac []byte) (ResolvedAuthToken, error)
	// DeleteAuthToken removes one auth token; ErrNotFound if absent.
	DeleteAuthToken(ctx context.Context, mac []byte) error
	// RecordAuthTokenUse sets LastUsed for each auth token (keyed by
	// string(mac)), keeping the later time; unknown ones are skipped. Each
	// token is written whole with its entry in the use index (the one
	// DeleteIdleAuthTokens reads), and success means every one is stored:
	// on bbolt in one transaction, on etcd in transactions of up to
	// (MaxTxnOps − 2) / 3 tokens. After an error the earlier ones may be
	// stored, as for RecordTokenUse.
	RecordAuthTokenUse(ctx context.Context, lastUsed map[string]time.Time) error
	// DeleteIdleAuthTokens removes every auth token whose LastUsed is at or
	// before idleSince and returns how many it removed. The first call
	// after the store is opened also removes every auth token whose
	// principal no longer exists (left by a binary from before the
	// cascades); later calls skip that walk of every auth token, because
	// nothing this binary does leaves such a token, and one left by an
	// older binary meanwhile cannot authenticate, so it becomes idle.
	DeleteIdleAuthTokens(ctx context.Context, idleSince time.Time) (int, error)

	// CreateTenant stores a streaming tenant; ErrAlreadyExists if the name
	// is taken.
	CreateTenant(ctx context.Context, t Tenant) error
	// GetTenant returns ErrNotFound for an unknown name.
	GetTenant(ctx context.Context, name string) (Tenant, error)
	// ListTenants returns every tenant, ordered by name.
	ListTenants(ctx context.Context) ([]Tenant, error)
	// ListTenantsPage returns up to limit tenants with names greater than
	// after (bytewise), in name order, and the name to continue after (""
	// when there are no more). limit <= 0 means 100. Paging with the
	// returned cursor visits every tenant that existed throughout exactly
	// once.
	ListTenantsPage(ctx context.Context, after string, limit int) (tenants []Tenant, next string, err error)
	// UpdateTenant runs update on a tenant and stores its result in one
	// transaction (same closure rules as UpdateRole). Name cannot be changed.
	// ErrNotFound if absent.
	UpdateTenant(ctx context.Context, name string, update func(Tenant) (Tenant, error)) (Tenant, error)
	// DeleteTenant removes a tenant with all of its Pulsar tokens and
	// namespace statistics, as DeleteToken does (one transaction whenever
	// it fits; on etcd, many dependents first, the tenant last: an error
	// part way leaves the tenant with fewer of them). ErrNotFound if
	// absent.
	DeleteTenant(ctx context.Context, name string) error

	// CreatePulsarToken stores a Pulsar token record. The tenant must exist
	// (an error wrapping ErrNotFound otherwise); ErrAlreadyExists if the ID
	// or MAC is taken; ErrLimitReached if the tenant already holds limit or
	// more live tokens (not expired at t.IssuedAt) — counted and written in
	// one transaction. limit <= 0 means no limit.
	CreatePulsarToken(ctx context.Context, t PulsarToken, limit int) error
	// GetPulsarToken returns the token with this ID, or ErrNotFound.
	GetPulsarToken(ctx context.Context, id string) (PulsarToken, error)
	// GetPulsarTokenByMAC returns the token whose JWT has this MAC, or
	// ErrNotFound. This is how a presented JWT is found, whatever its
	// format (plain-format JWTs carry no ID claim; their ID is the
	// broker's own).
	GetPulsarTokenByMAC(ctx context.Context, mac []byte) (PulsarToken, error)
	// ListPulsarTokens returns a tenant's tokens, ordered by IssuedAt then ID
	// (an unknown tenant has none).
	ListPulsarTokens(ctx context.Context, tenant string) ([]PulsarToken, error)
	// DeletePulsarToken removes one token; ErrNotFound if absent.
	DeletePulsarToken(ctx context.Context, id string) error
	// DeleteExpiredPulsarTokens removes every token whose expiry is at or
	// before now and returns how many it removed. It may work in several
	// transactions: after an error the count says how many were removed.
	DeleteExpiredPulsarTokens(ctx context.Context, now time.Time) (int, error)
	// ListPulsarTokensPage returns up to limit tokens of tenant that come
	// after the position after, in ListPulsarTokens' order (IssuedAt, then
	// ID), and the position to continue after (zero when there are no
	// more). A zero after starts at the first token; limit <= 0 means 100.
	// Paging visits every token that existed throughout exactly once.
	ListPulsarTokensPage(ctx context.Context, tenant string, after PulsarTokenPosition, limit int) (tokens []PulsarToken, next PulsarTokenPosition, err error)

	// SigningKeys returns the stored signing keys, oldest first.
	SigningKeys(ctx context.Context) ([]SigningKey, error)
	// UpdateSigningKeys replaces the key set with update's result, in one
	// transaction (same closure rules as UpdateRole). Kids must be unique.
	UpdateSigningKeys(ctx context.Context, update func([]SigningKey) ([]SigningKey, error)) error

	// CreateDatabase stores a database record together with the role scoped
	// to it and the application token bound to that role, all in one
	// transaction (all or nothing). ErrAlreadyExists if the database ID, role
	// ID or client ID is taken.
	CreateDatabase(ctx context.Context, db Database, role Role, token Token) error
	// GetDatabase returns ErrNotFound for an unknown ID.
	GetDatabase(ctx context.Context, id string) (Database, error)
	// ListDatabases returns every database, ordered by CreatedAt then ID.
	ListDatabases(ctx context.Context) ([]Database, error)
	// UpdateDatabase: same closure rules as UpdateRole; the ID and the
	// usage counters cannot be changed through it.
	UpdateDatabase(ctx context.Context, id string, update func(Database) (Database, error)) (Database, error)
	// RecordDatabaseUsage adds usage deltas: to each database's totals and
	// to the calendar month (UTC) of each delta's Month, and keeps the later
	// LastUsage. Unknown databases are skipped. Each database month is
	// added together with its share of the database's totals, so the totals
	// always stay the sums of the months, and success means every one is
	// stored: on bbolt in one transaction, on etcd in transactions of up to
	// (MaxTxnOps − 2) / 2 database months, in (database, month) order.
	// After an error part way the earlier months stay added (the error
	// says how many), so sending the same deltas again counts those twice.
	RecordDatabaseUsage(ctx context.Context, deltas []UsageDelta) error
	// GetDatabaseUsage returns a database's usage in one month ("2026-11");
	// zero usage for a month without any. ErrNotFound for an unknown database.
	GetDatabaseUsage(ctx context.Context, id, month string) (Usage, error)
	// ListDatabasesPage returns up to limit databases with IDs greater
	// than after, in ID order, and the ID to continue after ("" when there
	// are no more). limit <= 0 means 100. Paging visits every database that
	// existed throughout exactly once.
	ListDatabasesPage(ctx context.Context, after string, limit int) (dbs []Database, next string, err error)

	// PutNamespaceStats stores the latest reported statistics of each
	// namespace (replacing the previous report). Every namespace's tenant
	// must exist (an error wrapping ErrNotFound, and nothing written,
	// otherwise: checked before anything is written, whatever the size).
	// Each snapshot is written whole, and success means every one is
	// stored: on bbolt in one transaction, on etcd in transactions of up to
	// MaxTxnOps − 2 snapshots, in key order, each checking its tenants
	// again. A tenant deleted meanwhile, or a failure, stops it part way:
	// each namespace then holds its new snapshot or its previous one (none
	// outlives its tenant), and sending the report again completes it.
	// DeleteTenant removes its statistics.
	PutNamespaceStats(ctx context.Context, stats []NamespaceStats) error
	// ListNamespaceStats returns a tenant's namespace statistics, ordered by
	// namespace (none for an unknown tenant).
	ListNamespaceStats(ctx context.Context, tenant string) ([]NamespaceStats, error)
	// ListNamespaceStatsPage returns up to limit of a tenant's namespace
	// statistics whose namespaces come after after (bytewise), in
	// ListNamespaceStats' order, and the namespace to continue after (""
	// when there are no more; none for an unknown tenant). limit <= 0
	// means 100. Paging visits every namespace that has statistics
	// throughout exactly once.
	ListNamespaceStatsPage(ctx context.Context, tenant, after string, limit int) (stats []NamespaceStats, next string, err error)

	// AppendAuditEvents records events that go with no change (refused
	// calls), in order. Each event is written whole, and success means
	// every one is stored: on bbolt in one transaction, on etcd in
	// transactions of up to MaxTxnOps − 2 events. After an error the
	// earlier events may be recorded; Seqs stay gap-free either way.
	AppendAuditEvents(ctx context.Context, events []AuditEvent) error
	// ListAuditEvents returns the events q selects, in Seq order.
	ListAuditEvents(ctx context.Context, q AuditQuery) ([]AuditEvent, error)

	// Close releases the backend. Calls after Close fail.
	Close() error
}

// NamespaceStats is the latest statistics snapshot of one Pulsar namespace,
// as reported by a data-plane service (counters are cumulative).
type NamespaceStats struct {
	Tenant, Namespace                                        string
	MessagesIn, MessagesOut, BytesIn, BytesOut               int64
	MsgRateIn, MsgRateOut, ThroughputIn, ThroughputOut       float64
	Subscriptions, Producers, Consumers, SubscriptionDelayed int64
	StorageSize, BacklogBytes, BacklogMessages               int64
	UpdatedAt                                                time.Time
}

// Database is a registered database (metadata only: the broker does not run
// databases; it issues their credentials and meters their use).
type Database struct {
	ID            string // UUID
	OrgID         string
	OwnerID       string // client ID (or user ID) that created it
	Name          string
	Keyspace      string
	CloudProvider string
	Tier          string
	DBType        string // "vector", or "" when none was given
	CapacityUnits int
	Region        string
	Status        string // "ACTIVE" or "TERMINATED"
	RoleID        string // the role scoped to this database
	CreatedAt     time.Time
	TerminatedAt  time.Time // zero unless terminated
	// Usage holds the running totals (written only by RecordDatabaseUsage).
	Usage Usage
}

// Usage is a set of request counters.
type Usage struct {
	Reads, Writes, Errors int64
	LastUsage             time.Time // zero: never used
}

// UsageDelta is usage to add to one database in one month.
type UsageDelta struct {
	DatabaseID string
	Month      string // "2006-01", UTC
	Usage
}

// Tenant is an Astra Streaming tenant served by a self-hosted Pulsar cluster.
type Tenant struct {
	Name             string // Pulsar tenant name; the ID
	OrgID            string
	ClusterName      string
	WebServiceURL    string
	BrokerServiceURL string
	WebsocketURL     string
	CloudProvider    string
	CloudRegion      string
	// TokenFormat is "rs256" (OIDC-style JWTs signed with the broker's
	// RSA key) or "hs256" (Pulsar's plain shared-secret format).
	TokenFormat string
	// SealedSecret is the tenant's HS256 secret, encrypted with a key that
	// does not live in the database (nil for rs256 tenants).
	SealedSecret []byte
	// PreviousSealedSecret is the secret SealedSecret replaced in a
	// rotation (sealed the same way); it still verifies until
	// PreviousSecretRetiresAt, then nothing signed with it does. nil when
	// there is none.
	PreviousSealedSecret    []byte
	PreviousSecretRetiresAt time.Time
	CreatedAt               time.Time
	CreatedBy               string
}

// PulsarToken records an issued Pulsar JWT. The JWT itself is never
// stored: only MAC, a keyed MAC of it.
type PulsarToken struct {
	ID string // UUID; the tokenid claim of RS256 tokens
	// IssuedAt is required; the live-token limit is counted at this time.
	Tenant    string
	Role      string // the sub claim: the Pulsar role
	Type      string // "admin" or "non-admin" (informational, as Astra's)
	Kid       string // signing key ID ("" for hs256 tokens)
	MAC       []byte // HMAC-SHA256(pulsar-token key, jwt)
	IssuedAt  time.Time
	Expiry    time.Time // zero: never expires
	CreatedBy string
}

// Expired reports whether the token's expiry is at or before now.
func (t PulsarToken) Expired(now time.Time) bool {
	return !t.Expiry.IsZero() && !t.Expiry.After(now)
}

// PulsarTokenPosition is a place in a tenant's token order: just after the
// token with this IssuedAt and ID. The zero value is the start.
type PulsarTokenPosition struct {
	IssuedAt time.Time
	ID       string
}

// IsZero reports whether p is the start of the order.
func (p PulsarTokenPosition) IsZero() bool { return p.ID == "" && p.IssuedAt.IsZero() }

// Position is the place just after t in its tenant's token order.
func (t PulsarToken) Position() PulsarTokenPosition {
	return PulsarTokenPosition{IssuedAt: t.IssuedAt, ID: t.ID}
}

// SigningKey is a JWT signing key pair. The private key is stored only
// sealed (encrypted with a key outside the database).
type SigningKey struct {
	Kid           string
	Alg           string // "RS256"
	PublicDER     []byte // X.509 SubjectPublicKeyInfo
	SealedPrivate []byte // PKCS#8, AES-256-GCM sealed
	CreatedAt     time.Time
	// RetiredAt is zero for the active key; a retired key signs nothing new
	// but stays published while tokens it signed are live.
	RetiredAt time.Time
	// Pending marks a prepared key: published (JWKS, token-keys) so that
	// verifiers can cache it, but signing nothing until it is activated.
	Pending bool
	// ActivatedAt is when the key started signing (zero for keys that
	// signed from their creation, and for pending keys).
	ActivatedAt time.Time
}

// Principal kinds: who an auth token was minted for.
const (
	PrincipalApplicationToken = "application-token"
	PrincipalUser             = "user"
)

// User is a database user: a username and password (stored only as a slow
// salted hash) bound to roles, who can log in for auth tokens.
type User struct {
	ID           string // UUID
	OrgID        string
	Username     string
	PasswordHash string // PHC-format argon2id hash; never the password
	Roles        []string
	CreatedAt    time.Time
	UpdatedAt    time.Time // last change (e.g. password reset)
	CreatedBy    string
}

// ResolvedAuthToken is an auth token with the state of its principal.
type ResolvedAuthToken struct {
	AuthToken
	Roles  []string  // the principal's roles
	Expiry time.Time // the principal's expiry (application tokens); zero: none
}

// AuthToken is an authorization token (a random UUID given to the client),
// stored under a keyed MAC of its value. It slides: it stays valid until
// the broker's TTL after LastUsed.
type AuthToken struct {
	MAC           []byte // HMAC-SHA256(auth-token key, token): the lookup key
	OrgID         string
	PrincipalKind string // PrincipalApplicationToken or PrincipalUser
	PrincipalID   string // client ID or user ID
	CreatedAt     time.Time
	LastUsed      time.Time // persisted coarsely; the broker keeps the live value in memory
}

// Organization is the single organization a broker instance serves.
type Organization struct {
	ID        string // UUID
	Name      string
	CreatedAt time.Time
	// KeyCheck is a MAC, under the broker's key, of a fixed string. It lets
	// the broker refuse to start with a key file that does not belong to
	// this database (which would make every stored token unverifiable).
	KeyCheck []byte
	// TokenPolicy bounds the lifetime of tokens created from now on.
	TokenPolicy TokenPolicy
}

// TokenPolicy is the organization's lifetime policy for new tokens. Zero
// durations mean no limit.
type TokenPolicy struct {
	MaxTokenLifetime       time.Duration // application tokens
	MaxPulsarTokenLifetime time.Duration // Pulsar JWTs
	UpdatedAt              time.Time
	UpdatedBy              string
}

// Role is a named policy: a set of actions allowed on a set of resources.
type Role struct {
	ID          string // UUID
	OrgID       string
	Name        string
	Description string
	Resources   []string // DRN patterns, e.g. drn:astra:org:<org>:db:*
	Actions     []string // permission names, e.g. org-token-read
	Effect      string   // always "allow" today
	Builtin     bool     // one of the default roles: immutable
	UpdatedAt   time.Time
	UpdatedBy   string // client ID (or user ID) of the last writer
}

// Token is an application token (AstraCS:<clientId>:<hex>). The bearer
// value itself is never stored; only SecretMAC, a keyed MAC of it.
type Token struct {
	ClientID    string // 24 ASCII letters; public identifier
	OrgID       string
	Roles       []string // role IDs, fixed at creation
	Description string
	SecretMAC   []byte    // HMAC-SHA256(token key, bearer token)
	GeneratedOn time.Time // UTC
	Expiry      time.Time // zero: never expires
	CreatedBy   string    // client ID of the creator ("" for bootstrap)
	LastUsed    time.Time // zero: never used (updated coarsely, see RecordTokenUse)
	// RotatedTo is the client ID of the token that replaced this one in a
	// rotation ("" if not rotated); RotatedAt is when. A rotated token's
	// Expiry is the end of its grace period.
	RotatedTo string
	RotatedAt time.Time
}

// Expired reports whether the token's expiry is at or before now.
func (t Token) Expired(now time.Time) bool {
	return !t.Expiry.IsZero() && !t.Expiry.After(now)
}
