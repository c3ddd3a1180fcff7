// Package server wires tokenbroker together: store, keyring, broker, the
// gRPC server with its interceptors, and the REST gateway. Start builds and
// starts everything; Shutdown stops it gracefully.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	tbv1 "github.com/tokenbroker/tokenbroker/gen/tokenbroker/v1"
	"github.com/tokenbroker/tokenbroker/server/admin"
	"github.com/tokenbroker/tokenbroker/server/auditlog"
	"github.com/tokenbroker/tokenbroker/server/auth"
	"github.com/tokenbroker/tokenbroker/server/broker"
	"github.com/tokenbroker/tokenbroker/server/buildinfo"
	"github.com/tokenbroker/tokenbroker/server/callctx"
	"github.com/tokenbroker/tokenbroker/server/console"
	"github.com/tokenbroker/tokenbroker/server/credential"
	"github.com/tokenbroker/tokenbroker/server/database"
	"github.com/tokenbroker/tokenbroker/server/gateway"
	"github.com/tokenbroker/tokenbroker/server/inproc"
	"github.com/tokenbroker/tokenbroker/server/keyring"
	"github.com/tokenbroker/tokenbroker/server/metrics"
	"github.com/tokenbroker/tokenbroker/server/password"
	"github.com/tokenbroker/tokenbroker/server/pulsartoken"
	"github.com/tokenbroker/tokenbroker/server/tlsconfig"
	"github.com/tokenbroker/tokenbroker/server/token"
	"github.com/tokenbroker/tokenbroker/store"
)

// Defaults of the serve command.
const (
	DefaultGRPCAddr = "127.0.0.1:50051"
	DefaultHTTPAddr = "127.0.0.1:8080"
	DefaultDataPath = "data/tokenbroker.db"
	DefaultOrgName  = "default"

	// DefaultUsageFlushInterval bounds how stale persisted last-use times
	// may be. A crash loses at most this much of them, so after a crash an
	// authorization token may expire up to this much early; never late.
	DefaultUsageFlushInterval = 10 * time.Second
	// DefaultGCInterval is how often expired tokens are deleted. Expiry is
	// enforced on every check regardless; GC only reclaims space.
	DefaultGCInterval = time.Minute
	// DefaultHTTPWriteTimeout bounds writing a REST answer (Config.HTTPWriteTimeout).
	DefaultHTTPWriteTimeout = 30 * time.Second

	maxRequestBytes = 1 << 20

	// auditFlushInterval: refused calls reach the audit log within this
	// (changes are recorded in their own transaction, at once).
	auditFlushInterval = time.Second

	// DefaultPulsarAudience is the default aud claim of Pulsar JWTs.
	DefaultPulsarAudience = "pulsar"
)

