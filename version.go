package main

import (
	"fmt"
	"runtime/debug"
)

// version is the release, stamped at build time:
//
//	go build -ldflags "-X main.version=v0.3.0" .
//
// (`make build` and `make image` stamp `git describe`). A build without it
// says "dev".
var version = "dev"

// commit is the revision the binary was built from, stamped at build time
// like version (`make build` and `make image` stamp `git rev-parse HEAD`).
// Without it the Go toolchain's VCS stamp is used, which a build outside a
// plain git clone lacks: in a git worktree, from a source archive, or with
// -buildvcs=false (as `make image` builds, so that the image does not
// depend on how the checkout is laid out).
var commit = ""

// versionString names the release, the commit it was built from (the
// stamped one, else the Go toolchain's VCS stamp with "-dirty" for
// uncommitted changes) and the Go version.
func versionString() string {
	rev, dirty := "unknown", ""
	goVersion := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVersion = bi.GoVersion
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision":
				rev = s.Value
			case s.Key == "vcs.modified" && s.Value == "true":
				dirty = "-dirty"
			}
		}
	}
	if commit != "" {
		// git describe --dirty already marks the version.
		rev, dirty = commit, ""
	}
	return fmt.Sprintf("clustergraph %s (commit %s%s, %s)", version, rev, dirty, goVersion)
}
