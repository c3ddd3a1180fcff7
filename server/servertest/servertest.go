// Package servertest starts a real tokenbroker server for tests: real gRPC
// and REST listeners on 127.0.0.1 ephemeral ports, a bbolt file in the
// test's temporary directory, and a fake clock the test controls.
//
//	env := servertest.Start(t)
//	resp := env.CreateToken(t, env.AdminToken, policy.RWSvcAcctID)
//	code, body, _ := env.REST(t, "GET", "/v2/clientIdSecrets", resp.Token, nil)
//	env.Clock.Advance(2 * time.Hour)
//
// Logs are discarded unless the WithLog option is given or the environment
// variable TOKENBROKER_TEST_LOG is non-empty; then they go to t.Log at Debug.
//
// The backend is bbolt unless the environment variable TOKENBROKER_TEST_STORE
// is "etcd": then every Env gets a fresh key prefix on one real etcd member
// shared by the test binary (store/etcd/etcdtest; a test binary stops it
// with StopShared from TestMain). The same suites thus run over both
// backends; a test that is about one backend's files says so with
// RequireBolt.
package servertest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	tbv1 "github.com/tokenbroker/tokenbroker/gen/tokenbroker/v1"
	"github.com/tokenbroker/tokenbroker/server"
	"github.com/tokenbroker/tokenbroker/server/broker"
	"github.com/tokenbroker/tokenbroker/store/etcd/etcdtest"
)

// StoreEnv is the environment variable selecting every Env's backend:
// "" or "bolt" for a bbolt file in the test's temporary directory, "etcd"
// for a fresh key prefix on the etcd member shared by the test binary.
const StoreEnv = "TOKENBROKER_TEST_STORE"

// Backend returns the backend the Envs of this run use: server.StoreBolt
// or server.StoreEtcd. Any other value of StoreEnv panics, so that a typo
// cannot silently run the bbolt pass twice.
func Backend() string {
	switch v := os.Getenv(StoreEnv); v {
	case "", server.StoreBolt:
		return server.StoreBolt
	case server.StoreEtcd:
		return server.StoreEtcd
	default:
		panic(fmt.Sprintf("servertest: %s=%q: want %q or %q", StoreEnv, v, server.StoreBolt, server.StoreEtcd))
	}
}

// OnEtcd reports whether the Envs of this run use the etcd backend.
func OnEtcd() bool { return Backend() == server.StoreEtcd }

// RequireBolt skips the test on the etcd pass; why says what makes the test
// specific to bbolt (and, where one exists, which test covers etcd).
func RequireBolt(t testing.TB, why string) {
	t.Helper()
	if OnEtcd() {
		t.Skip("bbolt only: " + why)
	}
}

// StopShared stops the etcd member shared by the Envs of this test binary,
// if one was started: call it from TestMain after m.Run.
func StopShared() { etcdtest.StopShared() }

var etcdPrefixes atomic.Int64

// freshEtcdPrefix returns a key prefix no other Env of this run uses (the
// process ID keeps runs against one long-lived member apart too).
func freshEtcdPrefix() string {
	return fmt.Sprintf("/servertest-%d-%d/", os.Getpid(), etcdPrefixes.Add(1))
}

// DefaultStart is where every Env's clock starts: far from the wall clock
// (so a test that accidentally relies on time.Now fails visibly) and with
// nanoseconds (so time formatting is exercised).
var DefaultStart = time.Date(2040, time.January, 2, 3, 4, 5, 123456789, time.UTC)

// Sleeps records requested delays without waiting; safe for concurrent use.
type Sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *Sleeps) sleep(_ context.Context, d time.Duration) {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
}

// All returns the delays recorded so far, in order.
func (s *Sleeps) All() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.d...)
}

// Clock is a fake clock, safe for concurrent use. It only moves when told.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock reading start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the current fake time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d (backward if d is negative).
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Set sets the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// Option configures Start.
type Option func(*options)

type options struct {
	orgName       string
	bootstrapFile bool
	log           bool
	start         time.Time
	configure     []func(*server.Config)
}

// WithOrgName sets the organization name used on first start.
func WithOrgName(name string) Option { return func(o *options) { o.orgName = name } }

// WithBootstrapFile makes the first start also write the bootstrap
// credential to Env.BootstrapFile.
func WithBootstrapFile() Option { return func(o *options) { o.bootstrapFile = true } }

// WithLog sends the server's logs to t.Log at Debug level.
func WithLog() Option { return func(o *options) { o.log = true } }

// WithClockStart sets the fake clock's initial time.
func WithClockStart(t time.Time) Option { return func(o *options) { o.start = t } }

// WithConfig lets a test adjust the server configuration of every start
// (addresses, paths, clock and logger are set before it runs).
func WithConfig(fn func(*server.Config)) Option {
	return func(o *options) { o.configure = append(o.configure, fn) }
}

