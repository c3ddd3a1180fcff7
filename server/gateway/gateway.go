// Package gateway serves the REST facade: grpc-gateway handlers registered
// against a client of the broker's services (in the server, the in-process
// channel that runs the gRPC server's interceptor chain; never the
// ...HandlerServer variant, which would skip the interceptors),
// plus Astra's error body, Astra's status codes, the OpenAPI document, and a
// direct route for the hot POST /v1/auth/check over the same client
// (direct.go).
package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/tokenbroker/tokenbroker/gen/openapiv2"
	tbv1 "github.com/tokenbroker/tokenbroker/gen/tokenbroker/v1"
	"github.com/tokenbroker/tokenbroker/server/rpcerr"
)

// Metadata keys by which handlers shape the HTTP response: a status other
// than 200, no body, extra headers.
const (
	mdHTTPCode         = "x-http-code"
	mdHTTPNoBody       = "x-http-no-body"
	mdHTTPHeaderPrefix = "x-http-header-"
)

// SetHTTPStatus asks the REST gateway to answer with code (e.g. 201, 204),
// and with no body when noBody is set. gRPC callers see it only as response
// header metadata, which they can ignore.
func SetHTTPStatus(ctx context.Context, code int, noBody bool) {
	md := metadata.Pairs(mdHTTPCode, strconv.Itoa(code))
	if noBody {
		md.Set(mdHTTPNoBody, "1")
	}
	_ = grpc.SetHeader(ctx, md) // fails only outside a unary RPC
}

// SetHTTPHeader asks the REST gateway to set a response header.
func SetHTTPHeader(ctx context.Context, key, value string) {
	_ = grpc.SetHeader(ctx, metadata.Pairs(mdHTTPHeaderPrefix+strings.ToLower(key), value))
}

// forwardedHeaders are the only HTTP request headers passed on as gRPC
// metadata (besides Authorization, which the gateway always forwards).
// Anything else is dropped, so a client cannot inject metadata that an
// interceptor might trust.
var forwardedHeaders = map[string]string{
	"X-Request-Id":              "x-request-id",
	"X-Cassandra-Request-Id":    "x-cassandra-request-id",
	"X-Cassandra-Token":         "x-cassandra-token",
	"X-Datastax-Pulsar-Cluster": "x-datastax-pulsar-cluster",
	"X-Datastax-Current-Org":    "x-datastax-current-org",
}

func incomingHeader(key string) (string, bool) {
	md, ok := forwardedHeaders[textproto.CanonicalMIMEHeaderKey(key)]
	return md, ok
}

// Route is a plain HTTP endpoint served beside the gRPC mappings (the OIDC
// discovery documents, which are HTTP artifacts, not RPCs).
type Route struct {
	Method, Path string
	Handler      http.HandlerFunc
}

// New returns the REST handler, forwarding to the services behind conn.
func New(ctx context.Context, conn grpc.ClientConnInterface, log *slog.Logger, routes ...Route) (http.Handler, error) {
	return newHandler(ctx, conn, log, true, routes)
}

// NewGeneric is New without the direct Check route (direct.go): every
// request goes through grpc-gateway's generic handlers. It exists for the
// test that proves the two answer byte for byte alike.
func NewGeneric(ctx context.Context, conn grpc.ClientConnInterface, log *slog.Logger, routes ...Route) (http.Handler, error) {
	return newHandler(ctx, conn, log, false, routes)
}

