package records

// Schema version 1 stored these records as JSON. This file holds only what
// the migration to version 2 needs: the version-1 structs and their
// decoders. Nothing else decodes JSON: a version-1 file or prefix is
// migrated once, at open, and the broker then reads protobuf only
// (store/bolt/migrate.go, store/etcd/migrate.go). Times were UTC, RFC 3339
// with nanoseconds.

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/tokenbroker/tokenbroker/store"
)

type v1OrgRecord struct {
	ID          string               `json:"id"`
	Name        string               `json:"name"`
	CreatedAt   time.Time            `json:"created_at"`
	KeyCheck    []byte               `json:"key_check"`
	TokenPolicy *v1TokenPolicyRecord `json:"token_policy,omitempty"`
}

type v1TokenPolicyRecord struct {
	MaxTokenLifetime       int64     `json:"max_token_lifetime_ns,omitempty"`
	MaxPulsarTokenLifetime int64     `json:"max_pulsar_token_lifetime_ns,omitempty"`
	UpdatedAt              time.Time `json:"updated_at"`
	UpdatedBy              string    `json:"updated_by,omitempty"`
}

// DecodeV1Org decodes a version-1 (JSON) organization record.
func DecodeV1Org(b []byte) (store.Organization, error) {
	var r v1OrgRecord
	if err := unmarshalV1(b, &r); err != nil {
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

type v1RoleRecord struct {
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

// DecodeV1Role decodes a version-1 (JSON) role record.
func DecodeV1Role(b []byte) (store.Role, error) {
	var r v1RoleRecord
	if err := unmarshalV1(b, &r); err != nil {
		return store.Role{}, err
	}
	return store.Role{
		ID: r.ID, OrgID: r.OrgID, Name: r.Name, Description: r.Description,
		Resources: r.Resources, Actions: r.Actions, Effect: r.Effect, Builtin: r.Builtin,
		UpdatedAt: r.UpdatedAt, UpdatedBy: r.UpdatedBy,
	}, nil
}

type v1TenantRecord struct {
	Name                    string     `json:"name"`
	OrgID                   string     `json:"org_id"`
	ClusterName             string     `json:"cluster_name"`
	WebServiceURL           string     `json:"web_service_url"`
	BrokerServiceURL        string     `json:"broker_service_url"`
	WebsocketURL            string     `json:"websocket_url"`
	CloudProvider           string     `json:"cloud_provider"`
	CloudRegion             string     `json:"cloud_region"`
	TokenFormat             string     `json:"token_format"`
	SealedSecret            []byte     `json:"sealed_secret"`
	CreatedAt               time.Time  `json:"created_at"`
	CreatedBy               string     `json:"created_by"`
	PreviousSealedSecret    []byte     `json:"previous_sealed_secret,omitempty"`
	PreviousSecretRetiresAt *time.Time `json:"previous_secret_retires_at,omitempty"`
}

// DecodeV1Tenant decodes a version-1 (JSON) tenant record.
func DecodeV1Tenant(b []byte) (store.Tenant, error) {
	var r v1TenantRecord
	if err := unmarshalV1(b, &r); err != nil {
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

type v1SigningKeysRecord struct {
	Keys []v1SigningKeyRecord `json:"keys"`
}

type v1SigningKeyRecord struct {
	Kid           string     `json:"kid"`
	Alg           string     `json:"alg"`
	PublicDER     []byte     `json:"public_der"`
	SealedPrivate []byte     `json:"sealed_private"`
	CreatedAt     time.Time  `json:"created_at"`
	RetiredAt     time.Time  `json:"retired_at"`
	Pending       bool       `json:"pending,omitempty"`
	ActivatedAt   *time.Time `json:"activated_at,omitempty"`
}

// DecodeV1SigningKeys decodes a version-1 (JSON) signing key set.
func DecodeV1SigningKeys(b []byte) ([]store.SigningKey, error) {
	var r v1SigningKeysRecord
	if err := unmarshalV1(b, &r); err != nil {
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

type v1DatabaseRecord struct {
	ID            string        `json:"id"`
	OrgID         string        `json:"org_id"`
	OwnerID       string        `json:"owner_id"`
	Name          string        `json:"name"`
	Keyspace      string        `json:"keyspace"`
	CloudProvider string        `json:"cloud_provider"`
	Tier          string        `json:"tier"`
	DBType        string        `json:"db_type,omitempty"`
	CapacityUnits int           `json:"capacity_units"`
	Region        string        `json:"region"`
	Status        string        `json:"status"`
	RoleID        string        `json:"role_id"`
	CreatedAt     time.Time     `json:"created_at"`
	TerminatedAt  time.Time     `json:"terminated_at"`
	Usage         v1UsageRecord `json:"usage"`
}

type v1UsageRecord struct {
	Reads     int64     `json:"reads"`
	Writes    int64     `json:"writes"`
	Errors    int64     `json:"errors"`
	LastUsage time.Time `json:"last_usage"`
}

func (r v1UsageRecord) usage() store.Usage {
	return store.Usage{Reads: r.Reads, Writes: r.Writes, Errors: r.Errors, LastUsage: r.LastUsage}
}

// DecodeV1Database decodes a version-1 (JSON) database record.
func DecodeV1Database(b []byte) (store.Database, error) {
	var r v1DatabaseRecord
	if err := unmarshalV1(b, &r); err != nil {
		return store.Database{}, err
	}
	return store.Database{
		ID: r.ID, OrgID: r.OrgID, OwnerID: r.OwnerID, Name: r.Name, Keyspace: r.Keyspace,
		CloudProvider: r.CloudProvider, Tier: r.Tier, DBType: r.DBType, CapacityUnits: r.CapacityUnits, Region: r.Region,
		Status: r.Status, RoleID: r.RoleID, CreatedAt: r.CreatedAt, TerminatedAt: r.TerminatedAt,
		Usage: r.Usage.usage(),
	}, nil
}

// DecodeV1Usage decodes a version-1 (JSON) monthly usage record.
func DecodeV1Usage(b []byte) (store.Usage, error) {
	var r v1UsageRecord
	if err := unmarshalV1(b, &r); err != nil {
		return store.Usage{}, err
	}
	return r.usage(), nil
}

type v1NamespaceStatsRecord struct {
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

// DecodeV1NamespaceStats decodes a version-1 (JSON) namespace snapshot.
func DecodeV1NamespaceStats(b []byte) (store.NamespaceStats, error) {
	var r v1NamespaceStatsRecord
	if err := unmarshalV1(b, &r); err != nil {
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

type v1AuditRecord struct {
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

// DecodeV1AuditEvent decodes a version-1 (JSON) audit event stored under
// seq.
func DecodeV1AuditEvent(seq uint64, b []byte) (store.AuditEvent, error) {
	var r v1AuditRecord
	if err := unmarshalV1(b, &r); err != nil {
		return store.AuditEvent{}, err
	}
	return store.AuditEvent{
		Seq: seq, Time: r.Time, RequestID: r.RequestID, ActorKind: r.ActorKind, ActorID: r.ActorID,
		Action: r.Action, TargetKind: r.TargetKind, TargetID: r.TargetID, Outcome: r.Outcome, Detail: r.Detail,
	}, nil
}

// IsV1JSON reports whether a stored value is a version-1 JSON record
// rather than a protobuf one. Every version-1 JSON record is an object, so
// it starts with '{' (0x7b); a protobuf record never does: 0x7b would be
// field 15 with the group wire type, which none of the storage messages
// uses (and an empty protobuf record has no first byte at all). This lets
// a migration that was interrupted, or that runs in two brokers at once,
// skip what is already converted.
func IsV1JSON(b []byte) bool { return len(b) > 0 && b[0] == '{' }

func unmarshalV1(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode schema version 1 record (corrupt data?): %w", err)
	}
	return nil
}
