package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// What the image must state, from the issue that asked for it (not from
// main.go's constants, so that changing one of those fails here).
const (
	wantUser    = "65532:65532"
	wantListen  = "0.0.0.0:8080"
	wantDataDir = "/var/lib/clustergraph"
	wantLicense = "Apache-2.0"
	hostCA      = "/etc/ssl/certs/ca-certificates.crt"
)

// shells are file names that would give `kubectl exec` a shell.
var shells = map[string]bool{"sh": true, "bash": true, "dash": true, "ash": true, "zsh": true, "busybox": true}

// TestImage builds the image with `make image` twice, a second apart, and
// inspects it as a registry and a container runtime would see it: its
// config (non-root user, entrypoint, environment, labels), its one layer
// (the binary, the CA bundle, the data dir, no shell, fixed timestamps and
// owners), the binary in it (static, runs --version with this commit, has
// the GraphiQL bundle), the digest (the same both times, and kept by a push
// to a registry), and the Dockerfile (states the same config).
func TestImage(t *testing.T) {
	root := repoRoot(t)
	head := git(t, root, "rev-parse", "HEAD")
	describe := git(t, root, "describe", "--tags", "--always", "--dirty")
	epoch, err := strconv.ParseInt(git(t, root, "log", "-1", "--format=%ct"), 10, 64)
	if err != nil {
		t.Fatalf("commit time: %v", err)
	}
	created := time.Unix(epoch, 0).UTC()

	dir := t.TempDir()
	first, second := filepath.Join(dir, "first.tar"), filepath.Join(dir, "second.tar")
	start := time.Now()
	printed := makeImage(t, root, first)
	t.Logf("make image took %s", time.Since(start).Round(100*time.Millisecond))
	// Apart by more than a second: a wall clock leaking into a timestamp
	// would change the second digest.
	time.Sleep(1100 * time.Millisecond)
	printedAgain := makeImage(t, root, second)

	img, err := tarball.ImageFromPath(first, nil)
	if err != nil {
		t.Fatalf("reading %s: %v", first, err)
	}
	digest, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(first)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("image %s, %.1f MiB", digest, float64(info.Size())/(1<<20))

	t.Run("reproducible", func(t *testing.T) {
		if printed != digest.String() {
			t.Errorf("make image printed %s, the tarball holds %s", printed, digest)
		}
		if printedAgain != printed {
			t.Errorf("two builds of one commit: digests %s and %s", printed, printedAgain)
		}
		if a, b := fileSum(t, first), fileSum(t, second); a != b {
			t.Errorf("two builds of one commit: tarballs differ (sha256 %s and %s)", a, b)
		}
	})

	t.Run("tarball", func(t *testing.T) {
		m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(first) })
		if err != nil {
			t.Fatal(err)
		}
		if want := "clustergraph:" + describe; len(m) != 1 || len(m[0].RepoTags) != 1 || m[0].RepoTags[0] != want {
			t.Errorf("docker load would name it %+v, want [%s]", m, want)
		}
	})

	cfgFile, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg := cfgFile.Config
	t.Run("config", func(t *testing.T) {
		uid, gid, ok := strings.Cut(cfg.User, ":")
		if n, err := strconv.Atoi(uid); err != nil || n == 0 || !ok || gid == "" {
			t.Errorf("User %q: want a numeric non-root uid:gid (runAsNonRoot can only check a number)", cfg.User)
		}
		if cfg.User != wantUser {
			t.Errorf("User %q, want %q", cfg.User, wantUser)
		}
		if len(cfg.Entrypoint) != 1 || !path.IsAbs(cfg.Entrypoint[0]) || len(cfg.Cmd) != 0 {
			t.Errorf("Entrypoint %q Cmd %q: want the binary's absolute path alone", cfg.Entrypoint, cfg.Cmd)
		}
		env := map[string]string{}
		for _, kv := range cfg.Env {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		if env["CLUSTERGRAPH_LISTEN"] != wantListen {
			t.Errorf("CLUSTERGRAPH_LISTEN=%q, want %q (probes reach the pod IP)", env["CLUSTERGRAPH_LISTEN"], wantListen)
		}
		if env["CLUSTERGRAPH_DATA_DIR"] != wantDataDir {
			t.Errorf("CLUSTERGRAPH_DATA_DIR=%q, want %q", env["CLUSTERGRAPH_DATA_DIR"], wantDataDir)
		}
		if _, port, _ := strings.Cut(wantListen, ":"); len(cfg.ExposedPorts) != 1 || cfg.ExposedPorts[port+"/tcp"] != struct{}{} {
			t.Errorf("ExposedPorts %v, want %s/tcp", cfg.ExposedPorts, port)
		}
		if cfgFile.OS != "linux" || cfgFile.Architecture == "" {
			t.Errorf("platform %s/%s", cfgFile.OS, cfgFile.Architecture)
		}
		if !cfgFile.Created.Equal(created) {
			t.Errorf("Created %s, want the commit time %s", cfgFile.Created.Time, created)
		}
		for _, h := range cfgFile.History {
			if !h.Created.Equal(created) {
				t.Errorf("history %q created %s, want %s", h.CreatedBy, h.Created.Time, created)
			}
		}
		for k, want := range map[string]string{
			"org.opencontainers.image.version":  describe,
			"org.opencontainers.image.revision": head,
			"org.opencontainers.image.licenses": wantLicense,
			"org.opencontainers.image.created":  created.Format(time.RFC3339),
		} {
			if got := cfg.Labels[k]; got != want {
				t.Errorf("label %s=%q, want %q", k, got, want)
			}
		}
		if src := cfg.Labels["org.opencontainers.image.source"]; !strings.HasPrefix(src, "https://") {
			t.Errorf("label org.opencontainers.image.source=%q, want the repository's URL", src)
		}
	})

	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Fatalf("%d layers, want one (FROM scratch and the files)", len(layers))
	}
	files := readLayer(t, layers[0])
	binPath := strings.TrimPrefix(firstOr(cfg.Entrypoint, ""), "/")
	t.Run("layer", func(t *testing.T) {
		bin, ok := files[binPath]
		if !ok || bin.hdr.Typeflag != tar.TypeReg || bin.hdr.Mode&0o111 == 0 {
			t.Fatalf("entrypoint %s is not an executable file in the layer", binPath)
		}
		if bin.hdr.Uid != 0 || bin.hdr.Mode&0o022 != 0 {
			t.Errorf("binary owned by %d mode %o: the image's user must not be able to change it", bin.hdr.Uid, bin.hdr.Mode)
		}
		hostBundle, err := os.ReadFile(hostCA)
		if err != nil {
			t.Fatalf("the CA bundle make image took: %v", err)
		}
		ca, ok := files[strings.TrimPrefix(hostCA, "/")]
		switch {
		case !ok:
			t.Errorf("no %s in the layer", hostCA)
		case !bytes.Equal(ca.body, hostBundle):
			t.Errorf("%s in the layer differs from this machine's", hostCA)
		case !x509.NewCertPool().AppendCertsFromPEM(ca.body):
			t.Errorf("%s holds no certificate", hostCA)
		}
		data, ok := files[strings.TrimPrefix(wantDataDir, "/")]
		if !ok || data.hdr.Typeflag != tar.TypeDir || fmt.Sprintf("%d:%d", data.hdr.Uid, data.hdr.Gid) != cfg.User || data.hdr.Mode&0o700 != 0o700 {
			t.Errorf("data dir %s: want a directory the image's user %s owns and may write", wantDataDir, cfg.User)
		}
		if passwd := string(files["etc/passwd"].body); !strings.Contains(passwd, ":x:"+cfg.User+":") {
			t.Errorf("/etc/passwd does not name the image's user %s:\n%s", cfg.User, passwd)
		}
		for name, f := range files {
			if shells[path.Base(name)] || strings.HasPrefix(name, "bin/") || name == "bin" {
				t.Errorf("%s in the image: it must have no shell", name)
			}
			if f.hdr.Typeflag == tar.TypeReg && f.hdr.Mode&0o111 != 0 && name != binPath {
				t.Errorf("%s is executable: the binary must be the only program", name)
			}
			if f.hdr.Typeflag != tar.TypeReg && f.hdr.Typeflag != tar.TypeDir {
				t.Errorf("%s is of tar type %q: want only files and directories", name, f.hdr.Typeflag)
			}
			if !f.hdr.ModTime.Equal(created) {
				t.Errorf("%s mtime %s, want the commit time %s", name, f.hdr.ModTime, created)
			}
			if name != strings.TrimPrefix(wantDataDir, "/") && (f.hdr.Uid != 0 || f.hdr.Gid != 0) {
				t.Errorf("%s owned by %d:%d, want root", name, f.hdr.Uid, f.hdr.Gid)
			}
		}
	})

	t.Run("binary", func(t *testing.T) {
		bin, ok := files[binPath]
		if !ok {
			t.Fatalf("no binary at %s", binPath)
		}
		exe, err := elf.NewFile(bytes.NewReader(bin.body))
		if err != nil {
			t.Fatalf("the binary is not ELF: %v", err)
		}
		for _, p := range exe.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("the binary is dynamically linked: a scratch image has no loader or libc")
			}
		}
		run := filepath.Join(t.TempDir(), "clustergraph")
		if err := os.WriteFile(run, bin.body, 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(run, "--version")
		cmd.Env = []string{} // as in the image: only what the config sets
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s --version: %v\n%s", binPath, err, out)
		}
		want := fmt.Sprintf("clustergraph %s (commit %s, go", describe, head)
		if !strings.HasPrefix(string(out), want) {
			t.Errorf("--version printed %q, want it to start %q", out, want)
		}
		// The committed GraphiQL bundle is embedded as it is.
		assets, err := filepath.Glob(filepath.Join(root, "graphiql", "dist", "*.js"))
		if err != nil || len(assets) == 0 {
			t.Fatalf("no GraphiQL bundle in graphiql/dist after make image (%v)", err)
		}
		for _, a := range assets {
			body, err := os.ReadFile(a)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(bin.body, body) {
				t.Errorf("%s is not embedded in the binary", filepath.Base(a))
			}
		}
	})

	t.Run("push keeps the digest", func(t *testing.T) {
		// What `crane push bin/clustergraph-image.tar` does, to a registry
		// in this process on loopback.
		reg := httptest.NewServer(registry.New(registry.Logger(discard())))
		defer reg.Close()
		ref, err := name.NewTag(strings.TrimPrefix(reg.URL, "http://") + "/clustergraph:" + describe)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref, img); err != nil {
			t.Fatalf("push: %v", err)
		}
		got, err := remote.Head(ref)
		if err != nil {
			t.Fatal(err)
		}
		if got.Digest != digest {
			t.Errorf("the registry holds %s, make image printed %s", got.Digest, digest)
		}
	})

	t.Run("Dockerfile", func(t *testing.T) {
		checkDockerfile(t, root, cfgFile)
	})
}

