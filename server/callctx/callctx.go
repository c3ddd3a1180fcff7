// Package callctx reads what the transport says about a call: the
// credential presented and the client's address. It is the one place that
// decides which metadata to trust.
package callctx

import (
	"context"
	"net"
	"strconv"
	"strings"

	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
)

// ClientAddrKey is the metadata key under which the REST gateway passes the
// HTTP client's address. The gateway sets it from the TCP connection (its
// annotators override any client-sent value), and it is believed only on
// calls that arrive over the in-process gateway channel.
const ClientAddrKey = "x-tokenbroker-client-addr"

// GatewayNetwork is the network name of the peer of calls from the REST
// gateway, which reach the services over the in-process channel
// (server/inproc.Network; a test keeps the two equal).
const GatewayNetwork = "inproc"

// Credential returns the credential presented with the call: the
// "authorization" metadata (from the Authorization header over REST; the
// "Bearer" scheme is matched case-insensitively) or, as Stargate clients
// send it, "x-cassandra-token". "" if neither is present.
func Credential(ctx context.Context) string {
	// ValueFromIncomingContext reads one key without copying the whole
	// metadata map (FromIncomingContext copies it on every call).
	if vals := metadata.ValueFromIncomingContext(ctx, "authorization"); len(vals) > 0 {
		v := strings.TrimSpace(vals[0])
		if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
			return strings.TrimSpace(v[7:])
		}
		return v // a bare credential: verification rejects anything else
	}
	if vals := metadata.ValueFromIncomingContext(ctx, "x-cassandra-token"); len(vals) > 0 {
		return strings.TrimSpace(vals[0])
	}
	return ""
}

// ClientAddr returns the caller's IP address: the TCP peer for direct gRPC
// calls, and the HTTP client's address for calls through the gateway.
func ClientAddr(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return ""
	}
	if p.Addr.Network() == GatewayNetwork {
		if vals := metadata.ValueFromIncomingContext(ctx, ClientAddrKey); len(vals) > 0 {
			return vals[0]
		}
		return ""
	}
	if ta, ok := p.Addr.(*net.TCPAddr); ok && ta.Zone == "" {
		return ta.IP.String() // one allocation, not two: this runs on every Check
	}
	if host, _, err := net.SplitHostPort(p.Addr.String()); err == nil {
		return host
	}
	return p.Addr.String()
}

type requestIDKey struct{}

// requestID is a call's request ID: given (id), or generated, as prefix and
// a sequence number that are formatted only when the ID is read. WHY: most
// calls on the hot path (Check) never read it (it goes into audit events
// and log lines), and formatting it eagerly cost two allocations per call.
type requestID struct {
	id     string
	prefix string
	seq    uint64
}

// WithRequestID returns ctx carrying the call's request ID.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, &requestID{id: id})
}

// WithGeneratedRequestID returns ctx carrying the request ID prefix followed
// by seq in base 36, formatted when read.
func WithGeneratedRequestID(ctx context.Context, prefix string, seq uint64) context.Context {
	return context.WithValue(ctx, requestIDKey{}, &requestID{prefix: prefix, seq: seq})
}

// RequestID returns the call's request ID, or "".
func RequestID(ctx context.Context) string {
	r, _ := ctx.Value(requestIDKey{}).(*requestID)
	switch {
	case r == nil:
		return ""
	case r.prefix == "":
		return r.id
	}
	return r.prefix + strconv.FormatUint(r.seq, 36)
}

// IncomingRequestID returns the request ID the client sent (x-request-id,
// or Stargate's x-cassandra-request-id), or "" if none or too long.
func IncomingRequestID(ctx context.Context) string {
	if v := metadata.ValueFromIncomingContext(ctx, "x-request-id"); len(v) > 0 && len(v[0]) <= 128 {
		return v[0]
	}
	if v := metadata.ValueFromIncomingContext(ctx, "x-cassandra-request-id"); len(v) > 0 && len(v[0]) <= 128 {
		return v[0]
	}
	return ""
}

// PulsarCluster returns the X-DataStax-Pulsar-Cluster header (or
// x-datastax-pulsar-cluster metadata), or "".
func PulsarCluster(ctx context.Context) string {
	if v := metadata.ValueFromIncomingContext(ctx, "x-datastax-pulsar-cluster"); len(v) > 0 {
		return strings.TrimSpace(v[0])
	}
	return ""
}
