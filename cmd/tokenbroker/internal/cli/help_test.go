package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestEveryCommandHasHelpWithExample walks the command tree: every command
// has a short description and an Example, and `--help` prints it with
// exit code 0.
func TestEveryCommandHasHelpWithExample(t *testing.T) {
	a := &app{env: Env{LookupEnv: func(string) (string, bool) { return "", false }}}
	var walk func(c *cobra.Command)
	n := 0
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			if sub.Name() == "help" || sub.Name() == "completion" || strings.HasPrefix(sub.Name(), "__") {
				continue // cobra's own
			}
			walk(sub)
		}
		n++
		path := c.CommandPath()
		if c.Short == "" {
			t.Errorf("%s has no short description", path)
		}
		if strings.TrimSpace(c.Example) == "" {
			t.Errorf("%s has no Example", path)
		}
		if c.Name() == "serve" {
			return // serve parses its own flags; its help is serve's (see main's tests)
		}
		args := append(strings.Fields(strings.TrimPrefix(path, "tokenbroker")), "--help")
		var out, errw bytes.Buffer
		code := Run(context.Background(), args, Env{Stdout: &out, Stderr: &errw})
		if code != ExitOK {
			t.Errorf("%s --help: exit %d, stderr %s", path, code, errw.String())
		}
		if !strings.Contains(out.String(), "Examples:") || !strings.Contains(out.String(), "Usage:") {
			t.Errorf("%s --help does not show usage and examples:\n%s", path, out.String())
		}
	}
	walk(a.rootCommand())
	if n < 30 {
		t.Errorf("walked %d commands; expected the whole tree (30+)", n)
	}
}
