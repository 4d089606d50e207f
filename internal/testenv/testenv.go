// Package testenv gives integration tests the real clusters `make test`
// starts (see tools/test.sh): kube-apiservers with kwok-simulated nodes,
// seeded with the demo dataset. Tests that need a cluster of their own (to
// stop it, say) start one with StartCluster.
//
// Without the testbed, integration tests fail rather than skip: a skipped
// integration test would count as passing. `go test -short` leaves them out
// explicitly.
package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// EnvKubeconfigs lists the seeded test clusters' kubeconfig files, separated
// by ':'; tools/test.sh sets it.
const EnvKubeconfigs = "CLUSTERGRAPH_TEST_KUBECONFIGS"

// Cluster is one test cluster.
type Cluster struct {
	// Context is the kubeconfig context name, which clustergraph uses as
	// the cluster name.
	Context    string
	Kubeconfig string
	Config     *rest.Config
	Client     kubernetes.Interface
}

// Integration fails the test when the testbed is missing, and skips it
// under -short.
func Integration(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs the real testbed (make test)")
	}
	if os.Getenv(EnvKubeconfigs) == "" {
		t.Fatalf("%s is not set: integration tests run against real clusters; use `make test` (or tools/test.sh), or -short to leave them out", EnvKubeconfigs)
	}
}

// Clusters returns the seeded test clusters.
func Clusters(t testing.TB) []Cluster {
	t.Helper()
	Integration(t)
	var out []Cluster
	for _, path := range filepath.SplitList(os.Getenv(EnvKubeconfigs)) {
		out = append(out, load(t, path))
	}
	return out
}

func load(t testing.TB, path string) Cluster {
	t.Helper()
	raw, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatalf("loading %s: %v", path, err)
	}
	cfg, err := clientcmd.NewNonInteractiveClientConfig(*raw, raw.CurrentContext, &clientcmd.ConfigOverrides{}, nil).ClientConfig()
	if err != nil {
		t.Fatalf("client config from %s: %v", path, err)
	}
	// Tests ask the apiserver many questions (SubjectAccessReviews per
	// object, lists to compare with); client-go's default 5 QPS would
	// throttle them for minutes.
	cfg.QPS, cfg.Burst = 500, 1000
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return Cluster{Context: raw.CurrentContext, Kubeconfig: path, Config: cfg, Client: client}
}

// Root is the repository root.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// StartCluster starts a fresh, unseeded cluster with the given name and
// nodes, and deletes it when the test ends (unless the test stopped it).
func StartCluster(t testing.TB, name string, nodes int) Cluster {
	t.Helper()
	Integration(t)
	out := script(t, 3*time.Minute, "cluster.sh", "up", name, strconv.Itoa(nodes))
	t.Cleanup(func() { StopCluster(t, name) })
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return load(t, lines[len(lines)-1])
}

// StopCluster deletes a cluster started by StartCluster.
func StopCluster(t testing.TB, name string) {
	t.Helper()
	script(t, 2*time.Minute, "cluster.sh", "down", name)
}

func script(t testing.TB, timeout time.Duration, name string, args ...string) string {
	t.Helper()
	return scriptEnv(t, timeout, nil, name, args...)
}

// scriptEnv runs a testbed script with extra environment variables.
func scriptEnv(t testing.TB, timeout time.Duration, env []string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(Root(), "tools", "testbed", name), args...)
	cmd.Env = append(os.Environ(), env...)
	// Files, not pipes: the clusters' daemons inherit the script's output,
	// and a pipe would keep cmd.Wait waiting for them to exit.
	dir, err := os.MkdirTemp("", "testbed-script")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	stdout, err := os.Create(filepath.Join(dir, "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	defer stdout.Close()
	stderr, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	cmd.Stdout, cmd.Stderr = stdout, stderr
	runErr := cmd.Run()
	out, _ := os.ReadFile(stdout.Name())
	if runErr != nil {
		errOut, _ := os.ReadFile(stderr.Name())
		t.Fatalf("%s %v: %v\n%s", name, args, runErr, errOut)
	}
	return string(out)
}

// LogFile is the file kwok serves as every container's log in the cluster
// (see tools/testbed/cluster.sh); appending CRI-format lines to it makes
// them appear in followed logs.
func (c Cluster) LogFile() string {
	dir := os.Getenv("CLUSTERGRAPH_TESTBED_DIR")
	return filepath.Join(dir, "extras", strings.TrimPrefix(c.Context, "kwok-"), "container.log")
}

// StaticTokens are the bearer tokens every test cluster accepts (its
// apiserver's --token-auth-file, see tools/testbed/cluster.sh), by user:
// alice is in group devs, bob in devs and ops; node is
// system:node:node-000000 in group system:nodes (a node's identity).
var StaticTokens = map[string]string{"alice": "testbed-alice-token", "bob": "testbed-bob-token", "node": "testbed-node-token"}

var kubectlDir struct {
	sync.Once
	dir string
}

// Kubectl runs the testbed's kubectl against a cluster and returns its
// standard output.
func Kubectl(t testing.TB, c Cluster, args ...string) (string, error) {
	t.Helper()
	cmd := KubectlCommand(t, c, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %v: %w: %s", args, err, stderr.String())
	}
	return string(out), nil
}

// KubectlCommand is the testbed's kubectl against a cluster, not started:
// for a test that talks to it while it runs (kubectl exec -i).
func KubectlCommand(t testing.TB, c Cluster, args ...string) *exec.Cmd {
	t.Helper()
	kubectlDir.Do(func() {
		out := strings.TrimSpace(script(t, 30*time.Minute, "build.sh"))
		lines := strings.Split(out, "\n")
		kubectlDir.dir = lines[len(lines)-1]
	})
	return exec.Command(filepath.Join(kubectlDir.dir, "kubectl"), append([]string{"--kubeconfig", c.Kubeconfig}, args...)...)
}

// KubectlPath is the testbed's kubectl binary.
func KubectlPath(t testing.TB) string {
	t.Helper()
	return KubectlCommand(t, Cluster{}).Path
}
