package bolt

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	storagev1 "github.com/tokenbroker/tokenbroker/gen/tokenbroker/storage/v1"
	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/internal/records"
)

// Records written before the credential-lifecycle fields existed (schema
// version 1 JSON, read by the migration) decode with those fields zero,
// and records without them are written without them.
func TestRecordsWithoutLifecycleFields(t *testing.T) {
	created := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

	org, err := records.DecodeV1Org([]byte(`{"id":"o","name":"n","created_at":"2026-11-01T00:00:00Z","key_check":"AQI="}`))
	if err != nil || org.TokenPolicy != (store.TokenPolicy{}) || org.ID != "o" {
		t.Fatalf("old organization record: %+v, %v", org, err)
	}
	var m storagev1.OrgRecord
	if b, _ := encodeOrg(org); proto.Unmarshal(b, &m) != nil || m.TokenPolicy != nil {
		t.Errorf("organization without a policy encodes as %x", b)
	}

	tn, err := records.DecodeV1Tenant([]byte(`{"name":"acme","token_format":"hs256","sealed_secret":"AQI=","created_at":"2026-11-01T00:00:00Z"}`))
	if err != nil || tn.PreviousSealedSecret != nil || !tn.PreviousSecretRetiresAt.IsZero() || len(tn.SealedSecret) != 2 {
		t.Fatalf("old tenant record: %+v, %v", tn, err)
	}

	keys, err := records.DecodeV1SigningKeys([]byte(`{"keys":[{"kid":"k","alg":"RS256","created_at":"2026-11-01T00:00:00Z","retired_at":"0001-01-01T00:00:00Z"}]}`))
	if err != nil || len(keys) != 1 || keys[0].Pending || !keys[0].ActivatedAt.IsZero() || !keys[0].CreatedAt.Equal(created) {
		t.Fatalf("old signing key record: %+v, %v", keys, err)
	}

	old, err := encodeProto(&storagev1.TokenRecord{ClientId: "c", Roles: []string{"r"}, GeneratedOn: created.UnixNano()})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := decodeToken("c", old)
	if err != nil || tok.RotatedTo != "" || !tok.RotatedAt.IsZero() || tok.ClientID != "c" {
		t.Fatalf("old token record: %+v, %v", tok, err)
	}
}
