package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/cmd/tokenbroker/internal/cli"
	"github.com/tokenbroker/tokenbroker/server/servertest"
)

// result is one run of the command line.
type result struct {
	stdout, stderr string
	code           int
}

// runner runs the command line in-process against a real broker: the
// server address and the token come from the environment, as an operator
// would set them.
type runner struct {
	t     *testing.T
	env   map[string]string
	stdin string
	now   func() time.Time
}

func newRunner(t *testing.T, e *servertest.Env) *runner {
	r := &runner{t: t, env: map[string]string{}, now: time.Now}
	if e != nil {
		r.env["TOKENBROKER_SERVER"] = e.Server.GRPCAddr()
		r.env["TOKENBROKER_TOKEN"] = e.AdminToken
	}
	return r
}

// with returns a copy of r with extra environment variables ("" deletes).
func (r *runner) with(kv ...string) *runner {
	c := *r
	c.env = map[string]string{}
	for k, v := range r.env {
		c.env[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(c.env, kv[i])
		} else {
			c.env[kv[i]] = kv[i+1]
		}
	}
	return &c
}

func (r *runner) run(args ...string) result {
	r.t.Helper()
	var out, errw bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code := cli.Run(ctx, args, cli.Env{
		Stdin: strings.NewReader(r.stdin), Stdout: &out, Stderr: &errw,
		LookupEnv: func(k string) (string, bool) { v, ok := r.env[k]; return v, ok },
		Now:       r.now,
	})
	return result{stdout: out.String(), stderr: errw.String(), code: code}
}

// ok runs args, failing the test unless the exit code is 0.
func (r *runner) ok(args ...string) result {
	r.t.Helper()
	res := r.run(args...)
	if res.code != 0 {
		r.t.Fatalf("tokenbroker %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), res.code, res.stdout, res.stderr)
	}
	return res
}

// fails runs args and checks the exit code and that stderr names want.
func (r *runner) fails(code int, want string, args ...string) result {
	r.t.Helper()
	res := r.run(args...)
	if res.code != code {
		r.t.Fatalf("tokenbroker %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), res.code, code, res.stdout, res.stderr)
	}
	if !strings.Contains(res.stderr, want) {
		r.t.Fatalf("tokenbroker %s: stderr %q does not contain %q", strings.Join(args, " "), res.stderr, want)
	}
	return res
}

// jsonOf runs args with -o json and decodes the one line of output.
func (r *runner) jsonOf(v any, args ...string) result {
	r.t.Helper()
	res := r.ok(append(args, "-o", "json")...)
	if strings.Count(res.stdout, "\n") != 1 || !strings.HasSuffix(res.stdout, "\n") {
		r.t.Fatalf("tokenbroker %s -o json: want one line of JSON, got %q", strings.Join(args, " "), res.stdout)
	}
	if err := json.Unmarshal([]byte(res.stdout), v); err != nil {
		r.t.Fatalf("tokenbroker %s -o json: %v in %q", strings.Join(args, " "), err, res.stdout)
	}
	return res
}
