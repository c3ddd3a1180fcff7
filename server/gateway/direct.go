package gateway

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"sync"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	tbv1 "github.com/tokenbroker/tokenbroker/gen/tokenbroker/v1"
	"github.com/tokenbroker/tokenbroker/server/callctx"
)

// Check is the broker's hottest call, and grpc-gateway's generic handler
// spent most of a REST Check's handler time around the call, not in it: a
// linear scan of the POST patterns (two allocations each), the metadata
// built from every header, protojson reading the body after encoding/json
// has scanned it into a copy, and protojson writing the answer through
// reflection (docs/performance.md has the profile). directCheck answers POST
// /v1/auth/check without that machinery, and without changing what the call
// is: the same RPC through the same in-process channel, so the same
// interceptor chain (authentication, the authorization rule, audit,
// metrics, error mapping, panic recovery), the same incoming metadata, the
// same error handler and the same bytes out. It takes only the request
// shape clients send (a small JSON object of plain strings, no query
// string, none of the headers grpc-gateway gives a meaning of its own) and
// passes anything else, body included, to the generic handler unchanged.
// TestDirectCheckMatchesGateway (server/) compares the two on a table of
// requests, byte for byte.

// checkPath is the route directCheck serves (POST).
const checkPath = "/v1/auth/check"

// maxDirectBody bounds the body directCheck reads itself; a longer one goes
// to the generic handler. A Check carrying a Pulsar JWT is well under it.
const maxDirectBody = 4 << 10

var directBodies = sync.Pool{New: func() any { return new([maxDirectBody]byte) }}

type directCheck struct {
	mux     *runtime.ServeMux // errors go to its error handler
	auth    tbv1.AuthServiceClient
	marshal runtime.Marshaler // the gateway's only marshaler (every MIME type)
	next    http.Handler      // the generic gateway
}

func (d *directCheck) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !d.takes(r) {
		d.next.ServeHTTP(w, r)
		return
	}
	req, ok := d.readRequest(r)
	if !ok {
		d.next.ServeHTTP(w, r)
		return
	}
	// What runtime.AnnotateContext passes on, minus the context values it
	// adds for its own use (the in-process channel hides context values
	// from the server side, as a network hop would), and without the
	// generated handler's own cancel: net/http cancels the request's
	// context when the handler returns.
	ctx := r.Context()
	if md := outgoingMetadata(r); len(md) > 0 {
		ctx = metadata.NewOutgoingContext(ctx, md)
	}
	var sm runtime.ServerMetadata
	resp, err := d.auth.Check(ctx, req, grpc.Header(&sm.HeaderMD), grpc.Trailer(&sm.TrailerMD))
	if err != nil {
		runtime.HTTPError(runtime.NewServerMetadataContext(ctx, sm), d.mux, d.marshal, w, r, err)
		return
	}
	// runtime.ForwardResponseMessage's steps for this gateway: no gRPC
	// header is forwarded (WithOutgoingHeaderMatcher), no trailers (the
	// request has no TE header), then the content type and forwardStatus.
	w.Header().Set("Content-Type", d.marshal.ContentType(resp))
	applyStatus(w, sm)
	buf, ok := appendCheckResponse(make([]byte, 0, 256), resp)
	if !ok {
		if buf, err = d.marshal.Marshal(resp); err != nil {
			runtime.HTTPError(runtime.NewServerMetadataContext(ctx, sm), d.mux, d.marshal, w, r, err)
			return
		}
	}
	_, _ = w.Write(buf)
}

// takes reports whether r is a Check the direct route may answer, before
// its body is read: the exact path with no escapes and no query, and none
// of the headers the generic handler acts on beyond forwarding (a gRPC
// timeout, accepted trailers, client-supplied X-Forwarded-*).
func (d *directCheck) takes(r *http.Request) bool {
	if r.Method != http.MethodPost || r.URL.Path != checkPath || r.URL.RawPath != "" || r.URL.RawQuery != "" || r.Body == nil {
		return false
	}
	for _, h := range [...]string{"Grpc-Timeout", "Te", "X-Forwarded-For", "X-Forwarded-Host"} {
		if _, ok := r.Header[h]; ok {
			return false
		}
	}
	return true
}

// readRequest reads and decodes r's body. When it cannot (too long, a read
// error, a shape decodeCheckRequest leaves to protojson), it puts back a
// body that yields the same bytes and then the same end (EOF, the error,
// or the unread rest), so the generic handler reads what it would have.
func (d *directCheck) readRequest(r *http.Request) (*tbv1.CheckRequest, bool) {
	buf := directBodies.Get().(*[maxDirectBody]byte)
	defer directBodies.Put(buf)
	n, err := 0, error(nil)
	for n < len(buf) && err == nil {
		var m int
		m, err = r.Body.Read(buf[n:])
		n += m
	}
	if err == io.EOF {
		if req, ok := decodeCheckRequest(string(buf[:n])); ok {
			return req, true
		}
	}
	var rest io.Reader = r.Body // the buffer filled up: the rest is unread
	switch err {
	case nil:
	case io.EOF:
		rest = eofReader{}
	default:
		rest = errReader{err}
	}
	r.Body = replayedBody{Reader: io.MultiReader(bytes.NewReader(bytes.Clone(buf[:n])), rest), Closer: r.Body}
	return nil, false
}

type replayedBody struct {
	io.Reader
	io.Closer
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// outgoingMetadata is the metadata runtime.AnnotateContext builds for r with
// this gateway's header matcher and client-address annotator, for a request
// without X-Forwarded-For or X-Forwarded-Host headers (directCheck leaves
// those to it): the Authorization values, the forwarded headers, the Host as
// x-forwarded-host, the peer's IP as x-forwarded-for, and the client address.
// Only printable-ASCII values pass, as there. Header keys are canonical, as
// net/http's server stores them. TestOutgoingMetadataMatchesAnnotateContext
// compares the two.
func outgoingMetadata(r *http.Request) metadata.MD {
	b := mdBuilder{md: make(metadata.MD, 4), vals: make([]string, 0, 4)}
	for _, v := range r.Header["Authorization"] {
		if printableASCII(v) {
			b.add("authorization", v)
		}
	}
	for name, key := range forwardedHeaders {
		for _, v := range r.Header[name] {
			if printableASCII(v) {
				b.add(key, v)
			}
		}
	}
	if r.Host != "" && printableASCII(r.Host) {
		b.add("x-forwarded-host", r.Host)
	}
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		if printableASCII(ip) {
			b.add("x-forwarded-for", ip)
		}
		b.add(callctx.ClientAddrKey, ip)
	}
	return b.md
}

// mdBuilder fills metadata whose keys mostly hold one value: the first
// values share one backing array (one allocation instead of one per key);
// each key's slice is capped at its length, so a second value appends to a
// copy and never overwrites another key's.
type mdBuilder struct {
	md   metadata.MD
	vals []string
}

func (b *mdBuilder) add(key, v string) {
	if old, ok := b.md[key]; ok {
		b.md[key] = append(old, v)
		return
	}
	b.vals = append(b.vals, v)
	n := len(b.vals)
	b.md[key] = b.vals[n-1 : n : n]
}

// clientAddr is the gateway's metadata annotator: the client's address,
// from the TCP connection, for per-address throttling. Annotators override
// any client-sent metadata.
func clientAddr(_ context.Context, r *http.Request) metadata.MD {
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return metadata.MD{callctx.ClientAddrKey: {ip}}
	}
	return nil
}
