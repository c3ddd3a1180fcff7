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
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/tokenbroker/tokenbroker/cmd/tokenbroker/internal/cli"
	"github.com/tokenbroker/tokenbroker/server"
	"github.com/tokenbroker/tokenbroker/server/broker"
	"github.com/tokenbroker/tokenbroker/server/gctune"
	"github.com/tokenbroker/tokenbroker/store/etcd"
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
	fs.StringVar(&cfg.BootstrapFile, "bootstrap-file", "", "on first start, write the admin credential to this file (mode 0600; default <data dir>/admin.json; \"-\": print it only)")
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
	fs.IntVar(&cfg.Etcd.MaxTxnOps, "etcd-max-txn-ops", etcd.DefaultMaxTxnOps, "most operations in one etcd transaction: at most the etcd members' --max-txn-ops, at least 128")
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
	// Browser console.
	ui := fs.Bool("ui", true, "serve the browser console at /ui/ on the REST listener")
	fs.StringVar(&cfg.DataAPIURLTemplate, "data-api-url-template", "", "URL of a database's data API, with {id} and {region} (e.g. https://{id}-{region}.apps.example.internal); fills the URL fields of database objects")
	// --- operations flags: TLS, metrics, logging ---
	fs.StringVar(&cfg.TLS.Cert, "tls-cert", "", "PEM certificate chain: serve TLS (1.2+) on both listeners; reloaded on change and on SIGHUP")
	fs.StringVar(&cfg.TLS.Key, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&cfg.TLS.ClientCA, "tls-client-ca", "", "PEM CA bundle: require client certificates from it on gRPC, verify them if given on REST (mTLS)")
	fs.StringVar(&cfg.MetricsAddr, "metrics-addr", "", "serve GET /metrics on this address instead of on the REST listener")
	fs.BoolVar(&cfg.Pprof, "pprof", false, "serve Go's runtime profiles at /debug/pprof/ on --metrics-addr (required)")
	logFormat := fs.String("log-format", "json", "log format: json or text")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	// --- end operations flags ---
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

	cfg.DisableUI = !*ui
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if err := checkServeFlags(&cfg, given); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	logger, err := newLogger(stderr, *logFormat, *logLevel)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	cfg.Logger = logger
	cfg.BootstrapOut = stderr
	// GC pacing for a small heap under a high call rate (server/gctune);
	// GOGC in the environment turns it off.
	if tuner := gctune.Start(gctune.DefaultFloor); tuner != nil {
		defer tuner.Stop()
		logger.Debug("garbage collector paced", "min_growth_bytes", gctune.DefaultFloor)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// Subscribed before Start, so a SIGHUP right after the start log is
	// queued rather than killing the process (SIGHUP's default action).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	srv, err := server.Start(ctx, cfg)
	if err != nil {
		return err
	}
	var serveErr error
wait:
	for {
		select {
		case <-ctx.Done():
			cfg.Logger.Info("shutting down")
			break wait
		case serveErr = <-srv.Err():
			cfg.Logger.Error("listener failed; shutting down", "err", serveErr)
			break wait
		case <-hup:
			if cfg.TLS.Cert == "" {
				cfg.Logger.Info("SIGHUP: TLS is off; nothing to reload")
			} else if err := srv.ReloadTLS(); err != nil {
				cfg.Logger.Error("SIGHUP: TLS reload failed; still serving the previous certificates", "err", err)
			} else {
				cfg.Logger.Info("SIGHUP: TLS files re-read")
			}
		}
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

// checkServeFlags refuses values that would otherwise be silently replaced
// by defaults, and fills in the bootstrap file's default place.
func checkServeFlags(cfg *server.Config, given map[string]bool) error {
	if cfg.AuthTokenTTL <= 0 {
		return fmt.Errorf("--auth-token-ttl %s: must be positive", cfg.AuthTokenTTL)
	}
	if cfg.PulsarTokenLimit <= 0 {
		return fmt.Errorf("--pulsar-token-limit %d: must be positive", cfg.PulsarTokenLimit)
	}
	if cfg.Etcd.MaxTxnOps < etcd.DefaultMaxTxnOps {
		// etcd.Open refuses it too, but only with --store etcd, and naming
		// the option rather than the flag.
		return fmt.Errorf("--etcd-max-txn-ops %d: must be at least %d (etcd's default --max-txn-ops: the store's single writes are sized for it)",
			cfg.Etcd.MaxTxnOps, etcd.DefaultMaxTxnOps)
	}
	for name, v := range map[string]string{"grpc-addr": cfg.GRPCAddr, "http-addr": cfg.HTTPAddr, "data": cfg.DataPath, "org-name": cfg.OrgName, "pulsar-audience": cfg.PulsarAudience} {
		if strings.TrimSpace(v) == "" {
			return fmt.Errorf("--%s: must not be empty", name)
		}
	}
	switch {
	case cfg.BootstrapFile == "-":
		cfg.BootstrapFile = ""
	case cfg.BootstrapFile == "" && !given["bootstrap-file"]:
		cfg.BootstrapFile = filepath.Join(filepath.Dir(cfg.DataPath), "admin.json")
	case cfg.BootstrapFile == "":
		return errors.New(`--bootstrap-file: must not be empty (give "-" to only print the credential)`)
	}
	return cfg.Validate()
}

// newLogger builds the serve command's logger.
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("--log-format %q: want json or text", format)
	}
}