// Config configures a broker process.
type Config struct {
	GRPCAddr      string
	HTTPAddr      string
	DataPath      string // bbolt file; its directory is created; the key file sits beside it
	BootstrapFile string // optional: where the first admin credential is written (0600)
	OrgName       string
	// AuthTokenTTL: an authorization token stays valid this long after its
	// most recent use (default 30m, Stargate's).
	AuthTokenTTL time.Duration
	// IssuerURL is the iss claim of Pulsar JWTs and the OIDC issuer; default
	// http://<HTTPAddr> (with the port actually bound).
	IssuerURL string
	// PulsarAudience is the aud claim of Pulsar JWTs (default "pulsar").
	PulsarAudience string
	// PulsarTokenLimit is the maximum number of live Pulsar tokens per
	// tenant (default 100).
	PulsarTokenLimit int
	// SigningKeyRotation, when positive, rotates the Pulsar signing key on
	// this schedule (the next key is prepared at half of it).
	SigningKeyRotation time.Duration
	// DisableUI turns the browser console at /ui/ off (it is on by default).
	DisableUI bool
	// DataAPIURLTemplate builds the URL fields of database objects, e.g.
	// "https://{id}-{region}.apps.example.internal" ({id}: the database ID,
	// {region}: its region); "" leaves them out.
	DataAPIURLTemplate string

	Logger *slog.Logger
	// BootstrapOut receives the one-time bootstrap credential (stderr in the CLI).
	BootstrapOut io.Writer
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Sleep is how failed logins are slowed; default a real timer (tests
	// inject one that records the delays).
	Sleep              func(ctx context.Context, d time.Duration)
	UsageFlushInterval time.Duration
	GCInterval         time.Duration
	// HTTPWriteTimeout is the REST listener's WriteTimeout (default 30 s),
	// so that slow clients cannot pin connections: from the request's
	// arrival for most calls, per page for streamed lists, and from the
	// answer's first byte for a bulk revocation (server/gateway).
	HTTPWriteTimeout time.Duration

	// Store selects the backend: "bolt" (default; DataPath) or "etcd"
	// (Etcd). KeyFile is the master key file (default <DataPath>.key);
	// every broker of one installation needs the same one. (openstore.go)
	Store   string
	KeyFile string
	Etcd    EtcdConfig
	// --- operations: TLS, metrics ---

	// TLS: with Cert and Key set, both listeners (and MetricsAddr) serve
	// TLS 1.2+ only; with ClientCA also set, the gRPC listener requires a
	// client certificate chaining to it and the REST listener verifies one
	// if presented. The files are reloaded on ReloadTLS and when their
	// contents change (checked every TLSWatchInterval, default 5 s).
	TLS              tlsconfig.Files
	TLSWatchInterval time.Duration
	// MetricsAddr, if set, serves GET /metrics on its own listener instead
	// of on the REST listener.
	MetricsAddr string
	// Pprof serves Go's runtime profiles (net/http/pprof, /debug/pprof/)
	// on the MetricsAddr listener, which must be set: profiles reveal
	// internals, so they never share the public REST listener.
	Pprof bool
	// NoMetrics turns metrics off (benchmarks compare with and without).
	NoMetrics bool
	// --- end operations ---
}

// Validate refuses settings that Start would otherwise have to replace or
// misuse; zero values mean "the default" and are fine.
func (c *Config) Validate() error {
	switch {
	case c.AuthTokenTTL < 0:
		return fmt.Errorf("auth token TTL %s: must be positive", c.AuthTokenTTL)
	case c.PulsarTokenLimit < 0:
		return fmt.Errorf("pulsar token limit %d: must be positive", c.PulsarTokenLimit)
	case c.UsageFlushInterval < 0 || c.GCInterval < 0 || c.TLSWatchInterval < 0 || c.HTTPWriteTimeout < 0:
		return errors.New("intervals must be positive")
	case (c.TLS.Cert == "") != (c.TLS.Key == ""):
		return errors.New("TLS needs both --tls-cert and --tls-key")
	case c.TLS.ClientCA != "" && c.TLS.Cert == "":
		return errors.New("--tls-client-ca needs TLS on (--tls-cert and --tls-key)")
	case c.Pprof && c.MetricsAddr == "":
		return errors.New("--pprof needs --metrics-addr: profiles are served only on the metrics listener")
	}
	if c.IssuerURL != "" {
		u, err := url.Parse(c.IssuerURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("issuer URL %q: must be an absolute http or https URL without query or fragment, e.g. https://broker.example.com", c.IssuerURL)
		}
	}
	return nil
}

// TLSMode names how the listeners are secured: "off", "tls" or "mtls".
func (c *Config) TLSMode() string {
	switch {
	case c.TLS.Cert == "":
		return "off"
	case c.TLS.ClientCA != "":
		return "mtls"
	default:
		return "tls"
	}
}

func (c *Config) setDefaults() {
	if c.GRPCAddr == "" {
		c.GRPCAddr = DefaultGRPCAddr
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = DefaultHTTPAddr
	}
	if c.DataPath == "" {
		c.DataPath = DefaultDataPath
	}
	if c.OrgName == "" {
		c.OrgName = DefaultOrgName
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.BootstrapOut == nil {
		c.BootstrapOut = os.Stderr
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.UsageFlushInterval <= 0 {
		c.UsageFlushInterval = DefaultUsageFlushInterval
	}
	if c.GCInterval <= 0 {
		c.GCInterval = DefaultGCInterval
	}
	if c.HTTPWriteTimeout <= 0 {
		c.HTTPWriteTimeout = DefaultHTTPWriteTimeout
	}
	if c.AuthTokenTTL <= 0 {
		c.AuthTokenTTL = broker.DefaultAuthTokenTTL
	}
	if c.PulsarAudience == "" {
		c.PulsarAudience = DefaultPulsarAudience
	}
	if c.PulsarTokenLimit <= 0 {
		c.PulsarTokenLimit = broker.DefaultPulsarTokenLimit
	}
}

// Server is a running broker.
type Server struct {
	cfg      Config
	log      *slog.Logger
	store    store.Store
	broker   *broker.Broker
	grpc     *grpc.Server
	inproc   *inproc.Channel // the gateway's way to the services
	health   *health.Server
	http     *http.Server
	grpcLis  net.Listener
	httpLis  net.Listener
	bootstrp *broker.BootstrapCredential

	tls         *tlsconfig.Reloader // nil without TLS
	metrics     *metrics.Metrics    // nil with NoMetrics
	metricsHTTP *http.Server        // nil unless MetricsAddr
	metricsLis  net.Listener

	stopLoops context.CancelFunc
	loops     sync.WaitGroup
	serveErr  chan error
	closeOnce sync.Once
}

// Start opens the store, bootstraps it on first use, and starts serving
// gRPC and REST. It returns once both listeners accept connections.
func Start(ctx context.Context, cfg Config) (_ *Server, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	// Every line logged with a call's context carries its request ID.
	cfg.Logger = slog.New(callctx.LogHandler{Handler: cfg.Logger.Handler()})
	s := &Server{cfg: cfg, log: cfg.Logger, serveErr: make(chan error, 3)}
	defer func() {
		if err != nil {
			s.closeResources()
		}
	}()

	if cfg.TLS.Cert != "" {
		if s.tls, err = tlsconfig.New(cfg.TLS, cfg.Logger); err != nil {
			return nil, err
		}
	}
	var onCommit func(batch int, took time.Duration)
	if !cfg.NoMetrics {
		s.metrics = metrics.New()
		onCommit = s.metrics.OnCommit
	}
	if s.store, err = openStore(ctx, cfg, onCommit); err != nil { // openstore.go
		return nil, err
	}

	// A key may be created only while the database holds no organization:
	// for an existing one, a new key would orphan every stored token.
	_, orgErr := s.store.GetOrganization(ctx)
	keyPath := cfg.keyFile()
	keys, created, err := keyring.Load(keyPath, orgErr != nil, cfg.Logger)
	if err != nil {
		return nil, err
	}
	if created {
		s.log.Info("created key file", "path", keyPath)
	}
	mac, err := credential.NewMAC(keys.Derive(keyring.PurposeTokenMAC))
	if err != nil {
		return nil, err
	}
	authMAC, err := credential.NewMAC(keys.Derive(keyring.PurposeAuthTokenMAC))
	if err != nil {
		return nil, err
	}
	pulsarMAC, err := credential.NewMAC(keys.Derive(keyring.PurposePulsarTokenMAC))
	if err != nil {
		return nil, err
	}
	// Listen before building the broker: the default issuer URL names the
	// HTTP port actually bound.
	if s.grpcLis, err = net.Listen("tcp", cfg.GRPCAddr); err != nil {
		return nil, fmt.Errorf("listen gRPC on %s: %w", cfg.GRPCAddr, err)
	}
	if s.httpLis, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		return nil, fmt.Errorf("listen HTTP on %s: %w", cfg.HTTPAddr, err)
	}
	if cfg.IssuerURL == "" {
		cfg.IssuerURL = "http://" + s.httpLis.Addr().String()
		if s.tls != nil {
			cfg.IssuerURL = "https://" + s.httpLis.Addr().String()
		}
	}
	if cfg.MetricsAddr != "" {
		if s.metricsLis, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			return nil, fmt.Errorf("listen metrics on %s: %w", cfg.MetricsAddr, err)
		}
	}
	s.cfg.IssuerURL = cfg.IssuerURL
	// Used verbatim as the tokens' iss and the discovery document's issuer:
	// Pulsar compares the two byte for byte.
	hasher, err := password.NewHasher(password.DefaultParams)
	if err != nil {
		return nil, err
	}
	setup, err := setupStore(ctx, cfg, s.store, keys, mac)
	if err != nil {
		return nil, err
	}
	s.bootstrp = setup.Bootstrap
	var observer broker.Observer // nil interface unless metrics are on
	if s.metrics != nil {
		observer = s.metrics
	}
	s.broker, err = broker.New(ctx, broker.Config{
		Observer: observer,
		Store:    s.store, MAC: mac, Org: setup.Org, Logger: cfg.Logger, Now: cfg.Now, Sleep: cfg.Sleep,
		AuthMAC: authMAC, AuthTokenTTL: cfg.AuthTokenTTL, Passwords: hasher,
		Leading:   leadingFunc(s.store),
		PulsarMAC: pulsarMAC,
		Pulsar: broker.PulsarConfig{
			Issuer: cfg.IssuerURL, Audience: cfg.PulsarAudience, TokenLimit: cfg.PulsarTokenLimit,
			SealKey: keys.Derive(keyring.PurposeSeal), KeyRotation: cfg.SigningKeyRotation,
		},
	})
	if err != nil {
		return nil, err
	}

	g := newGuard(s.broker, cfg.Logger, rules)
	unary, stream := []grpc.UnaryServerInterceptor{g.unary}, []grpc.StreamServerInterceptor{g.stream}
	if s.metrics != nil { // first, so it sees the codes of refused calls too
		unary = append([]grpc.UnaryServerInterceptor{s.metrics.UnaryInterceptor()}, unary...)
		stream = append([]grpc.StreamServerInterceptor{s.metrics.StreamInterceptor()}, stream...)
	}
	// One chain, run by the network server and by the gateway's in-process
	// channel alike: REST and gRPC cannot differ in who may do what.
	unaryChain := inproc.Chain(unary...)
	grpcOpts := []grpc.ServerOption{
		grpc.UnaryInterceptor(unaryChain),
		grpc.ChainStreamInterceptor(stream...),
		grpc.MaxRecvMsgSize(maxRequestBytes),
		// Long-lived workers serve the streams: a fresh goroutine per call
		// grows its stack again on every call (runtime.morestack was about a
		// tenth of the server's CPU under Check load; docs/performance.md).
		grpc.NumStreamWorkers(streamWorkers()),
	}
	if s.tls != nil {
		grpcOpts = append(grpcOpts, grpc.Creds(credentials.NewTLS(s.tls.ServerConfig(tlsconfig.RequireClientCert, "h2"))))
	}
	s.grpc = grpc.NewServer(grpcOpts...)
	s.inproc = inproc.New(unaryChain)
	reg := inproc.Registrars{s.grpc, s.inproc}
	token.New(token.Config{Broker: s.broker, Logger: cfg.Logger}).Register(reg)
	auth.New(auth.Config{Broker: s.broker, Logger: cfg.Logger}).Register(reg)
	pulsartoken.New(pulsartoken.Config{Broker: s.broker, Logger: cfg.Logger}).Register(reg)
	dbURLs, err := database.ParseURLTemplate(cfg.DataAPIURLTemplate)
	if err != nil {
		return nil, err
	}
	database.New(database.Config{Broker: s.broker, Logger: cfg.Logger, URLs: dbURLs}).Register(reg)
	auditlog.New(auditlog.Config{Broker: s.broker, Logger: cfg.Logger}).Register(reg)
	admin.New(admin.Config{Store: s.store, OrgID: setup.Org.ID, Logger: cfg.Logger, Now: cfg.Now}).Register(reg)
	s.health = health.NewServer()
	healthpb.RegisterHealthServer(reg, s.health)
	healthServices := []string{tbv1.TokenService_ServiceDesc.ServiceName, tbv1.AuthService_ServiceDesc.ServiceName, tbv1.PulsarTokenService_ServiceDesc.ServiceName, tbv1.DatabaseService_ServiceDesc.ServiceName, tbv1.AuditService_ServiceDesc.ServiceName, tbv1.AdminService_ServiceDesc.ServiceName}
	for _, svc := range healthServices {
		s.health.SetServingStatus(svc, healthpb.HealthCheckResponse_SERVING)
	}
	reflection.Register(s.grpc)
	if s.metrics != nil {
		s.metrics.InitializeGRPC(s.grpc)
		// Stored record counts come from backends that can count cheaply
		// (bbolt's bucket statistics); others publish no such gauge.
		if rc, ok := s.store.(interface {
			RecordCounts() (map[string]int, error)
		}); ok {
			s.metrics.WatchRecords(rc.RecordCounts, recordCountMaxAge)
		}
	}

	// The gateway calls the services in process (server/inproc), through
	// the interceptor chain above: no second connection, no dependence on
	// the gRPC address being dialable, and the server can tell gateway calls
	// (peer network "inproc") from outside ones, so it trusts the client
	// address the gateway passes only from the gateway.
	gw, err := gateway.New(ctx, s.inproc, cfg.Logger, s.gatewayRoutes()...)
	if err != nil {
		return nil, err
	}
	handler, err := s.restHandler(gw)
	if err != nil {
		return nil, err
	}
	s.http = &http.Server{
		Handler: handler,
		// Bounded timeouts so slow or idle clients cannot pin connections.
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      cfg.HTTPWriteTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
	}

	if s.metricsLis != nil {
		mux := http.NewServeMux()
		if s.metrics != nil {
			mux.Handle("GET /metrics", s.metrics.Handler())
		}
		if cfg.Pprof {
			mux.HandleFunc("GET /debug/pprof/", pprof.Index)
			mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
			mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
			mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
			mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
		}
		s.metricsHTTP = &http.Server{
			Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
			WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
			ErrorLog: slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
		}
	}
	if s.tls != nil {
		// REST: a client certificate is verified if presented, not required
		// (Astra's API authenticates by token; see docs/operations.md).
		s.http.TLSConfig = s.tls.ServerConfig(tlsconfig.VerifyClientCertIfGiven, "h2", "http/1.1")
		if s.metricsHTTP != nil {
			s.metricsHTTP.TLSConfig = s.tls.ServerConfig(tlsconfig.VerifyClientCertIfGiven, "h2", "http/1.1")
		}
	}

	go func() { s.serveErr <- s.grpc.Serve(s.grpcLis) }()
	s.serveHTTP(s.http, s.httpLis)
	if s.metricsHTTP != nil {
		s.serveHTTP(s.metricsHTTP, s.metricsLis)
	}

	loopCtx, cancel := context.WithCancel(context.Background())
	s.stopLoops = cancel
	s.watchFreshness(loopCtx, healthServices) // shared stores: NOT_SERVING while stale (cluster.go)
	s.every(loopCtx, cfg.UsageFlushInterval, "flush token use", s.broker.FlushUsage)
	s.every(loopCtx, auditFlushInterval, "write audit events of refused calls", s.broker.FlushAudit)
	if s.tls != nil {
		s.loops.Add(1)
		go func() { defer s.loops.Done(); s.tls.Watch(loopCtx, cfg.TLSWatchInterval) }()
	}
	s.every(loopCtx, cfg.GCInterval, "delete expired tokens", func(ctx context.Context) error {
		n, err := s.broker.CollectGarbage(ctx, 2*cfg.UsageFlushInterval)
		if n > 0 {
			s.log.Info("deleted expired and idle tokens", "count", n)
		}
		return err
	})

	if s.bootstrp != nil {
		s.announceBootstrap()
	}
	s.logStart(setup.Org)
	return s, nil
}

// minStreamWorkers is the fewest gRPC stream workers. A write holds its
// worker while it waits for its group commit (a few ms), so under
// concurrent writes a handful of workers (4 per CPU) were all busy and
// every other write ran on a fresh goroutine, whose stack then grew, copy
// by copy, deep in the call (runtime.newstack was about a tenth of the
// broker's CPU per create at 64 callers). Idle workers cost a parked
// goroutine each.
const minStreamWorkers = 128

// streamWorkers is the number of gRPC stream workers; a call that finds
// them all busy still gets its own goroutine. TOKENBROKER_STREAM_WORKERS
// overrides it (benchmarks compare).
func streamWorkers() uint32 {
	if v, err := strconv.Atoi(os.Getenv("TOKENBROKER_STREAM_WORKERS")); err == nil && v >= 0 {
		return uint32(v)
	}
	return uint32(max(minStreamWorkers, 4*runtime.GOMAXPROCS(0)))
}

// gatewayRoutes are the plain HTTP routes served beside the RPCs.
func (s *Server) gatewayRoutes() []gateway.Route {
	routes := oidcRoutes(s.broker)
	if s.metrics != nil && s.metricsLis == nil {
		routes = append(routes, gateway.Route{Method: http.MethodGet, Path: "/metrics", Handler: s.metrics.Handler().ServeHTTP})
	}
	return routes
}

// restHandler is what the REST listener serves around the gateway gw: the
// console (a client of gw, mounted beside it) and the request-size limit.
func (s *Server) restHandler(gw http.Handler) (http.Handler, error) {
	handler := gw
	if !s.cfg.DisableUI {
		var err error
		if handler, err = console.Mount(gw, s.cfg.Now, s.cfg.Logger); err != nil {
			return nil, err
		}
	}
	return http.MaxBytesHandler(handler, maxRequestBytes), nil
}

// recordCountMaxAge bounds how often a metrics scrape counts stored records.
const recordCountMaxAge = 15 * time.Second

// serveHTTP serves srv on lis (over TLS when srv has a TLS config) until
// Shutdown.
func (s *Server) serveHTTP(srv *http.Server, lis net.Listener) {
	go func() {
		var err error
		if srv.TLSConfig != nil {
			err = srv.ServeTLS(lis, "", "") // certificates come from TLSConfig
		} else {
			err = srv.Serve(lis)
		}
		if !errors.Is(err, http.ErrServerClosed) {
			s.serveErr <- err
		}
	}()
}

// logStart logs, once, where the broker listens and every effective
// setting (no secrets: the settings hold none).
func (s *Server) logStart(org store.Organization) {
	cfg := s.cfg
	metricsAt := "off"
	switch {
	case s.metricsLis != nil && s.metrics != nil:
		metricsAt = s.MetricsURL()
	case s.metrics != nil:
		metricsAt = s.scheme() + "://" + s.HTTPAddr() + "/metrics"
	}
	attrs := []any{
		"version", buildinfo.Get().String(),
		"grpc", s.GRPCAddr(), "http", s.scheme() + "://" + s.HTTPAddr(), "metrics", metricsAt,
		"tls", cfg.TLSMode(),
	}
	// The store as configured: the bbolt file, or the etcd cluster and
	// prefix (then DataPath is unused); the key file either way.
	if cfg.Store == StoreEtcd {
		attrs = append(attrs, "store", "etcd", "etcd_endpoints", strings.Join(cfg.Etcd.Endpoints, ","), "etcd_prefix", cfg.etcdPrefix(),
			"etcd_max_txn_ops", cfg.etcdMaxTxnOps())
	} else {
		attrs = append(attrs, "store", "bbolt", "data", cfg.DataPath)
	}
	attrs = append(attrs, "key_file", cfg.keyFile(),
		"org_id", org.ID, "org_name", org.Name, "issuer", cfg.IssuerURL,
		"auth_token_ttl", cfg.AuthTokenTTL.String(), "pulsar_audience", cfg.PulsarAudience,
		"pulsar_token_limit", cfg.PulsarTokenLimit,
		"usage_flush_interval", cfg.UsageFlushInterval.String(), "gc_interval", cfg.GCInterval.String())
	if cfg.BootstrapFile != "" {
		attrs = append(attrs, "bootstrap_file", cfg.BootstrapFile)
	}
	if s.tls != nil {
		leaf := s.tls.Leaf()
		attrs = append(attrs, "tls_cert", cfg.TLS.Cert, "tls_subject", leaf.Subject.String(),
			"tls_not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
		if cfg.TLS.ClientCA != "" {
			attrs = append(attrs, "tls_client_ca", cfg.TLS.ClientCA)
		}
	}
	s.log.Info("tokenbroker serving", attrs...)
}

func (s *Server) scheme() string {
	if s.tls != nil {
		return "https"
	}
	return "http"
}

// MetricsURL is where GET /metrics is served ("" with NoMetrics).
func (s *Server) MetricsURL() string {
	switch {
	case s.metrics == nil:
		return ""
	case s.metricsLis != nil:
		return s.scheme() + "://" + s.metricsLis.Addr().String() + "/metrics"
	default:
		return s.scheme() + "://" + s.HTTPAddr() + "/metrics"
	}
}

// ReloadTLS re-reads the TLS files now (the serve command calls it on
// SIGHUP). Open connections keep going; new ones get the new certificates.
// Without TLS it does nothing.
func (s *Server) ReloadTLS() error {
	if s.tls == nil {
		return nil
	}
	return s.tls.Reload()
}

// Metrics is the broker's metrics registry holder (nil with NoMetrics).
func (s *Server) Metrics() *metrics.Metrics { return s.metrics }

// IssuerURL is the effective issuer of Pulsar JWTs and OIDC.
func (s *Server) IssuerURL() string { return s.cfg.IssuerURL }

// every runs fn every interval until ctx is done.
func (s *Server) every(ctx context.Context, interval time.Duration, what string, fn func(context.Context) error) {
	s.loops.Add(1)
	go func() {
		defer s.loops.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := fn(ctx); err != nil && ctx.Err() == nil {
					s.log.Warn("background task failed", "task", what, "err", err)
				}
			}
		}
	}()
}

