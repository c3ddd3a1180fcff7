package tlsconfig_test

import (
	"context"
	"crypto/tls"
	"net"
	"os"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/server/tlsconfig"
	"github.com/tokenbroker/tokenbroker/server/tlsconfig/tlstest"
)

// serve accepts TLS connections on loopback with cfg and completes their
// handshakes until the test ends.
func serve(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	lis, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lis.Close() })
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.(*tls.Conn).Handshake()
				_, _ = c.Read(make([]byte, 1)) // hold until the client closes
			}()
		}
	}()
	return lis.Addr().String()
}

func dial(addr string, cfg *tls.Config) (*tls.Conn, error) {
	d := &net.Dialer{Timeout: 10 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	// TLS 1.3 reports a refused client certificate only on the first read.
	_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := c.Read(make([]byte, 1)); err != nil {
		if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

func TestReloadServesNewCertificateKeepsOpenConnections(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "test CA")
	first := ca.Server(t, "first").Write(t, dir, "server")
	r, err := tlsconfig.New(tlsconfig.Files{Cert: first.CertFile, Key: first.KeyFile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, r.ServerConfig(tlsconfig.RequireClientCert))
	client := &tls.Config{RootCAs: ca.Pool, ServerName: "127.0.0.1"}

	old, err := dial(addr, client)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if cn := old.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "first" {
		t.Fatalf("served %q, want first", cn)
	}

	ca.Server(t, "second").Write(t, dir, "server")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Watch(ctx, 10*time.Millisecond)
	deadline := time.Now().Add(20 * time.Second)
	for r.Leaf().Subject.CommonName != "second" {
		if time.Now().After(deadline) {
			t.Fatal("watch did not pick up the new certificate")
		}
		time.Sleep(10 * time.Millisecond)
	}
	c, err := dial(addr, client)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if cn := c.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "second" {
		t.Fatalf("after reload served %q, want second", cn)
	}
	// The connection opened before the reload is still up.
	if _, err := old.Write([]byte{}); err != nil {
		t.Fatalf("old connection broken: %v", err)
	}
}

func TestBrokenFilesKeepTheOldCertificate(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "test CA")
	p := ca.Server(t, "good").Write(t, dir, "server")
	r, err := tlsconfig.New(tlsconfig.Files{Cert: p.CertFile, Key: p.KeyFile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	other := ca.Server(t, "other")
	// The certificate replaced but not yet its key: a mismatched pair.
	if err := os.WriteFile(p.CertFile, other.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.Reload(); err == nil {
		t.Fatal("Reload accepted a certificate with the wrong key")
	}
	if cn := r.Leaf().Subject.CommonName; cn != "good" {
		t.Fatalf("serving %q after a failed reload", cn)
	}
	if err := os.WriteFile(p.KeyFile, other.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	if cn := r.Leaf().Subject.CommonName; cn != "other" {
		t.Fatalf("serving %q, want other", cn)
	}
}

func TestClientCertificates(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "server CA")
	clientCA := tlstest.NewCA(t, "client CA")
	stranger := tlstest.NewCA(t, "someone else")
	p := ca.Server(t, "server").Write(t, dir, "server")
	r, err := tlsconfig.New(tlsconfig.Files{Cert: p.CertFile, Key: p.KeyFile, ClientCA: clientCA.WriteCA(t, dir, "clients.pem")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	required := serve(t, r.ServerConfig(tlsconfig.RequireClientCert))
	optional := serve(t, r.ServerConfig(tlsconfig.VerifyClientCertIfGiven))
	good := clientCA.Client(t, "svc").Write(t, dir, "client")
	bad := stranger.Client(t, "intruder").Write(t, dir, "intruder")
	withCert := func(pr *tlstest.Pair) *tls.Config {
		pair, err := tls.X509KeyPair(pr.CertPEM, pr.KeyPEM)
		if err != nil {
			t.Fatal(err)
		}
		// GetClientCertificate: present the certificate even when its issuer
		// is not among the CAs the server asks for (Certificates would not).
		return &tls.Config{RootCAs: ca.Pool, ServerName: "127.0.0.1",
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }}
	}
	none := &tls.Config{RootCAs: ca.Pool, ServerName: "127.0.0.1"}

	for _, tc := range []struct {
		name   string
		addr   string
		client *tls.Config
		ok     bool
	}{
		{"required/none", required, none, false},
		{"required/trusted", required, withCert(good), true},
		{"required/untrusted", required, withCert(bad), false},
		{"optional/none", optional, none, true},
		{"optional/trusted", optional, withCert(good), true},
		{"optional/untrusted", optional, withCert(bad), false},
	} {
		c, err := dial(tc.addr, tc.client)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if c != nil {
			c.Close()
		}
	}

	// TLS 1.1 and below are refused.
	old := none.Clone()
	old.MaxVersion = tls.VersionTLS11
	if c, err := dial(required, old); err == nil {
		c.Close()
		t.Error("a TLS 1.1 handshake succeeded")
	}
}

func TestNewRefusesBadFiles(t *testing.T) {
	dir := t.TempDir()
	if _, err := tlsconfig.New(tlsconfig.Files{Cert: dir + "/missing.pem", Key: dir + "/missing-key.pem"}, nil); err == nil {
		t.Fatal("missing files accepted")
	}
	if _, err := tlsconfig.New(tlsconfig.Files{Cert: "x"}, nil); err == nil {
		t.Fatal("a certificate without a key accepted")
	}
	ca := tlstest.NewCA(t, "ca")
	p := ca.Server(t, "s").Write(t, dir, "s")
	notPEM := dir + "/ca.txt"
	os.WriteFile(notPEM, []byte("not a certificate"), 0o600)
	if _, err := tlsconfig.New(tlsconfig.Files{Cert: p.CertFile, Key: p.KeyFile, ClientCA: notPEM}, nil); err == nil {
		t.Fatal("a client CA file without certificates accepted")
	}
}
