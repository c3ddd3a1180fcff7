package bolt

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"google.golang.org/protobuf/proto"

	storagev1 "github.com/tokenbroker/tokenbroker/gen/tokenbroker/storage/v1"
	"github.com/tokenbroker/tokenbroker/store"
)

// Stored encodings. They are private and separate from the store domain
// types so that either can evolve without silently changing the other: a
// renamed Go field must not rename a stored field. Times are converted to
// UTC before encoding, so they are stored as RFC 3339 with nanoseconds and
// a "Z" suffix and decode exactly, in UTC. json.Unmarshal allocates fresh
// strings and slices, so decoded records never alias bbolt's memory map.

type orgRecord struct {
	ID          string             `json:"id"`
	Name        string             `json:"name"`
	CreatedAt   time.Time          `json:"created_at"`
	KeyCheck    []byte             `json:"key_check"`
	TokenPolicy *tokenPolicyRecord `json:"token_policy,omitempty"` // absent in files written before it existed
}

type tokenPolicyRecord struct {
	MaxTokenLifetime       int64     `json:"max_token_lifetime_ns,omitempty"`
	MaxPulsarTokenLifetime int64     `json:"max_pulsar_token_lifetime_ns,omitempty"`
	UpdatedAt              time.Time `json:"updated_at"`
	UpdatedBy              string    `json:"updated_by,omitempty"`
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

func encodeOrg(o store.Organization) ([]byte, error) {
	r := orgRecord{
		ID:        o.ID,
		Name:      o.Name,
		CreatedAt: o.CreatedAt.UTC(),
		KeyCheck:  o.KeyCheck,
	}
	if p := o.TokenPolicy; p != (store.TokenPolicy{}) {
		r.TokenPolicy = &tokenPolicyRecord{
			MaxTokenLifetime:       int64(p.MaxTokenLifetime),
			MaxPulsarTokenLifetime: int64(p.MaxPulsarTokenLifetime),
			UpdatedAt:              p.UpdatedAt.UTC(),
			UpdatedBy:              p.UpdatedBy,
		}
	}
	return marshal(r)
}

func decodeOrg(b []byte) (store.Organization, error) {
	var r orgRecord
	if err := unmarshal(b, &r); err != nil {
		return store.Organization{}, err
	}
	o := store.Organization{
		ID:        r.ID,
		Name:      r.Name,
		CreatedAt: r.CreatedAt,
		KeyCheck:  r.KeyCheck,
	}
	if p := r.TokenPolicy; p != nil {
		o.TokenPolicy = store.TokenPolicy{
			MaxTokenLifetime:       time.Duration(p.MaxTokenLifetime),
			MaxPulsarTokenLifetime: time.Duration(p.MaxPulsarTokenLifetime),
			UpdatedAt:              p.UpdatedAt,
			UpdatedBy:              p.UpdatedBy,
		}
	}
	return o, nil
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
		RotatedTo:   t.RotatedTo,
		RotatedAt:   t.RotatedAt.UTC(),
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
		RotatedTo:   r.RotatedTo,
		RotatedAt:   r.RotatedAt,
	}
}

// Token, auth-token and user records are read on every credential check,
// so they are encoded with protobuf (proto/tokenbroker/storage/v1), which
// decodes several times faster than JSON; times as unix nanoseconds.

func (r tokenRecord) encode() ([]byte, error) {
	gen, err1 := nanos(r.GeneratedOn)
	exp, err2 := nanos(r.Expiry)
	used, err3 := nanos(r.LastUsed)
	rotated, err4 := nanos(r.RotatedAt)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return nil, err
	}
	return encodeProto(&storagev1.TokenRecord{
		ClientId: r.ClientID, OrgId: r.OrgID, Roles: r.Roles, Description: r.Description,
		SecretMac: r.SecretMAC, GeneratedOn: gen, Expiry: exp, CreatedBy: r.CreatedBy, LastUsed: used,
		RotatedTo: r.RotatedTo, RotatedAt: rotated,
	})
}