// Env is a running (or, between Shutdown and Restart, stopped) server and
// clients for it.
type Env struct {
	Clock *Clock
	// Sleeps records the server's deliberate delays (slowed failed
	// logins) instead of waiting them, so tests observe them exactly and
	// never depend on wall-clock time.
	Sleeps *Sleeps
	// Server is the running server; nil while stopped.
	Server *server.Server

	Dir string // the temporary directory holding the data
	// DataPath is the bbolt file; the key file is DataPath+".key" on
	// either backend (on etcd no file is at DataPath itself).
	DataPath string
	// Store is the backend: server.StoreBolt or server.StoreEtcd. On etcd,
	// EtcdEndpoint and EtcdPrefix say where the data is; StoredData reads
	// it on either backend.
	Store         string
	EtcdEndpoint  string
	EtcdPrefix    string
	BootstrapFile string // "" unless WithBootstrapFile
	OrgName       string

	// Admin is the bootstrap credential of the first start (kept across
	// restarts, which do not bootstrap again).
	Admin         *broker.BootstrapCredential
	AdminToken    string
	AdminClientID string
	OrgID         string

	// Conn, Tokens, Auth, Pulsar, Databases and Audit reach the gRPC
	// server; all are replaced by Restart.
	Conn      *grpc.ClientConn
	Tokens    tbv1.TokenServiceClient
	Auth      tbv1.AuthServiceClient
	Pulsar    tbv1.PulsarTokenServiceClient
	Databases tbv1.DatabaseServiceClient
	Audit     tbv1.AuditServiceClient
	// HTTPBase is "http://<rest addr>"; replaced by Restart.
	HTTPBase string

	opts   options
	logw   *testWriter
	client *http.Client

	fromMu    sync.Mutex
	fromHTTP  map[string]*http.Client     // by source IP; kept across restarts
	fromConns map[string]*grpc.ClientConn // by source IP; closed by Shutdown
}

// Start starts a server over a fresh data directory and registers its
// shutdown with t.Cleanup.
func Start(t testing.TB, opts ...Option) *Env {
	t.Helper()
	o := options{orgName: "servertest-org", start: DefaultStart}
	for _, opt := range opts {
		opt(&o)
	}
	if os.Getenv("TOKENBROKER_TEST_LOG") != "" {
		o.log = true
	}
	dir := t.TempDir()
	e := &Env{
		Clock:    NewClock(o.start),
		Sleeps:   &Sleeps{},
		Dir:      dir,
		DataPath: filepath.Join(dir, "data", "tokenbroker.db"),
		OrgName:  o.orgName,
		Store:    Backend(),
		opts:     o,
		client:   &http.Client{Timeout: 30 * time.Second},
	}
	if e.Store == server.StoreEtcd {
		e.EtcdEndpoint = etcdtest.Shared(t).Endpoint
		e.EtcdPrefix = freshEtcdPrefix()
	}
	if o.bootstrapFile {
		e.BootstrapFile = filepath.Join(dir, "bootstrap.json")
	}
	if o.log {
		e.logw = &testWriter{t: t}
	}
	// Registered after TempDir, so it runs before the directory is removed.
	t.Cleanup(func() {
		e.Shutdown()
		if e.logw != nil {
			e.logw.stop()
		}
	})
	if err := e.start(); err != nil {
		t.Fatalf("servertest: start server: %v", err)
	}
	b := e.Server.Bootstrap()
	if b == nil {
		t.Fatal("servertest: first start returned no bootstrap credential")
	}
	e.Admin = b
	e.AdminToken = b.Token
	e.AdminClientID = b.ClientID
	e.OrgID = b.OrgID
	return e
}

// EtcdStaleAfter is the staleness bound of test brokers on etcd. These
// tests exercise behaviour, not the bound (server/clustertest tests that,
// with a short one): on a CPU-starved machine running every test binary at
// once, the freshness check can run seconds late, and the default bound
// would then refuse reads the test expects to succeed.
const EtcdStaleAfter = 30 * time.Second

