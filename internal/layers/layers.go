// Package layers holds clustergraph's import rule as data and the check of
// it. Every package of the module stands on a floor (Floors); a package may
// import project packages on strictly lower floors only, so dependencies
// flow one way and a leaf stays a leaf. TestLayers (layers_test.go) runs
// `go list` over the module and fails on an import that climbs or stays on
// its floor, and on a package missing from the table, so a new room is
// placed on purpose. Where a floor allows an import but not every call
// into it, Reserved names the calls a package may not make (resolvers never
// touch the database past loaders' checks), and TestReserved type-checks
// the package to hold it. Both run in `make check`, `make unit` and
// `make test`.
//
// Only non-test imports and code count: a test may import and call
// anything it needs.
package layers

import (
	"fmt"
	"slices"
	"strings"
)

// Root is the key of the module's root package (server.go, main) in Floors.
const Root = "."

// Floors places each package of the module, by its path inside the module,
// on a floor. Amend it when a room is added or moves: one line a package,
// with a few words on why it stands there. Entries for packages that do not
// exist yet (planned rooms) are allowed.
var Floors = map[string]int{
	// Floor 0: leaves. They import nothing of the project, so every room
	// may use them.
	"caller":  0, // the authenticated Subject and its context key
	"errkind": 0, // error kinds and the one table of their codes
	"reqlog":  0, // a request's id and operation in its context, added to its log lines
	"tracing": 0, // OpenTelemetry: setup from OTEL_*, the HTTP and transport wrappers, spans
	// internal/testenv is test support (real clusters, MariaDB, faults):
	// only tests import it. It imports nothing of the project, so it is a
	// leaf by its imports.
	"internal/testenv": 0,
	"internal/layers":  0, // this check: data and a function, no imports
	// metrics owns the Prometheus registry and series; every room records
	// into it (and the server reads plain snapshots into it), so it
	// imports nothing of the project.
	"metrics": 0,

	// Floor 1: the two stores everything reads from, and audit.
	"k8s": 1, // registry, caches and reads as clustergraph; never the GraphQL layers
	"db":  1, // the gorm store; never k8s (same floor)
	// audit records the caller (caller.Subject), so it cannot be a leaf;
	// it stands here so the write layer (floor 2) can record every mutation.
	"audit": 1,

	// Floor 2: rooms that act on an apiserver as the caller, or keep their
	// own concern over k8s and db.
	"k8s/write":  2, // apply, patch, delete, scale, rollouts, drain, namespace ops as the caller
	"k8s/stream": 2, // exec, logs and their follower, the cluster shell as the caller
	"k8s/lease":  2, // leader election, as clustergraph
	"auth":       2, // who the caller is: TokenReview through k8s
	"alerting":   2, // alerts received, stored through db, streamed
	"archive":    2, // Events copied from the caches into db
	"metering":   2, // usage sampled from k8s, rolled up in db
	"loaders":    2, // per-request dataloaders over k8s and db
	"graphiql":   2, // embedded IDE assets; imports nothing, served by api

	// Floor 3: sessions over the streams.
	"terminal": 3, // interactive exec sessions (limits, rechecks) over k8s/stream

	// Floors 3 to 7: the GraphQL layers, from the API types up to main.
	"graph/model": 3, // API types, converted from k8s and db types
	"graph":       4, // gqlgen's executable schema over graph/model
	"resolvers":   5, // hand-written resolvers behind graph's interfaces
	"api":         6, // the HTTP edge: handler, transports, error presenter
	Root:          7, // server.go: wiring only

	// Apart: commands under tools/ measure or feed clustergraph from the
	// outside (over HTTP and the apiserver), so they share no code with
	// it: floor 0, importing nothing of the project.
	"tools/scale/bench":    0, // the scale benchmarks' driver
	"tools/scale/peer":     0, // the benchmarks' baseline: bare client-go informers
	"tools/scale/populate": 0, // fills a bare kwok cluster for the benchmarks
	"tools/charttest":      0, // tests of the Helm chart (test files only)
}

// Reserved names, per package (by its key in Floors), the functions and
// methods of lower packages it may not use although its floor lets it
// import their package, because a room between them owns the checks around
// those calls. An entry is "pkg.Func", "pkg.Type.Method" or "pkg.Type.*"
// (every method of Type, pointer receivers included), pkg being the key in
// Floors of the package that declares it. TestReserved type-checks each
// package named here and fails on a use, direct or as a value.
var Reserved = map[string][]string{
	// Stored records are authorized in loaders (the stored loaders and
	// loaders.Records); resolvers reach the database through them only,
	// never by its handle or store, so a new field cannot skip the check.
	"resolvers": {"db.Handle.*", "db.Store.*", "db.Open", "db.Opened", "db.Connect"},
}

// Use is a package's use of a function or method of another package of
// the module: Package is the user's key in Floors, Name the used one named
// as in Reserved, Pos where (file:line:column).
type Use struct {
	Package, Name, Pos string
}

// CheckReserved returns, sorted, every use in uses that reserved forbids
// its package.
func CheckReserved(reserved map[string][]string, uses []Use) []string {
	var problems []string
	for _, u := range uses {
		for _, r := range reserved[u.Package] {
			prefix, every := strings.CutSuffix(r, ".*")
			if u.Name == r || every && strings.HasPrefix(u.Name, prefix+".") {
				problems = append(problems, fmt.Sprintf(
					"%s: %s uses %s, which is reserved (see Reserved in internal/layers/layers.go: another room owns the checks around it)", u.Pos, u.Package, u.Name))
				break
			}
		}
	}
	slices.Sort(problems)
	return problems
}

// Package is what the check needs of one package: its import path and its
// non-test imports (go list's Imports).
type Package struct {
	ImportPath string
	Imports    []string
}

// Check returns, sorted, every breach of floors by pkgs, a list of packages
// of module: a package missing from floors (once, however often it is
// seen), and an import of a project package on the same floor or above.
// Imports from outside module are not its concern.
func Check(module string, floors map[string]int, pkgs []Package) []string {
	var problems []string
	unplaced := map[string]bool{}
	// floor reports rel's floor; a package without one is reported once.
	floor := func(rel string) (int, bool) {
		f, ok := floors[rel]
		if !ok && !unplaced[rel] {
			unplaced[rel] = true
			problems = append(problems, fmt.Sprintf(
				"%s has no floor: place it in the table in internal/layers/layers.go, one floor above the highest project package it imports", rel))
		}
		return f, ok
	}
	for _, p := range pkgs {
		rel, ok := relative(module, p.ImportPath)
		if !ok {
			continue
		}
		from, ok := floor(rel)
		for _, imp := range p.Imports {
			target, mine := relative(module, imp)
			if !mine {
				continue
			}
			to, known := floor(target)
			switch {
			case !ok || !known:
			case to > from:
				problems = append(problems, fmt.Sprintf(
					"%s (floor %d) imports %s (floor %d), a floor above it: dependencies flow down", rel, from, target, to))
			case to == from:
				problems = append(problems, fmt.Sprintf(
					"%s (floor %d) imports %s on its own floor: a package imports lower floors only (move one of them in the table if the design changed)", rel, from, target))
			}
		}
	}
	slices.Sort(problems)
	return problems
}

// relative is path's key in Floors when path is a package of module.
func relative(module, path string) (string, bool) {
	if path == module {
		return Root, true
	}
	rel, ok := strings.CutPrefix(path, module+"/")
	return rel, ok
}