// announceBootstrap prints the first admin credential once. This is the one
// place a secret is ever printed, deliberately to stderr and not through the
// logger, so log pipelines never carry it.
func (s *Server) announceBootstrap() {
	b, _ := json.MarshalIndent(s.bootstrp, "", "  ")
	where := "it is not stored anywhere: save it now"
	if s.cfg.BootstrapFile != "" {
		where = "also written to " + s.cfg.BootstrapFile + " (mode 0600)"
	}
	fmt.Fprintf(s.cfg.BootstrapOut, "\n=== tokenbroker: first start, created the organization and an Organization Administrator token ===\n"+
		"This is shown only once (%s).\n%s\n===\n\n", where, b)
}

// GRPCAddr is the address the gRPC server listens on.
func (s *Server) GRPCAddr() string { return s.grpcLis.Addr().String() }

// HTTPAddr is the address the REST gateway listens on.
func (s *Server) HTTPAddr() string { return s.httpLis.Addr().String() }

// RESTHandler is the handler the REST listener serves (gateway, console and
// request-size limit), for benchmarks that call it without a socket.
func (s *Server) RESTHandler() http.Handler { return s.http.Handler }

// Bootstrap returns the first admin credential if this start created it.
func (s *Server) Bootstrap() *broker.BootstrapCredential { return s.bootstrp }