func newHandler(ctx context.Context, conn grpc.ClientConnInterface, log *slog.Logger, direct bool, routes []Route) (http.Handler, error) {
	mux, marshaler := newMux(log)
	if err := tbv1.RegisterTokenServiceHandlerClient(ctx, mux, tbv1.NewTokenServiceClient(conn)); err != nil {
		return nil, fmt.Errorf("register TokenService gateway: %w", err)
	}
	if err := tbv1.RegisterAuthServiceHandlerClient(ctx, mux, tbv1.NewAuthServiceClient(conn)); err != nil {
		return nil, fmt.Errorf("register AuthService gateway: %w", err)
	}
	if err := tbv1.RegisterPulsarTokenServiceHandlerClient(ctx, mux, tbv1.NewPulsarTokenServiceClient(conn)); err != nil {
		return nil, fmt.Errorf("register PulsarTokenService gateway: %w", err)
	}
	if err := tbv1.RegisterDatabaseServiceHandlerClient(ctx, mux, tbv1.NewDatabaseServiceClient(conn)); err != nil {
		return nil, fmt.Errorf("register DatabaseService gateway: %w", err)
	}
	if err := tbv1.RegisterAuditServiceHandlerClient(ctx, mux, tbv1.NewAuditServiceClient(conn)); err != nil {
		return nil, fmt.Errorf("register AuditService gateway: %w", err)
	}
	// Registered after the generated handlers, so it takes their place.
	for _, l := range []pagedList{
		tokenList(tbv1.NewTokenServiceClient(conn)),
		roleList(tbv1.NewTokenServiceClient(conn)),
		userList(tbv1.NewAuthServiceClient(conn)),
		tenantList(tbv1.NewPulsarTokenServiceClient(conn)),
		pulsarTokenList(tbv1.NewPulsarTokenServiceClient(conn)),
		namespaceStatsList(tbv1.NewPulsarTokenServiceClient(conn), "/v2/stats/namespaces/{tenant}"),
		namespaceStatsList(tbv1.NewPulsarTokenServiceClient(conn), "/admin/v2/stats/namespaces/{tenant}"),
		databaseList(tbv1.NewDatabaseServiceClient(conn)),
	} {
		if err := mux.HandlePath(http.MethodGet, l.pattern, l.handle(mux, log)); err != nil {
			return nil, err
		}
	}
	for _, r := range routes {
		h := r.Handler
		if err := mux.HandlePath(r.Method, r.Path, func(w http.ResponseWriter, req *http.Request, _ map[string]string) { h(w, req) }); err != nil {
			return nil, err
		}
	}
	if err := mux.HandlePath(http.MethodGet, "/openapi.json", func(w http.ResponseWriter, _ *http.Request, _ map[string]string) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openapiOnce())
	}); err != nil {
		return nil, err
	}
	// Registered last, so it is the first GET pattern the mux tries (it
	// tries them in reverse order of registration, at two allocations per
	// pattern that does not match): load balancers call it all the time.
	runtime.WithHealthzEndpoint(grpc_health_v1.NewHealthClient(conn))(mux)
	var h http.Handler = mux
	if direct {
		h = &directCheck{mux: mux, auth: tbv1.NewAuthServiceClient(conn), marshal: marshaler, next: mux}
	}
	return deadlineAtAnswer(bodyGate(validateParams(patternsFrom(openapiv2.Document), requireLoginBody(h)))), nil
}

// newMux returns grpc-gateway's mux with this gateway's options and no
// routes, and its one marshaler.
func newMux(log *slog.Logger) (*runtime.ServeMux, runtime.Marshaler) {
	marshaler := compactJSONPb{&runtime.JSONPb{
		// Astra's server (Go encoding/json) emits every field, with null for
		// absent objects; clients are written against that.
		MarshalOptions:   protojson.MarshalOptions{EmitUnpopulated: true},
		UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: true},
	}}
	mux := runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, marshaler),
		runtime.WithIncomingHeaderMatcher(incomingHeader),
		runtime.WithOutgoingHeaderMatcher(func(string) (string, bool) { return "", false }),
		runtime.WithOutgoingTrailerMatcher(func(string) (string, bool) { return "", false }),
		runtime.WithErrorHandler(errorHandler(log)),
		runtime.WithRoutingErrorHandler(routingErrorHandler(log)),
		runtime.WithForwardResponseOption(forwardStatus),
		runtime.WithDisableHTTPMethodOverride(),
		runtime.WithMetadata(clientAddr),
	)
	return mux, marshaler
}

// forwardStatus applies the status a handler chose with SetHTTPStatus.
func forwardStatus(ctx context.Context, w http.ResponseWriter, _ proto.Message) error {
	if md, ok := runtime.ServerMetadataFromContext(ctx); ok {
		applyStatus(w, md)
	}
	return nil
}

