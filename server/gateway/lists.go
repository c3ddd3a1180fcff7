package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/grpc-ecosystem/grpc-gateway/v2/utilities"
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
	// astraPaged: the route has Astra's own paging (a bounded default
	// page), so an answer without pageSize/pageToken is that one page, not
	// the whole list.
	astraPaged bool
	// head returns the members of the answer before the array, from the
	// first page (users carry OrgID and OrgName); nil: none.
	head func(first proto.Message) ([]byte, error)
	// call fetches one page: the request is populated from the path and the
	// query string, and pageSize/pageToken set when paged is true; it
	// returns the response, its items and the next token.
	call func(ctx context.Context, query *http.Request, path map[string]string, paged bool, size int32, token string) (proto.Message, []proto.Message, string, error)
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

func tokenList(c tbv1.TokenServiceClient) pagedList {
	return pagedList{
		method:  tbv1.TokenService_ListTokens_FullMethodName,
		pattern: "/v2/clientIdSecrets",
		field:   "clients",
		call: func(ctx context.Context, r *http.Request, path map[string]string, _ bool, size int32, token string) (proto.Message, []proto.Message, string, error) {
			req := &tbv1.ListTokensRequest{}
			if err := populate(req, r, path); err != nil {
				return nil, nil, "", err
			}
			req.PageSize, req.PageToken = size, token
			resp, err := c.ListTokens(ctx, req)
			if err != nil {
				return nil, nil, "", err
			}
			return resp, asMessages(resp.GetClients()), resp.GetNextPageToken(), nil
		},
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
		call: func(ctx context.Context, r *http.Request, path map[string]string, _ bool, size int32, token string) (proto.Message, []proto.Message, string, error) {
			req := &tbv1.ListUsersRequest{}
			if err := populate(req, r, path); err != nil {
				return nil, nil, "", err
			}
			req.PageSize, req.PageToken = size, token
			resp, err := c.ListUsers(ctx, req)
			if err != nil {
				return nil, nil, "", err
			}
			return resp, asMessages(resp.GetUsers()), resp.GetNextPageToken(), nil
		},
	}
}

func pulsarTokenList(c tbv1.PulsarTokenServiceClient) pagedList {
	return pagedList{
		method:  tbv1.PulsarTokenService_ListPulsarTokens_FullMethodName,
		pattern: "/v2/streaming/tenants/{tenant}/tokens",
		field:   "tokens",
		bare:    true,
		call: func(ctx context.Context, r *http.Request, path map[string]string, _ bool, size int32, token string) (proto.Message, []proto.Message, string, error) {
			req := &tbv1.ListPulsarTokensRequest{}
			if err := populate(req, r, path); err != nil {
				return nil, nil, "", err
			}
			req.PageSize, req.PageToken = size, token
			resp, err := c.ListPulsarTokens(ctx, req)
			if err != nil {
				return nil, nil, "", err
			}
			return resp, asMessages(resp.GetTokens()), resp.GetNextPageToken(), nil
		},
	}
}

func databaseList(c tbv1.DatabaseServiceClient) pagedList {
	return pagedList{
		method:     tbv1.DatabaseService_ListDatabases_FullMethodName,
		pattern:    "/v2/databases",
		field:      "databases",
		bare:       true,
		astraPaged: true,
		call: func(ctx context.Context, r *http.Request, path map[string]string, paged bool, size int32, token string) (proto.Message, []proto.Message, string, error) {
			req := &tbv1.ListDatabasesRequest{}
			if err := populate(req, r, path); err != nil {
				return nil, nil, "", err
			}
			if paged {
				req.PageSize, req.PageToken = size, token
			}
			resp, err := c.ListDatabases(ctx, req)
			if err != nil {
				return nil, nil, "", err
			}
			return resp, asMessages(resp.GetDatabases()), resp.GetNextPageToken(), nil
		},
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
		if !paged {
			size = streamPageSize
		}
		// one: this answer is one page (asked for, or Astra's own).
		one := paged || l.astraPaged
		// object: the answer is a JSON object (else a bare array).
		object := !l.bare || paged
		rc := http.NewResponseController(w)
		var buf bytes.Buffer
		written := 0 // items so far
		for page := 0; ; page++ {
			resp, items, next, err := l.call(ctx, r, path, paged, size, token)
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
				buf.WriteByte('[')
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
				buf.Write(b)
				written++
			}
			last := one || next == ""
			if last {
				buf.WriteByte(']')
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
