package metrics

import (
	"context"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// rpcMetrics are the per-RPC series of the grpc-ecosystem Prometheus
// middleware (same names, labels and meaning, so dashboards and alerts are
// unchanged), recorded through handles resolved once per method when the
// server's services are known. WHY: the middleware resolves four or five
// label sets per call (hashing every label value under a lock) and
// allocates a reporter; here a call costs one read-only map lookup by
// method name and atomic adds.
type rpcMetrics struct {
	started, handled, received, sent *prometheus.CounterVec
	seconds                          *prometheus.HistogramVec

	// methods is filled by initialize, before the server serves, and only
	// read afterwards: no lock.
	methods map[string]*methodMetrics
}

// methodMetrics are one method's resolved series.
type methodMetrics struct {
	started, received, sent prometheus.Counter
	seconds                 prometheus.Observer
	handled                 [codes.Unauthenticated + 1]prometheus.Counter // by code; nil: resolve per call
	labels                  [3]string                                     // type, service, method
	vecs                    *rpcMetrics
}

func newRPCMetrics() *rpcMetrics {
	labels := []string{"grpc_type", "grpc_service", "grpc_method"}
	return &rpcMetrics{
		started: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_server_started_total", Help: "Total number of RPCs started on the server.",
		}, labels),
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_server_handled_total", Help: "Total number of RPCs completed on the server, regardless of success or failure.",
		}, append(labels[:3:3], "grpc_code")),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_server_msg_received_total", Help: "Total number of RPC stream messages received on the server.",
		}, labels),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_server_msg_sent_total", Help: "Total number of gRPC stream messages sent by the server.",
		}, labels),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "grpc_server_handling_seconds",
			Help:    "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.",
			Buckets: latencyBuckets,
		}, labels),
		methods: map[string]*methodMetrics{},
	}
}

func (r *rpcMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{r.started, r.handled, r.received, r.sent, r.seconds}
}

// resolve builds the handles of one method (creating its series at zero);
// withCodes also resolves (creates) its handled series of every code.
func (r *rpcMetrics) resolve(typ, service, method string, withCodes bool) *methodMetrics {
	m := &methodMetrics{labels: [3]string{typ, service, method}, vecs: r}
	m.started = r.started.WithLabelValues(typ, service, method)
	m.received = r.received.WithLabelValues(typ, service, method)
	m.sent = r.sent.WithLabelValues(typ, service, method)
	m.seconds = r.seconds.WithLabelValues(typ, service, method)
	if withCodes {
		for c := range m.handled {
			m.handled[c] = r.handled.WithLabelValues(typ, service, method, codes.Code(c).String())
		}
	}
	return m
}

// initialize resolves every method the server serves.
func (r *rpcMetrics) initialize(s *grpc.Server) {
	for service, info := range s.GetServiceInfo() {
		for _, mi := range info.Methods {
			r.methods["/"+service+"/"+mi.Name] = r.resolve(methodType(mi.IsClientStream, mi.IsServerStream), service, mi.Name, true)
		}
	}
}

// lookup returns the method's handles; a method not known at initialize
// (none in this server) is resolved on each call, as the middleware does.
func (r *rpcMetrics) lookup(fullMethod, typ string) *methodMetrics {
	if m, ok := r.methods[fullMethod]; ok {
		return m
	}
	service, method := splitMethod(fullMethod)
	return r.resolve(typ, service, method, false)
}

func (m *methodMetrics) done(err error, took time.Duration) {
	code := status.Code(err)
	if int(code) < len(m.handled) && m.handled[code] != nil {
		m.handled[code].Inc()
	} else {
		m.vecs.handled.WithLabelValues(m.labels[0], m.labels[1], m.labels[2], code.String()).Inc()
	}
	m.seconds.Observe(took.Seconds())
}

func (r *rpcMetrics) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	m := r.lookup(info.FullMethod, "unary")
	start := time.Now()
	m.started.Inc()
	m.received.Inc()
	resp, err := handler(ctx, req)
	if err == nil {
		m.sent.Inc()
	}
	m.done(err, time.Since(start))
	return resp, err
}

func (r *rpcMetrics) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	m := r.lookup(info.FullMethod, methodType(info.IsClientStream, info.IsServerStream))
	start := time.Now()
	m.started.Inc()
	err := handler(srv, &countingStream{ServerStream: ss, m: m})
	m.done(err, time.Since(start))
	return err
}

// countingStream counts a stream's messages as the middleware does: those
// sent or received without error.
type countingStream struct {
	grpc.ServerStream
	m *methodMetrics
}

func (s *countingStream) SendMsg(msg any) error {
	err := s.ServerStream.SendMsg(msg)
	if err == nil {
		s.m.sent.Inc()
	}
	return err
}

func (s *countingStream) RecvMsg(msg any) error {
	err := s.ServerStream.RecvMsg(msg)
	if err == nil {
		s.m.received.Inc()
	}
	return err
}

// methodType is the middleware's grpc_type label value.
func methodType(clientStream, serverStream bool) string {
	switch {
	case clientStream && serverStream:
		return "bidi_stream"
	case clientStream:
		return "client_stream"
	case serverStream:
		return "server_stream"
	}
	return "unary"
}

// splitMethod turns "/pkg.Service/Method" into "pkg.Service", "Method".
func splitMethod(full string) (service, method string) {
	full = strings.TrimPrefix(full, "/")
	if i := strings.Index(full, "/"); i >= 0 {
		return full[:i], full[i+1:]
	}
	return "unknown", "unknown"
}