// Broker exposes the domain layer (for tests and benchmarks in this module).
func (s *Server) Broker() *broker.Broker { return s.broker }

// Err reports a listener that failed while serving.
func (s *Server) Err() <-chan error { return s.serveErr }

// Shutdown stops accepting calls, lets in-flight ones finish (until ctx is
// done), persists pending last-use times and closes the store.
func (s *Server) Shutdown(ctx context.Context) error {
	s.health.Shutdown() // report NOT_SERVING while draining
	httpErr := s.http.Shutdown(ctx)
	if s.metricsHTTP != nil {
		httpErr = errors.Join(httpErr, s.metricsHTTP.Shutdown(ctx))
	}
	stopped := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-ctx.Done():
		s.grpc.Stop()
	}
	flushErr := errors.Join(s.broker.FlushUsage(context.Background()), s.broker.FlushAudit(context.Background()))
	s.closeResources()
	return errors.Join(httpErr, flushErr)
}

func (s *Server) closeResources() {
	s.closeOnce.Do(func() {
		if s.stopLoops != nil {
			s.stopLoops()
			s.loops.Wait()
		}
		if s.grpc != nil {
			s.grpc.Stop()
		}
		for _, l := range []net.Listener{s.grpcLis, s.httpLis, s.metricsLis} {
			if l != nil {
				l.Close()
			}
		}
		if s.broker != nil {
			s.broker.Close() // its view stops following the store
		}
		if s.store != nil {
			if err := s.store.Close(); err != nil {
				s.log.Warn("close store", "err", err)
			}
		}
	})
}
