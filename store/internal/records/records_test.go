package records

import (
	"encoding/hex"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/store"
)

// golden holds the bytes stored for these records at schema version 2:
// stored records must read back, and new writes must stay byte-identical.
// The tokens, auth tokens, users and Pulsar tokens are also the bytes of
// schema version 1 (those were protobuf already).
var golden = map[string]string{
	"audit":  "08f9fe86e6d6d8b4f6181201712a0141420773756363657373",
	"auth":   "0a010412016f1a047573657222017028f9fe86e6d6d8b4f61830f9fe86e6d6d8b4f618",
	"pulsar": "0a01691201741a0172220561646d696e2a016b32010838f9fe86e6d6d8b4f61840f9fe86e6d6d8b4f6184a0163",
	"token":  "12016f1a01722201642a010330f9fe86e6d6d8b4f61838f9bee9ebb9c1b5f61842017848f9fe86e6d6d8b4f618",
	"user":   "0a016912016f1a01752201682a017230f9fe86e6d6d8b4f61838f9fe86e6d6d8b4f618420163",
	"db":     "0a016922016e480368f9fe86e6d6d8b4f6187a1008011002180320f9fe86e6d6d8b4f618",
	"keys":   "0a1a0a016b120552533235361a010622010728f9fe86e6d6d8b4f618",
	"ns":     "0a017412016e180139000000000000f83f9001f9fe86e6d6d8b4f618",
	"org":    "0a016f12016e18f9fe86e6d6d8b4f61822020102",
	"role":   "0a017212016f1a016e2a01613201623a05616c6c6f77400148f9fe86e6d6d8b4f618520175",
	"tenant": "0a017412016f1a01634a05687332353652010558f9fe86e6d6d8b4f618620163",
	"usage":  "080120f9fe86e6d6d8b4f618",
}

// goldenV1 holds the JSON bytes schema version 1 stored for the records
// that are protobuf since version 2: the migration decodes them
// (v1json_migration.go), and must produce exactly golden's bytes.
var goldenV1 = map[string]string{
	"audit":  "7b2274696d65223a22323032362d31312d33305431323a33343a35362e3738393031323334355a222c22726571756573745f6964223a2271222c226163746f725f6b696e64223a22222c226163746f725f6964223a22222c22616374696f6e223a2241222c227461726765745f6b696e64223a22222c227461726765745f6964223a22222c226f7574636f6d65223a2273756363657373222c2264657461696c223a22227d",
	"db":     "7b226964223a2269222c226f72675f6964223a22222c226f776e65725f6964223a22222c226e616d65223a226e222c226b65797370616365223a22222c22636c6f75645f70726f7669646572223a22222c2274696572223a22222c2263617061636974795f756e697473223a332c22726567696f6e223a22222c22737461747573223a22222c22726f6c655f6964223a22222c22637265617465645f6174223a22323032362d31312d33305431323a33343a35362e3738393031323334355a222c227465726d696e617465645f6174223a22303030312d30312d30315430303a30303a30305a222c227573616765223a7b227265616473223a312c22777269746573223a322c226572726f7273223a332c226c6173745f7573616765223a22323032362d31312d33305431323a33343a35362e3738393031323334355a227d7d",
	"keys":   "7b226b657973223a5b7b226b6964223a226b222c22616c67223a225253323536222c227075626c69635f646572223a2242673d3d222c227365616c65645f70726976617465223a2242773d3d222c22637265617465645f6174223a22323032362d31312d33305431323a33343a35362e3738393031323334355a222c22726574697265645f6174223a22303030312d30312d30315430303a30303a30305a227d5d7d",
	"ns":     "7b2274656e616e74223a2274222c226e616d657370616365223a226e222c226d657373616765735f696e223a312c226d657373616765735f6f7574223a302c2262797465735f696e223a302c2262797465735f6f7574223a302c226d73675f726174655f696e223a312e352c226d73675f726174655f6f7574223a302c227468726f7567687075745f696e223a302c227468726f7567687075745f6f7574223a302c22737562736372697074696f6e73223a302c2270726f647563657273223a302c22636f6e73756d657273223a302c22737562736372697074696f6e5f64656c61796564223a302c2273746f726167655f73697a65223a302c226261636b6c6f675f6279746573223a302c226261636b6c6f675f6d65737361676573223a302c22757064617465645f6174223a22323032362d31312d33305431323a33343a35362e3738393031323334355a227d",
	"org":    "7b226964223a226f222c226e616d65223a226e222c22637265617465645f6174223a22323032362d31312d33305431323a33343a35362e3738393031323334355a222c226b65795f636865636b223a224151493d227d",
	"role":   "7b226964223a2272222c226f72675f6964223a226f222c226e616d65223a226e222c226465736372697074696f6e223a22222c227265736f7572636573223a5b2261225d2c22616374696f6e73223a5b2262225d2c22656666656374223a22616c6c6f77222c226275696c74696e223a747275652c22757064617465645f6174223a22323032362d31312d33305431323a33343a35362e3738393031323334355a222c22757064617465645f6279223a2275227d",
	"tenant": "7b226e616d65223a2274222c226f72675f6964223a226f222c22636c75737465725f6e616d65223a2263222c227765625f736572766963655f75726c223a22222c2262726f6b65725f736572766963655f75726c223a22222c22776562736f636b65745f75726c223a22222c22636c6f75645f70726f7669646572223a22222c22636c6f75645f726567696f6e223a22222c22746f6b656e5f666f726d6174223a226873323536222c227365616c65645f736563726574223a2242513d3d222c22637265617465645f6174223a22323032362d31312d33305431323a33343a35362e3738393031323334355a222c22637265617465645f6279223a2263227d",
	"usage":  "7b227265616473223a312c22777269746573223a302c226572726f7273223a302c226c6173745f7573616765223a22323032362d31312d33305431323a33343a35362e3738393031323334355a227d",
}

