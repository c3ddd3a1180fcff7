// Command tokenbroker is a self-hosted broker for Astra-style application
// tokens. `tokenbroker serve` starts the gRPC server and its REST facade over
// an embedded bbolt store; the other commands (internal/cli) are its
// operator command line.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/tokenbroker/tokenbroker/cmd/tokenbroker/internal/cli"
	"github.com/tokenbroker/tokenbroker/server"
	"github.com/tokenbroker/tokenbroker/server/broker"
)

func main() {
	// Interrupts end a following command (audit follow) cleanly; serve
	// installs its own handler for a graceful drain.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the command line and returns the exit code (see cli.Run).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return cli.Run(ctx, args, cli.Env{
		Stdin: os.Stdin, Stdout: stdout, Stderr: stderr,
		LookupEnv: os.LookupEnv,
		Serve:     serve,
	})
}

func serve(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := server.Config{}
	fs.StringVar(&cfg.GRPCAddr, "grpc-addr", server.DefaultGRPCAddr, "gRPC listen address")
	fs.StringVar(&cfg.HTTPAddr, "http-addr", server.DefaultHTTPAddr, "REST (grpc-gateway) listen address")
	fs.StringVar(&cfg.DataPath, "data", server.DefaultDataPath, "bbolt database file (its directory is created; the key file is <data>.key)")
	fs.StringVar(&cfg.BootstrapFile, "bootstrap-file", "", "on first start, also write the admin credential to this file (mode 0600)")
	fs.StringVar(&cfg.OrgName, "org-name", server.DefaultOrgName, "organization name, used on first start")
	fs.DurationVar(&cfg.AuthTokenTTL, "auth-token-ttl", broker.DefaultAuthTokenTTL, "an authorization token stays valid this long after its most recent use")
	fs.StringVar(&cfg.IssuerURL, "issuer-url", "", "iss claim of Pulsar JWTs and OIDC issuer (default http://<http-addr>); Pulsar's OIDC provider wants https")
	fs.StringVar(&cfg.PulsarAudience, "pulsar-audience", server.DefaultPulsarAudience, "aud claim of Pulsar JWTs")
	fs.IntVar(&cfg.PulsarTokenLimit, "pulsar-token-limit", broker.DefaultPulsarTokenLimit, "maximum live Pulsar tokens per tenant")
	// --- store selection (server/openstore.go) ---
	fs.StringVar(&cfg.Store, "store", server.StoreBolt, "store backend: bolt (the --data file) or etcd (--etcd-endpoints)")
	fs.StringVar(&cfg.KeyFile, "key-file", "", "master key file (default <data>.key); every broker of one installation needs the same one")
	fs.Func("etcd-endpoints", "etcd client endpoints, comma-separated (host:port or URL)", func(v string) error {
		cfg.Etcd.Endpoints = strings.Split(v, ",")
		return nil
	})
	fs.StringVar(&cfg.Etcd.Prefix, "etcd-prefix", "/tokenbroker/", "etcd key prefix of this installation")
	fs.StringVar(&cfg.Etcd.CACert, "etcd-cacert", "", "PEM CA certificate verifying the etcd members")
	fs.StringVar(&cfg.Etcd.Cert, "etcd-cert", "", "PEM client certificate for etcd")
	fs.StringVar(&cfg.Etcd.Key, "etcd-key", "", "PEM client key for etcd")
	// --- end store selection ---
	fs.Func("signing-key-rotation", "rotate the Pulsar signing key on this schedule, e.g. 90d; the next key is published at half of it (default: off)", func(v string) error {
		d, err := broker.ParseLifetime("signing-key-rotation", v)
		if err != nil {
			return err
		}
		if d != 0 && d < time.Hour {
			return errors.New("signing-key-rotation: at least 1h, so that verifiers refresh their JWKS within the half before activation")
		}
		cfg.SigningKeyRotation = d
		return nil
	})
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve: unexpected arguments %q", fs.Args())
	}
	if err := applyEnv(fs, os.LookupEnv); err != nil {
		return err
	}

	cfg.Logger = slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cfg.BootstrapOut = stderr

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	srv, err := server.Start(ctx, cfg)
	if err != nil {
		return err
	}
	var serveErr error
	select {
	case <-ctx.Done():
		cfg.Logger.Info("shutting down")
	case serveErr = <-srv.Err():
		cfg.Logger.Error("listener failed; shutting down", "err", serveErr)
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return errors.Join(serveErr, srv.Shutdown(shutdownCtx))
}

// applyEnv sets every flag not given on the command line from its
// TOKENBROKER_* variable (--grpc-addr → TOKENBROKER_GRPC_ADDR).
func applyEnv(fs *flag.FlagSet, lookup func(string) (string, bool)) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || err != nil {
			return
		}
		name := "TOKENBROKER_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := lookup(name); ok {
			if setErr := fs.Set(f.Name, v); setErr != nil {
				err = fmt.Errorf("%s: %w", name, setErr)
			}
		}
	})
	return err
}
