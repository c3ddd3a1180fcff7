// Package tlsconfig serves the broker's listeners over TLS with
// certificates that can be replaced while the broker runs: the key pair
// (and the client CA bundle for mTLS) is held behind one atomic pointer and
// read by every handshake, so a reload affects new connections only and
// never drops an open one.
//
// Reload happens when Reload is called (the serve command calls it on
// SIGHUP) and when Watch sees the files' contents change.
package tlsconfig

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultWatchInterval is how often Watch looks at the files.
const DefaultWatchInterval = 5 * time.Second

// Files names the PEM files.
type Files struct {
	Cert     string // certificate chain, leaf first
	Key      string // private key of the leaf
	ClientCA string // optional: CA bundle that client certificates must chain to (mTLS)
}

// ClientAuth says how a listener treats client certificates when a client
// CA is configured.
type ClientAuth int

const (
	// RequireClientCert refuses a handshake without a client certificate
	// that chains to the client CA (the gRPC listener).
	RequireClientCert ClientAuth = iota
	// VerifyClientCertIfGiven accepts clients without a certificate, and
	// verifies the ones that present one (the REST listener, where browsers
	// and curl without a client certificate must still reach the Astra API,
	// which authenticates by token).
	VerifyClientCertIfGiven
)

// material is one consistent set of loaded files.
type material struct {
	cert   *tls.Certificate
	pool   *x509.CertPool // nil without a client CA
	digest [sha256.Size]byte
	leaf   *x509.Certificate
}

// Reloader holds the current key pair and client CA.
type Reloader struct {
	files Files
	log   *slog.Logger
	cur   atomic.Pointer[material]
	mu    sync.Mutex // serializes reloads (not handshakes)
}

// New loads the files; it fails if they are missing or do not form a
// usable key pair.
func New(files Files, log *slog.Logger) (*Reloader, error) {
	if files.Cert == "" || files.Key == "" {
		return nil, errors.New("TLS needs both a certificate and a key file (--tls-cert and --tls-key)")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Reloader{files: files, log: log}
	m, err := r.load()
	if err != nil {
		return nil, err
	}
	r.cur.Store(m)
	return r, nil
}

// MutualTLS reports whether client certificates are verified (a client CA
// is configured).
func (r *Reloader) MutualTLS() bool { return r.files.ClientCA != "" }

// Leaf is the certificate currently served.
func (r *Reloader) Leaf() *x509.Certificate { return r.cur.Load().leaf }

func (r *Reloader) readAll() (cert, key, ca []byte, digest [sha256.Size]byte, err error) {
	if cert, err = os.ReadFile(r.files.Cert); err != nil {
		return nil, nil, nil, digest, fmt.Errorf("read TLS certificate: %w", err)
	}
	if key, err = os.ReadFile(r.files.Key); err != nil {
		return nil, nil, nil, digest, fmt.Errorf("read TLS key: %w", err)
	}
	if r.files.ClientCA != "" {
		if ca, err = os.ReadFile(r.files.ClientCA); err != nil {
			return nil, nil, nil, digest, fmt.Errorf("read TLS client CA: %w", err)
		}
	}
	h := sha256.New()
	for _, b := range [][]byte{cert, key, ca} {
		fmt.Fprintf(h, "%d:", len(b))
		h.Write(b)
	}
	copy(digest[:], h.Sum(nil))
	return cert, key, ca, digest, nil
}

func (r *Reloader) load() (*material, error) {
	certPEM, keyPEM, caPEM, digest, err := r.readAll()
	if err != nil {
		return nil, err
	}
	return parse(certPEM, keyPEM, caPEM, digest, r.files)
}

func parse(certPEM, keyPEM, caPEM []byte, digest [sha256.Size]byte, files Files) (*material, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("TLS key pair %s, %s: %w", files.Cert, files.Key, err)
	}
	leaf := pair.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, fmt.Errorf("TLS certificate %s: %w", files.Cert, err)
		}
	}
	m := &material{cert: &pair, digest: digest, leaf: leaf}
	if files.ClientCA != "" {
		m.pool = x509.NewCertPool()
		if !m.pool.AppendCertsFromPEM(caPEM) {
			return nil, fmt.Errorf("TLS client CA %s: no PEM certificate found", files.ClientCA)
		}
	}
	return m, nil
}

// Reload re-reads the files. On any error the current certificates stay in
// use and the error is returned; a partly written set of files is never
// served.
func (r *Reloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, err := r.load()
	if err != nil {
		return err
	}
	if old := r.cur.Load(); old.digest == m.digest {
		return nil
	}
	r.cur.Store(m)
	r.log.Info("TLS certificates reloaded", "cert", r.files.Cert, "subject", m.leaf.Subject.String(),
		"not_after", m.leaf.NotAfter.UTC().Format(time.RFC3339), "serial", m.leaf.SerialNumber.String())
	return nil
}

// Watch reloads whenever the files' contents change, checking every
// interval, until ctx is done. Errors (say, a key written before its
// certificate) are logged once per distinct content and retried on the next
// tick; the old certificates stay in use meanwhile.
func (r *Reloader) Watch(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultWatchInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	var failed [sha256.Size]byte
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		_, _, _, digest, err := r.readAll()
		if err == nil && digest == r.cur.Load().digest {
			continue
		}
		if err == nil && digest == failed {
			continue // same broken contents as last time: already logged
		}
		if err = r.Reload(); err != nil {
			failed = digest
			r.log.Warn("TLS certificates changed but cannot be loaded; still serving the previous ones", "err", err)
		}
	}
}

// ServerConfig returns a tls.Config for a listener. Every handshake reads
// the current certificates; nextProtos is the listener's ALPN list ("h2"
// for gRPC; "h2", "http/1.1" for REST).
func (r *Reloader) ServerConfig(auth ClientAuth, nextProtos ...string) *tls.Config {
	getCert := func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return r.cur.Load().cert, nil }
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     nextProtos,
		GetCertificate: getCert,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			m := r.cur.Load()
			c := &tls.Config{
				MinVersion:     tls.VersionTLS12,
				NextProtos:     nextProtos,
				GetCertificate: getCert,
			}
			if m.pool != nil {
				c.ClientCAs = m.pool
				c.ClientAuth = tls.RequireAndVerifyClientCert
				if auth == VerifyClientCertIfGiven {
					c.ClientAuth = tls.VerifyClientCertIfGiven
				}
			}
			return c, nil
		},
	}
}

// ClientConfig returns a client tls.Config that trusts the CA bundle in
// caFile (system roots when ""), and presents the key pair in certFile and
// keyFile when both are set. For the operator CLI and tests.
func ClientConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("read CA file: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(bytes.TrimSpace(pem)) {
			return nil, fmt.Errorf("CA file %s: no PEM certificate found", caFile)
		}
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("a client certificate needs both its certificate and its key file")
	}
	if certFile != "" {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("client key pair: %w", err)
		}
		c.Certificates = []tls.Certificate{pair}
	}
	return c, nil
}