func decodeTokenRecord(b []byte) (tokenRecord, error) {
	var m storagev1.TokenRecord
	if err := decodeProto(b, &m); err != nil {
		return tokenRecord{}, err
	}
	return tokenRecord{
		ClientID: m.ClientId, OrgID: m.OrgId, Roles: m.Roles, Description: m.Description,
		SecretMAC: m.SecretMac, GeneratedOn: fromNanos(m.GeneratedOn), Expiry: fromNanos(m.Expiry),
		CreatedBy: m.CreatedBy, LastUsed: fromNanos(m.LastUsed),
		RotatedTo: m.RotatedTo, RotatedAt: fromNanos(m.RotatedAt),
	}, nil
}

func decodeToken(b []byte) (store.Token, error) {
	r, err := decodeTokenRecord(b)
	return r.token(), err
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
	r := toUserRecord(u)
	created, err1 := nanos(r.CreatedAt)
	updated, err2 := nanos(r.UpdatedAt)
	if err := errors.Join(err1, err2); err != nil {
		return nil, err
	}
	return encodeProto(&storagev1.UserRecord{
		Id: r.ID, OrgId: r.OrgID, Username: r.Username, PasswordHash: r.PasswordHash,
		Roles: r.Roles, CreatedAt: created, UpdatedAt: updated, CreatedBy: r.CreatedBy,
	})
}

func decodeUserRecord(b []byte) (userRecord, error) {
	var m storagev1.UserRecord
	if err := decodeProto(b, &m); err != nil {
		return userRecord{}, err
	}
	return userRecord{
		ID: m.Id, OrgID: m.OrgId, Username: m.Username, PasswordHash: m.PasswordHash,
		Roles: m.Roles, CreatedAt: fromNanos(m.CreatedAt), UpdatedAt: fromNanos(m.UpdatedAt), CreatedBy: m.CreatedBy,
	}, nil
}

