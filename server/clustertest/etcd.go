// Package clustertest runs a tokenbroker cluster on loopback for tests: a
// 3-member etcd cluster whose members are real child processes (so a test
// can SIGKILL one and restart it on its data directory) and broker
// replicas (in-process servers with real gRPC and REST listeners, or child
// processes of the real tokenbroker binary: Options.Processes) sharing it
// with one key file, one prefix and one issuer URL.
//
// The etcd members are the test binary itself, re-executed: a test package
// using this harness calls MemberMain first thing in its TestMain, which in
// a child started by the harness runs an embedded etcd member until the
// process is killed. No etcd binary has to be built or installed.
//
// It is imported only by tests: the broker binary never links etcd's server.
package clustertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// memberEnv carries a child's member configuration (JSON of memberConfig).
const memberEnv = "TOKENBROKER_CLUSTERTEST_ETCD_MEMBER"

type memberConfig struct {
	Name           string
	Dir            string
	ClientURL      string
	PeerURL        string
	InitialCluster string
}

// MemberMain runs an etcd member and never returns when the process was
// started by the harness as one; otherwise it returns at once. Call it
// first in TestMain.
func MemberMain() {
	raw := os.Getenv(memberEnv)
	if raw == "" {
		return
	}
	var mc memberConfig
	if err := json.Unmarshal([]byte(raw), &mc); err != nil {
		fmt.Fprintln(os.Stderr, "clustertest member: bad config:", err)
		os.Exit(2)
	}
	cu, _ := url.Parse(mc.ClientURL)
	pu, _ := url.Parse(mc.PeerURL)
	cfg := embed.NewConfig()
	cfg.Name = mc.Name
	cfg.Dir = mc.Dir
	cfg.ListenClientUrls = []url.URL{*cu}
	cfg.AdvertiseClientUrls = []url.URL{*cu}
	cfg.ListenPeerUrls = []url.URL{*pu}
	cfg.AdvertisePeerUrls = []url.URL{*pu}
	cfg.InitialCluster = mc.InitialCluster
	cfg.InitialClusterToken = "tokenbroker-clustertest"
	cfg.ListenMetricsUrls = nil
	cfg.LogLevel = "error"
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	// etcd's default raft timings (100 ms heartbeat, 1 s election): shorter
	// ones make a busy shared machine lose leaders spuriously.
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "clustertest member: start:", err)
		os.Exit(1)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	// Exit when the parent goes away too (its end of stdin closes), so a
	// crashed test never leaves members running.
	parentGone := make(chan struct{})
	go func() {
		buf := make([]byte, 1)
		for {
			if _, err := os.Stdin.Read(buf); err != nil {
				close(parentGone)
				return
			}
		}
	}()
	select {
	case <-sig:
	case <-parentGone:
	case err := <-e.Err():
		fmt.Fprintln(os.Stderr, "clustertest member:", err)
	}
	e.Close()
	os.Exit(0)
}

// Etcd is a running etcd cluster of child processes.
type Etcd struct {
	Members []*Member
}

// Member is one etcd member process.
type Member struct {
	Name      string
	ClientURL string
	cfg       memberConfig
	mu        sync.Mutex
	cmd       *exec.Cmd
	stdin     *os.File // the parent's end of the child's stdin
	done      chan struct{}
}

// freePort returns a loopback port free right now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// StartEtcd starts an n-member cluster and waits until every member
// answers; it is stopped when the test ends. Ports are picked free and
// then bound by the members, so another process can take one in between:
// a cluster whose member exits at start is retried on new ports.
func StartEtcd(t testing.TB, n int) *Etcd {
	t.Helper()
	var errs []error
	for attempt := range 3 {
		c, err := startEtcd(filepath.Join(t.TempDir(), fmt.Sprint(attempt)), n)
		if err == nil {
			t.Cleanup(c.Stop)
			return c
		}
		errs = append(errs, err)
	}
	t.Fatalf("start etcd cluster: %v", errors.Join(errs...))
	return nil
}

