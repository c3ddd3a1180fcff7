package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/grpc-ecosystem/grpc-gateway/v2/utilities"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	tbv1 "github.com/tokenbroker/tokenbroker/gen/tokenbroker/v1"
)

// A list route that can grow without bound (every application token of an
// organization) is answered page by page: the handler calls the paged RPC
// again and again, each page a complete call through the interceptor chain
// (authentication and the authorization rule on every page), and writes
// each page's items into one JSON array as they come. Neither the broker nor
// the gateway ever holds more than one page, and no message-size limit
// applies to the whole list.
//
// A client that sends pageSize or pageToken gets exactly one page, with
// nextPageToken (a bare-array route then answers an object holding the
// array). A client that sends neither (Astra's clients) gets every item in
// one response, streamed; except on a route with Astra's own paging
// (/v2/databases: limit, starting_after), which answers Astra's one page.

// streamPageSize is how many items each internal page carries.
const streamPageSize = 1000

// pageWriteTime is the write deadline granted per streamed page: the
// server's WriteTimeout bounds one page, not the whole list.
const pageWriteTime = 30 * time.Second

// pagedList describes one streamed list route.
type pagedList struct {
	method, pattern string // full RPC name; HTTP path pattern
	field           string // JSON name of the repeated field: "clients"
	// bare: Astra answers a bare JSON array (response_body: field); a paged
	// answer is then {"<field>":[…],"nextPageToken":…}.
	bare bool
	// key, when set, makes the collection a JSON object of the items by
	// key instead of an array (a map field: namespace statistics by
	// "tenant/namespace").
	key func(item proto.Message) string
	// astraPaged: the route has Astra's own paging (a bounded default
	// page), so an answer without pageSize/pageToken is that one page, not
	// the whole list.
	astraPaged bool
	// head returns the members of the answer before the array, from the
	// first page (users carry OrgID and OrgName); nil: none.
	head func(first proto.Message) ([]byte, error)
	// call fetches one page: the request is populated from the path and
	// the query string, and given the page size and token (both zero for
	// Astra's own page); it returns the response, its items and the next
	// token.
	call func(ctx context.Context, query *http.Request, path map[string]string, size int32, token string) (proto.Message, []proto.Message, string, error)
}

// populate fills req from the path parameters and the query string, as the
// generated handlers do; a bad value is an InvalidArgument naming it.
func populate(req proto.Message, r *http.Request, path map[string]string) error {
	for k, v := range path {
		if err := runtime.PopulateFieldFromPath(req, k, v); err != nil {
			return status.Errorf(codes.InvalidArgument, "%s: %v", k, err)
		}
	}
	filter := utilities.NewDoubleArray(nil)
	if len(path) > 0 {
		seqs := make([][]string, 0, len(path))
		for k := range path {
			seqs = append(seqs, []string{k})
		}
		filter = utilities.NewDoubleArray(seqs)
	}
	if err := runtime.PopulateQueryParameters(req, r.Form, filter); err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	return nil
}

func asMessages[T proto.Message](items []T) []proto.Message {
	out := make([]proto.Message, len(items))
	for i, it := range items {
		out[i] = it
	}
	return out
}

// rpcPage makes a pagedList's call from a list RPC: items returns a
// response's items, setPage gives the request its page size and token.
func rpcPage[Req proto.Message, Resp listResponse, Item proto.Message](rpc func(context.Context, Req, ...grpc.CallOption) (Resp, error),
	items func(Resp) []Item, setPage func(req Req, size int32, token string)) func(context.Context, *http.Request, map[string]string, int32, string) (proto.Message, []proto.Message, string, error) {
	return func(ctx context.Context, r *http.Request, path map[string]string, size int32, token string) (proto.Message, []proto.Message, string, error) {
		var zero Req
		req := zero.ProtoReflect().New().Interface().(Req)
		if err := populate(req, r, path); err != nil {
			return nil, nil, "", err
		}
		setPage(req, size, token)
		resp, err := rpc(ctx, req)
		if err != nil {
			return nil, nil, "", err
		}
		return resp, asMessages(items(resp)), resp.GetNextPageToken(), nil
	}
}

// listResponse is the answer of a list RPC.
type listResponse interface {
	proto.Message
	GetNextPageToken() string
}