func decodeUser(b []byte) (store.User, error) {
	r, err := decodeUserRecord(b)
	return r.user(), err
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

func (r authTokenRecord) encode() ([]byte, error) {
	created, err1 := nanos(r.CreatedAt)
	used, err2 := nanos(r.LastUsed)
	if err := errors.Join(err1, err2); err != nil {
		return nil, err
	}
	return encodeProto(&storagev1.AuthTokenRecord{
		Mac: r.MAC, OrgId: r.OrgID, PrincipalKind: r.PrincipalKind, PrincipalId: r.PrincipalID,
		CreatedAt: created, LastUsed: used,
	})
}

func decodeAuthTokenRecord(b []byte) (authTokenRecord, error) {
	var m storagev1.AuthTokenRecord
	if err := decodeProto(b, &m); err != nil {
		return authTokenRecord{}, err
	}
	return authTokenRecord{
		MAC: m.Mac, OrgID: m.OrgId, PrincipalKind: m.PrincipalKind, PrincipalID: m.PrincipalId,
		CreatedAt: fromNanos(m.CreatedAt), LastUsed: fromNanos(m.LastUsed),
	}, nil
}

type tenantRecord struct {
	Name             string    `json:"name"`
	OrgID            string    `json:"org_id"`
	ClusterName      string    `json:"cluster_name"`
	WebServiceURL    string    `json:"web_service_url"`
	BrokerServiceURL string    `json:"broker_service_url"`
	WebsocketURL     string    `json:"websocket_url"`
	CloudProvider    string    `json:"cloud_provider"`
	CloudRegion      string    `json:"cloud_region"`
	TokenFormat      string    `json:"token_format"`
	SealedSecret     []byte    `json:"sealed_secret"`
	CreatedAt        time.Time `json:"created_at"`
	CreatedBy        string    `json:"created_by"`
	// Written only while a rotated secret still verifies.
	PreviousSealedSecret    []byte     `json:"previous_sealed_secret,omitempty"`
	PreviousSecretRetiresAt *time.Time `json:"previous_secret_retires_at,omitempty"`
}

func encodeTenant(t store.Tenant) ([]byte, error) {
	var retires *time.Time
	if !t.PreviousSecretRetiresAt.IsZero() {
		u := t.PreviousSecretRetiresAt.UTC()
		retires = &u
	}
	return marshal(tenantRecord{
		PreviousSealedSecret:    t.PreviousSealedSecret,
		PreviousSecretRetiresAt: retires,
		Name:                    t.Name,
		OrgID:                   t.OrgID,
		ClusterName:             t.ClusterName,
		WebServiceURL:           t.WebServiceURL,
		BrokerServiceURL:        t.BrokerServiceURL,
		WebsocketURL:            t.WebsocketURL,
		CloudProvider:           t.CloudProvider,
		CloudRegion:             t.CloudRegion,
		TokenFormat:             t.TokenFormat,
		SealedSecret:            t.SealedSecret,
		CreatedAt:               t.CreatedAt.UTC(),
		CreatedBy:               t.CreatedBy,
	})
}

func decodeTenant(b []byte) (store.Tenant, error) {
	var r tenantRecord
	if err := unmarshal(b, &r); err != nil {
		return store.Tenant{}, err
	}
	var retires time.Time
	if r.PreviousSecretRetiresAt != nil {
		retires = *r.PreviousSecretRetiresAt
	}
	return store.Tenant{
		PreviousSealedSecret:    r.PreviousSealedSecret,
		PreviousSecretRetiresAt: retires,
		Name:                    r.Name,
		OrgID:                   r.OrgID,
		ClusterName:             r.ClusterName,
		WebServiceURL:           r.WebServiceURL,
		BrokerServiceURL:        r.BrokerServiceURL,
		WebsocketURL:            r.WebsocketURL,
		CloudProvider:           r.CloudProvider,
		CloudRegion:             r.CloudRegion,
		TokenFormat:             r.TokenFormat,
		SealedSecret:            r.SealedSecret,
		CreatedAt:               r.CreatedAt,
		CreatedBy:               r.CreatedBy,
	}, nil
}

// signingKeysRecord is the whole key set, stored as one value: it is small
// (a handful of keys) and always read and replaced as a whole.
type signingKeysRecord struct {
	Keys []signingKeyRecord `json:"keys"`
}

type signingKeyRecord struct {
	Kid           string    `json:"kid"`
	Alg           string    `json:"alg"`
	PublicDER     []byte    `json:"public_der"`
	SealedPrivate []byte    `json:"sealed_private"`
	CreatedAt     time.Time `json:"created_at"`
	RetiredAt     time.Time `json:"retired_at"`
	// Absent in files written before phased rotation existed.
	Pending     bool       `json:"pending,omitempty"`
	ActivatedAt *time.Time `json:"activated_at,omitempty"`
}

func encodeSigningKeys(keys []store.SigningKey) ([]byte, error) {
	r := signingKeysRecord{Keys: make([]signingKeyRecord, 0, len(keys))}
	for _, k := range keys {
		var activated *time.Time
		if !k.ActivatedAt.IsZero() {
			u := k.ActivatedAt.UTC()
			activated = &u
		}
		r.Keys = append(r.Keys, signingKeyRecord{
			Pending:       k.Pending,
			ActivatedAt:   activated,
			Kid:           k.Kid,
			Alg:           k.Alg,
			PublicDER:     k.PublicDER,
			SealedPrivate: k.SealedPrivate,
			CreatedAt:     k.CreatedAt.UTC(),
			RetiredAt:     k.RetiredAt.UTC(),
		})
	}
	return marshal(r)
}

// decodeSigningKeys decodes the stored set; nil (no set stored yet) is the
// empty set.
func decodeSigningKeys(b []byte) ([]store.SigningKey, error) {
	if b == nil {
		return nil, nil
	}
	var r signingKeysRecord
	if err := unmarshal(b, &r); err != nil {
		return nil, err
	}
	var keys []store.SigningKey
	for _, k := range r.Keys {
		var activated time.Time
		if k.ActivatedAt != nil {
			activated = *k.ActivatedAt
		}
		keys = append(keys, store.SigningKey{
			Pending:       k.Pending,
			ActivatedAt:   activated,
			Kid:           k.Kid,
			Alg:           k.Alg,
			PublicDER:     k.PublicDER,
			SealedPrivate: k.SealedPrivate,
			CreatedAt:     k.CreatedAt,
			RetiredAt:     k.RetiredAt,
		})
	}
	return keys, nil
}

// Pulsar token records are read on every check of a Pulsar JWT, so they are
// protobuf, like application tokens.

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
		ID:        t.ID,
		Tenant:    t.Tenant,
		Role:      t.Role,
		Type:      t.Type,
		Kid:       t.Kid,
		MAC:       t.MAC,
		IssuedAt:  t.IssuedAt.UTC(),
		Expiry:    t.Expiry.UTC(),
		CreatedBy: t.CreatedBy,
	}
}