// applyStatus sets the headers and the status a handler chose with
// SetHTTPHeader and SetHTTPStatus.
func applyStatus(w http.ResponseWriter, md runtime.ServerMetadata) {
	for k, vals := range md.HeaderMD {
		if name, ok := strings.CutPrefix(k, mdHTTPHeaderPrefix); ok && len(vals) > 0 {
			w.Header().Set(name, vals[0])
		}
	}
	if vals := md.HeaderMD.Get(mdHTTPCode); len(vals) > 0 {
		code, err := strconv.Atoi(vals[0])
		if err != nil || code < 200 || code > 299 {
			return
		}
		if len(md.HeaderMD.Get(mdHTTPNoBody)) > 0 {
			if g, ok := w.(*gatedWriter); ok {
				g.discard = true
			}
		}
		w.WriteHeader(code)
	}
}

// gatedWriter drops the body of responses a handler declared body-less
// (Astra's 204s and empty 200s), instead of sending "{}".
type gatedWriter struct {
	http.ResponseWriter
	discard bool
}

func (g *gatedWriter) Write(p []byte) (int, error) {
	if g.discard {
		return len(p), nil
	}
	return g.ResponseWriter.Write(p)
}

func (g *gatedWriter) Unwrap() http.ResponseWriter { return g.ResponseWriter }

func bodyGate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(&gatedWriter{ResponseWriter: w}, r)
	})
}

// answerTimed reports whether r is for a route whose work grows with the
// data without bound: a bulk revocation deletes every token of a role, one
// store write each (tens of thousands take minutes). The server's
// WriteTimeout counts from the request's arrival, so such an answer would
// be cut off although the work was done; deadlineAtAnswer gives these
// routes no write deadline while the call runs and pageWriteTime from
// their first byte on, as a streamed list gets per page. The test is two
// string compares, not a map keyed by a concatenation: it runs on every
// REST request, the Check's included.
func answerTimed(r *http.Request) bool {
	return r.Method == http.MethodPost && r.URL.Path == "/v2/clientIdSecrets/revoke"
}

func deadlineAtAnswer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !answerTimed(r) {
			next.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		_ = rc.SetWriteDeadline(time.Time{}) // nothing is written until the call returns
		next.ServeHTTP(&timedWriter{ResponseWriter: w, rc: rc}, r)
	})
}

// timedWriter sets the write deadline at the answer's first byte.
type timedWriter struct {
	http.ResponseWriter
	rc    *http.ResponseController
	armed bool
}

func (t *timedWriter) arm() {
	if !t.armed {
		t.armed = true
		_ = t.rc.SetWriteDeadline(time.Now().Add(pageWriteTime))
	}
}

func (t *timedWriter) WriteHeader(code int) {
	t.arm()
	t.ResponseWriter.WriteHeader(code)
}

func (t *timedWriter) Write(p []byte) (int, error) {
	t.arm()
	return t.ResponseWriter.Write(p)
}

func (t *timedWriter) Unwrap() http.ResponseWriter { return t.ResponseWriter }

// httpStatus maps gRPC codes to HTTP statuses. It follows grpc-gateway's
// table except where Astra differs: a state conflict (role still in use) is
// 409, not 400.
func httpStatus(c codes.Code) int {
	if c == codes.FailedPrecondition {
		return http.StatusConflict
	}
	return runtime.HTTPStatusFromCode(c)
}

// astraError is Astra's error body: {"errors":[{"ID":340018,"message":"..."}]}.
type astraError struct {
	Errors []astraErrorItem `json:"errors"`
}

type astraErrorItem struct {
	ID      int    `json:"ID"`
	Message string `json:"message"`
}

// stargateError is the Stargate Auth API's error body.
type stargateError struct {
	Description string `json:"description"`
}

// isStargatePath reports whether path belongs to the Stargate-compatible
// auth API, whose errors are {"description": ...} with no-store caching.
func isStargatePath(path string) bool {
	return path == "/v1/auth" || strings.HasPrefix(path, "/v1/auth/") ||
		path == "/api/rest/v1/auth" || strings.HasPrefix(path, "/api/rest/v1/auth/")
}

// pulsarErrorBody is Astra Streaming's error body on the Pulsar-admin-style
// stats paths: {"reason": ...}.
type pulsarErrorBody struct {
	Reason string `json:"reason"`
}

