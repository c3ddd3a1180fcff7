package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	tbv1 "github.com/tokenbroker/tokenbroker/gen/tokenbroker/v1"
)

// group returns a command that only holds subcommands: run bare or with
// an unknown subcommand, it is a usage error (exit 2) after the help.
func group(use, short, example string, subs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{
		Use: use, Short: short, Example: example,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			c.SetOut(c.ErrOrStderr()) // help as the explanation of a usage error: on stderr
			_ = c.Help()
			return usagef("missing subcommand")
		},
	}
	c.AddCommand(subs...)
	return c
}

// bearer returns the credential for calls: --token, else TOKENBROKER_TOKEN,
// else ASTRA_DB_APPLICATION_TOKEN (what Astra's tools read).
func (a *app) bearer() (string, error) {
	if a.opts.token != "" {
		return a.opts.token, nil
	}
	for _, name := range []string{"TOKENBROKER_TOKEN", "ASTRA_DB_APPLICATION_TOKEN"} {
		if v, ok := a.env.LookupEnv(name); ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v), nil
		}
	}
	return "", usagef("no token: give --token or set TOKENBROKER_TOKEN (or ASTRA_DB_APPLICATION_TOKEN)")
}

// dial connects (lazily: grpc.NewClient does not block) to --server,
// in plaintext unless a TLS flag is given.
func (a *app) dial() (*grpc.ClientConn, error) {
	if a.conn != nil {
		return a.conn, nil
	}
	creds, err := a.transportCredentials()
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(a.opts.server) == "" {
		return nil, usagef("--server must not be empty")
	}
	conn, err := grpc.NewClient(a.opts.server, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, usagef("--server %q: %v", a.opts.server, err)
	}
	a.conn = conn
	return conn, nil
}

func (a *app) transportCredentials() (credentials.TransportCredentials, error) {
	o := a.opts
	if !o.useTLS && o.cacert == "" && o.cert == "" && o.key == "" && !o.insecureSkipVerify && o.tlsServerName == "" {
		return insecure.NewCredentials(), nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: o.tlsServerName, InsecureSkipVerify: o.insecureSkipVerify} //nolint:gosec // only when asked for
	if o.cacert != "" {
		pem, err := os.ReadFile(o.cacert)
		if err != nil {
			return nil, fmt.Errorf("--cacert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--cacert %s: no PEM certificate in it", o.cacert)
		}
		cfg.RootCAs = pool
	}
	if (o.cert == "") != (o.key == "") {
		return nil, usagef("--cert and --key go together")
	}
	if o.cert != "" {
		pair, err := tls.LoadX509KeyPair(o.cert, o.key)
		if err != nil {
			return nil, fmt.Errorf("--cert/--key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return credentials.NewTLS(cfg), nil
}

// call returns a context for one unary call: the bearer token as
// "authorization: Bearer" metadata, and --timeout.
func (a *app) call(ctx context.Context) (context.Context, context.CancelFunc, error) {
	tok, err := a.bearer()
	if err != nil {
		return nil, nil, err
	}
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
	ctx, cancel := a.deadline(ctx)
	return ctx, cancel, nil
}

// deadline applies --timeout (0: none).
func (a *app) deadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if a.opts.timeout > 0 {
		return context.WithTimeout(ctx, a.opts.timeout)
	}
	return context.WithCancel(ctx)
}

// stream is call without the timeout, for streams that run until done.
func (a *app) stream(ctx context.Context) (context.Context, error) {
	tok, err := a.bearer()
	if err != nil {
		return nil, err
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok), nil
}

// clients of the broker's services, sharing one connection.
type clients struct {
	tokens tbv1.TokenServiceClient
	auth   tbv1.AuthServiceClient
	pulsar tbv1.PulsarTokenServiceClient
	db     tbv1.DatabaseServiceClient
	audit  tbv1.AuditServiceClient
	admin  tbv1.AdminServiceClient
}

func (a *app) clients() (clients, error) {
	conn, err := a.dial()
	if err != nil {
		return clients{}, err
	}
	return clients{
		tokens: tbv1.NewTokenServiceClient(conn),
		auth:   tbv1.NewAuthServiceClient(conn),
		pulsar: tbv1.NewPulsarTokenServiceClient(conn),
		db:     tbv1.NewDatabaseServiceClient(conn),
		audit:  tbv1.NewAuditServiceClient(conn),
		admin:  tbv1.NewAdminServiceClient(conn),
	}, nil
}

// unary runs one call: it dials, builds the call context and hands both to
// fn.
func (a *app) unary(ctx context.Context, fn func(ctx context.Context, c clients) error) error {
	c, err := a.clients()
	if err != nil {
		return err
	}
	ctx, cancel, err := a.call(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	return fn(ctx, c)
}
