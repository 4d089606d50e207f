// Command image assembles clustergraph's container image from a static
// server binary, with no Docker engine and no base image: it is what
// `make image` (tools/image/build.sh) runs after building the binary.
//
// The image is one layer on an empty base ("FROM scratch" shape): the
// binary, a CA bundle, /etc/passwd and /etc/group naming the non-root user,
// an empty /tmp, the data directory owned by that user, and license texts.
// Every file and the config carry one timestamp (-created, from
// SOURCE_DATE_EPOCH), entries are written in a fixed order with fixed
// owners, and gzip writes no name or time, so the same inputs give the same
// image digest on every run.
//
// It writes a tarball in the format `docker save` writes (tarball.WriteToFile),
// which `docker load`, `podman load` and `crane push` read, and prints the
// image digest (the manifest's, as a registry will report it) as the last
// line of its output.
//
// It is its own Go module (tools/image/go.mod) so that the server's go.mod
// does not carry go-containerregistry.
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// The image's layout. The Dockerfile at the repository root states the same
// values, and the image test compares the two.
const (
	// BinaryPath is where the server binary lives; it is the entrypoint.
	BinaryPath = "/usr/local/bin/clustergraph"
	// CACertsPath is where Go's crypto/x509 looks first on Linux.
	CACertsPath = "/etc/ssl/certs/ca-certificates.crt"
	// DataDir is the server's data directory (CLUSTERGRAPH_DATA_DIR), owned
	// by the image's user so a pod without a volume can still write there
	// (when its root filesystem is writable).
	DataDir = "/var/lib/clustergraph"
	// Listen is the default listen address (CLUSTERGRAPH_LISTEN): every
	// interface, so kubelet probes and Services reach the pod.
	Listen = "0.0.0.0:8080"
	// UID and GID are the image's user: not root, and the number distroless
	// images call "nonroot", which Pod Security's restricted profile and
	// runAsNonRoot accept.
	UID, GID = 65532, 65532
	// UserName names UID in /etc/passwd and GID in /etc/group.
	UserName = "nonroot"
	// LicensePath is where the project's license text goes.
	LicensePath = "/usr/share/doc/clustergraph/LICENSE"
	// CACopyrightPath is where the CA bundle's copyright notice goes.
	CACopyrightPath = "/usr/share/doc/ca-certificates/copyright"
	// CreatedLabel is the OCI label holding the build time; it is set from
	// -created rather than passed as a -label.
	CreatedLabel = "org.opencontainers.image.created"
)

// file is one entry of the image's layer.
type file struct {
	path     string // absolute path in the image
	mode     int64  // permission bits (and sticky bit)
	uid, gid int
	dir      bool
	body     []byte // contents of a regular file
}

// labels collects repeated -label key=value flags.
type labels map[string]string

// String implements flag.Value.
func (l labels) String() string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k+"="+l[k])
	}
	sort.Strings(keys)
	return strings.Join(keys, ",")
}

// Set implements flag.Value: it adds one key=value.
func (l labels) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("label %q: want key=value", s)
	}
	if k == CreatedLabel {
		return fmt.Errorf("label %s is set from -created", CreatedLabel)
	}
	l[k] = v
	return nil
}

// options are the command's inputs.
type options struct {
	binary, caCerts, caCopyright, license string
	out, tag                              string
	created                               time.Time
	labels                                labels
}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

// run parses args, builds the image and writes it; it prints a summary to
// stderr and the digest to stdout.
func run(args []string, stdout, stderr io.Writer) error {
	opts, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	img, err := build(opts)
	if err != nil {
		return err
	}
	tag, err := name.NewTag(opts.tag, name.WithDefaultRegistry(""))
	if err != nil {
		return fmt.Errorf("-tag %q is not an image name with a tag: %w", opts.tag, err)
	}
	if err := writeTarball(opts.out, tag, img); err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	info, err := os.Stat(opts.out)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "image: wrote %s (%s, %.1f MiB)\n", opts.out, opts.tag, float64(info.Size())/(1<<20))
	fmt.Fprintln(stdout, digest)
	return nil
}

