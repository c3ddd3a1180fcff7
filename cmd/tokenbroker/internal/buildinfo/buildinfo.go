// Package buildinfo reports what binary this is: its version, the commit
// it was built from, and the Go toolchain, read from the build information
// Go embeds in every binary (runtime/debug.ReadBuildInfo).
package buildinfo

import (
	"runtime"
	"runtime/debug"
)

// Version overrides the module version when set at link time:
//
//	go build -ldflags "-X github.com/tokenbroker/tokenbroker/cmd/tokenbroker/internal/buildinfo.Version=v1.2.3" ./cmd/tokenbroker
var Version string

// Info describes a build.
type Info struct {
	Version    string `json:"version"`    // module version, "(devel)" for a plain go build
	Commit     string `json:"commit"`     // VCS revision, "" when built without VCS information
	CommitTime string `json:"commitTime"` // RFC 3339, "" when unknown
	Modified   bool   `json:"modified"`   // the work tree had uncommitted changes
	GoVersion  string `json:"goVersion"`
	Platform   string `json:"platform"` // GOOS/GOARCH
}

// Read returns this binary's build information.
func Read() Info {
	info := Info{Version: "(devel)", GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v := bi.Main.Version; v != "" {
			info.Version = v
		}
		info.GoVersion = bi.GoVersion
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				info.Commit = s.Value
			case "vcs.time":
				info.CommitTime = s.Value
			case "vcs.modified":
				info.Modified = s.Value == "true"
			}
		}
	}
	if Version != "" {
		info.Version = Version
	}
	return info
}
