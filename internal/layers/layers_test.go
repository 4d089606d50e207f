package layers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestLayers checks the module's real imports against Floors. It needs no
// cluster and never skips: it runs in make check, make unit and make test.
func TestLayers(t *testing.T) {
	module, root := goListModule(t)
	pkgs := goListPackages(t, root)
	recordSources(t, root)
	if len(pkgs) == 0 {
		t.Fatal("go list found no package in the module")
	}
	for _, p := range Check(module, Floors, pkgs) {
		t.Error(p)
	}
	// A planned room is allowed in the table before it exists; say which
	// ones are waiting, so a stale entry is seen in -v output.
	seen := map[string]bool{}
	for _, p := range pkgs {
		if rel, ok := relative(module, p.ImportPath); ok {
			seen[rel] = true
		}
	}
	for rel := range Floors {
		if !seen[rel] {
			t.Logf("%s is in the table but not in the tree (planned)", rel)
		}
	}
}

// goListModule is the main module's path and directory.
func goListModule(t *testing.T) (path, dir string) {
	t.Helper()
	out := goCmd(t, "", "list", "-m", "-f", "{{.Path}}\n{{.Dir}}")
	path, dir, ok := strings.Cut(strings.TrimSpace(string(out)), "\n")
	if !ok || path == "" || dir == "" {
		t.Fatalf("go list -m: unexpected output %q", out)
	}
	return path, dir
}

// goListPackages is every package of the module with its non-test imports,
// as `go list -json ./...` run from the module root reports them.
func goListPackages(t *testing.T, root string) []Package {
	t.Helper()
	out := goCmd(t, root, "list", "-json=ImportPath,Imports", "./...")
	var pkgs []Package
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p Package
		err := dec.Decode(&p)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("decoding go list -json: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// recordSources reads every directory of the module and stats every Go
// file and go.mod in it. go list reads them in a child process, which go
// test's result cache does not see: without this, a new upward import in
// another package would leave TestLayers "(cached)" and passing. The test
// cache keys on what the test process itself opens and stats, so an edited
// file or a new file or package now reruns the test.
func recordSources(t *testing.T, root string) {
	t.Helper()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			// The directories the go command ignores for ./..., and npm's.
			if path != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") ||
				name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(name, ".go") || name == "go.mod" {
			_, err = os.Stat(path)
		}
		return err
	})
	if err != nil {
		t.Fatalf("reading the module's sources: %v", err)
	}
}

func goCmd(t *testing.T, dir string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return out
}

