package k8s

import (
	"context"
	"path/filepath"
	"runtime"
	"testing"
	"time"
	"weak"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/clustergraph/clustergraph/internal/testenv"
)

// TestReplacedClusterIsReleased (real apiserver): a cluster replaced by a
// kubeconfig edit leaves nothing behind that holds it. Once retired, its
// Cluster, with its caches and its REST mapper, is garbage; a table keyed
// by cluster (as the mappers once were) would keep every replaced cluster
// of a long-running server.
func TestReplacedClusterIsReleased(t *testing.T) {
	tc := testenv.Clusters(t)[0]
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	raw, err := clientcmd.LoadFromFile(tc.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*raw, path); err != nil {
		t.Fatal(err)
	}
	reg := NewRegistry(RegistryConfig{Kubeconfigs: []string{path}})
	if err := reg.Start(ctx); err != nil {
		t.Fatal(err)
	}
	old := engaged(t, reg, tc.Context)

	// A harmless edit that still changes the context: a new Cluster.
	raw.Contexts[tc.Context].Namespace = "edited"
	if err := clientcmd.WriteToFile(*raw, path); err != nil {
		t.Fatal(err)
	}
	if err := reg.Reload(); err != nil {
		t.Fatal(err)
	}
	if c, err := reg.Cluster(tc.Context); err != nil || c == old.Value() {
		t.Fatalf("the edit did not replace the cluster (%v)", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for old.Value() != nil {
		if time.Now().After(deadline) {
			t.Fatal("the replaced cluster is still reachable 30s after it was retired")
		}
		runtime.GC()
		time.Sleep(100 * time.Millisecond)
	}
}

// engaged waits until the registry's cluster name is ready, uses its REST
// mapper, and returns a weak pointer to it: no strong one stays on the
// test's stack.
func engaged(t *testing.T, reg *Registry, name string) weak.Pointer[Cluster] {
	t.Helper()
	c, err := reg.Cluster(name)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for c.Status().State != StateReady {
		if time.Now().After(deadline) {
			t.Fatalf("cluster %s not ready after a minute: %+v", name, c.Status())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := c.Mapping(GVKDeployment); err != nil {
		t.Fatal(err)
	}
	return weak.Make(c)
}
