package bolt

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/tokenbroker/tokenbroker/store"
)

// Stored encodings. They are private and separate from the store domain
// types so that either can evolve without silently changing the other: a
// renamed Go field must not rename a stored field. Times are converted to
// UTC before encoding, so they are stored as RFC 3339 with nanoseconds and
// a "Z" suffix and decode exactly, in UTC. json.Unmarshal allocates fresh
// strings and slices, so decoded records never alias bbolt's memory map.

type orgRecord struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	KeyCheck  []byte    `json:"key_check"`
}

type roleRecord struct {
	ID          string    `json:"id"`
	OrgID       string    `json:"org_id"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Resources   []string  `json:"resources"`
	Actions     []string  `json:"actions"`
	Effect      string    `json:"effect"`
	Builtin     bool      `json:"builtin"`
	UpdatedAt   time.Time `json:"updated_at"`
	UpdatedBy   string    `json:"updated_by"`
}

type tokenRecord struct {
	ClientID    string    `json:"client_id"`
	OrgID       string    `json:"org_id"`
	Roles       []string  `json:"roles"`
	Description string    `json:"description"`
	SecretMAC   []byte    `json:"secret_mac"`
	GeneratedOn time.Time `json:"generated_on"`
	Expiry      time.Time `json:"expiry"`
	CreatedBy   string    `json:"created_by"`
	LastUsed    time.Time `json:"last_used"`
}

func encodeOrg(o store.Organization) ([]byte, error) {
	return marshal(orgRecord{
		ID:        o.ID,
		Name:      o.Name,
		CreatedAt: o.CreatedAt.UTC(),
		KeyCheck:  o.KeyCheck,
	})
}

func decodeOrg(b []byte) (store.Organization, error) {
	var r orgRecord
	if err := unmarshal(b, &r); err != nil {
		return store.Organization{}, err
	}
	return store.Organization{
		ID:        r.ID,
		Name:      r.Name,
		CreatedAt: r.CreatedAt,
		KeyCheck:  r.KeyCheck,
	}, nil
}

func encodeRole(r store.Role) ([]byte, error) {
	return marshal(roleRecord{
		ID:          r.ID,
		OrgID:       r.OrgID,
		Name:        r.Name,
		Description: r.Description,
		Resources:   r.Resources,
		Actions:     r.Actions,
		Effect:      r.Effect,
		Builtin:     r.Builtin,
		UpdatedAt:   r.UpdatedAt.UTC(),
		UpdatedBy:   r.UpdatedBy,
	})
}

func decodeRole(b []byte) (store.Role, error) {
	var r roleRecord
	if err := unmarshal(b, &r); err != nil {
		return store.Role{}, err
	}
	return store.Role{
		ID:          r.ID,
		OrgID:       r.OrgID,
		Name:        r.Name,
		Description: r.Description,
		Resources:   r.Resources,
		Actions:     r.Actions,
		Effect:      r.Effect,
		Builtin:     r.Builtin,
		UpdatedAt:   r.UpdatedAt,
		UpdatedBy:   r.UpdatedBy,
	}, nil
}

func toTokenRecord(t store.Token) tokenRecord {
	return tokenRecord{
		ClientID:    t.ClientID,
		OrgID:       t.OrgID,
		Roles:       t.Roles,
		Description: t.Description,
		SecretMAC:   t.SecretMAC,
		GeneratedOn: t.GeneratedOn.UTC(),
		Expiry:      t.Expiry.UTC(),
		CreatedBy:   t.CreatedBy,
		LastUsed:    t.LastUsed.UTC(),
	}
}

func (r tokenRecord) token() store.Token {
	return store.Token{
		ClientID:    r.ClientID,
		OrgID:       r.OrgID,
		Roles:       r.Roles,
		Description: r.Description,
		SecretMAC:   r.SecretMAC,
		GeneratedOn: r.GeneratedOn,
		Expiry:      r.Expiry,
		CreatedBy:   r.CreatedBy,
		LastUsed:    r.LastUsed,
	}
}

func decodeTokenRecord(b []byte) (tokenRecord, error) {
	var r tokenRecord
	err := unmarshal(b, &r)
	return r, err
}

func decodeToken(b []byte) (store.Token, error) {
	r, err := decodeTokenRecord(b)
	return r.token(), err
}

type userRecord struct {
	ID           string    `json:"id"`
	OrgID        string    `json:"org_id"`
	Username     string    `json:"username"`
	PasswordHash string    `json:"password_hash"`
	Roles        []string  `json:"roles"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
	CreatedBy    string    `json:"created_by"`
}

func toUserRecord(u store.User) userRecord {
	return userRecord{
		ID:           u.ID,
		OrgID:        u.OrgID,
		Username:     u.Username,
		PasswordHash: u.PasswordHash,
		Roles:        u.Roles,
		CreatedAt:    u.CreatedAt.UTC(),
		UpdatedAt:    u.UpdatedAt.UTC(),
		CreatedBy:    u.CreatedBy,
	}
}

func (r userRecord) user() store.User {
	return store.User{
		ID:           r.ID,
		OrgID:        r.OrgID,
		Username:     r.Username,
		PasswordHash: r.PasswordHash,
		Roles:        r.Roles,
		CreatedAt:    r.CreatedAt,
		UpdatedAt:    r.UpdatedAt,
		CreatedBy:    r.CreatedBy,
	}
}

func encodeUser(u store.User) ([]byte, error) {
	return marshal(toUserRecord(u))
}

func decodeUserRecord(b []byte) (userRecord, error) {
	var r userRecord
	err := unmarshal(b, &r)
	return r, err
}

func decodeUser(b []byte) (store.User, error) {
	r, err := decodeUserRecord(b)
	return r.user(), err
}

type authTokenRecord struct {
	MAC           []byte    `json:"mac"`
	OrgID         string    `json:"org_id"`
	PrincipalKind string    `json:"principal_kind"`
	PrincipalID   string    `json:"principal_id"`
	CreatedAt     time.Time `json:"created_at"`
	LastUsed      time.Time `json:"last_used"`
}

func toAuthTokenRecord(t store.AuthToken) authTokenRecord {
	return authTokenRecord{
		MAC:           t.MAC,
		OrgID:         t.OrgID,
		PrincipalKind: t.PrincipalKind,
		PrincipalID:   t.PrincipalID,
		CreatedAt:     t.CreatedAt.UTC(),
		LastUsed:      t.LastUsed.UTC(),
	}
}

func (r authTokenRecord) authToken() store.AuthToken {
	return store.AuthToken{
		MAC:           r.MAC,
		OrgID:         r.OrgID,
		PrincipalKind: r.PrincipalKind,
		PrincipalID:   r.PrincipalID,
		CreatedAt:     r.CreatedAt,
		LastUsed:      r.LastUsed,
	}
}

func decodeAuthTokenRecord(b []byte) (authTokenRecord, error) {
	var r authTokenRecord
	err := unmarshal(b, &r)
	return r, err
}

// marshal fails for times outside years 0-9999, which is the validation we
// want: such a time cannot be stored faithfully.
func marshal(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode record: %w", err)
	}
	return b, nil
}

func unmarshal(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode stored record (corrupt file?): %w", err)
	}
	return nil
}
