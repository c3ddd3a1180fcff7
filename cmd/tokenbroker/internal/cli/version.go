package cli

import (
	"context"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/tokenbroker/tokenbroker/server/buildinfo"
)

// versionInfo is what `version -o json` prints.
type versionInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	Modified  bool   `json:"modified"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and Go version of this binary",
		Example: `  tokenbroker version
  tokenbroker version -o json | jq -r .commit`,
		Args: cobra.NoArgs,
		RunE: a.run(func(context.Context, []string) error {
			bi := buildinfo.Get()
			info := versionInfo{Version: bi.Version, Commit: bi.Commit, Modified: bi.Modified,
				GoVersion: bi.GoVersion, Platform: runtime.GOOS + "/" + runtime.GOARCH}
			if a.json() {
				return a.printJSON(info)
			}
			commit := orDash(info.Commit)
			if info.Modified {
				commit += " (modified)"
			}
			return a.fields("version", info.Version, "commit", commit, "go", info.GoVersion, "platform", info.Platform)
		}),
	}
}
