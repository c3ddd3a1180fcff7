package cli_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/tokenbroker/tokenbroker/server/admin"
	"github.com/tokenbroker/tokenbroker/store/bolt"
)

// pki is a test CA with a server certificate for 127.0.0.1 and a client
// certificate, written as PEM files.
type pki struct {
	t                         *testing.T
	dir                       string
	caFile, certFile, keyFile string // the CA's certificate; the server's certificate and key
	clientCert, clientKey     string
	otherCAFile               string // a CA that signed nothing here
	pool                      *x509.CertPool
	serverPair                tls.Certificate
	caKey                     *ecdsa.PrivateKey
	caCert                    *x509.Certificate
	serial                    int64
	notBefore, notAfter       time.Time
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	p := &pki{dir: t.TempDir(), t: t, notBefore: time.Now().Add(-time.Hour), notAfter: time.Now().Add(24 * time.Hour)}
	p.caKey, p.caCert = p.ca("test CA")
	p.caFile = p.writePEM("ca.pem", "CERTIFICATE", p.caCert.Raw)
	_, other := p.ca("other CA")
	p.otherCAFile = p.writePEM("other-ca.pem", "CERTIFICATE", other.Raw)
	p.pool = x509.NewCertPool()
	p.pool.AddCert(p.caCert)

	p.certFile, p.keyFile = p.leaf("server", x509.ExtKeyUsageServerAuth)
	pair, err := tls.LoadX509KeyPair(p.certFile, p.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	p.serverPair = pair
	p.clientCert, p.clientKey = p.leaf("client", x509.ExtKeyUsageClientAuth)
	return p
}

func (p *pki) ca(name string) (*ecdsa.PrivateKey, *x509.Certificate) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		p.t.Fatal(err)
	}
	p.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(p.serial), Subject: pkix.Name{CommonName: name},
		NotBefore: p.notBefore, NotAfter: p.notAfter, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		p.t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		p.t.Fatal(err)
	}
	return key, cert
}

func (p *pki) leaf(name string, usage x509.ExtKeyUsage) (certFile, keyFile string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		p.t.Fatal(err)
	}
	p.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(p.serial), Subject: pkix.Name{CommonName: name},
		NotBefore: p.notBefore, NotAfter: p.notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"broker.test"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &key.PublicKey, p.caKey)
	if err != nil {
		p.t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		p.t.Fatal(err)
	}
	return p.writePEM(name+".pem", "CERTIFICATE", der), p.writePEM(name+"-key.pem", "PRIVATE KEY", keyDER)
}

func (p *pki) writePEM(name, typ string, der []byte) string {
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		p.t.Fatal(err)
	}
	return path
}

// serveTLS serves the AdminService over TLS on loopback (requiring a
// client certificate when mutual), over a real bbolt store.
func serveTLS(t *testing.T, p *pki, mutual bool) string {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "tb.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := &tls.Config{Certificates: []tls.Certificate{p.serverPair}, MinVersion: tls.VersionTLS12}
	if mutual {
		cfg.ClientAuth, cfg.ClientCAs = tls.RequireAndVerifyClientCert, p.pool
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(grpc.Creds(credentials.NewTLS(cfg)))
	admin.New(admin.Config{Store: st, OrgID: "org-tls", Logger: slog.New(slog.DiscardHandler)}).Register(g)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	return lis.Addr().String()
}

// TestTLSFlags runs a streaming command (backup) over TLS and mTLS with
// the CLI's TLS flags, against certificates made in the test: the right CA
// works, plaintext, a foreign CA or a missing client certificate fail with
// exit code 1.
func TestTLSFlags(t *testing.T) {
	p := newPKI(t)
	out := func() string { return filepath.Join(t.TempDir(), "b.tbbak") }
	r := newRunner(t, nil).with("TOKENBROKER_TOKEN", "unused-by-this-server")

	addr := serveTLS(t, p, false)
	r.ok("backup", out(), "--server", addr, "--cacert", p.caFile)
	r.ok("backup", out(), "--server", addr, "--cacert", p.caFile, "--tls-server-name", "broker.test")
	r.ok("backup", out(), "--server", addr, "--insecure-skip-verify")
	r.fails(1, "Unavailable", "backup", out(), "--server", addr, "--timeout", "5s")                                      // plaintext to a TLS server
	r.fails(1, "Unavailable", "backup", out(), "--server", addr, "--cacert", p.otherCAFile, "--timeout", "5s")           // unknown CA
	r.fails(1, "Unavailable", "backup", out(), "--server", addr, "--cacert", p.caFile, "--tls-server-name", "nope.test") // wrong name

	mtls := serveTLS(t, p, true)
	r.ok("backup", out(), "--server", mtls, "--cacert", p.caFile, "--cert", p.clientCert, "--key", p.clientKey)
	r.fails(1, "Unavailable", "backup", out(), "--server", mtls, "--cacert", p.caFile, "--timeout", "5s") // no client certificate

	r.fails(1, "--cacert", "backup", out(), "--server", addr, "--cacert", filepath.Join(p.dir, "missing.pem"))
	r.fails(1, "no PEM certificate", "backup", out(), "--server", addr, "--cacert", p.keyFile)
}
