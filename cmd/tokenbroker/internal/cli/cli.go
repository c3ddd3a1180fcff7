// Package cli is tokenbroker's command line: the operator commands that
// talk gRPC to a running broker (tokens, roles, users, tenants, Pulsar
// tokens, databases, the audit log, Check, online backup), the offline
// maintenance commands that work on the data file (restore, admin recover),
// version, and the root that also dispatches serve.
//
// Exit codes are part of the interface (docs/cli.md): 0 success, 1 the
// operation failed (refused or failed by the broker, broker unreachable,
// a local file error), 2 the command line is wrong (caught before anything
// is sent or changed).
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tokenbroker/tokenbroker/server"
)

// Exit codes scripts can rely on.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
)

// Env is what the command line runs against: its streams, environment and
// the serve entry point (which parses its own flags).
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// LookupEnv reads environment variables (os.LookupEnv).
	LookupEnv func(string) (string, bool)
	// Serve runs `tokenbroker serve` with the arguments after "serve".
	Serve func(args []string, stderr io.Writer) error
	// Now is the clock of the offline commands; default time.Now.
	Now func() time.Time
}

// Run executes the command line args (without the program name) and
// returns the process exit code.
func Run(ctx context.Context, args []string, env Env) int {
	if env.LookupEnv == nil {
		env.LookupEnv = func(string) (string, bool) { return "", false }
	}
	if env.Now == nil {
		env.Now = time.Now
	}
	if env.Stdin == nil {
		env.Stdin = strings.NewReader("")
	}
	if env.Stdout == nil {
		env.Stdout = io.Discard
	}
	if env.Stderr == nil {
		env.Stderr = io.Discard
	}
	a := &app{env: env, out: env.Stdout, errw: env.Stderr}
	defer a.close()
	root := a.rootCommand()
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	var ran *ranError
	var usage *usageError
	if errors.As(err, &ran) && !errors.As(err, &usage) {
		fmt.Fprintf(a.errw, "tokenbroker: %s\n", describe(ran.err, a.opts.server))
		return ExitFailure
	}
	fmt.Fprintf(a.errw, "tokenbroker: %v\n", err)
	if cmd != nil {
		fmt.Fprintf(a.errw, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return ExitUsage
}

// usageError is a command line mistake, found before anything is sent or
// changed: exit code 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// ranError marks an error returned by a command's own code (as opposed to
// cobra's flag and argument checks, which are usage errors): exit code 1
// unless it wraps a usageError.
type ranError struct{ err error }

func (e *ranError) Error() string { return e.err.Error() }
func (e *ranError) Unwrap() error { return e.err }

// describe renders a failure for stderr: a gRPC status as "Code: message",
// with a hint when the broker could not be reached.
func describe(err error, server string) string {
	// The innermost status (status.FromError would fold the wrappers'
	// text into its message).
	var se interface {
		error
		GRPCStatus() *status.Status
	}
	if !errors.As(err, &se) {
		return err.Error()
	}
	st := se.GRPCStatus()
	msg := st.Code().String() + ": " + st.Message()
	// Keep the context a wrapper added ("look up role ...: "), with the
	// status in the short form.
	if outer, inner := err.Error(), se.Error(); outer != inner && strings.Contains(outer, inner) {
		msg = strings.Replace(outer, inner, msg, 1)
	}
	if st.Code() == codes.Unavailable {
		msg += fmt.Sprintf(" (is a broker serving gRPC at %s? see --server and the TLS flags)", server)
	}
	return msg
}

// options are the global flags.
type options struct {
	server             string
	token              string
	cacert, cert, key  string
	tlsServerName      string
	useTLS             bool
	insecureSkipVerify bool
	output             string
	timeout            time.Duration
}

// app holds the state of one command-line run.
type app struct {
	env  Env
	out  io.Writer
	errw io.Writer
	opts options
	conn *grpc.ClientConn
}

func (a *app) close() {
	if a.conn != nil {
		_ = a.conn.Close()
	}
}

func (a *app) json() bool { return a.opts.output == "json" }

// run wraps a command's body so that its errors are told apart from
// cobra's usage errors.
func (a *app) run(fn func(ctx context.Context, args []string) error) func(*cobra.Command, []string) error {
	return func(c *cobra.Command, args []string) error {
		if err := fn(c.Context(), args); err != nil {
			return &ranError{err}
		}
		return nil
	}
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "tokenbroker",
		Short: "A self-hosted token broker (Astra-style application tokens, Stargate auth tokens, Pulsar JWTs)",
		Long: `tokenbroker issues and checks Astra-style application tokens, Stargate
authorization tokens and Pulsar JWTs.

'tokenbroker serve' runs the broker. The other commands are its operator
command line: they talk gRPC to a running broker (--server, --token), or,
for restore and admin recover, work offline on its data file.

Exit codes: 0 success; 1 the operation failed (refused or failed by the
broker, the broker unreachable, a file error); 2 the command line is wrong.`,
		Example: `  tokenbroker serve
  export TOKENBROKER_TOKEN=$(jq -r .token data/admin.json)
  tokenbroker token create --role "R/W Svc Acct" --description "service A"
  tokenbroker token list -o json | jq -r '.clients[].clientId'`,
		SilenceErrors: true,
		SilenceUsage:  true,
		// A bare "tokenbroker" is a usage error (exit 2), after the help.
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			c.SetOut(c.ErrOrStderr()) // help as the explanation of a usage error: on stderr
			_ = c.Help()
			return usagef("missing command")
		},
		PersistentPreRunE: func(c *cobra.Command, _ []string) error {
			switch a.opts.output {
			case "table", "json":
			default:
				return usagef("--output must be table or json, not %q", a.opts.output)
			}
			return nil
		},
	}
	root.SetOut(a.env.Stdout)
	root.SetErr(a.env.Stderr)
	root.SetIn(a.env.Stdin)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	root.PersistentFlags().StringVarP(&a.opts.output, "output", "o", "table", "output format: table (for people) or json (the API's messages, compact, for scripts)")
	root.AddGroup(
		&cobra.Group{ID: "api", Title: "Commands that talk to a running broker:"},
		&cobra.Group{ID: "offline", Title: "Commands that work on the data file (broker stopped):"},
	)

	for _, c := range []*cobra.Command{
		a.tokenCommand(), a.roleCommand(), a.userCommand(), a.tenantCommand(),
		a.pulsarTokenCommand(), a.dbCommand(), a.auditCommand(), a.checkCommand(), a.backupCommand(),
	} {
		c.GroupID = "api"
		a.clientFlags(c)
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{a.restoreCommand(), a.adminCommand()} {
		c.GroupID = "offline"
		root.AddCommand(c)
	}
	root.AddCommand(a.serveCommand(), a.versionCommand())
	return root
}

// clientFlags adds the connection flags to a command that talks to the
// broker (and to its subcommands).
func (a *app) clientFlags(c *cobra.Command) {
	f := c.PersistentFlags()
	f.StringVar(&a.opts.server, "server", a.envOr("TOKENBROKER_SERVER", server.DefaultGRPCAddr), "the broker's gRPC address, host:port (env TOKENBROKER_SERVER)")
	f.StringVar(&a.opts.token, "token", "", "bearer token for the call (env TOKENBROKER_TOKEN, then ASTRA_DB_APPLICATION_TOKEN)")
	f.BoolVar(&a.opts.useTLS, "tls", false, "use TLS, verifying the broker against the system's roots (implied by the other TLS flags)")
	f.StringVar(&a.opts.cacert, "cacert", "", "PEM file of the CA that signed the broker's certificate (implies --tls)")
	f.StringVar(&a.opts.cert, "cert", "", "PEM client certificate for mTLS (with --key; implies --tls)")
	f.StringVar(&a.opts.key, "key", "", "PEM private key of --cert")
	f.StringVar(&a.opts.tlsServerName, "tls-server-name", "", "name to verify the broker's certificate against (default: the --server host)")
	f.BoolVar(&a.opts.insecureSkipVerify, "insecure-skip-verify", false, "TLS without verifying the broker's certificate (testing only)")
	f.DurationVar(&a.opts.timeout, "timeout", 30*time.Second, "deadline of each call (streams excepted)")
}

func (a *app) envOr(name, def string) string {
	if v, ok := a.env.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

func (a *app) serveCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "serve [flags]",
		Short: "Run the broker (gRPC and REST listeners over the data file)",
		Long: `Run the broker: the gRPC server and its REST facade over the embedded
bbolt store. Every flag can also be set with an environment variable
(--grpc-addr is TOKENBROKER_GRPC_ADDR, and so on); a flag given on the
command line wins. Run 'tokenbroker serve -h' for the flags.

serve exits 1 when it cannot start (including a bad flag) or when a
listener fails, and 0 after a graceful shutdown (SIGINT, SIGTERM).`,
		Example: `  tokenbroker serve
  tokenbroker serve --data /var/lib/tokenbroker/tokenbroker.db --grpc-addr 0.0.0.0:50051`,
		// serve parses its own flags (a flag.FlagSet with environment
		// fallbacks), so they stay in one place.
		DisableFlagParsing: true,
		RunE: a.run(func(_ context.Context, args []string) error {
			if a.env.Serve == nil {
				return errors.New("serve is not available in this build")
			}
			return a.env.Serve(args, a.errw)
		}),
	}
}

// exactArgs is cobra.ExactArgs with the arguments named in the message.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != len(names) {
			return usagef("want %d argument(s) (%s), got %d", len(names), strings.Join(names, " "), len(args))
		}
		for i, v := range args {
			if strings.TrimSpace(v) == "" {
				return usagef("%s must not be empty", names[i])
			}
		}
		return nil
	}
}

// minArgs requires at least one argument, named in the message.
func minArgs(name string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) == 0 {
			return usagef("want at least one %s", name)
		}
		return nil
	}
}
