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
	"unicode/utf8"

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
func Fit[T proto.Message](items []T) int { return FitBy(items, protoSize[T]) }

func protoSize[T proto.Message](m T) int { return proto.Size(m) }

// FitBy is Fit for items whose encoded size in the answer is size(item):
// an entry of a map field also carries its key.
func FitBy[T any](items []T, size func(T) int) int {
	total := 0
	for i, it := range items {
		total += size(it) + 8 // field tag and length prefix, generously
		if total > MaxPageBytes && i > 0 {
			return i
		}
	}
	return len(items)
}

// ByKey answers the pages of a list whose items are ordered by a string
// key (an ID, a name) that its page tokens hold: every list read from one
// of the store's ...Page reads keyed that way.
type ByKey[R any, P proto.Message] struct {
	// Kind tags the list's page tokens (see Encode).
	Kind string
	// Read reads up to limit records after the key after ("" from the
	// first), and the key to continue after ("" when there are no more).
	Read func(after string, limit int) ([]R, string, error)
	// Key is a record's key; Item its answer.
	Key  func(R) string
	Item func(R) P
	// Size is an item's encoded size in the answer; nil: proto.Size.
	Size func(P) int
}

// Page answers one page for a request's page_size and page_token: the
// items, at most Size(pageSize) and cut at MaxPageBytes, and the token of
// the next page ("" on the last). Bad paging input is an invalid-argument
// error naming the field; Read's errors are returned unchanged.
func (l ByKey[R, P]) Page(pageSize int32, pageToken string) ([]P, string, error) {
	size, err := Size(pageSize)
	if err != nil {
		return nil, "", err
	}
	after, err := Decode(l.Kind, pageToken)
	if err != nil || (after != nil && !utf8.Valid(after)) { // keys are strings
		return nil, "", Invalid()
	}
	recs, next, err := l.Read(string(after), size)
	if err != nil {
		return nil, "", err
	}
	items := make([]P, len(recs))
	for i, r := range recs {
		items[i] = l.Item(r)
	}
	fit := l.Size
	if fit == nil {
		fit = protoSize[P]
	}
	if n := FitBy(items, fit); n < len(items) {
		items, next = items[:n], l.Key(recs[n-1])
	}
	return items, Encode(l.Kind, []byte(next)), nil
}
