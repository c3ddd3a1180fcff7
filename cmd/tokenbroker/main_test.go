package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/server"
)

// serveFlags builds a flag set shaped like serve's (plus a typed flag, to
// exercise values that can fail to parse) and parses args.
func serveFlags(t *testing.T, args ...string) (*flag.FlagSet, map[string]*string, *time.Duration) {
	t.Helper()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	vals := map[string]*string{
		"grpc-addr":      fs.String("grpc-addr", "127.0.0.1:50051", ""),
		"http-addr":      fs.String("http-addr", "127.0.0.1:8080", ""),
		"data":           fs.String("data", "data/tokenbroker.db", ""),
		"bootstrap-file": fs.String("bootstrap-file", "", ""),
	}
	interval := fs.Duration("flush-interval", 30*time.Second, "")
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	return fs, vals, interval
}

// envMap returns a lookup over m that records which names were asked for.
func envMap(m map[string]string, asked *[]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		*asked = append(*asked, name)
		v, ok := m[name]
		return v, ok
	}
}

func TestApplyEnv(t *testing.T) {
	env := map[string]string{
		"TOKENBROKER_GRPC_ADDR":      "0.0.0.0:9000",
		"TOKENBROKER_HTTP_ADDR":      "0.0.0.0:9001",
		"TOKENBROKER_BOOTSTRAP_FILE": "/run/secrets/boot.json",
		"TOKENBROKER_FLUSH_INTERVAL": "5s",
		"GRPC_ADDR":                  "ignored: no prefix",
	}
	tests := []struct {
		name         string
		args         []string
		want         map[string]string
		wantInterval time.Duration
	}{
		{
			name: "env applies to flags not given",
			want: map[string]string{
				"grpc-addr": "0.0.0.0:9000", "http-addr": "0.0.0.0:9001",
				"data": "data/tokenbroker.db", "bootstrap-file": "/run/secrets/boot.json",
			},
			wantInterval: 5 * time.Second,
		},
		{
			name: "flag wins over env",
			args: []string{"--grpc-addr", "127.0.0.1:1", "--flush-interval=1m"},
			want: map[string]string{
				"grpc-addr": "127.0.0.1:1", "http-addr": "0.0.0.0:9001",
				"data": "data/tokenbroker.db", "bootstrap-file": "/run/secrets/boot.json",
			},
			wantInterval: time.Minute,
		},
		{
			name: "flag set to its default or to empty still wins",
			args: []string{"--http-addr=127.0.0.1:8080", "--bootstrap-file="},
			want: map[string]string{
				"grpc-addr": "0.0.0.0:9000", "http-addr": "127.0.0.1:8080",
				"data": "data/tokenbroker.db", "bootstrap-file": "",
			},
			wantInterval: 5 * time.Second,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, vals, interval := serveFlags(t, tt.args...)
			var asked []string
			if err := applyEnv(fs, envMap(env, &asked)); err != nil {
				t.Fatalf("applyEnv: %v", err)
			}
			for name, want := range tt.want {
				if got := *vals[name]; got != want {
					t.Errorf("--%s = %q, want %q", name, got, want)
				}
			}
			if *interval != tt.wantInterval {
				t.Errorf("--flush-interval = %v, want %v", *interval, tt.wantInterval)
			}
			for _, name := range asked {
				if !strings.HasPrefix(name, "TOKENBROKER_") || strings.ContainsAny(name, "-abcdefghijklmnopqrstuvwxyz") {
					t.Errorf("looked up %q: want TOKENBROKER_ and upper case with underscores", name)
				}
			}
		})
	}

	t.Run("variable names", func(t *testing.T) {
		fs, _, _ := serveFlags(t, "--data", "x.db")
		var asked []string
		if err := applyEnv(fs, envMap(nil, &asked)); err != nil {
			t.Fatal(err)
		}
		slices.Sort(asked)
		want := []string{"TOKENBROKER_BOOTSTRAP_FILE", "TOKENBROKER_FLUSH_INTERVAL", "TOKENBROKER_GRPC_ADDR", "TOKENBROKER_HTTP_ADDR"}
		if !slices.Equal(asked, want) {
			t.Errorf("looked up %v, want %v (the flag given on the command line is not looked up)", asked, want)
		}
	})

	t.Run("bad value errors", func(t *testing.T) {
		// (flag.Duration stores its zero value on a parse error; serve
		// aborts on the error, so the value is never used.)
		fs, _, _ := serveFlags(t)
		var asked []string
		err := applyEnv(fs, envMap(map[string]string{"TOKENBROKER_FLUSH_INTERVAL": "soon"}, &asked))
		if err == nil {
			t.Fatal("applyEnv accepted TOKENBROKER_FLUSH_INTERVAL=soon")
		}
		if !strings.Contains(err.Error(), "TOKENBROKER_FLUSH_INTERVAL") {
			t.Errorf("error %q does not name the variable", err)
		}
	})

	t.Run("bad value of a flag given on the command line is not read", func(t *testing.T) {
		fs, _, interval := serveFlags(t, "--flush-interval=2s")
		var asked []string
		if err := applyEnv(fs, envMap(map[string]string{"TOKENBROKER_FLUSH_INTERVAL": "soon"}, &asked)); err != nil {
			t.Fatalf("applyEnv: %v", err)
		}
		if *interval != 2*time.Second {
			t.Errorf("--flush-interval = %v, want 2s", *interval)
		}
	})
}