func (r pulsarTokenRecord) pulsarToken() store.PulsarToken {
	return store.PulsarToken{
		ID:        r.ID,
		Tenant:    r.Tenant,
		Role:      r.Role,
		Type:      r.Type,
		Kid:       r.Kid,
		MAC:       r.MAC,
		IssuedAt:  r.IssuedAt,
		Expiry:    r.Expiry,
		CreatedBy: r.CreatedBy,
	}
}

func (r pulsarTokenRecord) encode() ([]byte, error) {
	issued, err1 := nanos(r.IssuedAt)
	exp, err2 := nanos(r.Expiry)
	if err := errors.Join(err1, err2); err != nil {
		return nil, err
	}
	return encodeProto(&storagev1.PulsarTokenRecord{
		Id: r.ID, Tenant: r.Tenant, Role: r.Role, Type: r.Type, Kid: r.Kid,
		Mac: r.MAC, IssuedAt: issued, Expiry: exp, CreatedBy: r.CreatedBy,
	})
}

func decodePulsarTokenRecord(b []byte) (pulsarTokenRecord, error) {
	var m storagev1.PulsarTokenRecord
	if err := decodeProto(b, &m); err != nil {
		return pulsarTokenRecord{}, err
	}
	return pulsarTokenRecord{
		ID: m.Id, Tenant: m.Tenant, Role: m.Role, Type: m.Type, Kid: m.Kid,
		MAC: m.Mac, IssuedAt: fromNanos(m.IssuedAt), Expiry: fromNanos(m.Expiry), CreatedBy: m.CreatedBy,
	}, nil
}

// Database records are read by management calls only, so they are JSON,
// like roles and tenants. The usage totals live in the record; the monthly
// counters in database_usage have the same encoding as the totals.

type databaseRecord struct {
	ID            string      `json:"id"`
	OrgID         string      `json:"org_id"`
	OwnerID       string      `json:"owner_id"`
	Name          string      `json:"name"`
	Keyspace      string      `json:"keyspace"`
	CloudProvider string      `json:"cloud_provider"`
	Tier          string      `json:"tier"`
	CapacityUnits int         `json:"capacity_units"`
	Region        string      `json:"region"`
	Status        string      `json:"status"`
	RoleID        string      `json:"role_id"`
	CreatedAt     time.Time   `json:"created_at"`
	TerminatedAt  time.Time   `json:"terminated_at"`
	Usage         usageRecord `json:"usage"`
}

type usageRecord struct {
	Reads     int64     `json:"reads"`
	Writes    int64     `json:"writes"`
	Errors    int64     `json:"errors"`
	LastUsage time.Time `json:"last_usage"`
}

func toDatabaseRecord(d store.Database) databaseRecord {
	return databaseRecord{
		ID:            d.ID,
		OrgID:         d.OrgID,
		OwnerID:       d.OwnerID,
		Name:          d.Name,
		Keyspace:      d.Keyspace,
		CloudProvider: d.CloudProvider,
		Tier:          d.Tier,
		CapacityUnits: d.CapacityUnits,
		Region:        d.Region,
		Status:        d.Status,
		RoleID:        d.RoleID,
		CreatedAt:     d.CreatedAt.UTC(),
		TerminatedAt:  d.TerminatedAt.UTC(),
		Usage:         toUsageRecord(d.Usage),
	}
}

