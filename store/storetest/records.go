package storetest

import (
	"crypto/sha256"
	"fmt"
	"reflect"
	"time"

	"github.com/tokenbroker/tokenbroker/store"
)

// Base is the fixed point in time the suite's records are built around. It
// has microsecond precision, the least every backend must keep.
var Base = time.Date(2030, time.January, 2, 3, 4, 5, 123456000, time.UTC)

const orgID = "6f1c2d3e-4a5b-4c6d-8e7f-0123456789ab"

// ClientID returns the n-th of a sequence of valid client IDs (24 ASCII
// letters). Their lexical order is the numeric order of n, which makes
// pagination order easy to check.
func ClientID(n int) string {
	b := make([]byte, 24)
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = 'A' + byte(n%26)
		n /= 26
	}
	return string(b)
}

// RoleID returns the n-th of a sequence of UUID-shaped role IDs, in
// ascending order of n.
func RoleID(n int) string {
	return fmt.Sprintf("00000000-0000-4000-8000-%012x", n)
}

// NewOrganization returns a complete organization record.
func NewOrganization() store.Organization {
	mac := sha256.Sum256([]byte("key check"))
	return store.Organization{
		ID:        orgID,
		Name:      "example-org",
		CreatedAt: Base,
		KeyCheck:  mac[:],
	}
}

// NewRole returns a complete role record with the given ID.
func NewRole(id string) store.Role {
	return store.Role{
		ID:          id,
		OrgID:       orgID,
		Name:        "role-" + id,
		Description: "test role",
		Resources:   []string{"drn:astra:org:" + orgID, "drn:astra:org:" + orgID + ":db:*"},
		Actions:     []string{"org-read", "db-cql"},
		Effect:      "allow",
		UpdatedAt:   Base,
		UpdatedBy:   ClientID(0),
	}
}

// NewToken returns a complete, never-expiring token record holding roles,
// with a 32-byte MAC derived from the client ID.
func NewToken(clientID string, roles ...string) store.Token {
	mac := sha256.Sum256([]byte("secret of " + clientID))
	return store.Token{
		ClientID:    clientID,
		OrgID:       orgID,
		Roles:       roles,
		Description: "token " + clientID,
		SecretMAC:   mac[:],
		GeneratedOn: Base,
		CreatedBy:   ClientID(0),
	}
}

// UserID returns the n-th of a sequence of UUID-shaped user IDs, in
// ascending order of n. They never equal a RoleID.
func UserID(n int) string {
	return fmt.Sprintf("00000000-0000-4000-9000-%012x", n)
}

// Username returns the n-th of a sequence of usernames, in ascending order
// of n.
func Username(n int) string {
	return fmt.Sprintf("user-%04d", n)
}

// NewUser returns a complete user record holding roles.
func NewUser(id, username string, roles ...string) store.User {
	return store.User{
		ID:           id,
		OrgID:        orgID,
		Username:     username,
		PasswordHash: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdCBvZiA" + id + "$aGFzaA",
		Roles:        roles,
		CreatedAt:    Base,
		UpdatedAt:    Base,
		CreatedBy:    ClientID(0),
	}
}

// AuthMAC returns the 32-byte MAC of the n-th auth token. Distinct n give
// distinct MACs; they are binary and may contain any byte.
func AuthMAC(n int) []byte {
	mac := sha256.Sum256(fmt.Appendf(nil, "auth token %d", n))
	return mac[:]
}

// NewAuthToken returns a complete auth token record with MAC AuthMAC(n),
// minted for the principal of kind (store.PrincipalApplicationToken or
// store.PrincipalUser) and ID principalID, created and last used at Base.
func NewAuthToken(n int, kind, principalID string) store.AuthToken {
	return store.AuthToken{
		MAC:           AuthMAC(n),
		OrgID:         orgID,
		PrincipalKind: kind,
		PrincipalID:   principalID,
		CreatedAt:     Base,
		LastUsed:      Base,
	}
}

// TenantName returns the n-th of a sequence of valid tenant names, in
// ascending order of n.
func TenantName(n int) string {
	return fmt.Sprintf("tenant-%04d", n)
}

// NewTenant returns a complete tenant record (an hs256 tenant, so that it
// carries a sealed secret) with the given name.
func NewTenant(name string) store.Tenant {
	secret := sha256.Sum256([]byte("sealed secret of " + name))
	return store.Tenant{
		Name:             name,
		OrgID:            orgID,
		ClusterName:      "pulsar-local",
		WebServiceURL:    "https://pulsar.example.com:8443",
		BrokerServiceURL: "pulsar+ssl://pulsar.example.com:6651",
		WebsocketURL:     "wss://pulsar.example.com:8500/ws/v2",
		CloudProvider:    "self-hosted",
		CloudRegion:      "local",
		TokenFormat:      "hs256",
		SealedSecret:     secret[:],
		CreatedAt:        Base,
		CreatedBy:        ClientID(0),
	}
}

