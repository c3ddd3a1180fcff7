package paging

import (
	"fmt"
	"slices"
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

// TestByKeyPages: a page holds at most the page size, is cut at
// MaxPageBytes with the next token after its last item, continues where
// the token says, and refuses bad paging input naming the field.
func TestByKeyPages(t *testing.T) {
	keys := make([]string, 2500)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%05d", i)
	}
	item := strings.Repeat("x", 2000)
	reads := 0
	list := ByKey[string, *wrapperspb.StringValue]{
		Kind: "k1",
		Read: func(after string, limit int) ([]string, string, error) {
			reads++
			i, _ := slices.BinarySearch(keys, after)
			if i < len(keys) && keys[i] == after {
				i++
			}
			page := keys[i:min(i+limit, len(keys))]
			if i+limit >= len(keys) {
				return page, "", nil
			}
			return page, page[len(page)-1], nil
		},
		Key:  func(k string) string { return k },
		Item: func(k string) *wrapperspb.StringValue { return wrapperspb.String(k + item) },
	}
	var got []string
	token := ""
	for pages := 0; ; pages++ {
		items, next, err := list.Page(0, token)
		if err != nil {
			t.Fatal(err)
		}
		size := 0
		for _, it := range items {
			size += proto.Size(it)
		}
		if len(items) == 0 || size > MaxPageBytes || (next != "" && size < MaxPageBytes*9/10) {
			t.Fatalf("page %d: %d items of 2 KB, %d bytes; want a page cut at %d", pages, len(items), size, MaxPageBytes)
		}
		for _, it := range items {
			got = append(got, strings.TrimSuffix(it.GetValue(), item))
		}
		if next == "" {
			break
		}
		if !strings.HasPrefix(next, "k1.") {
			t.Fatalf("next token %q is not the list's kind", next)
		}
		token = next
	}
	if !slices.Equal(got, keys) {
		t.Fatalf("pages hold %d keys, want %d in order", len(got), len(keys))
	}
	if items, next, err := list.Page(3, ""); err != nil || len(items) != 3 || next != Encode("k1", []byte(keys[2])) {
		t.Errorf("page_size 3: %d items, next %q, %v", len(items), next, err)
	}
	reads = 0
	for _, bad := range []struct {
		size  int32
		token string
		field string
	}{{-1, "", "pageSize"}, {0, "nonsense", "pageToken"}, {0, Encode("u1", []byte("k00001")), "pageToken"}, {0, Encode("k1", []byte{0xff}), "pageToken"}} {
		if _, _, err := list.Page(bad.size, bad.token); err == nil || !strings.Contains(err.Error(), bad.field) {
			t.Errorf("Page(%d, %q) = %v, want an error naming %s", bad.size, bad.token, err, bad.field)
		}
	}
	if reads != 0 {
		t.Errorf("bad paging input read the store %d times", reads)
	}
}