// checkDockerfile compares the final stage of the repository's Dockerfile
// with the config of the image `make image` built, and its build stage with
// the way build.sh builds the binary.
func checkDockerfile(t *testing.T, root string, cfgFile *v1.ConfigFile) {
	t.Helper()
	text, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	stages := dockerfileStages(string(text))
	if len(stages) < 2 {
		t.Fatalf("Dockerfile has %d stages, want a build stage and a final one", len(stages))
	}
	final := stages[len(stages)-1]
	cfg := cfgFile.Config
	if from := final.from; from != "scratch" {
		t.Errorf("Dockerfile's final stage is FROM %s, want scratch", from)
	}
	if got := final.last("USER"); got != cfg.User {
		t.Errorf("Dockerfile USER %q, image %q", got, cfg.User)
	}
	if got := final.last("WORKDIR"); got != cfg.WorkingDir {
		t.Errorf("Dockerfile WORKDIR %q, image %q", got, cfg.WorkingDir)
	}
	var entry []string
	if err := json.Unmarshal([]byte(final.last("ENTRYPOINT")), &entry); err != nil || strings.Join(entry, " ") != strings.Join(cfg.Entrypoint, " ") {
		t.Errorf("Dockerfile ENTRYPOINT %s, image %q (exec form wanted: no shell to run a string)", final.last("ENTRYPOINT"), cfg.Entrypoint)
	}
	env := map[string]string{}
	labels := map[string]string{}
	var ports []string
	for _, in := range final.instructions {
		switch in.keyword {
		case "ENV":
			for _, kv := range in.words() {
				k, v, _ := strings.Cut(kv, "=")
				env[k] = v
			}
		case "LABEL":
			for _, kv := range in.words() {
				k, v, _ := strings.Cut(kv, "=")
				labels[k] = v
			}
		case "EXPOSE":
			ports = append(ports, in.words()...)
		}
	}
	if len(env) != len(cfg.Env) {
		t.Errorf("Dockerfile ENV %v, image %q", env, cfg.Env)
	}
	for _, kv := range cfg.Env {
		k, v, _ := strings.Cut(kv, "=")
		if env[k] != v {
			t.Errorf("Dockerfile ENV %s=%q, image %q", k, env[k], v)
		}
	}
	for p := range cfg.ExposedPorts {
		if len(ports) != len(cfg.ExposedPorts) || !strings.Contains(" "+strings.Join(ports, " ")+" ", " "+p+" ") {
			t.Errorf("Dockerfile EXPOSE %q, image %v", ports, cfg.ExposedPorts)
		}
	}
	for k, v := range cfg.Labels {
		switch k {
		case "org.opencontainers.image.version", "org.opencontainers.image.revision":
			if _, ok := labels[k]; !ok {
				t.Errorf("Dockerfile has no LABEL %s", k)
			}
		case "org.opencontainers.image.created", "io.clustergraph.ca-certificates.version":
			// Known only when an image is built.
		default:
			if labels[k] != v {
				t.Errorf("Dockerfile LABEL %s=%q, image %q", k, labels[k], v)
			}
		}
	}
	// The binary is built the same way.
	build := string(text)
	for _, flag := range []string{"CGO_ENABLED=0", "-trimpath", "-buildvcs=false", "-s -w", "-X main.version=", "-X main.commit=", "ca-certificates.crt"} {
		if !strings.Contains(build, flag) {
			t.Errorf("Dockerfile's build does not say %q as tools/image/build.sh does", flag)
		}
	}
	// With the Go the module asks for.
	goMod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	var goVersion string
	for _, line := range strings.Split(string(goMod), "\n") {
		if v, ok := strings.CutPrefix(line, "go "); ok {
			goVersion = strings.TrimSpace(v)
		}
	}
	if !strings.Contains(build, "ARG GO_VERSION="+goVersion+"\n") {
		t.Errorf("Dockerfile's GO_VERSION is not go.mod's go %s", goVersion)
	}
}

