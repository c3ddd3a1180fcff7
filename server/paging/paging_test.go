package paging

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	tbv1 "github.com/tokenbroker/tokenbroker/gen/tokenbroker/v1"
)

func TestSize(t *testing.T) {
	for in, want := range map[int32]int{0: MaxPageSize, 1: 1, 999: 999, MaxPageSize: MaxPageSize, MaxPageSize + 1: MaxPageSize, 1 << 30: MaxPageSize} {
		if got, err := Size(in); err != nil || got != want {
			t.Errorf("Size(%d) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := Size(-1); err == nil || !strings.Contains(err.Error(), "pageSize") {
		t.Errorf("Size(-1) = %v, want an error naming pageSize", err)
	}
}

func TestTokenRoundTripAndKinds(t *testing.T) {
	if Encode("u1", nil) != "" {
		t.Error("no key: not the empty token")
	}
	tok := Encode("u1", []byte("alice\x00bob"))
	if got, err := Decode("u1", tok); err != nil || string(got) != "alice\x00bob" {
		t.Errorf("round trip: %q, %v", got, err)
	}
	if got, err := Decode("u1", ""); err != nil || got != nil {
		t.Errorf("empty token: %q, %v", got, err)
	}
	for _, bad := range []string{Encode("d1", []byte("x")), "u1.", "u1.!!", "nonsense", "u1"} {
		if _, err := Decode("u1", bad); err == nil || !strings.Contains(err.Error(), "pageToken") {
			t.Errorf("Decode(%q) = %v, want an error naming pageToken", bad, err)
		}
	}
}

// TestFitKeepsAPageFarBelowTheReceiveLimit: a page of large items is cut
// at MaxPageBytes, small pages are whole, and one oversized item still goes
// out alone (the list must make progress).
func TestFitKeepsAPageFarBelowTheReceiveLimit(t *testing.T) {
	big := make([]*tbv1.AuditEvent, 1000)
	for i := range big {
		big[i] = &tbv1.AuditEvent{Detail: strings.Repeat("x", 4096)}
	}
	n := Fit(big)
	if n == 0 || n >= len(big) {
		t.Fatalf("Fit kept %d of %d 4 KiB events", n, len(big))
	}
	resp := &tbv1.ListAuditEventsResponse{Events: big[:n], NextPageToken: strings.Repeat("t", 64)}
	if size := proto.Size(resp); size > MaxPageBytes+1024 || size > 4<<20/2 {
		t.Fatalf("cut page encodes to %d bytes", size)
	}
	small := []*wrapperspb.StringValue{wrapperspb.String("a"), wrapperspb.String("b")}
	if Fit(small) != 2 {
		t.Error("a small page is cut")
	}
	huge := []*wrapperspb.StringValue{wrapperspb.String(strings.Repeat("x", 2*MaxPageBytes)), wrapperspb.String("b")}
	if Fit(huge) != 1 {
		t.Errorf("Fit(huge first) = %d, want 1", Fit(huge))
	}
	if Fit([]*wrapperspb.StringValue{}) != 0 {
		t.Error("empty page")
	}
}
