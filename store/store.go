// Package store defines the persistence contract of tokenbroker: a narrow,
// transport-free interface that every backend (bbolt today, etcd later) must
// implement, plus the domain records it stores.
//
// Guarantees every backend must give (checked by store/storetest):
//   - A write returns only after it is durable: a crash after a successful
//     return never loses it.
//   - A record and all of its index entries are written in one atomic
//     transaction; no reader ever sees half of a write.
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
	"time"
)

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

	// CreateRole stores a new role; ErrAlreadyExists if the ID is taken.
	CreateRole(ctx context.Context, r Role) error
	// GetRole returns ErrNotFound for an unknown ID.
	GetRole(ctx context.Context, id string) (Role, error)
	// ListRoles returns every role, ordered by ID.
	ListRoles(ctx context.Context) ([]Role, error)
	// UpdateRole runs update on the current record and stores its result in
	// one transaction. If update returns an error, nothing is written and
	// that error is returned unchanged (wrapped). update may run more than
	// once (backends with optimistic concurrency retry it), so it must have
	// no side effects, and it should modify the record it is given rather
	// than build a new one. The ID cannot be changed. ErrNotFound if absent.
	UpdateRole(ctx context.Context, id string, update func(Role) (Role, error)) (Role, error)
	// DeleteRole removes a role. It returns ErrNotFound for an unknown ID and
	// ErrInUse when a live token (one without an expiry, or whose expiry is
	// after now) still holds the role; then nothing is deleted.
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
	// DeleteToken removes a token and its index entries; ErrNotFound if absent.
	DeleteToken(ctx context.Context, clientID string) error
	// RecordTokenUse sets LastUsed for each client ID in one transaction,
	// keeping the later of the stored and given times. Unknown IDs (tokens
	// deleted meanwhile) are skipped, not an error.
	RecordTokenUse(ctx context.Context, lastUsed map[string]time.Time) error
	// DeleteExpiredTokens removes every token whose expiry is at or before
	// now and returns how many it removed.
	DeleteExpiredTokens(ctx context.Context, now time.Time) (int, error)

	// Close releases the backend. Calls after Close fail.
	Close() error
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
}

// Expired reports whether the token's expiry is at or before now.
func (t Token) Expired(now time.Time) bool {
	return !t.Expiry.IsZero() && !t.Expiry.After(now)
}
