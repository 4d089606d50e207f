package main

import (
	"fmt"
	"runtime/debug"
)

// version is the release, stamped at build time:
//
//	go build -ldflags "-X main.version=v0.3.0" .
//
// (`make build` stamps `git describe`). A build without it says "dev".
var version = "dev"

// versionString names the release, the commit it was built from (from the
// Go toolchain's VCS stamp; "-dirty" for uncommitted changes) and the Go
// version.
func versionString() string {
	commit, dirty := "unknown", ""
	goVersion := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVersion = bi.GoVersion
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision":
				commit = s.Value
			case s.Key == "vcs.modified" && s.Value == "true":
				dirty = "-dirty"
			}
		}
	}
	return fmt.Sprintf("clustergraph %s (commit %s%s, %s)", version, commit, dirty, goVersion)
}