// TestRun covers the command dispatch that needs no network: help, unknown
// commands, and serve's argument errors (all returned before listening),
// with the exit codes scripts rely on (0 ok, 1 failure, 2 usage).
func TestRun(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantOutput string // in stdout or stderr
	}{
		{"no arguments", nil, 2, "missing command"},
		{"help", []string{"help"}, 0, "Usage:"},
		{"-h", []string{"-h"}, 0, "Usage:"},
		{"--help", []string{"--help"}, 0, "Usage:"},
		{"unknown command", []string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{"serve -h", []string{"serve", "-h"}, 0, "-grpc-addr"},
		{"serve with an unknown flag", []string{"serve", "--no-such-flag"}, 1, "no-such-flag"},
		{"serve with extra arguments", []string{"serve", "extra"}, 1, "unexpected arguments"},
		{"serve with a negative TTL", []string{"serve", "--auth-token-ttl=-5m"}, 1, "--auth-token-ttl -5m0s: must be positive"},
		{"serve with a zero limit", []string{"serve", "--pulsar-token-limit=0"}, 1, "--pulsar-token-limit 0: must be positive"},
		{"serve with a small etcd transaction limit", []string{"serve", "--etcd-max-txn-ops=64"}, 1, "--etcd-max-txn-ops 64: must be at least 128"},
		{"serve on etcd with a small etcd transaction limit", []string{"serve", "--store=etcd", "--etcd-endpoints=127.0.0.1:1", "--etcd-max-txn-ops=127"}, 1, "--etcd-max-txn-ops 127: must be at least 128"},
		{"serve with a relative issuer", []string{"serve", "--issuer-url=broker:8080"}, 1, "issuer URL"},
		{"serve with a bad log format", []string{"serve", "--log-format=xml"}, 1, "--log-format"},
		{"serve with a bad log level", []string{"serve", "--log-level=loud"}, 1, "--log-level"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.args, &stdout, &stderr)
			if code != tt.wantCode {
				t.Errorf("run(%q) = %d, want %d; stderr: %s", tt.args, code, tt.wantCode, stderr.String())
			}
			if out := stdout.String() + stderr.String(); !strings.Contains(out, tt.wantOutput) {
				t.Errorf("run(%q) wrote %q, want it to contain %q", tt.args, out, tt.wantOutput)
			}
		})
	}
}

