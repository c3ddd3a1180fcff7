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
