package server_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	tbv1 "github.com/tokenbroker/tokenbroker/gen/tokenbroker/v1"
	"github.com/tokenbroker/tokenbroker/server"
	"github.com/tokenbroker/tokenbroker/server/tlsconfig"
	"github.com/tokenbroker/tokenbroker/server/tlsconfig/tlstest"
)

// pki is one test's certificates, as files.
type pki struct {
	dir               string
	serverCA          *tlstest.CA
	clientCA          *tlstest.CA
	server, client    *tlstest.Pair
	clientCAFile      string
	strangerClientCrt *tlstest.Pair // from a CA the broker does not trust
}

func newPKI(t *testing.T) *pki {
	dir := t.TempDir()
	p := &pki{dir: dir, serverCA: tlstest.NewCA(t, "server CA"), clientCA: tlstest.NewCA(t, "client CA")}
	p.server = p.serverCA.Server(t, "broker").Write(t, dir, "server")
	p.client = p.clientCA.Client(t, "service-a").Write(t, dir, "client")
	p.strangerClientCrt = tlstest.NewCA(t, "stranger").Client(t, "intruder").Write(t, dir, "stranger")
	p.clientCAFile = p.clientCA.WriteCA(t, dir, "client-ca.pem")
	return p
}

// startTransport starts a broker on loopback in the given mode: "plain",
// "tls" or "mtls".
func startTransport(t *testing.T, mode string, p *pki, adjust ...func(*server.Config)) (*server.Server, string) {
	t.Helper()
	dir := t.TempDir()
	cfg := server.Config{
		GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		DataPath:      filepath.Join(dir, "data", "tokenbroker.db"),
		BootstrapFile: filepath.Join(dir, "data", "admin.json"),
		Logger:        slog.New(slog.DiscardHandler), BootstrapOut: io.Discard,
	}
	switch mode {
	case "tls":
		cfg.TLS = tlsconfig.Files{Cert: p.server.CertFile, Key: p.server.KeyFile}
	case "mtls":
		cfg.TLS = tlsconfig.Files{Cert: p.server.CertFile, Key: p.server.KeyFile, ClientCA: p.clientCAFile}
	}
	for _, fn := range adjust {
		fn(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := server.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start %s: %v", mode, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return srv, srv.Bootstrap().Token
}

func clientTLS(p *pki, cert *tlstest.Pair) *tls.Config {
	c := &tls.Config{RootCAs: p.serverCA.Pool, MinVersion: tls.VersionTLS12}
	if cert != nil {
		pair, err := tls.X509KeyPair(cert.CertPEM, cert.KeyPEM)
		if err != nil {
			panic(err)
		}
		// Presented whatever CAs the server asks for (Certificates would
		// send nothing for a stranger's certificate).
		c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }
	}
	return c
}

// grpcCall makes an authenticated ListTokens call over a fresh connection.
func grpcCall(t *testing.T, addr string, creds credentials.TransportCredentials, bearer string) error {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+bearer)
	_, err = tbv1.NewTokenServiceClient(conn).ListTokens(ctx, &tbv1.ListTokensRequest{})
	return err
}

func restGet(t *testing.T, client *http.Client, url, bearer string) (int, []byte, error) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body, nil
}