func (e *Env) config() server.Config {
	logger := slog.New(slog.DiscardHandler)
	if e.logw != nil {
		logger = slog.New(slog.NewTextHandler(e.logw, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	cfg := server.Config{
		GRPCAddr:      "127.0.0.1:0",
		HTTPAddr:      "127.0.0.1:0",
		DataPath:      e.DataPath,
		BootstrapFile: e.BootstrapFile,
		OrgName:       e.OrgName,
		Logger:        logger,
		BootstrapOut:  io.Discard,
		Now:           e.Clock.Now,
		Sleep:         e.Sleeps.sleep,
	}
	if e.Store == server.StoreEtcd {
		cfg.Store = server.StoreEtcd
		cfg.Etcd = server.EtcdConfig{Endpoints: []string{e.EtcdEndpoint}, Prefix: e.EtcdPrefix, StaleAfter: EtcdStaleAfter}
	}
	for _, fn := range e.opts.configure {
		fn(&cfg)
	}
	return cfg
}

func (e *Env) start() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := server.Start(ctx, e.config())
	if err != nil {
		return err
	}
	conn, err := grpc.NewClient(srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		_ = srv.Shutdown(ctx)
		return fmt.Errorf("gRPC client: %w", err)
	}
	if e.Store == server.StoreEtcd {
		// Over a shared store the background jobs (garbage collection,
		// scheduled key rotation) run only on the broker holding the
		// election; the lone broker of an Env wins it within moments. Tests
		// that call Broker().CollectGarbage expect it to do its work, as it
		// does at once on bbolt, so the start waits for the win.
		for !srv.LeadsBackgroundJobs() {
			select {
			case <-ctx.Done():
				_ = conn.Close()
				_ = srv.Shutdown(context.Background())
				return fmt.Errorf("the broker did not win the background-job election: %w", ctx.Err())
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	e.Server = srv
	e.Conn = conn
	e.Tokens = tbv1.NewTokenServiceClient(conn)
	e.Auth = tbv1.NewAuthServiceClient(conn)
	e.Pulsar = tbv1.NewPulsarTokenServiceClient(conn)
	e.Databases = tbv1.NewDatabaseServiceClient(conn)
	e.Audit = tbv1.NewAuditServiceClient(conn)
	e.HTTPBase = "http://" + srv.HTTPAddr()
	return nil
}

// Shutdown stops the server gracefully (flushing last-use times and closing
// the store) and closes the clients. It is idempotent, and registered with
// t.Cleanup by Start.
func (e *Env) Shutdown() {
	if e.Conn != nil {
		_ = e.Conn.Close()
		e.Conn = nil
	}
	e.fromMu.Lock()
	for ip, c := range e.fromConns {
		_ = c.Close()
		delete(e.fromConns, ip)
	}
	e.fromMu.Unlock()
	if e.Server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.Server.Shutdown(ctx); err != nil && e.logw != nil {
			fmt.Fprintf(e.logw, "servertest: shutdown: %v\n", err)
		}
		e.Server = nil
	}
	e.client.CloseIdleConnections()
	e.fromMu.Lock()
	for _, c := range e.fromHTTP {
		c.CloseIdleConnections()
	}
	e.fromMu.Unlock()
}

// Restart shuts the server down and starts it again on the same data file
// (and key file); the ports change. It fails the test if the start fails.
func (e *Env) Restart(t testing.TB) {
	t.Helper()
	if err := e.TryRestart(); err != nil {
		t.Fatalf("servertest: restart: %v", err)
	}
}

// TryRestart is Restart returning the start error instead of failing the
// test; after an error the Env stays stopped.
func (e *Env) TryRestart() error {
	e.Shutdown()
	return e.start()
}

// GRPCCtx returns a context carrying "authorization: Bearer <bearer>"
// metadata (no metadata when bearer is "").
func (e *Env) GRPCCtx(bearer string) context.Context {
	ctx := context.Background()
	if bearer == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+bearer)
}

// FlushAudit writes the queued audit events of refused calls now (the
// server does so every second), failing the test on error.
func (e *Env) FlushAudit(t testing.TB) {
	t.Helper()
	if e.Server == nil {
		t.Fatal("servertest: FlushAudit while the server is stopped")
	}
	if err := e.Server.Broker().FlushAudit(context.Background()); err != nil {
		t.Fatalf("servertest: FlushAudit: %v", err)
	}
}

// CreateToken creates a token over gRPC with the given roles, failing the
// test on error.
func (e *Env) CreateToken(t testing.TB, bearer string, roleIDs ...string) *tbv1.CreateTokenResponse {
	t.Helper()
	resp, err := e.Tokens.CreateToken(e.GRPCCtx(bearer), &tbv1.CreateTokenRequest{Roles: roleIDs})
	if err != nil {
		t.Fatalf("servertest: CreateToken(%v): %v", roleIDs, err)
	}
	return resp
}

// REST performs one HTTP call against the REST gateway. body may be nil (no
// body), a []byte or string (sent as is), or any value (sent as JSON).
// bearer, when not "", is sent as "Authorization: Bearer <bearer>". It
// returns the status, the raw response body and the response headers.
func (e *Env) REST(t testing.TB, method, path, bearer string, body any) (int, []byte, http.Header) {
	t.Helper()
	return e.Do(t, e.NewRequest(t, method, path, bearer, body))
}

// NewRequest prepares the request REST would send (same body and bearer
// rules), so a test can add headers before passing it to Do or DoFrom.
func (e *Env) NewRequest(t testing.TB, method, path, bearer string, body any) *http.Request {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("servertest: marshal request body: %v", err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, e.HTTPBase+path, rd)
	if err != nil {
		t.Fatalf("servertest: %s %s: %v", method, path, err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	return req
}

// Do sends a prepared request (for headers REST does not set) and returns
// the status, raw body and headers.
func (e *Env) Do(t testing.TB, req *http.Request) (int, []byte, http.Header) {
	t.Helper()
	return do(t, e.client, req)
}

// RESTFrom is REST with the TCP connection opened from the local address
// ip, another loopback address such as "127.0.0.2" (all of 127.0.0.0/8 is
// loopback on Linux), so the server sees a different client address: for
// per-address throttling.
func (e *Env) RESTFrom(t testing.TB, ip, method, path, bearer string, body any) (int, []byte, http.Header) {
	t.Helper()
	return e.DoFrom(t, ip, e.NewRequest(t, method, path, bearer, body))
}

// DoFrom is Do with the connection opened from the local address ip (see
// RESTFrom).
func (e *Env) DoFrom(t testing.TB, ip string, req *http.Request) (int, []byte, http.Header) {
	t.Helper()
	local := localAddr(t, ip)
	e.fromMu.Lock()
	c, ok := e.fromHTTP[ip]
	if !ok {
		d := &net.Dialer{LocalAddr: local, Timeout: 10 * time.Second}
		c = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
		if e.fromHTTP == nil {
			e.fromHTTP = map[string]*http.Client{}
		}
		e.fromHTTP[ip] = c
	}
	e.fromMu.Unlock()
	return do(t, c, req)
}

// AuthFrom returns an AuthService client whose connection is opened from the
// local address ip (see RESTFrom). It is valid until the next Shutdown or
// Restart.
func (e *Env) AuthFrom(t testing.TB, ip string) tbv1.AuthServiceClient {
	t.Helper()
	local := localAddr(t, ip)
	e.fromMu.Lock()
	defer e.fromMu.Unlock()
	if e.Server == nil {
		t.Fatalf("servertest: AuthFrom(%s) while the server is stopped", ip)
	}
	c, ok := e.fromConns[ip]
	if !ok {
		d := &net.Dialer{LocalAddr: local, Timeout: 10 * time.Second}
		var err error
		c, err = grpc.NewClient(e.Server.GRPCAddr(),
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
				return d.DialContext(ctx, "tcp", addr)
			}))
		if err != nil {
			t.Fatalf("servertest: gRPC client from %s: %v", ip, err)
		}
		if e.fromConns == nil {
			e.fromConns = map[string]*grpc.ClientConn{}
		}
		e.fromConns[ip] = c
	}
	return tbv1.NewAuthServiceClient(c)
}

func localAddr(t testing.TB, ip string) *net.TCPAddr {
	t.Helper()
	addr := net.ParseIP(ip)
	if addr == nil || !addr.IsLoopback() {
		t.Fatalf("servertest: %q is not a loopback IP address", ip)
	}
	return &net.TCPAddr{IP: addr}
}

func do(t testing.TB, c *http.Client, req *http.Request) (int, []byte, http.Header) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("servertest: %s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("servertest: read %s %s response: %v", req.Method, req.URL.Path, err)
	}
	return resp.StatusCode, raw, resp.Header
}

// Login logs in over gRPC (CreateAuthToken: a database user's username and
// password, or an application token's clientId and secret) and returns the
// authorization token, failing the test on error.
func (e *Env) Login(t testing.TB, username, password string) string {
	t.Helper()
	resp, err := e.Auth.CreateAuthToken(context.Background(), &tbv1.CreateAuthTokenRequest{Username: username, Password: password})
	if err != nil {
		t.Fatalf("servertest: login as %q: %v", username, err)
	}
	return resp.GetAuthToken()
}

// CreateUser creates a database user over gRPC as bearer, failing the test
// on error.
func (e *Env) CreateUser(t testing.TB, bearer, username, password string, roleIDs ...string) *tbv1.User {
	t.Helper()
	resp, err := e.Auth.CreateUser(e.GRPCCtx(bearer), &tbv1.CreateUserRequest{Username: username, Password: password, Roles: roleIDs})
	if err != nil {
		t.Fatalf("servertest: CreateUser(%q, %v): %v", username, roleIDs, err)
	}
	return resp.GetUser()
}

// testWriter forwards log lines to t.Log until stopped, so a late log line
// after the test ended cannot panic.
type testWriter struct {
	mu      sync.Mutex
	t       testing.TB
	stopped bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testWriter) stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
}