func startEtcd(base string, n int) (*Etcd, error) {
	c := &Etcd{}
	var peers []string
	for i := range n {
		cp, err := freePort()
		if err != nil {
			return nil, err
		}
		pp, err := freePort()
		if err != nil {
			return nil, err
		}
		name := fmt.Sprintf("m%d", i)
		m := &Member{Name: name, ClientURL: fmt.Sprintf("http://127.0.0.1:%d", cp), cfg: memberConfig{
			Name: name, Dir: filepath.Join(base, name),
			ClientURL: fmt.Sprintf("http://127.0.0.1:%d", cp), PeerURL: fmt.Sprintf("http://127.0.0.1:%d", pp),
		}}
		peers = append(peers, name+"="+m.cfg.PeerURL)
		c.Members = append(c.Members, m)
	}
	for _, m := range c.Members {
		m.cfg.InitialCluster = strings.Join(peers, ",")
		if err := m.start(); err != nil {
			c.Stop()
			return nil, err
		}
	}
	for _, m := range c.Members {
		if err := m.WaitReady(60 * time.Second); err != nil {
			c.Stop()
			return nil, err
		}
	}
	return c, nil
}

// Endpoints are the client URLs of every member.
func (c *Etcd) Endpoints() []string {
	out := make([]string, len(c.Members))
	for i, m := range c.Members {
		out[i] = m.ClientURL
	}
	return out
}

// Stop stops every member still running (SIGTERM, then SIGKILL).
func (c *Etcd) Stop() {
	for _, m := range c.Members {
		m.Stop()
	}
}

func (m *Member) start() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		return fmt.Errorf("etcd member %s is running", m.Name)
	}
	raw, _ := json.Marshal(m.cfg)
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), memberEnv+"="+string(raw))
	cmd.Stdin = r
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return fmt.Errorf("start etcd member %s: %w", m.Name, err)
	}
	r.Close()
	m.cmd, m.stdin, m.done = cmd, w, make(chan struct{})
	done := m.done
	go func() { _ = cmd.Wait(); close(done) }()
	return nil
}

// Kill SIGKILLs the member: no shutdown, no leadership transfer; its data
// directory stays as the crash left it.
func (m *Member) Kill() { m.signal(syscall.SIGKILL) }

// Stop stops the member gracefully (SIGTERM), killing it after a bound.
func (m *Member) Stop() { m.signal(syscall.SIGTERM) }

func (m *Member) signal(sig syscall.Signal) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Signal(sig)
	select {
	case <-m.done:
	case <-time.After(10 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.done
	}
	m.stdin.Close()
	m.cmd = nil
}

// Restart starts a stopped or killed member again on its data directory
// and waits until it answers (the other members must be a quorum).
func (m *Member) Restart() error {
	if err := m.start(); err != nil {
		return err
	}
	return m.WaitReady(60 * time.Second)
}

// Start starts a stopped or killed member again on its data directory
// without waiting (when the whole cluster restarts, no member is ready
// before a quorum is back).
func (m *Member) Start() error { return m.start() }

// Leader returns the member that currently leads the cluster.
func (c *Etcd) Leader(ctx context.Context) (*Member, error) {
	for _, m := range c.Members {
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{m.ClientURL}, DialTimeout: time.Second, Logger: zap.NewNop()})
		if err != nil {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		st, err := cli.Status(sctx, m.ClientURL)
		cancel()
		_ = cli.Close()
		if err == nil && st.Leader != 0 && st.Leader == st.Header.MemberId {
			return m, nil
		}
	}
	return nil, errors.New("no member reports itself as leader")
}

// WaitReady waits until the member answers a linearizable read (it has
// joined the cluster and a leader exists).
func (m *Member) WaitReady(timeout time.Duration) error {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{m.ClientURL}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer cli.Close()
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		m.mu.Lock()
		done := m.done
		m.mu.Unlock()
		select {
		case <-done:
			return fmt.Errorf("etcd member %s exited before it was ready", m.Name)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, last = cli.Get(ctx, "/clustertest-ready")
		cancel()
		if last == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.Join(fmt.Errorf("etcd member %s not ready within %s", m.Name, timeout), last)
}