var gt = time.Date(2026, 11, 30, 12, 34, 56, 789012345, time.UTC)

func TestEncodingsUnchanged(t *testing.T) {
	encode := map[string]func() ([]byte, error){
		"org": func() ([]byte, error) {
			return EncodeOrg(store.Organization{ID: "o", Name: "n", CreatedAt: gt, KeyCheck: []byte{1, 2}})
		},
		"role": func() ([]byte, error) {
			return EncodeRole(store.Role{ID: "r", OrgID: "o", Name: "n", Resources: []string{"a"}, Actions: []string{"b"}, Effect: "allow", Builtin: true, UpdatedAt: gt, UpdatedBy: "u"})
		},
		"token": func() ([]byte, error) {
			return EncodeToken(store.Token{ClientID: "c", OrgID: "o", Roles: []string{"r"}, Description: "d", SecretMAC: []byte{3}, GeneratedOn: gt, Expiry: gt.Add(time.Hour), CreatedBy: "x", LastUsed: gt})
		},
		"user": func() ([]byte, error) {
			return EncodeUser(store.User{ID: "i", OrgID: "o", Username: "u", PasswordHash: "h", Roles: []string{"r"}, CreatedAt: gt, UpdatedAt: gt, CreatedBy: "c"})
		},
		"auth": func() ([]byte, error) {
			return EncodeAuthToken(store.AuthToken{MAC: []byte{4}, OrgID: "o", PrincipalKind: "user", PrincipalID: "p", CreatedAt: gt, LastUsed: gt})
		},
		"tenant": func() ([]byte, error) {
			return EncodeTenant(store.Tenant{Name: "t", OrgID: "o", ClusterName: "c", TokenFormat: "hs256", SealedSecret: []byte{5}, CreatedAt: gt, CreatedBy: "c"})
		},
		"keys": func() ([]byte, error) {
			return EncodeSigningKeys([]store.SigningKey{{Kid: "k", Alg: "RS256", PublicDER: []byte{6}, SealedPrivate: []byte{7}, CreatedAt: gt}})
		},
		"pulsar": func() ([]byte, error) {
			return EncodePulsarToken(store.PulsarToken{ID: "i", Tenant: "t", Role: "r", Type: "admin", Kid: "k", MAC: []byte{8}, IssuedAt: gt, Expiry: gt, CreatedBy: "c"})
		},
		"db": func() ([]byte, error) {
			return EncodeDatabase(store.Database{ID: "i", Name: "n", CapacityUnits: 3, CreatedAt: gt, Usage: store.Usage{Reads: 1, Writes: 2, Errors: 3, LastUsage: gt}})
		},
		"usage": func() ([]byte, error) { return EncodeUsage(store.Usage{Reads: 1, LastUsage: gt}) },
		"ns": func() ([]byte, error) {
			return EncodeNamespaceStats(store.NamespaceStats{Tenant: "t", Namespace: "n", MessagesIn: 1, MsgRateIn: 1.5, UpdatedAt: gt})
		},
		"audit": func() ([]byte, error) {
			return EncodeAuditEvent(store.AuditEvent{Seq: 9, Time: gt, RequestID: "q", Action: "A", Outcome: "success"})
		},
	}
	if len(encode) != len(golden) {
		t.Fatalf("%d encoders, %d golden values", len(encode), len(golden))
	}
	for name, f := range encode {
		b, err := f()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := hex.EncodeToString(b); got != golden[name] {
			t.Errorf("%s encodes to\n %s\nwant (as stored before)\n %s", name, got, golden[name])
			t.Logf("golden %s=%s", name, got)
		}
	}
}

