// Package etcdtest starts a real, single-member etcd server for tests, on
// loopback ports chosen at random, with its data in a temporary directory.
// It is imported only by tests: the broker binary never links the etcd
// server.
package etcdtest

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// Server is a running etcd member.
type Server struct {
	// Endpoint is the client URL (http://127.0.0.1:port).
	Endpoint string
	e        *embed.Etcd
	dir      string
}

var (
	shared     *Server
	sharedErr  error
	sharedOnce sync.Once
)

// Shared returns one server for the whole test binary (started on first
// use); tests isolate themselves with a fresh key prefix each. Call
// StopShared from TestMain after m.Run.
func Shared(t testing.TB) *Server {
	t.Helper()
	sharedOnce.Do(func() { shared, sharedErr = Start() })
	if sharedErr != nil {
		t.Fatalf("start etcd: %v", sharedErr)
	}
	return shared
}

// StopShared stops the shared server, if one was started.
func StopShared() {
	if shared != nil {
		shared.Stop()
	}
}

// Start starts a new member. Stop it with Stop. configure, if given, may
// change the member's settings (say, MaxTxnOps) before it starts.
func Start(configure ...func(*embed.Config)) (*Server, error) {
	dir, err := os.MkdirTemp("", "tokenbroker-etcd-*")
	if err != nil {
		return nil, err
	}
	// embed needs concrete ports; take two free ones from the kernel.
	var ports [2]int
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ports[i] = l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
	}
	clientURL := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[0])}
	peerURL := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[1])}

	cfg := embed.NewConfig()
	cfg.Name = "test"
	cfg.Dir = dir
	cfg.ListenClientUrls = []url.URL{clientURL}
	cfg.AdvertiseClientUrls = []url.URL{clientURL}
	cfg.ListenPeerUrls = []url.URL{peerURL}
	cfg.AdvertisePeerUrls = []url.URL{peerURL}
	cfg.InitialCluster = cfg.Name + "=" + peerURL.String()
	cfg.LogLevel = "error"
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop()) // shutdown noise is not a test failure
	cfg.ListenMetricsUrls = nil
	for _, c := range configure {
		c(cfg)
	}

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(60 * time.Second):
		e.Close()
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("etcd did not become ready within 60 s")
	}
	return &Server{Endpoint: clientURL.String(), e: e, dir: dir}, nil
}

// Stop stops the member and removes its data.
func (s *Server) Stop() {
	s.e.Close()
	_ = os.RemoveAll(s.dir)
}