// TestCheck proves the check can fail: each case is a small synthetic
// module with its own table.
func TestCheck(t *testing.T) {
	const mod = "example.com/m"
	floors := map[string]int{
		"leaf":  0,
		"leaf2": 0,
		"store": 1,
		"other": 1,
		"top":   2,
		Root:    3,
	}
	tests := []struct {
		name string
		pkgs []Package
		want []string // substrings, one per problem, in sorted order
	}{
		{
			name: "downward imports pass",
			pkgs: []Package{
				{ImportPath: mod, Imports: []string{mod + "/top", mod + "/store", "fmt"}},
				{ImportPath: mod + "/top", Imports: []string{mod + "/store", mod + "/leaf"}},
				{ImportPath: mod + "/store", Imports: []string{mod + "/leaf", "example.com/elsewhere/top"}},
				{ImportPath: mod + "/leaf", Imports: []string{"context"}},
			},
		},
		{
			name: "upward import",
			pkgs: []Package{
				{ImportPath: mod + "/store", Imports: []string{mod + "/top"}},
				{ImportPath: mod + "/top"},
			},
			want: []string{"store (floor 1) imports top (floor 2), a floor above it"},
		},
		{
			name: "leaf imports the project",
			pkgs: []Package{{ImportPath: mod + "/leaf", Imports: []string{mod + "/leaf2"}}},
			want: []string{"leaf (floor 0) imports leaf2 on its own floor"},
		},
		{
			name: "same-floor import",
			pkgs: []Package{{ImportPath: mod + "/other", Imports: []string{mod + "/store"}}},
			want: []string{"other (floor 1) imports store on its own floor"},
		},
		{
			name: "import of the root package",
			pkgs: []Package{{ImportPath: mod + "/top", Imports: []string{mod}}},
			want: []string{"top (floor 2) imports . (floor 3)"},
		},
		{
			name: "unknown package, reported once",
			pkgs: []Package{
				{ImportPath: mod + "/newroom", Imports: []string{mod + "/leaf"}},
				{ImportPath: mod + "/top", Imports: []string{mod + "/newroom"}},
			},
			want: []string{"newroom has no floor: place it in the table"},
		},
		{
			name: "unknown import",
			pkgs: []Package{{ImportPath: mod + "/top", Imports: []string{mod + "/ghost"}}},
			want: []string{"ghost has no floor"},
		},
		{
			name: "a module whose path extends ours is not ours",
			pkgs: []Package{{ImportPath: mod + "/leaf", Imports: []string{mod + "2/top", mod + "x"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantProblems(t, "Check", Check(mod, floors, tt.pkgs), tt.want)
		})
	}
}

// wantProblems fails t unless got, the problems check returned, are as
// many as want and each contains its substring of want.
func wantProblems(t *testing.T, check string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s() = %q, want %d problem(s) like %q", check, got, len(want), want)
	}
	for i, w := range want {
		if !strings.Contains(got[i], w) {
			t.Errorf("problem %d = %q, want it to contain %q", i, got[i], w)
		}
	}
}

// TestFloorsNamePackages guards the table's own shape: keys are module
// paths (no leading slash, no module prefix) and floors are not negative.
func TestFloorsNamePackages(t *testing.T) {
	var bad []string
	for rel, f := range Floors {
		if f < 0 || rel == "" || strings.HasPrefix(rel, "/") || strings.HasSuffix(rel, "/") ||
			strings.Contains(rel, ".") && rel != Root {
			bad = append(bad, rel)
		}
	}
	slices.Sort(bad)
	if len(bad) > 0 {
		t.Errorf("malformed entries in Floors: %q", bad)
	}
}

// TestReserved type-checks each package Reserved names (its non-test
// files, against the compiled export data of its imports) and fails on a
// use of a function or method reserved from it. It needs no cluster and
// never skips.
func TestReserved(t *testing.T) {
	module, root := goListModule(t)
	recordSources(t, root)
	for rel := range Reserved {
		for _, p := range CheckReserved(Reserved, usesOf(t, module, root, rel)) {
			t.Error(p)
		}
	}
}

// usesOf is every use, in the non-test files of the module's package rel,
// of a function or method another package of the module declares.
func usesOf(t *testing.T, module, root, rel string) []Use {
	t.Helper()
	path := module
	if rel != Root {
		path = module + "/" + rel
	}
	// The package's files, and the export data of everything it imports
	// (built, or taken from the build cache, by go list).
	out := goCmd(t, root, "list", "-deps", "-export", "-json=ImportPath,Dir,GoFiles,CgoFiles,Export,Error", path)
	exports := map[string]string{}
	var target *struct {
		ImportPath, Dir, Export string
		GoFiles, CgoFiles       []string
		Error                   *struct{ Err string }
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		p := new(struct {
			ImportPath, Dir, Export string
			GoFiles, CgoFiles       []string
			Error                   *struct{ Err string }
		})
		err := dec.Decode(p)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("decoding go list -json: %v", err)
		}
		if p.Error != nil {
			t.Fatalf("go list %s: %s", p.ImportPath, p.Error.Err)
		}
		exports[p.ImportPath] = p.Export
		if p.ImportPath == path {
			target = p
		}
	}
	if target == nil {
		t.Fatalf("Reserved names %s, which go list does not find", rel)
	}
	if len(target.CgoFiles) > 0 {
		t.Fatalf("%s has cgo files: TestReserved cannot type-check them", rel)
	}
	fset := token.NewFileSet()
	var files []*ast.File
	for _, name := range target.GoFiles {
		f, err := parser.ParseFile(fset, filepath.Join(target.Dir, name), nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	conf := types.Config{Importer: importer.ForCompiler(fset, "gc", func(p string) (io.ReadCloser, error) {
		file, ok := exports[p]
		if !ok || file == "" {
			return nil, fmt.Errorf("no export data for %s", p)
		}
		return os.Open(file)
	})}
	info := &types.Info{Uses: map[*ast.Ident]types.Object{}}
	if _, err := conf.Check(path, fset, files, info); err != nil {
		t.Fatalf("type-checking %s: %v", rel, err)
	}
	var uses []Use
	for id, obj := range info.Uses {
		fn, ok := obj.(*types.Func)
		if !ok || fn.Pkg() == nil || fn.Pkg().Path() == path {
			continue
		}
		from, mine := relative(module, fn.Pkg().Path())
		if !mine {
			continue
		}
		fn = fn.Origin()
		name := from + "." + fn.Name()
		if recv := fn.Signature().Recv(); recv != nil {
			rt := recv.Type()
			if p, ok := rt.(*types.Pointer); ok {
				rt = p.Elem()
			}
			if n, ok := rt.(*types.Named); ok {
				name = from + "." + n.Obj().Name() + "." + fn.Name()
			}
		}
		pos := fset.Position(id.Pos())
		if r, err := filepath.Rel(root, pos.Filename); err == nil {
			pos.Filename = r
		}
		uses = append(uses, Use{Package: rel, Name: name, Pos: pos.String()})
	}
	return uses
}

// TestCheckReserved proves the reserved check can fail, and that it keeps
// to the package and names it is given.
func TestCheckReserved(t *testing.T) {
	reserved := map[string][]string{"top": {"store.Handle.Get", "store.Conn.*", "store.Open"}}
	tests := []struct {
		name string
		uses []Use
		want []string // substrings, one per problem, in sorted order
	}{
		{"allowed names pass", []Use{
			{"top", "store.Handle.Ready", "a.go:1:1"},
			{"top", "store.Connect", "a.go:2:1"},
			{"top", "store.Connection.Get", "a.go:3:1"}, // not Conn.*
			{"top", "loaders.Open", "a.go:4:1"},
		}, nil},
		{"another package may", []Use{{"middle", "store.Open", "m.go:1:1"}}, nil},
		{"a reserved method", []Use{{"top", "store.Handle.Get", "a.go:5:2"}},
			[]string{"a.go:5:2: top uses store.Handle.Get, which is reserved"}},
		{"every method of a type", []Use{{"top", "store.Conn.Query", "b.go:1:1"}, {"top", "store.Conn.Close", "a.go:1:1"}},
			[]string{"a.go:1:1: top uses store.Conn.Close", "b.go:1:1: top uses store.Conn.Query"}},
		{"a reserved function", []Use{{"top", "store.Open", "a.go:9:9"}},
			[]string{"top uses store.Open"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantProblems(t, "CheckReserved", CheckReserved(reserved, tt.uses), tt.want)
		})
	}
}

// TestReservedNamesPackages guards Reserved's shape: each key is a package
// of Floors, and each entry a package of Floors (whose key has no dot, see
// TestFloorsNamePackages) and then Func, Type.Method or Type.*.
func TestReservedNamesPackages(t *testing.T) {
	for rel, names := range Reserved {
		if _, ok := Floors[rel]; !ok || rel == Root {
			t.Errorf("Reserved names %s, which is not a package of Floors", rel)
		}
		for _, n := range names {
			pkg, rest, _ := strings.Cut(n, ".")
			parts := strings.Split(rest, ".")
			_, known := Floors[pkg]
			ok := known && pkg != Root && len(parts) <= 2 && !slices.Contains(parts, "") &&
				parts[0] != "*"
			if !ok {
				t.Errorf("Reserved[%s]: %q is not pkg.Func, pkg.Type.Method or pkg.Type.* with pkg a package of Floors", rel, n)
			}
		}
	}
}
