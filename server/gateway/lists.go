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
// nextPageToken. A client that sends neither (Astra's clients) gets every
// item in one response, streamed.

// streamPageSize is how many items each internal page carries.
const streamPageSize = 1000

// pageWriteTime is the write deadline granted per streamed page: the
// server's WriteTimeout bounds one page, not the whole list.
const pageWriteTime = 30 * time.Second

// pagedList describes one streamed list route.
type pagedList struct {
	method, pattern string // full RPC name; HTTP path pattern
	field           string // JSON name of the repeated field: "clients"
	// call fetches one page: the request is populated from the query string
	// (and pageSize/pageToken set); it returns the items and the next token.
	call func(ctx context.Context, query *http.Request, size int32, token string) ([]proto.Message, string, error)
}

func tokenList(c tbv1.TokenServiceClient) pagedList {
	return pagedList{
		method:  tbv1.TokenService_ListTokens_FullMethodName,
		pattern: "/v2/clientIdSecrets",
		field:   "clients",
		call: func(ctx context.Context, r *http.Request, size int32, token string) ([]proto.Message, string, error) {
			req := &tbv1.ListTokensRequest{}
			if err := runtime.PopulateQueryParameters(req, r.Form, utilities.NewDoubleArray(nil)); err != nil {
				return nil, "", status.Error(codes.InvalidArgument, err.Error())
			}
			if size > 0 || token != "" {
				req.PageSize, req.PageToken = size, token
			}
			resp, err := c.ListTokens(ctx, req)
			if err != nil {
				return nil, "", err
			}
			items := make([]proto.Message, len(resp.GetClients()))
			for i, t := range resp.GetClients() {
				items[i] = t
			}
			return items, resp.GetNextPageToken(), nil
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
	return func(w http.ResponseWriter, r *http.Request, _ map[string]string) {
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
		rc := http.NewResponseController(w)
		var buf bytes.Buffer
		written := 0 // items so far
		for page := 0; ; page++ {
			items, next, err := l.call(ctx, r, size, token)
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
				w.Header().Set("Content-Type", outbound.ContentType(nil))
				buf.WriteString(`{"` + l.field + `":[`)
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
			last := paged || next == ""
			if last {
				buf.WriteByte(']')
				if paged {
					nt, _ := json.Marshal(next)
					buf.WriteString(`,"nextPageToken":`)
					buf.Write(nt)
				}
				buf.WriteByte('}')
			}
			_ = rc.SetWriteDeadline(time.Now().Add(pageWriteTime))
			if _, err := w.Write(buf.Bytes()); err != nil || last {
				return // done, or the client went away
			}
			token = next
		}
	}
}