func TestTransports(t *testing.T) {
	p := newPKI(t)
	for _, mode := range []string{"plain", "tls", "mtls"} {
		t.Run(mode, func(t *testing.T) {
			srv, admin := startTransport(t, mode, p)
			scheme, grpcCreds := "http", credentials.TransportCredentials(insecure.NewCredentials())
			httpClient := &http.Client{Timeout: 10 * time.Second}
			switch mode {
			case "tls":
				scheme, grpcCreds = "https", credentials.NewTLS(clientTLS(p, nil))
				httpClient.Transport = &http.Transport{TLSClientConfig: clientTLS(p, nil), ForceAttemptHTTP2: true}
			case "mtls":
				scheme, grpcCreds = "https", credentials.NewTLS(clientTLS(p, p.client))
				// REST: no client certificate needed (optional there).
				httpClient.Transport = &http.Transport{TLSClientConfig: clientTLS(p, nil), ForceAttemptHTTP2: true}
			}

			// gRPC with the right credentials works.
			if err := grpcCall(t, srv.GRPCAddr(), grpcCreds, admin); err != nil {
				t.Fatalf("gRPC ListTokens: %v", err)
			}
			// REST, through the gateway's in-process channel to the same
			// services and interceptors, works.
			base := scheme + "://" + srv.HTTPAddr()
			code, body, err := restGet(t, httpClient, base+"/v2/clientIdSecrets", admin)
			if err != nil || code != http.StatusOK || !strings.Contains(string(body), `"clients"`) {
				t.Fatalf("REST list: %d %s %v", code, body, err)
			}
			// The issuer follows the scheme, and the discovery document says so.
			if want := scheme + "://" + srv.HTTPAddr(); srv.IssuerURL() != want {
				t.Fatalf("issuer %q, want %q", srv.IssuerURL(), want)
			}
			code, body, err = restGet(t, httpClient, base+"/.well-known/openid-configuration", "")
			var disco struct{ Issuer string }
			if err != nil || code != 200 || json.Unmarshal(body, &disco) != nil || disco.Issuer != srv.IssuerURL() {
				t.Fatalf("discovery: %d %s %v", code, body, err)
			}
			// Metrics on the REST listener.
			code, body, err = restGet(t, httpClient, base+"/metrics", "")
			if err != nil || code != 200 || !strings.Contains(string(body), "grpc_server_handled_total") {
				t.Fatalf("metrics: %d %v", code, err)
			}

			if mode == "plain" {
				return
			}
			// A plaintext client gets nowhere on a TLS listener.
			if err := grpcCall(t, srv.GRPCAddr(), insecure.NewCredentials(), admin); err == nil {
				t.Fatal("plaintext gRPC call succeeded against TLS")
			}
			if code, _, err := restGet(t, &http.Client{Timeout: 10 * time.Second}, "http://"+srv.HTTPAddr()+"/v2/clientIdSecrets", admin); err == nil && code == 200 {
				t.Fatal("plaintext REST call succeeded against TLS")
			}
			// A client that does not trust the broker's CA refuses it.
			if err := grpcCall(t, srv.GRPCAddr(), credentials.NewTLS(&tls.Config{RootCAs: x509.NewCertPool()}), admin); err == nil {
				t.Fatal("gRPC call succeeded without trusting the server's CA")
			}
			if mode != "mtls" {
				return
			}
			// mTLS: gRPC without a client certificate, or with one from an
			// untrusted CA, is refused; REST verifies a certificate if given.
			if err := grpcCall(t, srv.GRPCAddr(), credentials.NewTLS(clientTLS(p, nil)), admin); err == nil {
				t.Fatal("gRPC call without a client certificate succeeded under mTLS")
			}
			if err := grpcCall(t, srv.GRPCAddr(), credentials.NewTLS(clientTLS(p, p.strangerClientCrt)), admin); err == nil {
				t.Fatal("gRPC call with an untrusted client certificate succeeded under mTLS")
			}
			withCert := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: clientTLS(p, p.client)}}
			if code, _, err := restGet(t, withCert, base+"/v2/clientIdSecrets", admin); err != nil || code != 200 {
				t.Fatalf("REST with a trusted client certificate: %d %v", code, err)
			}
			stranger := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: clientTLS(p, p.strangerClientCrt)}}
			if code, _, err := restGet(t, stranger, base+"/v2/clientIdSecrets", admin); err == nil {
				t.Fatalf("REST with an untrusted client certificate answered %d", code)
			}
		})
	}
}

