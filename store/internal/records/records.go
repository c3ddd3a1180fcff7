// Package records holds the stored encodings of the store's records, shared
// by every backend (store/bolt, store/etcd), so that a record is the same
// bytes whichever backend holds it.
//
// Every encoding is a storage protobuf message
// (proto/tokenbroker/storage/v1), separate from the store domain types so
// that either can evolve without silently changing the other: a renamed Go
// field must not rename a stored field. Times are unix nanoseconds (Nanos).
// Decoding allocates fresh strings and slices, so decoded records never
// alias the buffer they were decoded from (a bbolt memory map, an etcd
// response). Schema version 1 stored the organization, roles, tenants,
// signing keys, databases, usage, namespace snapshots and audit events as
// JSON; their decoders remain only for the migration to version 2
// (v1json_migration.go).
package records

import (
	"errors"
	"fmt"
	"math"
	"time"

	"google.golang.org/protobuf/proto"

	storagev1 "github.com/tokenbroker/tokenbroker/gen/tokenbroker/storage/v1"
	"github.com/tokenbroker/tokenbroker/store"
)

// EncodeOrg encodes the organization record (protobuf).
func EncodeOrg(o store.Organization) ([]byte, error) {
	created, err := Nanos(o.CreatedAt)
	if err != nil {
		return nil, err
	}
	m := &storagev1.OrgRecord{Id: o.ID, Name: o.Name, CreatedAt: created, KeyCheck: o.KeyCheck}
	if p := o.TokenPolicy; p != (store.TokenPolicy{}) {
		updated, err := Nanos(p.UpdatedAt)
		if err != nil {
			return nil, err
		}
		m.TokenPolicy = &storagev1.TokenPolicyRecord{
			MaxTokenLifetime:       int64(p.MaxTokenLifetime),
			MaxPulsarTokenLifetime: int64(p.MaxPulsarTokenLifetime),
			UpdatedAt:              updated,
			UpdatedBy:              p.UpdatedBy,
		}
	}
	return encodeProto(m)
}

// DecodeOrg decodes EncodeOrg's output.
func DecodeOrg(b []byte) (store.Organization, error) {
	var m storagev1.OrgRecord
	if err := decodeProto(b, &m); err != nil {
		return store.Organization{}, err
	}
	o := store.Organization{ID: m.Id, Name: m.Name, CreatedAt: FromNanos(m.CreatedAt), KeyCheck: m.KeyCheck}
	if p := m.TokenPolicy; p != nil {
		o.TokenPolicy = store.TokenPolicy{
			MaxTokenLifetime:       time.Duration(p.MaxTokenLifetime),
			MaxPulsarTokenLifetime: time.Duration(p.MaxPulsarTokenLifetime),
			UpdatedAt:              FromNanos(p.UpdatedAt),
			UpdatedBy:              p.UpdatedBy,
		}
	}
	return o, nil
}

// EncodeRole encodes a role record (protobuf).
func EncodeRole(r store.Role) ([]byte, error) {
	updated, err := Nanos(r.UpdatedAt)
	if err != nil {
		return nil, err
	}
	return encodeProto(&storagev1.RoleRecord{
		Id: r.ID, OrgId: r.OrgID, Name: r.Name, Description: r.Description,
		Resources: r.Resources, Actions: r.Actions, Effect: r.Effect, Builtin: r.Builtin,
		UpdatedAt: updated, UpdatedBy: r.UpdatedBy,
	})
}

// DecodeRole decodes EncodeRole's output.
func DecodeRole(b []byte) (store.Role, error) {
	var m storagev1.RoleRecord
	if err := decodeProto(b, &m); err != nil {
		return store.Role{}, err
	}
	return store.Role{
		ID: m.Id, OrgID: m.OrgId, Name: m.Name, Description: m.Description,
		Resources: m.Resources, Actions: m.Actions, Effect: m.Effect, Builtin: m.Builtin,
		UpdatedAt: FromNanos(m.UpdatedAt), UpdatedBy: m.UpdatedBy,
	}, nil
}