// PulsarTokenID returns the n-th of a sequence of UUID-shaped Pulsar token
// IDs, in ascending order of n. They never equal a RoleID or a UserID.
func PulsarTokenID(n int) string {
	return fmt.Sprintf("00000000-0000-4000-a000-%012x", n)
}

// PulsarMAC returns the 32-byte MAC of the n-th Pulsar token. Distinct n
// give distinct MACs, which never equal an AuthMAC.
func PulsarMAC(n int) []byte {
	mac := sha256.Sum256(fmt.Appendf(nil, "pulsar token %d", n))
	return mac[:]
}

// NewPulsarToken returns a complete, never-expiring Pulsar token record of
// tenant with ID PulsarTokenID(n) and MAC PulsarMAC(n), issued at Base.
func NewPulsarToken(n int, tenant string) store.PulsarToken {
	return store.PulsarToken{
		ID:        PulsarTokenID(n),
		Tenant:    tenant,
		Role:      fmt.Sprintf("client-%d", n),
		Type:      "non-admin",
		Kid:       Kid(1),
		MAC:       PulsarMAC(n),
		IssuedAt:  Base,
		CreatedBy: ClientID(0),
	}
}

// Kid returns the n-th of a sequence of signing key IDs.
func Kid(n int) string {
	return fmt.Sprintf("key-%04d", n)
}

// NewSigningKey returns a complete, active signing key with ID Kid(n),
// created n hours after Base: keys of ascending n are oldest first. Its key
// material is random-looking bytes, not a real key (the store never parses
// it).
func NewSigningKey(n int) store.SigningKey {
	pub := sha256.Sum256(fmt.Appendf(nil, "public key %d", n))
	priv := sha256.Sum256(fmt.Appendf(nil, "sealed private key %d", n))
	return store.SigningKey{
		Kid:           Kid(n),
		Alg:           "RS256",
		PublicDER:     pub[:],
		SealedPrivate: priv[:],
		CreatedAt:     Base.Add(time.Duration(n) * time.Hour),
	}
}

// DatabaseID returns the n-th of a sequence of UUID-shaped database IDs, in
// ascending order of n. They never equal a RoleID, UserID or PulsarTokenID.
func DatabaseID(n int) string {
	return fmt.Sprintf("00000000-0000-4000-b000-%012x", n)
}

// DatabaseRoleID returns the ID of the n-th database's role (see
// NewDatabaseRole), in ascending order of n. It never equals a RoleID.
func DatabaseRoleID(n int) string {
	return fmt.Sprintf("00000000-0000-4000-c000-%012x", n)
}

// DatabaseClientID returns the client ID of the n-th database's token (see
// NewDatabaseToken). It never equals ClientID(m) for m below 2^20.
func DatabaseClientID(n int) string {
	return ClientID(1<<20 + n)
}

// NewDatabase returns a complete, active database record with ID
// DatabaseID(n), scoped to the role DatabaseRoleID(n), created at Base,
// with zero usage: the database of NewDatabaseRole(n) and
// NewDatabaseToken(n).
func NewDatabase(n int) store.Database {
	return store.Database{
		ID:            DatabaseID(n),
		OrgID:         orgID,
		OwnerID:       ClientID(0),
		Name:          fmt.Sprintf("db-%04d", n),
		Keyspace:      "ks",
		CloudProvider: "self-hosted",
		Tier:          "serverless",
		CapacityUnits: 1,
		Region:        "local",
		Status:        "ACTIVE",
		RoleID:        DatabaseRoleID(n),
		CreatedAt:     Base,
	}
}

// NewDatabaseRole returns the complete role of NewDatabase(n), with ID
// DatabaseRoleID(n), allowing CQL access to that database only.
func NewDatabaseRole(n int) store.Role {
	r := NewRole(DatabaseRoleID(n))
	r.Name = fmt.Sprintf("db-%04d-role", n)
	r.Resources = []string{"drn:astra:org:" + orgID + ":db:" + DatabaseID(n)}
	r.Actions = []string{"db-cql"}
	return r
}

// NewDatabaseToken returns the complete, never-expiring application token
// of NewDatabase(n), with client ID DatabaseClientID(n), holding
// DatabaseRoleID(n) and then extra.
func NewDatabaseToken(n int, extra ...string) store.Token {
	return NewToken(DatabaseClientID(n), append([]string{DatabaseRoleID(n)}, extra...)...)
}

// NewNamespaceStats returns a complete snapshot of tenant's namespace ns,
// updated at Base: every counter and rate is non-zero, and they differ from
// one another, so that a field stored or returned in the wrong place shows.
func NewNamespaceStats(tenant, ns string) store.NamespaceStats {
	return store.NamespaceStats{
		Tenant:              tenant,
		Namespace:           ns,
		MessagesIn:          1001,
		MessagesOut:         1002,
		BytesIn:             1003,
		BytesOut:            1004,
		MsgRateIn:           10.5,
		MsgRateOut:          20.25,
		ThroughputIn:        30.125,
		ThroughputOut:       0.1, // not exact in binary: must still round-trip
		Subscriptions:       5,
		Producers:           6,
		Consumers:           7,
		SubscriptionDelayed: 8,
		StorageSize:         1 << 40,
		BacklogBytes:        1009,
		BacklogMessages:     1010,
		UpdatedAt:           Base,
	}
}