// parseFlags reads the command line; every input file is required but the
// CA copyright notice.
func parseFlags(args []string, stderr io.Writer) (options, error) {
	opts := options{labels: labels{}}
	fs := flag.NewFlagSet("image", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&opts.binary, "binary", "", "static server binary (CGO_ENABLED=0) to put at "+BinaryPath)
	fs.StringVar(&opts.caCerts, "ca-certs", "", "PEM CA bundle to put at "+CACertsPath)
	fs.StringVar(&opts.caCopyright, "ca-copyright", "", "copyright notice of the CA bundle, put at "+CACopyrightPath+" (optional)")
	fs.StringVar(&opts.license, "license", "", "the project's LICENSE file, put at "+LicensePath)
	fs.StringVar(&opts.out, "out", "", "tarball to write (docker save format)")
	fs.StringVar(&opts.tag, "tag", "", "name:tag the tarball records, which docker load and podman load give the image")
	created := fs.String("created", os.Getenv("SOURCE_DATE_EPOCH"), "build time in Unix seconds, for every file and the config (default $SOURCE_DATE_EPOCH)")
	fs.Var(opts.labels, "label", "key=value config label (repeatable)")
	if err := fs.Parse(args); err != nil {
		return opts, err
	}
	if fs.NArg() > 0 {
		return opts, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for flagName, v := range map[string]string{"binary": opts.binary, "ca-certs": opts.caCerts, "license": opts.license, "out": opts.out, "tag": opts.tag, "created": *created} {
		if v == "" {
			return opts, fmt.Errorf("-%s is required", flagName)
		}
	}
	secs, err := strconv.ParseInt(*created, 10, 64)
	if err != nil || secs < 0 {
		return opts, fmt.Errorf("-created (SOURCE_DATE_EPOCH) %q is not Unix seconds", *created)
	}
	opts.created = time.Unix(secs, 0).UTC()
	return opts, nil
}

// build assembles the image from opts' files.
func build(opts options) (v1.Image, error) {
	bin, err := os.ReadFile(opts.binary)
	if err != nil {
		return nil, err
	}
	arch, err := staticArch(bin)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", opts.binary, err)
	}
	ca, err := os.ReadFile(opts.caCerts)
	if err != nil {
		return nil, err
	}
	if !bytes.Contains(ca, []byte("-----BEGIN CERTIFICATE-----")) {
		return nil, fmt.Errorf("%s: no PEM certificate in it", opts.caCerts)
	}
	license, err := os.ReadFile(opts.license)
	if err != nil {
		return nil, err
	}
	files := []file{
		{path: BinaryPath, mode: 0o755, body: bin},
		{path: CACertsPath, mode: 0o644, body: ca},
		{path: LicensePath, mode: 0o644, body: license},
		{path: "/etc/passwd", mode: 0o644, body: []byte(fmt.Sprintf(
			"root:x:0:0:root:/root:/sbin/nologin\n%s:x:%d:%d:%s:%s:/sbin/nologin\n", UserName, UID, GID, UserName, DataDir))},
		{path: "/etc/group", mode: 0o644, body: []byte(fmt.Sprintf("root:x:0:\n%s:x:%d:\n", UserName, GID))},
		{path: "/tmp", mode: 0o1777, dir: true},
		{path: DataDir, mode: 0o750, dir: true, uid: UID, gid: GID},
	}
	if opts.caCopyright != "" {
		notice, err := os.ReadFile(opts.caCopyright)
		if err != nil {
			return nil, err
		}
		files = append(files, file{path: CACopyrightPath, mode: 0o644, body: notice})
	}
	layerTar, err := layerTarball(files, opts.created)
	if err != nil {
		return nil, err
	}
	// Compressed once here (tarball.LayerFromOpener keeps gzip input as it
	// is). The default level: on the stripped binary, the best one saves
	// under 1% and takes about three times as long.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(layerTar); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(gz.Bytes())), nil
	})
	if err != nil {
		return nil, err
	}

	created := v1.Time{Time: opts.created}
	img, err := mutate.Append(empty.Image, mutate.Addendum{
		Layer:   layer,
		History: v1.History{Created: created, CreatedBy: "make image (tools/image)", Comment: "static binary, CA bundle, non-root user, data dir"},
	})
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.Created = created
	cfg.OS = "linux"
	cfg.Architecture = arch
	_, port, err := net.SplitHostPort(Listen)
	if err != nil {
		return nil, err
	}
	cfg.Config = v1.Config{
		User:         fmt.Sprintf("%d:%d", UID, GID),
		Entrypoint:   []string{BinaryPath},
		Env:          []string{"CLUSTERGRAPH_LISTEN=" + Listen, "CLUSTERGRAPH_DATA_DIR=" + DataDir},
		WorkingDir:   DataDir,
		ExposedPorts: map[string]struct{}{port + "/tcp": {}},
		Labels:       map[string]string{CreatedLabel: opts.created.Format(time.RFC3339)},
	}
	for k, v := range opts.labels {
		cfg.Config.Labels[k] = v
	}
	return mutate.ConfigFile(img, cfg)
}