// servedCommonName handshakes with addr and returns the served leaf's CN.
func servedCommonName(t *testing.T, addr string, p *pki, nextProto string) string {
	t.Helper()
	c := clientTLS(p, p.client)
	c.NextProtos = []string{nextProto}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, c)
	if err != nil {
		t.Fatalf("handshake with %s: %v", addr, err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
}

func TestTLSReloadKeepsConnections(t *testing.T) {
	for _, how := range []string{"watch", "reload"} {
		t.Run(how, func(t *testing.T) {
			p := newPKI(t)
			srv, admin := startTransport(t, "mtls", p, func(c *server.Config) {
				if how == "watch" {
					c.TLSWatchInterval = 20 * time.Millisecond
				} else {
					c.TLSWatchInterval = time.Hour // only ReloadTLS (SIGHUP) reloads
				}
			})
			conn, err := grpc.NewClient(srv.GRPCAddr(), grpc.WithTransportCredentials(credentials.NewTLS(clientTLS(p, p.client))))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			health := healthpb.NewHealthClient(conn)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := health.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
				t.Fatal(err)
			}
			if cn := servedCommonName(t, srv.GRPCAddr(), p, "h2"); cn != "broker" {
				t.Fatalf("serving %q", cn)
			}

			// Replace the key pair on disk with a new certificate.
			p.serverCA.Server(t, "broker-renewed").Write(t, p.dir, "server")
			if how == "reload" {
				if err := srv.ReloadTLS(); err != nil {
					t.Fatal(err)
				}
			}
			deadline := time.Now().Add(20 * time.Second)
			for servedCommonName(t, srv.GRPCAddr(), p, "h2") != "broker-renewed" {
				if time.Now().After(deadline) {
					t.Fatal("the new certificate was never served")
				}
				time.Sleep(20 * time.Millisecond)
			}
			if cn := servedCommonName(t, srv.HTTPAddr(), p, "http/1.1"); cn != "broker-renewed" {
				t.Fatalf("REST serves %q after the reload", cn)
			}
			// The connection opened before the reload still carries calls.
			if _, err := health.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
				t.Fatalf("old connection after reload: %v", err)
			}
			if got := conn.GetState().String(); got != "READY" {
				t.Fatalf("old connection is %s", got)
			}
			// And new connections work end to end.
			if err := grpcCall(t, srv.GRPCAddr(), credentials.NewTLS(clientTLS(p, p.client)), admin); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestSeparateMetricsAddress(t *testing.T) {
	srv, _ := startTransport(t, "plain", nil, func(c *server.Config) { c.MetricsAddr = "127.0.0.1:0" })
	client := &http.Client{Timeout: 10 * time.Second}
	if !strings.HasPrefix(srv.MetricsURL(), "http://127.0.0.1:") || strings.Contains(srv.MetricsURL(), srv.HTTPAddr()) {
		t.Fatalf("metrics URL %q", srv.MetricsURL())
	}
	code, body, err := restGet(t, client, srv.MetricsURL(), "")
	if err != nil || code != 200 || !strings.Contains(string(body), "tokenbroker_build_info") {
		t.Fatalf("metrics listener: %d %v", code, err)
	}
	// Not on the REST listener then.
	if code, _, _ := restGet(t, client, "http://"+srv.HTTPAddr()+"/metrics", ""); code == 200 {
		t.Fatal("/metrics also served on the REST listener")
	}
}

func TestPprofOnlyOnTheMetricsListener(t *testing.T) {
	if err := (&server.Config{Pprof: true}).Validate(); err == nil || !strings.Contains(err.Error(), "--metrics-addr") {
		t.Fatalf("--pprof without --metrics-addr: %v", err)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	srv, _ := startTransport(t, "plain", nil, func(c *server.Config) { c.MetricsAddr = "127.0.0.1:0"; c.Pprof = true })
	base := strings.TrimSuffix(srv.MetricsURL(), "/metrics")
	if code, body, err := restGet(t, client, base+"/debug/pprof/", ""); err != nil || code != 200 || !strings.Contains(string(body), "goroutine") {
		t.Fatalf("pprof index on the metrics listener: %d %v", code, err)
	}
	if code, _, _ := restGet(t, client, "http://"+srv.HTTPAddr()+"/debug/pprof/", ""); code == 200 {
		t.Fatal("pprof served on the REST listener")
	}
	// Off by default.
	plain, _ := startTransport(t, "plain", nil, func(c *server.Config) { c.MetricsAddr = "127.0.0.1:0" })
	if code, _, _ := restGet(t, client, strings.TrimSuffix(plain.MetricsURL(), "/metrics")+"/debug/pprof/", ""); code == 200 {
		t.Fatal("pprof served without --pprof")
	}
}
