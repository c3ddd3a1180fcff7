// Package records holds the stored encodings of the store's records, shared
// by every backend (store/bolt, store/etcd), so that a record is the same
// bytes whichever backend holds it.
//
// The encodings are private structs (JSON) and storage protobuf messages
// (proto/tokenbroker/storage/v1), separate from the store domain types so
// that either can evolve without silently changing the other: a renamed Go
// field must not rename a stored field. The records read on every
// credential check (tokens, auth tokens, users, Pulsar tokens) are protobuf,
// which decodes several times faster than JSON, with times as unix
// nanoseconds; the rest are JSON with times in UTC, RFC 3339 with
// nanoseconds. Decoding allocates fresh strings and slices, so decoded
// records never alias the buffer they were decoded from (a bbolt memory map,
// an etcd response).
package records

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

type orgRecord struct {
	ID          string             `json:"id"`
	Name        string             `json:"name"`
	CreatedAt   time.Time          `json:"created_at"`
	KeyCheck    []byte             `json:"key_check"`
	TokenPolicy *tokenPolicyRecord `json:"token_policy,omitempty"` // absent in records written before it existed
}

type tokenPolicyRecord struct {
	MaxTokenLifetime       int64     `json:"max_token_lifetime_ns,omitempty"`
	MaxPulsarTokenLifetime int64     `json:"max_pulsar_token_lifetime_ns,omitempty"`
	UpdatedAt              time.Time `json:"updated_at"`
	UpdatedBy              string    `json:"updated_by,omitempty"`
}