func (r databaseRecord) database() store.Database {
	return store.Database{
		ID:            r.ID,
		OrgID:         r.OrgID,
		OwnerID:       r.OwnerID,
		Name:          r.Name,
		Keyspace:      r.Keyspace,
		CloudProvider: r.CloudProvider,
		Tier:          r.Tier,
		CapacityUnits: r.CapacityUnits,
		Region:        r.Region,
		Status:        r.Status,
		RoleID:        r.RoleID,
		CreatedAt:     r.CreatedAt,
		TerminatedAt:  r.TerminatedAt,
		Usage:         r.Usage.usage(),
	}
}

func encodeDatabase(d store.Database) ([]byte, error) {
	return marshal(toDatabaseRecord(d))
}

func decodeDatabaseRecord(b []byte) (databaseRecord, error) {
	var r databaseRecord
	if err := unmarshal(b, &r); err != nil {
		return databaseRecord{}, err
	}
	return r, nil
}

func decodeDatabase(b []byte) (store.Database, error) {
	r, err := decodeDatabaseRecord(b)
	return r.database(), err
}

func toUsageRecord(u store.Usage) usageRecord {
	return usageRecord{
		Reads:     u.Reads,
		Writes:    u.Writes,
		Errors:    u.Errors,
		LastUsage: u.LastUsage.UTC(),
	}
}

func (r usageRecord) usage() store.Usage {
	return store.Usage{
		Reads:     r.Reads,
		Writes:    r.Writes,
		Errors:    r.Errors,
		LastUsage: r.LastUsage,
	}
}

func encodeUsage(u usageRecord) ([]byte, error) {
	return marshal(u)
}

// decodeUsage decodes a database_usage value; nil (no usage recorded in
// that month) is zero usage.
func decodeUsage(b []byte) (usageRecord, error) {
	var r usageRecord
	if b == nil {
		return r, nil
	}
	if err := unmarshal(b, &r); err != nil {
		return usageRecord{}, err
	}
	return r, nil
}

type namespaceStatsRecord struct {
	Tenant              string    `json:"tenant"`
	Namespace           string    `json:"namespace"`
	MessagesIn          int64     `json:"messages_in"`
	MessagesOut         int64     `json:"messages_out"`
	BytesIn             int64     `json:"bytes_in"`
	BytesOut            int64     `json:"bytes_out"`
	MsgRateIn           float64   `json:"msg_rate_in"`
	MsgRateOut          float64   `json:"msg_rate_out"`
	ThroughputIn        float64   `json:"throughput_in"`
	ThroughputOut       float64   `json:"throughput_out"`
	Subscriptions       int64     `json:"subscriptions"`
	Producers           int64     `json:"producers"`
	Consumers           int64     `json:"consumers"`
	SubscriptionDelayed int64     `json:"subscription_delayed"`
	StorageSize         int64     `json:"storage_size"`
	BacklogBytes        int64     `json:"backlog_bytes"`
	BacklogMessages     int64     `json:"backlog_messages"`
	UpdatedAt           time.Time `json:"updated_at"`
}

func toNamespaceStatsRecord(n store.NamespaceStats) namespaceStatsRecord {
	return namespaceStatsRecord{
		Tenant:              n.Tenant,
		Namespace:           n.Namespace,
		MessagesIn:          n.MessagesIn,
		MessagesOut:         n.MessagesOut,
		BytesIn:             n.BytesIn,
		BytesOut:            n.BytesOut,
		MsgRateIn:           n.MsgRateIn,
		MsgRateOut:          n.MsgRateOut,
		ThroughputIn:        n.ThroughputIn,
		ThroughputOut:       n.ThroughputOut,
		Subscriptions:       n.Subscriptions,
		Producers:           n.Producers,
		Consumers:           n.Consumers,
		SubscriptionDelayed: n.SubscriptionDelayed,
		StorageSize:         n.StorageSize,
		BacklogBytes:        n.BacklogBytes,
		BacklogMessages:     n.BacklogMessages,
		UpdatedAt:           n.UpdatedAt.UTC(),
	}
}

