package kvrecords

import (
	"time"

	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/internal/records"
)

// The stored encodings live in store/internal/records, so that a record is
// the same bytes in every backend. This file adapts them to the shapes the
// record code works with: private record structs that carry the fields
// index maintenance needs, with times in UTC.

func encodeOrg(o store.Organization) ([]byte, error) { return records.EncodeOrg(o) }
func decodeOrg(b []byte) (store.Organization, error) { return records.DecodeOrg(b) }
func encodeRole(r store.Role) ([]byte, error)        { return records.EncodeRole(r) }
func decodeRole(b []byte) (store.Role, error)        { return records.DecodeRole(b) }
func encodeTenant(t store.Tenant) ([]byte, error)    { return records.EncodeTenant(t) }
func decodeTenant(b []byte) (store.Tenant, error)    { return records.DecodeTenant(b) }

// decodeToken decodes the token stored under clientID (the value does not
// hold its key).
func decodeToken(clientID string, b []byte) (store.Token, error) {
	return records.DecodeToken(clientID, b)
}
func decodeUser(b []byte) (store.User, error)         { return records.DecodeUser(b) }
func encodeUser(u store.User) ([]byte, error)         { return records.EncodeUser(u) }
func decodeDatabase(b []byte) (store.Database, error) { return records.DecodeDatabase(b) }

func encodeSigningKeys(keys []store.SigningKey) ([]byte, error) {
	return records.EncodeSigningKeys(keys)
}

func decodeSigningKeys(b []byte) ([]store.SigningKey, error) { return records.DecodeSigningKeys(b) }

func encodeAuditEvent(e store.AuditEvent) ([]byte, error) { return records.EncodeAuditEvent(e) }

func decodeAuditEvent(seq uint64, b []byte) (store.AuditEvent, error) {
	return records.DecodeAuditEvent(seq, b)
}

func encodeNamespaceStats(n store.NamespaceStats) ([]byte, error) {
	return records.EncodeNamespaceStats(n)
}

type tokenRecord struct {
	ClientID    string
	OrgID       string
	Roles       []string
	Description string
	SecretMAC   []byte
	GeneratedOn time.Time
	Expiry      time.Time
	CreatedBy   string
	LastUsed    time.Time
	RotatedTo   string
	RotatedAt   time.Time
}

func toTokenRecord(t store.Token) tokenRecord {
	return tokenRecord{
		ClientID: t.ClientID, OrgID: t.OrgID, Roles: t.Roles, Description: t.Description,
		SecretMAC: t.SecretMAC, GeneratedOn: t.GeneratedOn.UTC(), Expiry: t.Expiry.UTC(),
		CreatedBy: t.CreatedBy, LastUsed: t.LastUsed.UTC(), RotatedTo: t.RotatedTo, RotatedAt: t.RotatedAt.UTC(),
	}
}

func (r tokenRecord) token() store.Token {
	return store.Token{
		ClientID: r.ClientID, OrgID: r.OrgID, Roles: r.Roles, Description: r.Description,
		SecretMAC: r.SecretMAC, GeneratedOn: r.GeneratedOn, Expiry: r.Expiry,
		CreatedBy: r.CreatedBy, LastUsed: r.LastUsed, RotatedTo: r.RotatedTo, RotatedAt: r.RotatedAt,
	}
}

func (r tokenRecord) encode() ([]byte, error) { return records.EncodeToken(r.token()) }

func decodeTokenRecord(clientID string, b []byte) (tokenRecord, error) {
	t, err := records.DecodeToken(clientID, b)
	return toTokenRecord(t), err
}

type userRecord struct {
	ID           string
	OrgID        string
	Username     string
	PasswordHash string
	Roles        []string
	CreatedAt    time.Time
	UpdatedAt    time.Time
	CreatedBy    string
}

func toUserRecord(u store.User) userRecord {
	return userRecord{
		ID: u.ID, OrgID: u.OrgID, Username: u.Username, PasswordHash: u.PasswordHash, Roles: u.Roles,
		CreatedAt: u.CreatedAt.UTC(), UpdatedAt: u.UpdatedAt.UTC(), CreatedBy: u.CreatedBy,
	}
}

func (r userRecord) user() store.User {
	return store.User{
		ID: r.ID, OrgID: r.OrgID, Username: r.Username, PasswordHash: r.PasswordHash, Roles: r.Roles,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, CreatedBy: r.CreatedBy,
	}
}

func decodeUserRecord(b []byte) (userRecord, error) {
	u, err := records.DecodeUser(b)
	return toUserRecord(u), err
}