func tokenList(c tbv1.TokenServiceClient) pagedList {
	return pagedList{
		method:  tbv1.TokenService_ListTokens_FullMethodName,
		pattern: "/v2/clientIdSecrets",
		field:   "clients",
		call: rpcPage(c.ListTokens, (*tbv1.ListTokensResponse).GetClients,
			func(q *tbv1.ListTokensRequest, size int32, token string) { q.PageSize, q.PageToken = size, token }),
	}
}

func roleList(c tbv1.TokenServiceClient) pagedList {
	return pagedList{
		method:  tbv1.TokenService_ListRoles_FullMethodName,
		pattern: "/v2/organizations/roles",
		field:   "roles",
		bare:    true,
		call: rpcPage(c.ListRoles, (*tbv1.ListRolesResponse).GetRoles,
			func(q *tbv1.ListRolesRequest, size int32, token string) { q.PageSize, q.PageToken = size, token }),
	}
}

func userList(c tbv1.AuthServiceClient) pagedList {
	return pagedList{
		method:  tbv1.AuthService_ListUsers_FullMethodName,
		pattern: "/v2/organizations/users",
		field:   "Users",
		head: func(first proto.Message) ([]byte, error) {
			resp := first.(*tbv1.ListUsersResponse)
			id, err := json.Marshal(resp.GetOrgId())
			if err != nil {
				return nil, err
			}
			name, err := json.Marshal(resp.GetOrgName())
			if err != nil {
				return nil, err
			}
			return []byte(`"OrgID":` + string(id) + `,"OrgName":` + string(name)), nil
		},
		call: rpcPage(c.ListUsers, (*tbv1.ListUsersResponse).GetUsers,
			func(q *tbv1.ListUsersRequest, size int32, token string) { q.PageSize, q.PageToken = size, token }),
	}
}

func tenantList(c tbv1.PulsarTokenServiceClient) pagedList {
	return pagedList{
		method:  tbv1.PulsarTokenService_ListTenants_FullMethodName,
		pattern: "/v2/streaming/tenants",
		field:   "tenants",
		bare:    true,
		call: rpcPage(c.ListTenants, (*tbv1.ListTenantsResponse).GetTenants,
			func(q *tbv1.ListTenantsRequest, size int32, token string) { q.PageSize, q.PageToken = size, token }),
	}
}

func pulsarTokenList(c tbv1.PulsarTokenServiceClient) pagedList {
	return pagedList{
		method:  tbv1.PulsarTokenService_ListPulsarTokens_FullMethodName,
		pattern: "/v2/streaming/tenants/{tenant}/tokens",
		field:   "tokens",
		bare:    true,
		call: rpcPage(c.ListPulsarTokens, (*tbv1.ListPulsarTokensResponse).GetTokens,
			func(q *tbv1.ListPulsarTokensRequest, size int32, token string) { q.PageSize, q.PageToken = size, token }),
	}
}

// namespaceStatsList serves a tenant's namespace statistics on pattern
// (Astra documents two paths): an object keyed "tenant/namespace", in
// namespace order.
func namespaceStatsList(c tbv1.PulsarTokenServiceClient, pattern string) pagedList {
	return pagedList{
		method:  tbv1.PulsarTokenService_GetNamespaceStats_FullMethodName,
		pattern: pattern,
		field:   "namespaces",
		bare:    true,
		key:     func(item proto.Message) string { return item.(*tbv1.NamespaceUsage).GetName() },
		call: rpcPage(c.GetNamespaceStats,
			func(p *tbv1.GetNamespaceStatsResponse) []*tbv1.NamespaceUsage {
				return slices.SortedFunc(maps.Values(p.GetNamespaces()), func(a, b *tbv1.NamespaceUsage) int { return strings.Compare(a.GetName(), b.GetName()) })
			},
			func(q *tbv1.GetNamespaceStatsRequest, size int32, token string) {
				q.PageSize, q.PageToken = size, token
			}),
	}
}

func databaseList(c tbv1.DatabaseServiceClient) pagedList {
	return pagedList{
		method:     tbv1.DatabaseService_ListDatabases_FullMethodName,
		pattern:    "/v2/databases",
		field:      "databases",
		bare:       true,
		astraPaged: true,
		call: rpcPage(c.ListDatabases, (*tbv1.ListDatabasesResponse).GetDatabases,
			func(q *tbv1.ListDatabasesRequest, size int32, token string) { q.PageSize, q.PageToken = size, token }),
	}
}

