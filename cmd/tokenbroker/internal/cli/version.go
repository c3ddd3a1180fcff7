package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/tokenbroker/tokenbroker/cmd/tokenbroker/internal/buildinfo"
)

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and Go version of this binary",
		Example: `  tokenbroker version
  tokenbroker version -o json | jq -r .commit`,
		Args: cobra.NoArgs,
		RunE: a.run(func(context.Context, []string) error {
			info := buildinfo.Read()
			if a.json() {
				return a.printJSON(info)
			}
			commit := orDash(info.Commit)
			if info.Modified {
				commit += " (modified)"
			}
			return a.fields("version", info.Version, "commit", commit, "commitTime", orDash(info.CommitTime),
				"go", info.GoVersion, "platform", info.Platform)
		}),
	}
}