type authTokenRecord struct {
	MAC           []byte
	OrgID         string
	PrincipalKind string
	PrincipalID   string
	CreatedAt     time.Time
	LastUsed      time.Time
}

func toAuthTokenRecord(t store.AuthToken) authTokenRecord {
	return authTokenRecord{
		MAC: t.MAC, OrgID: t.OrgID, PrincipalKind: t.PrincipalKind, PrincipalID: t.PrincipalID,
		CreatedAt: t.CreatedAt.UTC(), LastUsed: t.LastUsed.UTC(),
	}
}

func (r authTokenRecord) authToken() store.AuthToken {
	return store.AuthToken{
		MAC: r.MAC, OrgID: r.OrgID, PrincipalKind: r.PrincipalKind, PrincipalID: r.PrincipalID,
		CreatedAt: r.CreatedAt, LastUsed: r.LastUsed,
	}
}

func (r authTokenRecord) encode() ([]byte, error) { return records.EncodeAuthToken(r.authToken()) }

func decodeAuthTokenRecord(b []byte) (authTokenRecord, error) {
	t, err := records.DecodeAuthToken(b)
	return toAuthTokenRecord(t), err
}

type pulsarTokenRecord struct {
	ID        string
	Tenant    string
	Role      string
	Type      string
	Kid       string
	MAC       []byte
	IssuedAt  time.Time
	Expiry    time.Time
	CreatedBy string
}

func toPulsarTokenRecord(t store.PulsarToken) pulsarTokenRecord {
	return pulsarTokenRecord{
		ID: t.ID, Tenant: t.Tenant, Role: t.Role, Type: t.Type, Kid: t.Kid, MAC: t.MAC,
		IssuedAt: t.IssuedAt.UTC(), Expiry: t.Expiry.UTC(), CreatedBy: t.CreatedBy,
	}
}

func (r pulsarTokenRecord) pulsarToken() store.PulsarToken {
	return store.PulsarToken{
		ID: r.ID, Tenant: r.Tenant, Role: r.Role, Type: r.Type, Kid: r.Kid, MAC: r.MAC,
		IssuedAt: r.IssuedAt, Expiry: r.Expiry, CreatedBy: r.CreatedBy,
	}
}

func (r pulsarTokenRecord) encode() ([]byte, error) {
	return records.EncodePulsarToken(r.pulsarToken())
}

func decodePulsarTokenRecord(b []byte) (pulsarTokenRecord, error) {
	t, err := records.DecodePulsarToken(b)
	return toPulsarTokenRecord(t), err
}

// databaseRecord is a database with its usage totals as a usageRecord, so
// that they can be summed.
type databaseRecord struct {
	store.Database
	Usage usageRecord
}

func toDatabaseRecord(d store.Database) databaseRecord {
	return databaseRecord{Database: d, Usage: toUsageRecord(d.Usage)}
}

func (r databaseRecord) database() store.Database {
	d := r.Database
	d.Usage = r.Usage.usage()
	return d
}

func encodeDatabase(d store.Database) ([]byte, error) { return records.EncodeDatabase(d) }

func decodeDatabaseRecord(b []byte) (databaseRecord, error) {
	d, err := records.DecodeDatabase(b)
	return toDatabaseRecord(d), err
}

// marshal encodes a database record (the one record the bbolt code
// re-encodes from its record form).
func marshal(r databaseRecord) ([]byte, error) { return records.EncodeDatabase(r.database()) }

type usageRecord struct {
	Reads, Writes, Errors int64
	LastUsage             time.Time
}

func toUsageRecord(u store.Usage) usageRecord {
	return usageRecord{Reads: u.Reads, Writes: u.Writes, Errors: u.Errors, LastUsage: u.LastUsage.UTC()}
}

func (r usageRecord) usage() store.Usage {
	return store.Usage{Reads: r.Reads, Writes: r.Writes, Errors: r.Errors, LastUsage: r.LastUsage}
}

func encodeUsage(u usageRecord) ([]byte, error) { return records.EncodeUsage(u.usage()) }

// decodeUsage decodes a database_usage value; nil (no usage recorded in
// that month) is zero usage.
func decodeUsage(b []byte) (usageRecord, error) {
	u, err := records.DecodeUsage(b)
	return toUsageRecord(u), err
}

type namespaceStatsRecord struct{ store.NamespaceStats }

func (r namespaceStatsRecord) namespaceStats() store.NamespaceStats { return r.NamespaceStats }

func decodeNamespaceStatsRecord(b []byte) (namespaceStatsRecord, error) {
	n, err := records.DecodeNamespaceStats(b)
	return namespaceStatsRecord{n}, err
}