// EncodeToken encodes an application-token record (protobuf). The client
// ID is the record's key, so the value does not repeat it (since schema
// version 2; values written before still hold it and decode alike).
func EncodeToken(t store.Token) ([]byte, error) {
	gen, err1 := Nanos(t.GeneratedOn)
	exp, err2 := Nanos(t.Expiry)
	used, err3 := Nanos(t.LastUsed)
	rotated, err4 := Nanos(t.RotatedAt)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return nil, err
	}
	return encodeProto(&storagev1.TokenRecord{
		OrgId: t.OrgID, Roles: t.Roles, Description: t.Description,
		SecretMac: t.SecretMAC, GeneratedOn: gen, Expiry: exp, CreatedBy: t.CreatedBy, LastUsed: used,
		RotatedTo: t.RotatedTo, RotatedAt: rotated,
	})
}

// DecodeToken decodes EncodeToken's output stored under clientID.
func DecodeToken(clientID string, b []byte) (store.Token, error) {
	var m storagev1.TokenRecord
	if err := decodeProto(b, &m); err != nil {
		return store.Token{}, err
	}
	if m.ClientId != "" && m.ClientId != clientID {
		return store.Token{}, fmt.Errorf("decode stored record (corrupt data?): token under key %q holds client ID %q", clientID, m.ClientId)
	}
	return store.Token{
		ClientID: clientID, OrgID: m.OrgId, Roles: m.Roles, Description: m.Description,
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

// EncodeTenant encodes a tenant record (protobuf; the secrets stay sealed).
func EncodeTenant(t store.Tenant) ([]byte, error) {
	created, err1 := Nanos(t.CreatedAt)
	retires, err2 := Nanos(t.PreviousSecretRetiresAt)
	if err := errors.Join(err1, err2); err != nil {
		return nil, err
	}
	return encodeProto(&storagev1.TenantRecord{
		Name: t.Name, OrgId: t.OrgID, ClusterName: t.ClusterName, WebServiceUrl: t.WebServiceURL,
		BrokerServiceUrl: t.BrokerServiceURL, WebsocketUrl: t.WebsocketURL, CloudProvider: t.CloudProvider,
		CloudRegion: t.CloudRegion, TokenFormat: t.TokenFormat, SealedSecret: t.SealedSecret,
		CreatedAt: created, CreatedBy: t.CreatedBy,
		PreviousSealedSecret: t.PreviousSealedSecret, PreviousSecretRetiresAt: retires,
	})
}

// DecodeTenant decodes EncodeTenant's output.
func DecodeTenant(b []byte) (store.Tenant, error) {
	var m storagev1.TenantRecord
	if err := decodeProto(b, &m); err != nil {
		return store.Tenant{}, err
	}
	return store.Tenant{
		Name: m.Name, OrgID: m.OrgId, ClusterName: m.ClusterName, WebServiceURL: m.WebServiceUrl,
		BrokerServiceURL: m.BrokerServiceUrl, WebsocketURL: m.WebsocketUrl, CloudProvider: m.CloudProvider,
		CloudRegion: m.CloudRegion, TokenFormat: m.TokenFormat, SealedSecret: m.SealedSecret,
		CreatedAt: FromNanos(m.CreatedAt), CreatedBy: m.CreatedBy,
		PreviousSealedSecret: m.PreviousSealedSecret, PreviousSecretRetiresAt: FromNanos(m.PreviousSecretRetiresAt),
	}, nil
}

// EncodeSigningKeys encodes the whole signing key set (protobuf; private
// keys stay sealed). The set is small and always read and replaced whole.
func EncodeSigningKeys(keys []store.SigningKey) ([]byte, error) {
	m := &storagev1.SigningKeysRecord{Keys: make([]*storagev1.SigningKeyRecord, 0, len(keys))}
	for _, k := range keys {
		created, err1 := Nanos(k.CreatedAt)
		retired, err2 := Nanos(k.RetiredAt)
		activated, err3 := Nanos(k.ActivatedAt)
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, err
		}
		m.Keys = append(m.Keys, &storagev1.SigningKeyRecord{
			Kid: k.Kid, Alg: k.Alg, PublicDer: k.PublicDER, SealedPrivate: k.SealedPrivate,
			CreatedAt: created, RetiredAt: retired, Pending: k.Pending, ActivatedAt: activated,
		})
	}
	return encodeProto(m)
}

// DecodeSigningKeys decodes the stored set; nil (no set stored yet) is the
// empty set.
func DecodeSigningKeys(b []byte) ([]store.SigningKey, error) {
	if b == nil {
		return nil, nil
	}
	var m storagev1.SigningKeysRecord
	if err := decodeProto(b, &m); err != nil {
		return nil, err
	}
	var keys []store.SigningKey
	for _, k := range m.Keys {
		keys = append(keys, store.SigningKey{
			Kid: k.Kid, Alg: k.Alg, PublicDER: k.PublicDer, SealedPrivate: k.SealedPrivate,
			CreatedAt: FromNanos(k.CreatedAt), RetiredAt: FromNanos(k.RetiredAt),
			Pending: k.Pending, ActivatedAt: FromNanos(k.ActivatedAt),
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

func usageRecord(u store.Usage) (*storagev1.UsageRecord, error) {
	last, err := Nanos(u.LastUsage)
	if err != nil {
		return nil, err
	}
	return &storagev1.UsageRecord{Reads: u.Reads, Writes: u.Writes, Errors: u.Errors, LastUsage: last}, nil
}

func usageOf(m *storagev1.UsageRecord) store.Usage {
	if m == nil {
		return store.Usage{}
	}
	return store.Usage{Reads: m.Reads, Writes: m.Writes, Errors: m.Errors, LastUsage: FromNanos(m.LastUsage)}
}

// EncodeDatabase encodes a database record with its usage totals
// (protobuf).
func EncodeDatabase(d store.Database) ([]byte, error) {
	created, err1 := Nanos(d.CreatedAt)
	terminated, err2 := Nanos(d.TerminatedAt)
	usage, err3 := usageRecord(d.Usage)
	if err := errors.Join(err1, err2, err3); err != nil {
		return nil, err
	}
	return encodeProto(&storagev1.DatabaseRecord{
		Id: d.ID, OrgId: d.OrgID, OwnerId: d.OwnerID, Name: d.Name, Keyspace: d.Keyspace,
		CloudProvider: d.CloudProvider, Tier: d.Tier, DbType: d.DBType, CapacityUnits: int64(d.CapacityUnits),
		Region: d.Region, Status: d.Status, RoleId: d.RoleID, CreatedAt: created, TerminatedAt: terminated,
		Usage: usage,
	})
}

// DecodeDatabase decodes EncodeDatabase's output.
func DecodeDatabase(b []byte) (store.Database, error) {
	var m storagev1.DatabaseRecord
	if err := decodeProto(b, &m); err != nil {
		return store.Database{}, err
	}
	return store.Database{
		ID: m.Id, OrgID: m.OrgId, OwnerID: m.OwnerId, Name: m.Name, Keyspace: m.Keyspace,
		CloudProvider: m.CloudProvider, Tier: m.Tier, DBType: m.DbType, CapacityUnits: int(m.CapacityUnits),
		Region: m.Region, Status: m.Status, RoleID: m.RoleId,
		CreatedAt: FromNanos(m.CreatedAt), TerminatedAt: FromNanos(m.TerminatedAt),
		Usage: usageOf(m.Usage),
	}, nil
}

// EncodeUsage encodes one database's usage in one month (protobuf, the
// same message as a database record's totals).
func EncodeUsage(u store.Usage) ([]byte, error) {
	m, err := usageRecord(u)
	if err != nil {
		return nil, err
	}
	return encodeProto(m)
}

// DecodeUsage decodes EncodeUsage's output; nil (no usage recorded in that
// month) is zero usage.
func DecodeUsage(b []byte) (store.Usage, error) {
	if b == nil {
		return store.Usage{}, nil
	}
	var m storagev1.UsageRecord
	if err := decodeProto(b, &m); err != nil {
		return store.Usage{}, err
	}
	return usageOf(&m), nil
}

// EncodeNamespaceStats encodes a snapshot (protobuf: doubles round-trip
// every float64 exactly; the store refuses NaN and infinities before
// encoding).
func EncodeNamespaceStats(n store.NamespaceStats) ([]byte, error) {
	updated, err := Nanos(n.UpdatedAt)
	if err != nil {
		return nil, err
	}
	return encodeProto(&storagev1.NamespaceStatsRecord{
		Tenant: n.Tenant, Namespace: n.Namespace, MessagesIn: n.MessagesIn, MessagesOut: n.MessagesOut,
		BytesIn: n.BytesIn, BytesOut: n.BytesOut, MsgRateIn: n.MsgRateIn, MsgRateOut: n.MsgRateOut,
		ThroughputIn: n.ThroughputIn, ThroughputOut: n.ThroughputOut, Subscriptions: n.Subscriptions,
		Producers: n.Producers, Consumers: n.Consumers, SubscriptionDelayed: n.SubscriptionDelayed,
		StorageSize: n.StorageSize, BacklogBytes: n.BacklogBytes, BacklogMessages: n.BacklogMessages,
		UpdatedAt: updated,
	})
}

// DecodeNamespaceStats decodes EncodeNamespaceStats's output.
func DecodeNamespaceStats(b []byte) (store.NamespaceStats, error) {
	var m storagev1.NamespaceStatsRecord
	if err := decodeProto(b, &m); err != nil {
		return store.NamespaceStats{}, err
	}
	return store.NamespaceStats{
		Tenant: m.Tenant, Namespace: m.Namespace, MessagesIn: m.MessagesIn, MessagesOut: m.MessagesOut,
		BytesIn: m.BytesIn, BytesOut: m.BytesOut, MsgRateIn: m.MsgRateIn, MsgRateOut: m.MsgRateOut,
		ThroughputIn: m.ThroughputIn, ThroughputOut: m.ThroughputOut, Subscriptions: m.Subscriptions,
		Producers: m.Producers, Consumers: m.Consumers, SubscriptionDelayed: m.SubscriptionDelayed,
		StorageSize: m.StorageSize, BacklogBytes: m.BacklogBytes, BacklogMessages: m.BacklogMessages,
		UpdatedAt: FromNanos(m.UpdatedAt),
	}, nil
}

// EncodeAuditEvent encodes an event without its Seq (the key holds it).
func EncodeAuditEvent(e store.AuditEvent) ([]byte, error) {
	t, err := Nanos(e.Time)
	if err != nil {
		return nil, err
	}
	return encodeProto(&storagev1.AuditEventRecord{
		Time: t, RequestId: e.RequestID, ActorKind: e.ActorKind, ActorId: e.ActorID,
		Action: e.Action, TargetKind: e.TargetKind, TargetId: e.TargetID, Outcome: e.Outcome, Detail: e.Detail,
	})
}

// DecodeAuditEvent decodes EncodeAuditEvent's output, stored under seq.
func DecodeAuditEvent(seq uint64, b []byte) (store.AuditEvent, error) {
	var m storagev1.AuditEventRecord
	if err := decodeProto(b, &m); err != nil {
		return store.AuditEvent{}, err
	}
	return store.AuditEvent{
		Seq: seq, Time: FromNanos(m.Time), RequestID: m.RequestId, ActorKind: m.ActorKind, ActorID: m.ActorId,
		Action: m.Action, TargetKind: m.TargetKind, TargetID: m.TargetId, Outcome: m.Outcome, Detail: m.Detail,
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
