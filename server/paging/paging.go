// Package paging holds what every list RPC shares: the page size rule, the
// opaque page token format, and the byte budget that keeps one page far
// below grpc's default 4 MiB receive limit.
//
// The rule (docs/api.md): a list RPC answers one page, at most page_size
// items (default and maximum MaxPageSize), with next_page_token set when
// more may follow. No list RPC builds a message whose size grows with the
// number of stored records, so no client ever meets a message-size limit;
// REST clients that do not page get every item, streamed page by page by
// the gateway (server/gateway).
package paging

import (
	"encoding/base64"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/tokenbroker/tokenbroker/server/broker"
)

// MaxPageSize bounds one page, and is the page size when none is asked for.
const MaxPageSize = 1000

// MaxPageBytes bounds the encoded items of one page: a quarter of grpc's
// default receive limit, so a page (with its envelope) fits any client
// whatever its items hold (an audit event may carry kilobytes).
const MaxPageBytes = 1 << 20

// Size returns the number of items to read for a requested page_size: 0 is
// MaxPageSize, larger values are reduced to it, negative ones refused.
func Size(requested int32) (int, error) {
	switch {
	case requested < 0:
		return 0, broker.Invalid("pageSize: must be positive")
	case requested == 0 || requested > MaxPageSize:
		return MaxPageSize, nil
	}
	return int(requested), nil
}

// Encode makes the page token that continues a list after key; kind tags
// the list (a short, dot-free string) so that one list refuses another's
// tokens. An empty key (no more pages) is the empty token.
func Encode(kind string, key []byte) string {
	if len(key) == 0 {
		return ""
	}
	return kind + "." + base64.RawURLEncoding.EncodeToString(key)
}

// Decode returns the key a page token of list kind continues after (nil for
// ""), or an invalid-argument error naming pageToken.
func Decode(kind, token string) ([]byte, error) {
	if token == "" {
		return nil, nil
	}
	raw, ok := strings.CutPrefix(token, kind+".")
	b, err := base64.RawURLEncoding.DecodeString(raw)
	if !ok || err != nil || len(b) == 0 {
		return nil, Invalid()
	}
	return b, nil
}

// Invalid is the error for a page token this list did not return.
func Invalid() error { return broker.Invalid("pageToken: not a page token returned by this list") }

// Fit returns how many of items, from the first, fit in MaxPageBytes once
// encoded (at least one when there is any: a single item is bounded by the
// API's field limits far below it). A list that answers fewer items than it
// read sets its next page token after the last item it answers.
func Fit[T proto.Message](items []T) int {
	total := 0
	for i, it := range items {
		total += proto.Size(it) + 8 // field tag and length prefix, generously
		if total > MaxPageBytes && i > 0 {
			return i
		}
	}
	return len(items)
}
