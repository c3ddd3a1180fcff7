// Package buildinfo says which build of tokenbroker is running: the version
// and commit stamped at link time, else what the Go toolchain recorded in
// the binary (module version, VCS revision). Used by the metrics'
// build_info series, the serve start log and the version command.
package buildinfo

import (
	"runtime"
	"runtime/debug"
	"sync"
)

// Set at link time, e.g.
//
//	go build -ldflags "-X github.com/tokenbroker/tokenbroker/server/buildinfo.Version=v1.2.0 \
//	  -X github.com/tokenbroker/tokenbroker/server/buildinfo.Commit=$(git rev-parse HEAD)" ./cmd/tokenbroker
//
// Empty values fall back to the toolchain's build information.
var (
	Version string
	Commit  string
)

// Info describes the running binary.
type Info struct {
	Version   string // "v1.2.0", or "devel" for a build from a work tree without a version
	Commit    string // VCS revision, "" if unknown (e.g. built with -buildvcs=false)
	Modified  bool   // the work tree had uncommitted changes
	GoVersion string // toolchain that built the binary
}

var (
	once sync.Once
	info Info
)

// Get returns the running binary's build information (computed once).
func Get() Info {
	once.Do(func() { info = read(Version, Commit) })
	return info
}

func read(version, commit string) Info {
	in := Info{Version: version, Commit: commit, GoVersion: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if in.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			in.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if in.Commit == "" {
					in.Commit = s.Value
				}
			case "vcs.modified":
				in.Modified = s.Value == "true"
			}
		}
	}
	if in.Version == "" {
		in.Version = "devel"
	}
	return in
}

// String is the one-line form: "v1.2.0 (commit 0123abcd, go1.26.0)".
func (i Info) String() string {
	s := i.Version + " ("
	if i.Commit != "" {
		c := i.Commit
		if len(c) > 12 {
			c = c[:12]
		}
		s += "commit " + c
		if i.Modified {
			s += "+modified"
		}
		s += ", "
	}
	return s + i.GoVersion + ")"
}
