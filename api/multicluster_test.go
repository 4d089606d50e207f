package api_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/clustergraph/clustergraph/internal/testenv"
)

type clusterState struct {
	Name   string
	Status struct {
		State     string
		LastError *string
	}
}

func (s *server) states(t *testing.T) map[string]string {
	t.Helper()
	var out struct{ Clusters []clusterState }
	s.query(t, `{ clusters { name status { state lastError } } }`, nil, &out)
	m := map[string]string{}
	for _, c := range out.Clusters {
		m[c.Name] = c.Status.State
	}
	return m
}

// writeKubeconfig merges the contexts of the given kubeconfigs (plus an
// unreachable one when dead is set) into one file.
func writeKubeconfig(t *testing.T, path string, dead bool, from ...string) {
	t.Helper()
	merged := clientcmdapi.NewConfig()
	for _, f := range from {
		c, err := clientcmd.LoadFromFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range c.Clusters {
			merged.Clusters[k] = v
		}
		for k, v := range c.AuthInfos {
			merged.AuthInfos[k] = v
		}
		for k, v := range c.Contexts {
			merged.Contexts[k] = v
		}
		merged.CurrentContext = c.CurrentContext
	}
	if dead {
		// Nothing listens on port 1: the apiserver never answers.
		merged.Clusters["dead"] = &clientcmdapi.Cluster{Server: "https://127.0.0.1:1", InsecureSkipTLSVerify: true}
		merged.AuthInfos["dead"] = &clientcmdapi.AuthInfo{Token: "x"}
		merged.Contexts["dead"] = &clientcmdapi.Context{Cluster: "dead", AuthInfo: "dead"}
	}
	tmp := path + ".tmp"
	if err := clientcmd.WriteToFile(*merged, tmp); err != nil {
		t.Fatal(err)
	}
	// Replace atomically, as kubectl and editors do.
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestClusterGoesAway: an unreachable cluster never blocks the others; a
// cluster that stops answering turns STALE and adds an error naming it,
// while the other clusters keep serving.
func TestClusterGoesAway(t *testing.T) {
	cs := testenv.Clusters(t)
	doomed := testenv.StartCluster(t, "cg-doomed", 2)
	kc := filepath.Join(t.TempDir(), "config")
	writeKubeconfig(t, kc, true, cs[0].Kubeconfig, doomed.Kubeconfig)
	s := startServer(t, serverOpts{kubeconfigs: []string{kc}})
	eventually(t, time.Minute, "both live clusters READY and the dead one UNREACHABLE", func() bool {
		st := s.states(t)
		return st[cs[0].Context] == "READY" && st[doomed.Context] == "READY" && st["dead"] == "UNREACHABLE"
	})

	nodeClusters := func() (map[string]int, []gqlError) {
		r := s.do(t, `{ nodes { nodes { name cluster { name } } } }`, nil)
		var out struct {
			Nodes struct {
				Nodes []struct{ Cluster struct{ Name string } }
			}
		}
		if err := json.Unmarshal(r.Data, &out); err != nil {
			t.Fatal(err)
		}
		count := map[string]int{}
		for _, n := range out.Nodes.Nodes {
			count[n.Cluster.Name]++
		}
		return count, r.Errors
	}
	count, errs := nodeClusters()
	if count[doomed.Context] != 2 || count[cs[0].Context] == 0 {
		t.Fatalf("nodes per cluster = %v", count)
	}
	if !hasClusterError(errs, "dead", "UNAVAILABLE") {
		t.Errorf("errors %+v do not name the dead cluster as UNAVAILABLE", errs)
	}

	testenv.StopCluster(t, "cg-doomed")
	eventually(t, 30*time.Second, "the stopped cluster to turn STALE", func() bool { return s.states(t)[doomed.Context] == "STALE" })
	count, errs = nodeClusters()
	if count[cs[0].Context] == 0 {
		t.Errorf("the live cluster stopped serving: %v", count)
	}
	if !hasClusterError(errs, doomed.Context, "UNAVAILABLE") || !hasClusterError(errs, "dead", "UNAVAILABLE") {
		t.Errorf("errors %+v should name %s and dead", errs, doomed.Context)
	}
	var one struct {
		Cluster struct {
			Status struct {
				State     string
				LastError *string
			}
		}
	}
	s.query(t, fmt.Sprintf(`{ cluster(name: %q) { status { state lastError } } }`, doomed.Context), nil, &one)
	if one.Cluster.Status.State != "STALE" || one.Cluster.Status.LastError == nil {
		t.Errorf("stopped cluster status = %+v", one.Cluster.Status)
	}
}

// TestKubeconfigEdited: contexts added to or removed from the kubeconfig
// are engaged or torn down without a restart, and watches of a cluster
// replaced or removed end with ENDED saying so, not silently.
func TestKubeconfigEdited(t *testing.T) {
	cs := testenv.Clusters(t)
	kc := filepath.Join(t.TempDir(), "config")
	writeKubeconfig(t, kc, false, cs[0].Kubeconfig)
	s := startServer(t, serverOpts{kubeconfigs: []string{kc}, waitReady: true})
	names := func() []string {
		var out []string
		for n := range s.states(t) {
			out = append(out, n)
		}
		slices.Sort(out)
		return out
	}
	if got := names(); !slices.Equal(got, []string{cs[0].Context}) {
		t.Fatalf("clusters = %v", got)
	}
	writeKubeconfig(t, kc, false, cs[0].Kubeconfig, cs[1].Kubeconfig)
	eventually(t, 30*time.Second, "the added context to show up READY", func() bool { return s.states(t)[cs[1].Context] == "READY" })

	watch := func(c testenv.Cluster, after string) (*stream, string) {
		st := subscribeWS(t, s, "", `subscription($c: [String!], $after: String) { watch(kind: "Namespace", clusters: $c, after: $after) {
			type cursor object { metadata { name } } error { message code } } }`, map[string]any{"c": []string{c.Context}, "after": after})
		evs := st.until("SYNCED", "")
		return st, evs[len(evs)-1].Cursor
	}
	// ended reads a stream to its end and returns its last event.
	ended := func(st *stream) watchEvent {
		var last watchEvent
		for {
			var out struct{ Watch watchEvent }
			if !st.next(&out) {
				return last
			}
			last = out.Watch
		}
	}
	replaced, cursor := watch(cs[0], "")
	removed, _ := watch(cs[1], "")

	// Replaced: the same name with a changed context (its default
	// namespace here; a new server or credential alike).
	writeKubeconfig(t, kc, false, cs[0].Kubeconfig, cs[1].Kubeconfig)
	cfg, err := clientcmd.LoadFromFile(kc)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Contexts[cs[0].Context].Namespace = "kube-system"
	if err := clientcmd.WriteToFile(*cfg, kc+".tmp"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(kc+".tmp", kc); err != nil {
		t.Fatal(err)
	}
	last := ended(replaced)
	if last.Type != "ENDED" || last.Error == nil || last.Error.Code != "UNAVAILABLE" || !strings.Contains(last.Error.Message, "replaced") {
		t.Errorf("the replaced cluster's watch ended with %+v, want ENDED, UNAVAILABLE, replaced", last)
	}
	// Subscribing again with the last cursor resyncs from the new cluster.
	eventually(t, 30*time.Second, "the replaced cluster READY again", func() bool { return s.states(t)[cs[0].Context] == "READY" })
	again := subscribeWS(t, s, "", `subscription($c: [String!], $after: String) { watch(kind: "Namespace", clusters: $c, after: $after) { type } }`,
		map[string]any{"c": []string{cs[0].Context}, "after": cursor})
	if ev := again.nextWatch(); ev.Type != "RESYNC" {
		t.Errorf("resuming on the replaced cluster began with %s, want RESYNC", ev.Type)
	}

	// (This puts cs[0]'s context back as it was: replaced once more.)
	writeKubeconfig(t, kc, false, cs[0].Kubeconfig)
	eventually(t, 30*time.Second, "the removed context to disappear", func() bool {
		return slices.Equal(names(), []string{cs[0].Context}) && s.states(t)[cs[0].Context] == "READY"
	})
	last = ended(removed)
	if last.Type != "ENDED" || last.Error == nil || last.Error.Code != "UNAVAILABLE" || !strings.Contains(last.Error.Message, "removed") {
		t.Errorf("the removed cluster's watch ended with %+v, want ENDED, UNAVAILABLE, removed", last)
	}
	// The remaining cluster still serves.
	var out struct{ Pods struct{ TotalCount int } }
	s.query(t, `{ pods { totalCount } }`, nil, &out)
	if out.Pods.TotalCount == 0 {
		t.Error("no pods after the kubeconfig edit")
	}
}

// TestDeepQueryMakesNoAPIServerRequests: 500 pods with their node, owner
// and the owner's pods are served from the caches through the loaders,
// without a single request to the apiserver.
func TestDeepQueryMakesNoAPIServerRequests(t *testing.T) {
	c := testenv.StartCluster(t, "cg-deep", 8)
	const replicas = 500
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bulk"}}
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"app": "bulk"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "bulk", Namespace: "bulk"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr(int32(replicas)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "app", Image: "example/app:1",
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m")}},
				}}},
			},
		},
	}
	if _, err := c.Client.AppsV1().Deployments("bulk").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Probes are requests too; push them out of the measured window.
	s := startServer(t, serverOpts{kubeconfigs: []string{c.Kubeconfig}, maxPage: 1000, probeInterval: time.Hour, waitReady: true})
	eventually(t, 3*time.Minute, fmt.Sprintf("%d scheduled pods in the cache", replicas), func() bool {
		var out struct{ Pods struct{ TotalCount int } }
		s.query(t, `{ pods(filter: {namespace: "bulk", fieldSelector: "spec.nodeName!="}) { totalCount } }`, nil, &out)
		return out.Pods.TotalCount == replicas
	})

	before := s.requests.Load()
	var out struct {
		Pods struct {
			Nodes []struct {
				Name string
				Node *struct {
					Name      string
					Allocated struct{ Pods int }
				}
				Owner *struct {
					Kind, Name string
					Pods       struct{ TotalCount int }
				}
			}
		}
	}
	s.query(t, `{ pods(first: 1000, filter: {namespace: "bulk"}) { nodes { name
		node { name allocated { pods } }
		owner { kind name pods { totalCount } } } } }`, nil, &out)
	if n := s.requests.Load() - before; n != 0 {
		t.Errorf("the deep query made %d apiserver requests, want 0", n)
	}
	if len(out.Pods.Nodes) != replicas {
		t.Fatalf("got %d pods, want %d", len(out.Pods.Nodes), replicas)
	}
	for _, p := range out.Pods.Nodes {
		if p.Node == nil || p.Node.Allocated.Pods == 0 || p.Owner == nil || p.Owner.Kind != "DEPLOYMENT" || p.Owner.Name != "bulk" || p.Owner.Pods.TotalCount != replicas {
			t.Fatalf("pod %s: node %+v owner %+v", p.Name, p.Node, p.Owner)
		}
	}
}