// stage is one FROM section of a Dockerfile.
type stage struct {
	from         string
	instructions []instruction
}

// last returns the argument of the stage's last instruction named keyword.
func (s stage) last(keyword string) string {
	arg := ""
	for _, in := range s.instructions {
		if in.keyword == keyword {
			arg = in.arg
		}
	}
	return arg
}

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	keyword, arg string
}

// words splits the argument at spaces outside double quotes, and unquotes.
func (in instruction) words() []string {
	var out []string
	var cur strings.Builder
	quoted, inWord := false, false
	for _, r := range in.arg {
		switch {
		case r == '"':
			quoted, inWord = !quoted, true
		case (r == ' ' || r == '\t') && !quoted:
			if inWord {
				out = append(out, cur.String())
			}
			cur.Reset()
			inWord = false
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out
}

// dockerfileStages parses what checkDockerfile needs of a Dockerfile:
// instructions by stage, comments dropped, backslash continuations joined.
func dockerfileStages(text string) []stage {
	var stages []stage
	var pending string
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || (line == "" && pending == "") {
			continue
		}
		if cont, ok := strings.CutSuffix(line, "\\"); ok {
			pending += cont + " "
			continue
		}
		line = pending + line
		pending = ""
		keyword, arg, _ := strings.Cut(line, " ")
		in := instruction{keyword: strings.ToUpper(keyword), arg: strings.TrimSpace(arg)}
		if in.keyword == "FROM" {
			from, _, _ := strings.Cut(in.arg, " ")
			stages = append(stages, stage{from: from})
			continue
		}
		if len(stages) > 0 {
			stages[len(stages)-1].instructions = append(stages[len(stages)-1].instructions, in)
		}
	}
	return stages
}

// TestRefusesDynamicBinary: a binary that needs a loader and libc (what
// CGO_ENABLED=1 builds) cannot run in a scratch image, so the tool says so
// instead of building an image that fails at start.
func TestRefusesDynamicBinary(t *testing.T) {
	const dynamic = "/usr/bin/env" // Debian's coreutils link libc
	body, err := os.ReadFile(dynamic)
	if err != nil {
		t.Fatal(err)
	}
	_, err = staticArch(body)
	if err == nil || !strings.Contains(err.Error(), "CGO_ENABLED=0") {
		t.Errorf("staticArch(%s) = %v, want an error naming CGO_ENABLED=0", dynamic, err)
	}
}

// TestFlagErrors: a missing input or a SOURCE_DATE_EPOCH that is not a
// number is refused with the flag's name.
func TestFlagErrors(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "")
	full := []string{"-binary", "b", "-ca-certs", "c", "-license", "l", "-out", "o", "-tag", "t:1", "-created", "1"}
	if _, err := parseFlags(full, io.Discard); err != nil {
		t.Fatalf("complete flags: %v", err)
	}
	for i := 0; i < len(full); i += 2 {
		args := append(append([]string{}, full[:i]...), full[i+2:]...)
		_, err := parseFlags(args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), full[i]) {
			t.Errorf("without %s: %v, want an error naming it", full[i], err)
		}
	}
	_, err := parseFlags(append(full, "-created", "yesterday"), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "SOURCE_DATE_EPOCH") {
		t.Errorf("-created yesterday: %v", err)
	}
	_, err = parseFlags(append(full, "-label", CreatedLabel+"=now"), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "-created") {
		t.Errorf("-label %s: %v", CreatedLabel, err)
	}
}