// TestV1RecordsMigrate: every version-1 JSON record decodes to the record
// it was written from, which encodes to exactly the version-2 bytes.
func TestV1RecordsMigrate(t *testing.T) {
	convert := map[string]func([]byte) ([]byte, error){
		"org":    func(b []byte) ([]byte, error) { return reencode(b, DecodeV1Org, EncodeOrg) },
		"role":   func(b []byte) ([]byte, error) { return reencode(b, DecodeV1Role, EncodeRole) },
		"tenant": func(b []byte) ([]byte, error) { return reencode(b, DecodeV1Tenant, EncodeTenant) },
		"keys":   func(b []byte) ([]byte, error) { return reencode(b, DecodeV1SigningKeys, EncodeSigningKeys) },
		"db":     func(b []byte) ([]byte, error) { return reencode(b, DecodeV1Database, EncodeDatabase) },
		"usage":  func(b []byte) ([]byte, error) { return reencode(b, DecodeV1Usage, EncodeUsage) },
		"ns":     func(b []byte) ([]byte, error) { return reencode(b, DecodeV1NamespaceStats, EncodeNamespaceStats) },
		"audit": func(b []byte) ([]byte, error) {
			return reencode(b, func(b []byte) (store.AuditEvent, error) { return DecodeV1AuditEvent(9, b) }, EncodeAuditEvent)
		},
	}
	if len(convert) != len(goldenV1) {
		t.Fatalf("%d conversions, %d version-1 golden values", len(convert), len(goldenV1))
	}
	for name, f := range convert {
		v1, err := hex.DecodeString(goldenV1[name])
		if err != nil {
			t.Fatal(err)
		}
		if !IsV1JSON(v1) {
			t.Errorf("%s: version-1 value not recognised as JSON", name)
		}
		if want, _ := hex.DecodeString(golden[name]); IsV1JSON(want) {
			t.Errorf("%s: version-2 value taken for JSON", name)
		}
		b, err := f(v1)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := hex.EncodeToString(b); got != golden[name] {
			t.Errorf("%s migrates to\n %s\nwant\n %s", name, got, golden[name])
		}
	}
}

func reencode[T any](b []byte, decode func([]byte) (T, error), encode func(T) ([]byte, error)) ([]byte, error) {
	r, err := decode(b)
	if err != nil {
		return nil, err
	}
	return encode(r)
}

// TestTokenValueOmitsItsKey: since schema version 2 a token value does not
// repeat its client ID (the key); a value written before, which holds it,
// decodes to the same token, and one holding another client ID is refused.
func TestTokenValueOmitsItsKey(t *testing.T) {
	old, _ := hex.DecodeString("0a0163" + golden["token"]) // field 1 = "c", as written before
	want, err := DecodeToken("c", mustHex(t, golden["token"]))
	if err != nil || want.ClientID != "c" {
		t.Fatalf("decode under its key: %+v, %v", want, err)
	}
	got, err := DecodeToken("c", old)
	if err != nil || got.ClientID != "c" || got.Description != want.Description || !got.Expiry.Equal(want.Expiry) {
		t.Fatalf("value holding its client ID: %+v, %v", got, err)
	}
	if _, err := DecodeToken("other", old); err == nil {
		t.Fatal("a value holding another client ID than its key decoded")
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