// EncodeOrg encodes the organization record (JSON).
func EncodeOrg(o store.Organization) ([]byte, error) {
	r := orgRecord{ID: o.ID, Name: o.Name, CreatedAt: o.CreatedAt.UTC(), KeyCheck: o.KeyCheck}
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

// DecodeOrg decodes EncodeOrg's output.
func DecodeOrg(b []byte) (store.Organization, error) {
	var r orgRecord
	if err := unmarshal(b, &r); err != nil {
		return store.Organization{}, err
	}
	o := store.Organization{ID: r.ID, Name: r.Name, CreatedAt: r.CreatedAt, KeyCheck: r.KeyCheck}
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

// EncodeRole encodes a role record (JSON).
func EncodeRole(r store.Role) ([]byte, error) {
	return marshal(roleRecord{
		ID: r.ID, OrgID: r.OrgID, Name: r.Name, Description: r.Description,
		Resources: r.Resources, Actions: r.Actions, Effect: r.Effect, Builtin: r.Builtin,
		UpdatedAt: r.UpdatedAt.UTC(), UpdatedBy: r.UpdatedBy,
	})
}

// DecodeRole decodes EncodeRole's output.
func DecodeRole(b []byte) (store.Role, error) {
	var r roleRecord
	if err := unmarshal(b, &r); err != nil {
		return store.Role{}, err
	}
	return store.Role{
		ID: r.ID, OrgID: r.OrgID, Name: r.Name, Description: r.Description,
		Resources: r.Resources, Actions: r.Actions, Effect: r.Effect, Builtin: r.Builtin,
		UpdatedAt: r.UpdatedAt, UpdatedBy: r.UpdatedBy,
	}, nil
}

// EncodeToken encodes an application-token record (protobuf).
func EncodeToken(t store.Token) ([]byte, error) {
	gen, err1 := Nanos(t.GeneratedOn)
	exp, err2 := Nanos(t.Expiry)
	used, err3 := Nanos(t.LastUsed)
	rotated, err4 := Nanos(t.RotatedAt)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return nil, err
	}
	return encodeProto(&storagev1.TokenRecord{
		ClientId: t.ClientID, OrgId: t.OrgID, Roles: t.Roles, Description: t.Description,
		SecretMac: t.SecretMAC, GeneratedOn: gen, Expiry: exp, CreatedBy: t.CreatedBy, LastUsed: used,
		RotatedTo: t.RotatedTo, RotatedAt: rotated,
	})
}

// DecodeToken decodes EncodeToken's output.
func DecodeToken(b []byte) (store.Token, error) {
	var m storagev1.TokenRecord
	if err := decodeProto(b, &m); err != nil {
		return store.Token{}, err
	}
	return store.Token{
		ClientID: m.ClientId, OrgID: m.OrgId, Roles: m.Roles, Description: m.Description,
		SecretMAC: m.SecretMac, GeneratedOn: FromNanos(m.GeneratedOn), Expiry: FromNanos(m.Expiry),
		CreatedBy: m.CreatedBy, LastUsed: FromNanos(m.LastUsed),
		RotatedTo: m.RotatedTo, RotatedAt: FromNanos(m.RotatedAt),
	}, nil
}

// EncodeUser encodes a user record (protobuf).
func EncodeUser(u store.User) ([]byte, error) {
	created, err1 := Nanos(u.CreatedAt)
	updated, err2 := Nanos(u.UpdatedAt)
	if err := errors.Join(err1, err2); err != nil {
		return nil, err
	}
	return encodeProto(&storagev1.UserRecord{
		Id: u.ID, OrgId: u.OrgID, Username: u.Username, PasswordHash: u.PasswordHash,
		Roles: u.Roles, CreatedAt: created, UpdatedAt: updated, CreatedBy: u.CreatedBy,
	})
}

// DecodeUser decodes EncodeUser's output.
func DecodeUser(b []byte) (store.User, error) {
	var m storagev1.UserRecord
	if err := decodeProto(b, &m); err != nil {
		return store.User{}, err
	}
	return store.User{
		ID: m.Id, OrgID: m.OrgId, Username: m.Username, PasswordHash: m.PasswordHash,
		Roles: m.Roles, CreatedAt: FromNanos(m.CreatedAt), UpdatedAt: FromNanos(m.UpdatedAt), CreatedBy: m.CreatedBy,
	}, nil
}

// EncodeAuthToken encodes an auth-token record (protobuf).
func EncodeAuthToken(t store.AuthToken) ([]byte, error) {
	created, err1 := Nanos(t.CreatedAt)
	used, err2 := Nanos(t.LastUsed)
	if err := errors.Join(err1, err2); err != nil {
		return nil, err
	}
	return encodeProto(&storagev1.AuthTokenRecord{
		Mac: t.MAC, OrgId: t.OrgID, PrincipalKind: t.PrincipalKind, PrincipalId: t.PrincipalID,
		CreatedAt: created, LastUsed: used,
	})
}

// DecodeAuthToken decodes EncodeAuthToken's output.
func DecodeAuthToken(b []byte) (store.AuthToken, error) {
	var m storagev1.AuthTokenRecord
	if err := decodeProto(b, &m); err != nil {
		return store.AuthToken{}, err
	}
	return store.AuthToken{
		MAC: m.Mac, OrgID: m.OrgId, PrincipalKind: m.PrincipalKind, PrincipalID: m.PrincipalId,
		CreatedAt: FromNanos(m.CreatedAt), LastUsed: FromNanos(m.LastUsed),
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

// EncodeTenant encodes a tenant record (JSON; the secret stays sealed).
func EncodeTenant(t store.Tenant) ([]byte, error) {
	var retires *time.Time
	if !t.PreviousSecretRetiresAt.IsZero() {
		u := t.PreviousSecretRetiresAt.UTC()
		retires = &u
	}
	return marshal(tenantRecord{
		PreviousSealedSecret: t.PreviousSealedSecret, PreviousSecretRetiresAt: retires,
		Name: t.Name, OrgID: t.OrgID, ClusterName: t.ClusterName, WebServiceURL: t.WebServiceURL,
		BrokerServiceURL: t.BrokerServiceURL, WebsocketURL: t.WebsocketURL, CloudProvider: t.CloudProvider,
		CloudRegion: t.CloudRegion, TokenFormat: t.TokenFormat, SealedSecret: t.SealedSecret,
		CreatedAt: t.CreatedAt.UTC(), CreatedBy: t.CreatedBy,
	})
}

// DecodeTenant decodes EncodeTenant's output.
func DecodeTenant(b []byte) (store.Tenant, error) {
	var r tenantRecord
	if err := unmarshal(b, &r); err != nil {
		return store.Tenant{}, err
	}
	var retires time.Time
	if r.PreviousSecretRetiresAt != nil {
		retires = *r.PreviousSecretRetiresAt
	}
	return store.Tenant{
		PreviousSealedSecret: r.PreviousSealedSecret, PreviousSecretRetiresAt: retires,
		Name: r.Name, OrgID: r.OrgID, ClusterName: r.ClusterName, WebServiceURL: r.WebServiceURL,
		BrokerServiceURL: r.BrokerServiceURL, WebsocketURL: r.WebsocketURL, CloudProvider: r.CloudProvider,
		CloudRegion: r.CloudRegion, TokenFormat: r.TokenFormat, SealedSecret: r.SealedSecret,
		CreatedAt: r.CreatedAt, CreatedBy: r.CreatedBy,
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
	// Absent in records written before phased rotation existed.
	Pending     bool       `json:"pending,omitempty"`
	ActivatedAt *time.Time `json:"activated_at,omitempty"`
}

// EncodeSigningKeys encodes the whole signing key set (JSON; private keys
// stay sealed).
func EncodeSigningKeys(keys []store.SigningKey) ([]byte, error) {
	r := signingKeysRecord{Keys: make([]signingKeyRecord, 0, len(keys))}
	for _, k := range keys {
		var activated *time.Time
		if !k.ActivatedAt.IsZero() {
			u := k.ActivatedAt.UTC()
			activated = &u
		}
		r.Keys = append(r.Keys, signingKeyRecord{
			Pending: k.Pending, ActivatedAt: activated,
			Kid: k.Kid, Alg: k.Alg, PublicDER: k.PublicDER, SealedPrivate: k.SealedPrivate,
			CreatedAt: k.CreatedAt.UTC(), RetiredAt: k.RetiredAt.UTC(),
		})
	}
	return marshal(r)
}

// DecodeSigningKeys decodes the stored set; nil (no set stored yet) is the
// empty set.
func DecodeSigningKeys(b []byte) ([]store.SigningKey, error) {
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
			Pending: k.Pending, ActivatedAt: activated,
			Kid: k.Kid, Alg: k.Alg, PublicDER: k.PublicDER, SealedPrivate: k.SealedPrivate,
			CreatedAt: k.CreatedAt, RetiredAt: k.RetiredAt,
		})
	}
	return keys, nil
}

// EncodePulsarToken encodes a Pulsar-token record (protobuf; the JWT is
// never stored, only its MAC).
func EncodePulsarToken(t store.PulsarToken) ([]byte, error) {
	issued, err1 := Nanos(t.IssuedAt)
	exp, err2 := Nanos(t.Expiry)
	if err := errors.Join(err1, err2); err != nil {
		return nil, err
	}
	return encodeProto(&storagev1.PulsarTokenRecord{
		Id: t.ID, Tenant: t.Tenant, Role: t.Role, Type: t.Type, Kid: t.Kid,
		Mac: t.MAC, IssuedAt: issued, Expiry: exp, CreatedBy: t.CreatedBy,
	})
}

// DecodePulsarToken decodes EncodePulsarToken's output.
func DecodePulsarToken(b []byte) (store.PulsarToken, error) {
	var m storagev1.PulsarTokenRecord
	if err := decodeProto(b, &m); err != nil {
		return store.PulsarToken{}, err
	}
	return store.PulsarToken{
		ID: m.Id, Tenant: m.Tenant, Role: m.Role, Type: m.Type, Kid: m.Kid,
		MAC: m.Mac, IssuedAt: FromNanos(m.IssuedAt), Expiry: FromNanos(m.Expiry), CreatedBy: m.CreatedBy,
	}, nil
}

type databaseRecord struct {
	ID            string      `json:"id"`
	OrgID         string      `json:"org_id"`
	OwnerID       string      `json:"owner_id"`
	Name          string      `json:"name"`
	Keyspace      string      `json:"keyspace"`
	CloudProvider string      `json:"cloud_provider"`
	Tier          string      `json:"tier"`
	DBType        string      `json:"db_type,omitempty"`
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

func toUsageRecord(u store.Usage) usageRecord {
	return usageRecord{Reads: u.Reads, Writes: u.Writes, Errors: u.Errors, LastUsage: u.LastUsage.UTC()}
}

func (r usageRecord) usage() store.Usage {
	return store.Usage{Reads: r.Reads, Writes: r.Writes, Errors: r.Errors, LastUsage: r.LastUsage}
}

// EncodeDatabase encodes a database record with its usage totals (JSON).
func EncodeDatabase(d store.Database) ([]byte, error) {
	return marshal(databaseRecord{
		ID: d.ID, OrgID: d.OrgID, OwnerID: d.OwnerID, Name: d.Name, Keyspace: d.Keyspace,
		CloudProvider: d.CloudProvider, Tier: d.Tier, DBType: d.DBType, CapacityUnits: d.CapacityUnits, Region: d.Region,
		Status: d.Status, RoleID: d.RoleID, CreatedAt: d.CreatedAt.UTC(), TerminatedAt: d.TerminatedAt.UTC(),
		Usage: toUsageRecord(d.Usage),
	})
}

// DecodeDatabase decodes EncodeDatabase's output.
func DecodeDatabase(b []byte) (store.Database, error) {
	var r databaseRecord
	if err := unmarshal(b, &r); err != nil {
		return store.Database{}, err
	}
	return store.Database{
		ID: r.ID, OrgID: r.OrgID, OwnerID: r.OwnerID, Name: r.Name, Keyspace: r.Keyspace,
		CloudProvider: r.CloudProvider, Tier: r.Tier, DBType: r.DBType, CapacityUnits: r.CapacityUnits, Region: r.Region,
		Status: r.Status, RoleID: r.RoleID, CreatedAt: r.CreatedAt, TerminatedAt: r.TerminatedAt,
		Usage: r.Usage.usage(),
	}, nil
}

// EncodeUsage encodes one database's usage in one month (JSON, the same
// encoding as a database record's totals).
func EncodeUsage(u store.Usage) ([]byte, error) {
	return marshal(toUsageRecord(u))
}

// DecodeUsage decodes EncodeUsage's output; nil (no usage recorded in that
// month) is zero usage.
func DecodeUsage(b []byte) (store.Usage, error) {
	var r usageRecord
	if b == nil {
		return store.Usage{}, nil
	}
	if err := unmarshal(b, &r); err != nil {
		return store.Usage{}, err
	}
	return r.usage(), nil
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

// EncodeNamespaceStats encodes a snapshot as JSON, which round-trips every
// finite float64 exactly (and refuses NaN and infinities).
func EncodeNamespaceStats(n store.NamespaceStats) ([]byte, error) {
	return marshal(namespaceStatsRecord{
		Tenant: n.Tenant, Namespace: n.Namespace, MessagesIn: n.MessagesIn, MessagesOut: n.MessagesOut,
		BytesIn: n.BytesIn, BytesOut: n.BytesOut, MsgRateIn: n.MsgRateIn, MsgRateOut: n.MsgRateOut,
		ThroughputIn: n.ThroughputIn, ThroughputOut: n.ThroughputOut, Subscriptions: n.Subscriptions,
		Producers: n.Producers, Consumers: n.Consumers, SubscriptionDelayed: n.SubscriptionDelayed,
		StorageSize: n.StorageSize, BacklogBytes: n.BacklogBytes, BacklogMessages: n.BacklogMessages,
		UpdatedAt: n.UpdatedAt.UTC(),
	})
}

// DecodeNamespaceStats decodes EncodeNamespaceStats's output.
func DecodeNamespaceStats(b []byte) (store.NamespaceStats, error) {
	var r namespaceStatsRecord
	if err := unmarshal(b, &r); err != nil {
		return store.NamespaceStats{}, err
	}
	return store.NamespaceStats{
		Tenant: r.Tenant, Namespace: r.Namespace, MessagesIn: r.MessagesIn, MessagesOut: r.MessagesOut,
		BytesIn: r.BytesIn, BytesOut: r.BytesOut, MsgRateIn: r.MsgRateIn, MsgRateOut: r.MsgRateOut,
		ThroughputIn: r.ThroughputIn, ThroughputOut: r.ThroughputOut, Subscriptions: r.Subscriptions,
		Producers: r.Producers, Consumers: r.Consumers, SubscriptionDelayed: r.SubscriptionDelayed,
		StorageSize: r.StorageSize, BacklogBytes: r.BacklogBytes, BacklogMessages: r.BacklogMessages,
		UpdatedAt: r.UpdatedAt,
	}, nil
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

// EncodeAuditEvent encodes an event without its Seq (the key holds it).
func EncodeAuditEvent(e store.AuditEvent) ([]byte, error) {
	return marshal(auditRecord{
		Time: e.Time.UTC(), RequestID: e.RequestID, ActorKind: e.ActorKind, ActorID: e.ActorID,
		Action: e.Action, TargetKind: e.TargetKind, TargetID: e.TargetID, Outcome: e.Outcome, Detail: e.Detail,
	})
}

// DecodeAuditEvent decodes EncodeAuditEvent's output, stored under seq.
func DecodeAuditEvent(seq uint64, b []byte) (store.AuditEvent, error) {
	var r auditRecord
	if err := unmarshal(b, &r); err != nil {
		return store.AuditEvent{}, err
	}
	return store.AuditEvent{
		Seq: seq, Time: r.Time, RequestID: r.RequestID, ActorKind: r.ActorKind, ActorID: r.ActorID,
		Action: r.Action, TargetKind: r.TargetKind, TargetID: r.TargetID, Outcome: r.Outcome, Detail: r.Detail,
	}, nil
}

// Unix nanoseconds cover 1678-2262. Times outside cannot be stored
// faithfully, so encoding refuses them. The zero time is stored as 0.
var (
	minNanosTime = time.Unix(0, math.MinInt64+1).UTC()
	maxNanosTime = time.Unix(0, math.MaxInt64).UTC()
)

// Nanos is the protobuf encoding of a time: unix nanoseconds, 0 for the
// zero time; times that cannot be stored faithfully are refused.
func Nanos(t time.Time) (int64, error) {
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

// FromNanos decodes Nanos' output, in UTC.
func FromNanos(n int64) time.Time {
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
// its input).
func decodeProto(b []byte, m proto.Message) error {
	if err := proto.Unmarshal(b, m); err != nil {
		return fmt.Errorf("decode stored record (corrupt data?): %w", err)
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
		return fmt.Errorf("decode stored record (corrupt data?): %w", err)
	}
	return nil
}
