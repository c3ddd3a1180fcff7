// Package gateway serves the REST facade: grpc-gateway handlers registered
// against a client connection to the broker's own gRPC server (never the
// in-process ...HandlerServer variant, which would skip the interceptors),
// plus Astra's error body, Astra's status codes, and the OpenAPI document.
package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/textproto"
	"strconv"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
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

// Metadata keys by which handlers ask for an HTTP status other than 200.
const (
	mdHTTPCode   = "x-http-code"
	mdHTTPNoBody = "x-http-no-body"
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

// New returns the REST handler, forwarding to the gRPC server behind conn.
func New(ctx context.Context, conn *grpc.ClientConn, log *slog.Logger) (http.Handler, error) {
	mux := runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.JSONPb{
			// Astra's server (Go encoding/json) emits every field, with null for
			// absent objects; clients are written against that.
			MarshalOptions:   protojson.MarshalOptions{EmitUnpopulated: true},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: true},
		}),
		runtime.WithIncomingHeaderMatcher(incomingHeader),
		runtime.WithOutgoingHeaderMatcher(func(string) (string, bool) { return "", false }),
		runtime.WithOutgoingTrailerMatcher(func(string) (string, bool) { return "", false }),
		runtime.WithErrorHandler(errorHandler(log)),
		runtime.WithRoutingErrorHandler(routingErrorHandler(log)),
		runtime.WithForwardResponseOption(forwardStatus),
		runtime.WithDisableHTTPMethodOverride(),
		runtime.WithHealthzEndpoint(grpc_health_v1.NewHealthClient(conn)),
	)
	if err := tbv1.RegisterTokenServiceHandler(ctx, mux, conn); err != nil {
		return nil, fmt.Errorf("register TokenService gateway: %w", err)
	}
	if err := mux.HandlePath(http.MethodGet, "/openapi.json", func(w http.ResponseWriter, _ *http.Request, _ map[string]string) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openapiv2.Document)
	}); err != nil {
		return nil, err
	}
	return bodyGate(mux), nil
}

// forwardStatus applies the status a handler chose with SetHTTPStatus.
func forwardStatus(ctx context.Context, w http.ResponseWriter, _ proto.Message) error {
	md, ok := runtime.ServerMetadataFromContext(ctx)
	if !ok {
		return nil
	}
	if vals := md.HeaderMD.Get(mdHTTPCode); len(vals) > 0 {
		code, err := strconv.Atoi(vals[0])
		if err != nil || code < 200 || code > 299 {
			return nil
		}
		if len(md.HeaderMD.Get(mdHTTPNoBody)) > 0 {
			if g, ok := w.(*gatedWriter); ok {
				g.discard = true
			}
		}
		w.WriteHeader(code)
	}
	return nil
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

func writeError(w http.ResponseWriter, code int, id int, msg string) {
	if id == 0 {
		id = code // documented in docs/api.md: no known Astra ID → the HTTP status
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if code == http.StatusUnauthorized {
		// A fixed challenge: never echo the status message here.
		w.Header().Set("WWW-Authenticate", `Bearer realm="tokenbroker"`)
	}
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // messages quote user input like "<token>"; keep them readable
	_ = enc.Encode(astraError{Errors: []astraErrorItem{{ID: id, Message: msg}}})
}

func errorHandler(log *slog.Logger) runtime.ErrorHandlerFunc {
	return func(ctx context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
		st := status.Convert(err)
		code := httpStatus(st.Code())
		if code >= 500 && log != nil {
			log.WarnContext(ctx, "REST call failed", "path", r.URL.Path, "code", st.Code().String())
		}
		writeError(w, code, rpcerr.AstraID(st), st.Message())
	}
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
		writeError(w, code, 0, msg)
	}
}
