package main

import (
	"bytes"
	"crypto/tls"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"

	"github.com/tokenbroker/tokenbroker/server/tlsconfig/tlstest"
	"github.com/tokenbroker/tokenbroker/store/etcd/etcdtest"
)

// syncBuffer is a bytes.Buffer safe for the server's concurrent log writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestServeTLSAndSignals runs the serve command as an operator would: with
// TLS, text logs, the default bootstrap file; then SIGHUP after replacing
// the certificate, then SIGTERM. The signals go to this test process, which
// serve has subscribed to them.
func TestServeTLSAndSignals(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "ca")
	pair := ca.Server(t, "first").Write(t, dir, "server")
	data := filepath.Join(dir, "data", "tb.db")
	var stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- serve([]string{"--data", data, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
			"--tls-cert", pair.CertFile, "--tls-key", pair.KeyFile, "--log-format", "text"}, &stderr)
	}()
	waitFor(t, "the start log", func() bool { return strings.Contains(stderr.String(), "msg=\"tokenbroker serving\"") })
	log := stderr.String()
	for _, want := range []string{"tls=tls", "store=bbolt", "data=" + data, "bootstrap_file=" + filepath.Join(dir, "data", "admin.json"), "issuer=https://127.0.0.1:"} {
		if !strings.Contains(log, want) {
			t.Errorf("start log lacks %q:\n%s", want, log)
		}
	}
	m := regexp.MustCompile(`grpc=(127\.0\.0\.1:\d+)`).FindStringSubmatch(log)
	if m == nil {
		t.Fatalf("no gRPC address in the start log:\n%s", log)
	}
	served := func() string {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", m[1],
			&tls.Config{RootCAs: ca.Pool, NextProtos: []string{"h2"}})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if cn := served(); cn != "first" {
		t.Fatalf("serving %q", cn)
	}
	ca.Server(t, "second").Write(t, dir, "server")
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the SIGHUP reload", func() bool { return strings.Contains(stderr.String(), "SIGHUP: TLS files re-read") })
	if cn := served(); cn != "second" {
		t.Fatalf("after SIGHUP serving %q", cn)
	}
	stopServe(t, done)
}

// stopServe sends SIGTERM to this test process, which serve has subscribed
// to, and waits for serve to return.
func stopServe(t *testing.T, done <-chan error) {
	t.Helper()
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve returned %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop on SIGTERM")
	}
}

// TestServeEtcdMaxTxnOps: --etcd-max-txn-ops reaches the etcd store, whose
// own log line reports the limit it opened with (the store then sizes its
// split writes by it: store/etcd TestRaisedMaxTxnOps), against a member
// started with the same raised --max-txn-ops.
func TestServeEtcdMaxTxnOps(t *testing.T) {
	member, err := etcdtest.Start(func(c *embed.Config) { c.MaxTxnOps = 1024 })
	if err != nil {
		t.Fatalf("start etcd: %v", err)
	}
	t.Cleanup(member.Stop)
	dir := t.TempDir()
	var stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- serve([]string{"--store", "etcd", "--etcd-endpoints", member.Endpoint, "--etcd-prefix", "/serve-test/",
			"--etcd-max-txn-ops", "1024", "--data", filepath.Join(dir, "tb.db"), "--bootstrap-file", "-",
			"--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--log-format", "text"}, &stderr)
	}()
	waitFor(t, "the start log", func() bool {
		return strings.Contains(stderr.String(), "msg=\"tokenbroker serving\"") || len(done) > 0
	})
	log := stderr.String()
	select {
	case err := <-done: // not listening, so not subscribed to SIGTERM either
		t.Fatalf("serve returned %v before serving:\n%s", err, log)
	default:
	}
	stopServe(t, done)
	opened := regexp.MustCompile(`(?m)^.*msg="store opened".*$`).FindString(log)
	if !strings.Contains(opened, "backend=etcd") || !strings.Contains(opened, "max_txn_ops=1024") {
		t.Errorf("the store's open log %q does not report max_txn_ops=1024:\n%s", opened, log)
	}
	if !regexp.MustCompile(`msg="tokenbroker serving".* etcd_max_txn_ops=1024`).MatchString(log) {
		t.Errorf("start log lacks etcd_max_txn_ops=1024:\n%s", log)
	}
}