func TestCheckServeFlags(t *testing.T) {
	ok := func() server.Config {
		return server.Config{GRPCAddr: "127.0.0.1:1", HTTPAddr: "127.0.0.1:2", DataPath: "/var/lib/tb/tokenbroker.db",
			OrgName: "default", PulsarAudience: "pulsar", AuthTokenTTL: time.Minute, PulsarTokenLimit: 100,
			Etcd: server.EtcdConfig{MaxTxnOps: 128}}
	}
	cfg := ok()
	if err := checkServeFlags(&cfg, map[string]bool{}); err != nil {
		t.Fatal(err)
	}
	if cfg.BootstrapFile != "/var/lib/tb/admin.json" {
		t.Fatalf("default bootstrap file %q, want beside the data file", cfg.BootstrapFile)
	}
	cfg = ok()
	cfg.Etcd.MaxTxnOps = 1024 // members started with a raised --max-txn-ops
	if err := checkServeFlags(&cfg, map[string]bool{}); err != nil {
		t.Fatalf("--etcd-max-txn-ops 1024: %v", err)
	}
	cfg = ok()
	cfg.BootstrapFile = "-"
	if err := checkServeFlags(&cfg, map[string]bool{"bootstrap-file": true}); err != nil || cfg.BootstrapFile != "" {
		t.Fatalf(`"-": %q %v`, cfg.BootstrapFile, err)
	}
	for name, tc := range map[string]struct {
		adjust func(*server.Config)
		given  string
		want   string
	}{
		"zero TTL":           {func(c *server.Config) { c.AuthTokenTTL = 0 }, "", "--auth-token-ttl"},
		"negative TTL":       {func(c *server.Config) { c.AuthTokenTTL = -time.Second }, "", "--auth-token-ttl"},
		"negative limit":     {func(c *server.Config) { c.PulsarTokenLimit = -3 }, "", "--pulsar-token-limit"},
		"etcd txn ops 0":     {func(c *server.Config) { c.Etcd.MaxTxnOps = 0 }, "", "--etcd-max-txn-ops 0: must be at least 128"},
		"etcd txn ops 100":   {func(c *server.Config) { c.Etcd.MaxTxnOps = 100 }, "", "--etcd-max-txn-ops 100: must be at least 128"},
		"empty data":         {func(c *server.Config) { c.DataPath = " " }, "", "--data"},
		"relative issuer":    {func(c *server.Config) { c.IssuerURL = "/oidc" }, "", "issuer URL"},
		"empty bootstrap":    {func(c *server.Config) { c.BootstrapFile = "" }, "bootstrap-file", "--bootstrap-file"},
		"key without cert":   {func(c *server.Config) { c.TLS.Key = "k.pem" }, "", "TLS"},
		"unsupported scheme": {func(c *server.Config) { c.IssuerURL = "ftp://x" }, "", "issuer URL"},
	} {
		cfg := ok()
		tc.adjust(&cfg)
		err := checkServeFlags(&cfg, map[string]bool{tc.given: tc.given != ""})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one naming %s", name, err, tc.want)
		}
	}
}

func TestNewLogger(t *testing.T) {
	var buf bytes.Buffer
	log, err := newLogger(&buf, "text", "debug")
	if err != nil {
		t.Fatal(err)
	}
	log.Debug("hello", "k", "v")
	if !strings.Contains(buf.String(), "level=DEBUG msg=hello k=v") {
		t.Fatalf("text log: %q", buf.String())
	}
	buf.Reset()
	log, _ = newLogger(&buf, "json", "warn")
	log.Info("dropped")
	log.Warn("kept")
	if strings.Contains(buf.String(), "dropped") || !strings.Contains(buf.String(), `"msg":"kept"`) {
		t.Fatalf("json log: %q", buf.String())
	}
	if _, err := newLogger(&buf, "xml", "info"); err == nil {
		t.Error("log format xml accepted")
	}
	if _, err := newLogger(&buf, "json", "loud"); err == nil {
		t.Error("log level loud accepted")
	}
}