// isPulsarAdminRead reports whether r reads streaming stats the way Astra
// Streaming serves them (GET /admin/v2/... and GET /v2/stats/namespaces/...),
// whose errors are {"reason": ...}. Every other management call, including
// POST /v2/stats/namespaces, answers with Astra's {"errors": [...]} body.
func isPulsarAdminRead(r *http.Request) bool {
	return strings.HasPrefix(r.URL.Path, "/admin/v2/") ||
		(r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v2/stats/namespaces/"))
}

// writeError writes an error in the body style of the path's API.
func writeError(w http.ResponseWriter, r *http.Request, code int, id int, msg string, retryAfter time.Duration) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if code == http.StatusUnauthorized {
		// A fixed challenge: never echo the status message here.
		h.Set("WWW-Authenticate", `Bearer realm="tokenbroker"`)
	}
	if retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int((retryAfter+time.Second-1)/time.Second)))
	}
	var body any
	switch {
	case isStargatePath(r.URL.Path):
		h.Set("Cache-Control", "no-store, no-transform, max-age=0, s-maxage=0")
		body = stargateError{Description: msg}
	case isPulsarAdminRead(r):
		h.Set("Cache-Control", "no-store")
		body = pulsarErrorBody{Reason: msg}
	default:
		h.Set("Cache-Control", "no-store")
		if id == 0 {
			id = code // documented in docs/api.md: no known Astra ID → the HTTP status
		}
		body = astraError{Errors: []astraErrorItem{{ID: id, Message: msg}}}
	}
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // messages quote user input like "<token>"; keep them readable
	_ = enc.Encode(body)
}

func errorHandler(log *slog.Logger) runtime.ErrorHandlerFunc {
	return func(ctx context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
		st := status.Convert(err)
		if st.Code() == codes.ResourceExhausted && !isBrokerLimit(st) {
			// Not the broker's rate limit or quota (those carry their detail)
			// but a resource the transport ran out of, such as grpc's
			// "received message larger than max": the server's failure, never
			// a 429 that tells the client to slow down.
			st = status.New(codes.Internal, "internal error")
		}
		code := httpStatus(st.Code())
		msg := st.Message()
		if code >= 500 && log != nil {
			log.WarnContext(ctx, "REST call failed", "path", r.URL.Path, "code", st.Code().String())
		}
		if st.Code() == codes.Internal || st.Code() == codes.Unknown {
			// The server's own internal errors are generic already; this also
			// keeps errors raised on the gateway's client side (such as
			// "grpc: error while marshaling ...") from reaching the client.
			msg = "internal error"
		}
		writeError(w, r, code, rpcerr.AstraID(st), msg, rpcerr.RetryAfter(st))
	}
}

// isBrokerLimit reports whether a ResourceExhausted status is the broker's
// own (a rate limit with its retry delay, or a quota with its reason).
func isBrokerLimit(st *status.Status) bool {
	if rpcerr.RetryAfter(st) > 0 {
		return true
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.Domain == rpcerr.Domain {
			return true
		}
	}
	return false
}

func routingErrorHandler(_ *slog.Logger) runtime.RoutingErrorHandlerFunc {
	return func(_ context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, code int) {
		msg := http.StatusText(code)
		switch code {
		case http.StatusNotFound:
			msg = fmt.Sprintf("no such path: %s", r.URL.Path)
		case http.StatusMethodNotAllowed:
			msg = fmt.Sprintf("method %s not allowed on %s", r.Method, r.URL.Path)
		}
		writeError(w, r, code, 0, msg, 0)
	}
}

// loginPaths are the Stargate login calls, which answer a missing body
// with their own message before looking at any field.
var loginPaths = map[string]bool{
	"/v1/auth": true, "/api/rest/v1/auth": true, "/v1/auth/token/generate": true,
}

// requireLoginBody answers Stargate's 400 "Must provide a body to the
// request" for a login call whose body is empty or JSON null; grpc-gateway
// would otherwise decode both as an empty request.
func requireLoginBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !loginPaths[r.URL.Path] {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			writeError(w, r, http.StatusBadRequest, 0, "Must provide a body to the request", 0)
			return
		}
		if trimmed := bytes.TrimSpace(body); len(trimmed) == 0 || bytes.Equal(trimmed, []byte("null")) {
			writeError(w, r, http.StatusBadRequest, 0, "Must provide a body to the request", 0)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}
