package bolt

import (
	"testing"
	"time"

	storagev1 "github.com/tokenbroker/tokenbroker/gen/tokenbroker/storage/v1"
	"github.com/tokenbroker/tokenbroker/store"
)

// Records written before the credential-lifecycle fields existed decode
// with those fields zero, and records without them are written without
// them (so an older binary reading a newer file sees what it knows).
func TestRecordsWithoutLifecycleFields(t *testing.T) {
	created := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

	org, err := decodeOrg([]byte(`{"id":"o","name":"n","created_at":"2026-11-01T00:00:00Z","key_check":"AQI="}`))
	if err != nil || org.TokenPolicy != (store.TokenPolicy{}) || org.ID != "o" {
		t.Fatalf("old organization record: %+v, %v", org, err)
	}
	if b, _ := encodeOrg(org); string(b) != `{"id":"o","name":"n","created_at":"2026-11-01T00:00:00Z","key_check":"AQI="}` {
		t.Errorf("organization without a policy encodes as %s", b)
	}

	tn, err := decodeTenant([]byte(`{"name":"acme","token_format":"hs256","sealed_secret":"AQI=","created_at":"2026-11-01T00:00:00Z"}`))
	if err != nil || tn.PreviousSealedSecret != nil || !tn.PreviousSecretRetiresAt.IsZero() || len(tn.SealedSecret) != 2 {
		t.Fatalf("old tenant record: %+v, %v", tn, err)
	}

	keys, err := decodeSigningKeys([]byte(`{"keys":[{"kid":"k","alg":"RS256","created_at":"2026-11-01T00:00:00Z","retired_at":"0001-01-01T00:00:00Z"}]}`))
	if err != nil || len(keys) != 1 || keys[0].Pending || !keys[0].ActivatedAt.IsZero() || !keys[0].CreatedAt.Equal(created) {
		t.Fatalf("old signing key record: %+v, %v", keys, err)
	}

	old, err := encodeProto(&storagev1.TokenRecord{ClientId: "c", Roles: []string{"r"}, GeneratedOn: created.UnixNano()})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := decodeToken(old)
	if err != nil || tok.RotatedTo != "" || !tok.RotatedAt.IsZero() || tok.ClientID != "c" {
		t.Fatalf("old token record: %+v, %v", tok, err)
	}
}