// layerFile is one entry of a layer.
type layerFile struct {
	hdr  *tar.Header
	body []byte
}

// readLayer returns the layer's entries by path (no leading slash or
// trailing slash), failing on a duplicate.
func readLayer(t *testing.T, l v1.Layer) map[string]layerFile {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	files := map[string]layerFile{}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatalf("reading the layer: %v", err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(path.Clean(strings.TrimPrefix(hdr.Name, "./")), "/")
		if _, dup := files[name]; dup {
			t.Errorf("%s twice in the layer", name)
		}
		files[name] = layerFile{hdr: hdr, body: body}
	}
}

// makeImage runs `make image` into out, with SOURCE_DATE_EPOCH, VERSION
// and COMMIT left to the Makefile, and returns the digest it printed last.
func makeImage(t *testing.T, root, out string) string {
	t.Helper()
	cmd := exec.Command("make", "-s", "-C", root, "image", "IMAGE_TAR="+out)
	for _, kv := range os.Environ() {
		switch k, _, _ := strings.Cut(kv, "="); k {
		case "SOURCE_DATE_EPOCH", "VERSION", "COMMIT", "MAKEFLAGS", "MAKELEVEL":
		default:
			cmd.Env = append(cmd.Env, kv)
		}
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("make image: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	lines := strings.Fields(stdout.String())
	if len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], "sha256:") {
		t.Fatalf("make image printed no digest last:\n%s", stdout.String())
	}
	return lines[len(lines)-1]
}

// repoRoot is the server's module root, two levels up.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	goMod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil || !bytes.HasPrefix(goMod, []byte("module github.com/clustergraph/clustergraph\n")) {
		t.Fatalf("%s is not the clustergraph repository (%v)", root, err)
	}
	return root
}

// git runs git in dir and returns its trimmed output.
func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).Output()
	if err != nil {
		t.Fatalf("git %s: %v", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out))
}

// fileSum is the sha256 of a file, in hex.
func fileSum(t *testing.T, p string) string {
	t.Helper()
	body, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", sha256.Sum256(body))
}

// firstOr returns s[0], or def when s is empty.
func firstOr(s []string, def string) string {
	if len(s) == 0 {
		return def
	}
	return s[0]
}

// discard is a logger for the in-process registry's request lines.
func discard() *log.Logger { return log.New(io.Discard, "", 0) }