// pageParams returns what the client asked for: pageSize/page_size and
// pageToken/page_token. paged reports whether it asked for one page.
func pageParams(r *http.Request) (size int32, token string, paged bool, err error) {
	probe := &tbv1.ListTokensRequest{}
	for _, k := range []string{"pageSize", "page_size", "pageToken", "page_token"} {
		if vals, ok := r.Form[k]; ok {
			paged = true
			if err := runtime.PopulateFieldFromPath(probe, k, vals[len(vals)-1]); err != nil {
				return 0, "", false, status.Errorf(codes.InvalidArgument, "%s: %v", k, err)
			}
		}
	}
	return probe.GetPageSize(), probe.GetPageToken(), paged, nil
}

func (l pagedList) handle(mux *runtime.ServeMux, log *slog.Logger) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, path map[string]string) {
		_, outbound := runtime.MarshalerForRequest(mux, r)
		ctx, err := runtime.AnnotateContext(r.Context(), mux, r, l.method, runtime.WithHTTPPathPattern(l.pattern))
		if err != nil {
			runtime.HTTPError(r.Context(), mux, outbound, w, r, err)
			return
		}
		if err := r.ParseForm(); err != nil {
			runtime.HTTPError(ctx, mux, outbound, w, r, status.Error(codes.InvalidArgument, err.Error()))
			return
		}
		size, token, paged, err := pageParams(r)
		if err != nil {
			runtime.HTTPError(ctx, mux, outbound, w, r, err)
			return
		}
		if !paged && !l.astraPaged {
			size = streamPageSize
		}
		// one: this answer is one page (asked for, or Astra's own).
		one := paged || l.astraPaged
		// object: the answer is a JSON object (else a bare array).
		object := !l.bare || paged
		opening, closing := byte('['), byte(']') // the collection: an array, or an object by key
		if l.key != nil {
			opening, closing = '{', '}'
		}
		rc := http.NewResponseController(w)
		var buf bytes.Buffer
		written := 0 // items so far
		for page := 0; ; page++ {
			resp, items, next, err := l.call(ctx, r, path, size, token)
			if err != nil {
				if page == 0 {
					runtime.HTTPError(ctx, mux, outbound, w, r, err)
					return
				}
				// The status line is sent: break the response off so the
				// client sees a truncated body, never a complete-looking list.
				log.WarnContext(ctx, "REST list broken off", "path", r.URL.Path, "page", page, "code", status.Code(err).String())
				panic(http.ErrAbortHandler)
			}
			buf.Reset()
			if page == 0 {
				if object {
					buf.WriteByte('{')
					if l.head != nil {
						h, err := l.head(resp)
						if err != nil {
							runtime.HTTPError(ctx, mux, outbound, w, r, err)
							return
						}
						buf.Write(h)
						buf.WriteByte(',')
					}
					buf.WriteString(`"` + l.field + `":`)
				}
				buf.WriteByte(opening)
				w.Header().Set("Content-Type", outbound.ContentType(nil))
			}
			for _, it := range items {
				b, err := outbound.Marshal(it)
				if err != nil {
					log.WarnContext(ctx, "REST list: marshal item", "path", r.URL.Path, "err", err)
					panic(http.ErrAbortHandler)
				}
				if written > 0 {
					buf.WriteByte(',')
				}
				if l.key != nil {
					k, _ := json.Marshal(l.key(it)) // a string always marshals
					buf.Write(k)
					buf.WriteByte(':')
				}
				buf.Write(b)
				written++
			}
			last := one || next == ""
			if last {
				buf.WriteByte(closing)
				if paged {
					nt, _ := json.Marshal(next)
					buf.WriteString(`,"nextPageToken":`)
					buf.Write(nt)
				}
				if object {
					buf.WriteByte('}')
				}
			}
			_ = rc.SetWriteDeadline(time.Now().Add(pageWriteTime))
			if _, err := w.Write(buf.Bytes()); err != nil || last {
				return // done, or the client went away
			}
			token = next
		}
	}
}