// NewAuditEvent returns a complete audit event of a successful call to
// action on the target of kind and id, at Base: every field is set (but
// Seq, which the store assigns), so that one stored in the wrong place
// shows.
func NewAuditEvent(action, targetKind, targetID string) store.AuditEvent {
	return store.AuditEvent{
		Time:       Base,
		RequestID:  "req-" + targetID,
		ActorKind:  store.PrincipalApplicationToken,
		ActorID:    ClientID(999),
		Action:     action,
		TargetKind: targetKind,
		TargetID:   targetID,
		Outcome:    "success",
		Detail:     "created by the conformance suite",
	}
}

// sameAuditEvent compares events but for their Seq.
func sameAuditEvent(a, b store.AuditEvent) bool {
	a.Seq, b.Seq = 0, 0
	a.Time, b.Time = a.Time.UTC(), b.Time.UTC()
	return reflect.DeepEqual(a, b)
}

func sameNamespaceStats(a, b store.NamespaceStats) bool {
	a.UpdatedAt, b.UpdatedAt = a.UpdatedAt.UTC(), b.UpdatedAt.UTC()
	return reflect.DeepEqual(a, b)
}

func sameDatabase(a, b store.Database) bool {
	norm := func(d store.Database) store.Database {
		d.CreatedAt, d.TerminatedAt = d.CreatedAt.UTC(), d.TerminatedAt.UTC()
		d.Usage.LastUsage = d.Usage.LastUsage.UTC()
		return d
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

func sameUsage(a, b store.Usage) bool {
	a.LastUsage, b.LastUsage = a.LastUsage.UTC(), b.LastUsage.UTC()
	return reflect.DeepEqual(a, b)
}

func sameTenant(a, b store.Tenant) bool {
	norm := func(t store.Tenant) store.Tenant {
		t.SealedSecret = emptyToNil(t.SealedSecret)
		t.PreviousSealedSecret = emptyToNil(t.PreviousSealedSecret)
		t.CreatedAt, t.PreviousSecretRetiresAt = t.CreatedAt.UTC(), t.PreviousSecretRetiresAt.UTC()
		return t
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

func samePulsarToken(a, b store.PulsarToken) bool {
	norm := func(t store.PulsarToken) store.PulsarToken {
		t.MAC = emptyToNil(t.MAC)
		t.IssuedAt, t.Expiry = t.IssuedAt.UTC(), t.Expiry.UTC()
		return t
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

func sameSigningKeys(a, b []store.SigningKey) bool {
	norm := func(keys []store.SigningKey) []store.SigningKey {
		var out []store.SigningKey
		for _, k := range keys {
			k.PublicDER, k.SealedPrivate = emptyToNil(k.PublicDER), emptyToNil(k.SealedPrivate)
			k.CreatedAt, k.RetiredAt, k.ActivatedAt = k.CreatedAt.UTC(), k.RetiredAt.UTC(), k.ActivatedAt.UTC()
			out = append(out, k)
		}
		return out
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

func sameUser(a, b store.User) bool {
	norm := func(u store.User) store.User {
		u.Roles = emptyToNil(u.Roles)
		u.CreatedAt, u.UpdatedAt = u.CreatedAt.UTC(), u.UpdatedAt.UTC()
		return u
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

func sameAuthToken(a, b store.AuthToken) bool {
	norm := func(t store.AuthToken) store.AuthToken {
		t.MAC = emptyToNil(t.MAC)
		t.CreatedAt, t.LastUsed = t.CreatedAt.UTC(), t.LastUsed.UTC()
		return t
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

// sameToken reports whether two tokens hold the same data: times compare by
// instant, and nil and empty slices are the same.
func sameToken(a, b store.Token) bool {
	norm := func(t store.Token) store.Token {
		t.Roles = emptyToNil(t.Roles)
		t.SecretMAC = emptyToNil(t.SecretMAC)
		t.GeneratedOn, t.Expiry, t.LastUsed, t.RotatedAt = t.GeneratedOn.UTC(), t.Expiry.UTC(), t.LastUsed.UTC(), t.RotatedAt.UTC()
		return t
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

func sameRole(a, b store.Role) bool {
	norm := func(r store.Role) store.Role {
		r.Resources = emptyToNil(r.Resources)
		r.Actions = emptyToNil(r.Actions)
		r.UpdatedAt = r.UpdatedAt.UTC()
		return r
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

func sameOrg(a, b store.Organization) bool {
	norm := func(o store.Organization) store.Organization {
		o.KeyCheck = emptyToNil(o.KeyCheck)
		o.CreatedAt, o.TokenPolicy.UpdatedAt = o.CreatedAt.UTC(), o.TokenPolicy.UpdatedAt.UTC()
		return o
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

func emptyToNil[S ~[]E, E any](s S) S {
	if len(s) == 0 {
		return nil
	}
	return s
}
