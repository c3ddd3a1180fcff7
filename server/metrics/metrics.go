// Package metrics exposes the broker's Prometheus metrics: per-RPC counts,
// codes and latencies (the grpc-ecosystem middleware's series, recorded
// through pre-resolved handles: rpc.go), Check and
// login outcomes and throttle refusals (as the broker's Observer), the
// store's group-commit latency and batch size, stored record counts, and
// build info. docs/operations.md lists every series.
//
// The hot path (Check) records into counters resolved when the Metrics is
// built: a read-only map lookup and an atomic add, no lock, no allocation.
package metrics

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"

	"github.com/tokenbroker/tokenbroker/server/broker"
	"github.com/tokenbroker/tokenbroker/server/buildinfo"
)

const namespace = "tokenbroker"

// Latency buckets of RPCs and commits: from 100µs (a cached Check) to 10 s.
var latencyBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// Metrics holds the broker's metrics and the registry they are served from.
// It implements broker.Observer.
type Metrics struct {
	reg  *prometheus.Registry
	grpc *rpcMetrics

	// Resolved once; only read afterwards, so lookups need no lock.
	checks    map[[2]string]prometheus.Counter // {credential kind, outcome}
	logins    map[string]prometheus.Counter
	throttled map[string]prometheus.Counter
	checkAny  prometheus.Counter // fallback for a value the broker did not announce

	commitSeconds prometheus.Histogram
	commitBatch   prometheus.Histogram
}

var _ broker.Observer = (*Metrics)(nil)

// New builds the metrics and registers them, with the Go runtime and
// process collectors, in a registry of their own (not the global one, so
// tests and several servers in one process do not collide).
func New() *Metrics {
	m := &Metrics{
		reg:       prometheus.NewRegistry(),
		grpc:      newRPCMetrics(),
		checks:    map[[2]string]prometheus.Counter{},
		logins:    map[string]prometheus.Counter{},
		throttled: map[string]prometheus.Counter{},
	}
	checks := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "check_total",
		Help: "Check calls answered, by the presented credential's kind and the outcome.",
	}, []string{"credential", "outcome"})
	for _, kind := range broker.CredentialKinds {
		for _, outcome := range broker.CheckOutcomes {
			m.checks[[2]string{kind, outcome}] = checks.WithLabelValues(kind, outcome)
		}
	}
	m.checkAny = checks.WithLabelValues("other", "other")
	logins := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "login_total",
		Help: "Login attempts (Stargate's /v1/auth and CreateAuthToken), by outcome.",
	}, []string{"outcome"})
	for _, o := range append(broker.LoginOutcomes, "other") {
		m.logins[o] = logins.WithLabelValues(o)
	}
	throttled := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "throttled_total",
		Help: "Calls refused because their throttle's budget of failures was spent, by throttle.",
	}, []string{"limiter"})
	for _, l := range append(broker.Throttles, "other") {
		m.throttled[l] = throttled.WithLabelValues(l)
	}
	m.commitSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace, Subsystem: "store", Name: "commit_duration_seconds",
		Help:    "Time of one group commit of the bbolt store: the batch's write functions, commit and fsync.",
		Buckets: latencyBuckets,
	})
	m.commitBatch = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace, Subsystem: "store", Name: "commit_batch_size",
		Help:    "Writes per group commit of the bbolt store.",
		Buckets: []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000},
	})
	bi := buildinfo.Get()
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "build_info",
		Help:        "Always 1; the labels say which build is running.",
		ConstLabels: prometheus.Labels{"version": bi.Version, "commit": bi.Commit, "goversion": bi.GoVersion},
	})
	build.Set(1)
	m.reg.MustRegister(m.grpc.collectors()...)
	m.reg.MustRegister(checks, logins, throttled, m.commitSeconds, m.commitBatch, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry is where every metric of this broker is registered.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// UnaryInterceptor and StreamInterceptor count and time every RPC. They go
// first in the chain, so refusals by the authorization interceptor are
// counted with their codes.
func (m *Metrics) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return m.grpc.unary
}

// StreamInterceptor: see UnaryInterceptor.
func (m *Metrics) StreamInterceptor() grpc.StreamServerInterceptor {
	return m.grpc.stream
}

// InitializeGRPC creates every method's series at zero, so rates and alerts
// work before the first call of a method.
// It must run before the server serves: it fills the read-only map of
// each method's series (rpc.go).
func (m *Metrics) InitializeGRPC(s *grpc.Server) { m.grpc.initialize(s) }

// CheckDone implements broker.Observer.
func (m *Metrics) CheckDone(kind, outcome string) {
	if c, ok := m.checks[[2]string{kind, outcome}]; ok {
		c.Inc()
		return
	}
	m.checkAny.Inc()
}

// LoginDone implements broker.Observer.
func (m *Metrics) LoginDone(outcome string) {
	if c, ok := m.logins[outcome]; ok {
		c.Inc()
		return
	}
	m.logins["other"].Inc()
}

// Throttled implements broker.Observer.
func (m *Metrics) Throttled(limiter string) {
	if c, ok := m.throttled[limiter]; ok {
		c.Inc()
		return
	}
	m.throttled["other"].Inc()
}

// OnCommit records one group commit (bolt.Options.OnCommit).
func (m *Metrics) OnCommit(batch int, took time.Duration) {
	m.commitSeconds.Observe(took.Seconds())
	m.commitBatch.Observe(float64(batch))
}

// WatchRecords exports tokenbroker_stored_records{kind} from count, called
// at most once per maxAge: a scrape within maxAge of the previous count is
// answered from the cached one, so scrapes never add up to scans.
func (m *Metrics) WatchRecords(count func() (map[string]int, error), maxAge time.Duration) {
	m.reg.MustRegister(&recordCounts{
		desc: prometheus.NewDesc(prometheus.BuildFQName(namespace, "", "stored_records"),
			"Records in the store by kind (application_token, auth_token, pulsar_token, user); expired ones count until garbage collection deletes them. Refreshed at most every "+maxAge.String()+".",
			[]string{"kind"}, nil),
		count: count, maxAge: maxAge,
	})
}

type recordCounts struct {
	desc   *prometheus.Desc
	count  func() (map[string]int, error)
	maxAge time.Duration

	mu     sync.Mutex // scrapes only
	at     time.Time
	cached map[string]int
}

func (r *recordCounts) Describe(ch chan<- *prometheus.Desc) { ch <- r.desc }

func (r *recordCounts) Collect(ch chan<- prometheus.Metric) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cached == nil || time.Since(r.at) >= r.maxAge {
		if counts, err := r.count(); err == nil {
			r.cached, r.at = counts, time.Now()
		} else if r.cached == nil {
			ch <- prometheus.NewInvalidMetric(r.desc, err)
			return
		}
	}
	for kind, n := range r.cached {
		ch <- prometheus.MustNewConstMetric(r.desc, prometheus.GaugeValue, float64(n), kind)
	}
}