// layerTarball writes files, and every directory above them, as one
// uncompressed tar stream in path order, all stamped with mtime.
func layerTarball(files []file, mtime time.Time) ([]byte, error) {
	byPath := map[string]file{}
	for _, f := range files {
		if !filepath.IsAbs(f.path) || filepath.Clean(f.path) != f.path {
			return nil, fmt.Errorf("layer path %q is not clean and absolute", f.path)
		}
		byPath[f.path] = f
		for dir := filepath.Dir(f.path); dir != "/"; dir = filepath.Dir(dir) {
			if _, ok := byPath[dir]; !ok {
				byPath[dir] = file{path: dir, mode: 0o755, dir: true}
			}
		}
	}
	paths := make([]string, 0, len(byPath))
	for p := range byPath {
		paths = append(paths, p)
	}
	sort.Strings(paths)

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range paths {
		f := byPath[p]
		hdr := &tar.Header{
			Name:    strings.TrimPrefix(p, "/"),
			Mode:    f.mode,
			Uid:     f.uid,
			Gid:     f.gid,
			ModTime: mtime,
			Format:  tar.FormatPAX,
		}
		if f.dir {
			hdr.Typeflag = tar.TypeDir
			hdr.Name += "/"
		} else {
			hdr.Typeflag = tar.TypeReg
			hdr.Size = int64(len(f.body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("layer entry %s: %w", p, err)
		}
		if _, err := tw.Write(f.body); err != nil {
			return nil, fmt.Errorf("layer entry %s: %w", p, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// elfArch maps ELF machines to the GOARCH names image configs use: those
// with one byte order and no variant to record (arm would need one).
var elfArch = map[elf.Machine]string{
	elf.EM_X86_64:  "amd64",
	elf.EM_AARCH64: "arm64",
	elf.EM_RISCV:   "riscv64",
}

// staticArch checks that bin is a statically linked Linux executable (a
// scratch image has no dynamic loader or libc) and returns its
// architecture, so the config matches what was built (GOARCH=arm64 make
// image builds an arm64 image).
func staticArch(bin []byte) (string, error) {
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		return "", fmt.Errorf("not a Linux executable: %w", err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return "", errors.New("dynamically linked (it names an ELF interpreter): build it with CGO_ENABLED=0")
		}
	}
	arch, ok := elfArch[f.Machine]
	if !ok {
		return "", fmt.Errorf("ELF machine %s has no image architecture here", f.Machine)
	}
	return arch, nil
}

// writeTarball writes img as out, through a temporary file so a failed run
// never leaves half a tarball under the final name.
func writeTarball(out string, tag name.Tag, img v1.Image) error {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), ".image-*.tar")
	if err != nil {
		return err
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName) // no-op after the rename
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := tarball.WriteToFile(tmpName, tag, img); err != nil {
		return fmt.Errorf("writing %s: %w", out, err)
	}
	if err := os.Chmod(tmpName, 0o644); err != nil {
		return err
	}
	return os.Rename(tmpName, out)
}