func (r namespaceStatsRecord) namespaceStats() store.NamespaceStats {
	return store.NamespaceStats{
		Tenant:              r.Tenant,
		Namespace:           r.Namespace,
		MessagesIn:          r.MessagesIn,
		MessagesOut:         r.MessagesOut,
		BytesIn:             r.BytesIn,
		BytesOut:            r.BytesOut,
		MsgRateIn:           r.MsgRateIn,
		MsgRateOut:          r.MsgRateOut,
		ThroughputIn:        r.ThroughputIn,
		ThroughputOut:       r.ThroughputOut,
		Subscriptions:       r.Subscriptions,
		Producers:           r.Producers,
		Consumers:           r.Consumers,
		SubscriptionDelayed: r.SubscriptionDelayed,
		StorageSize:         r.StorageSize,
		BacklogBytes:        r.BacklogBytes,
		BacklogMessages:     r.BacklogMessages,
		UpdatedAt:           r.UpdatedAt,
	}
}

// encodeNamespaceStats encodes a snapshot as JSON, which round-trips every
// finite float64 exactly (and refuses NaN and infinities).
func encodeNamespaceStats(n store.NamespaceStats) ([]byte, error) {
	return marshal(toNamespaceStatsRecord(n))
}

func decodeNamespaceStatsRecord(b []byte) (namespaceStatsRecord, error) {
	var r namespaceStatsRecord
	if err := unmarshal(b, &r); err != nil {
		return namespaceStatsRecord{}, err
	}
	return r, nil
}

// auditRecord is one audit event. Its Seq is its key, not a field.
type auditRecord struct {
	Time       time.Time `json:"time"`
	RequestID  string    `json:"request_id"`
	ActorKind  string    `json:"actor_kind"`
	ActorID    string    `json:"actor_id"`
	Action     string    `json:"action"`
	TargetKind string    `json:"target_kind"`
	TargetID   string    `json:"target_id"`
	Outcome    string    `json:"outcome"`
	Detail     string    `json:"detail"`
}

func encodeAuditEvent(e store.AuditEvent) ([]byte, error) {
	return marshal(auditRecord{
		Time:       e.Time.UTC(),
		RequestID:  e.RequestID,
		ActorKind:  e.ActorKind,
		ActorID:    e.ActorID,
		Action:     e.Action,
		TargetKind: e.TargetKind,
		TargetID:   e.TargetID,
		Outcome:    e.Outcome,
		Detail:     e.Detail,
	})
}

func decodeAuditEvent(seq uint64, b []byte) (store.AuditEvent, error) {
	var r auditRecord
	if err := unmarshal(b, &r); err != nil {
		return store.AuditEvent{}, err
	}
	return store.AuditEvent{
		Seq:        seq,
		Time:       r.Time,
		RequestID:  r.RequestID,
		ActorKind:  r.ActorKind,
		ActorID:    r.ActorID,
		Action:     r.Action,
		TargetKind: r.TargetKind,
		TargetID:   r.TargetID,
		Outcome:    r.Outcome,
		Detail:     r.Detail,
	}, nil
}

// Unix nanoseconds cover 1678-2262. Times outside cannot be stored
// faithfully, so encoding refuses them. The zero time is stored as 0.
var (
	minNanosTime = time.Unix(0, math.MinInt64+1).UTC()
	maxNanosTime = time.Unix(0, math.MaxInt64).UTC()
)

func nanos(t time.Time) (int64, error) {
	if t.IsZero() {
		return 0, nil
	}
	if t.Before(minNanosTime) || t.After(maxNanosTime) {
		return 0, fmt.Errorf("encode record: time %s is outside the storable range (%d-%d)", t.UTC().Format(time.RFC3339), minNanosTime.Year(), maxNanosTime.Year())
	}
	if t.UnixNano() == 0 { // the epoch itself would read back as "unset"
		return 0, fmt.Errorf("encode record: time %s (the Unix epoch) is reserved for 'unset'", t.UTC().Format(time.RFC3339))
	}
	return t.UnixNano(), nil
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func encodeProto(m proto.Message) ([]byte, error) {
	b, err := proto.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode record: %w", err)
	}
	return b, nil
}

// decodeProto copies everything it decodes (proto.Unmarshal never aliases
// its input), so records never point into bbolt's memory map.
func decodeProto(b []byte, m proto.Message) error {
	if err := proto.Unmarshal(b, m); err != nil {
		return fmt.Errorf("decode stored record (corrupt file?): %w", err)
	}
	return nil
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
