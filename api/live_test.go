package api_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"

	"github.com/clustergraph/clustergraph/internal/testenv"
)

// TestUsage: node, pod, namespace and cluster usage come from metrics.k8s.io
// and match what it reports (kwok derives usage from pod annotations, so the
// figures are steady).
func TestUsage(t *testing.T) {
	s, cs := seeded(t)
	c := cs[0]
	cfg := c.Config
	mc := metricsclient.NewForConfigOrDie(cfg)
	// metrics-server needs a scrape or two after the pods start.
	metricsEventually(t, c, "metrics for every shop pod", func() bool {
		pm, err := mc.MetricsV1beta1().PodMetricses("shop").List(ctx, metav1.ListOptions{})
		pods, err2 := c.Client.CoreV1().Pods("shop").List(ctx, metav1.ListOptions{})
		return err == nil && err2 == nil && len(pm.Items) > 0 && len(pm.Items) == len(pods.Items)
	})
	type usage struct{ CPUMillis, MemoryBytes int64 }
	want := func() map[string]usage {
		out := map[string]usage{}
		nm, err := mc.MetricsV1beta1().NodeMetricses().List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var total usage
		for _, m := range nm.Items {
			u := usage{m.Usage.Cpu().MilliValue(), m.Usage.Memory().Value()}
			out["node/"+m.Name] = u
			total.CPUMillis += u.CPUMillis
			total.MemoryBytes += u.MemoryBytes
		}
		out["cluster"] = total
		pm, err := mc.MetricsV1beta1().PodMetricses("shop").List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var ns usage
		for _, m := range pm.Items {
			var u usage
			for _, ct := range m.Containers {
				u.CPUMillis += ct.Usage.Cpu().MilliValue()
				u.MemoryBytes += ct.Usage.Memory().Value()
			}
			out["pod/"+m.Name] = u
			ns.CPUMillis += u.CPUMillis
			ns.MemoryBytes += u.MemoryBytes
		}
		out["namespace"] = ns
		return out
	}
	got := func() map[string]usage {
		var out struct {
			Cluster struct {
				Usage *usage
				Nodes struct {
					Nodes []struct {
						Name  string
						Usage *usage
					}
				}
				Namespace struct {
					Usage *usage
					Pods  struct {
						Nodes []struct {
							Name  string
							Usage *usage
						}
					}
				}
			}
		}
		s.query(t, `query($c: String!) { cluster(name: $c) { usage { cpuMillis memoryBytes }
			nodes { nodes { name usage { cpuMillis memoryBytes } } }
			namespace(name: "shop") { usage { cpuMillis memoryBytes } pods { nodes { name usage { cpuMillis memoryBytes } } } } } }`,
			map[string]any{"c": c.Context}, &out)
		m := map[string]usage{}
		put := func(k string, u *usage) {
			if u != nil {
				m[k] = *u
			}
		}
		put("cluster", out.Cluster.Usage)
		put("namespace", out.Cluster.Namespace.Usage)
		for _, n := range out.Cluster.Nodes.Nodes {
			put("node/"+n.Name, n.Usage)
		}
		for _, p := range out.Cluster.Namespace.Pods.Nodes {
			put("pod/"+p.Name, p.Usage)
		}
		return m
	}
	agree(t, "usage", want, got)
	if w := want(); w["cluster"].CPUMillis == 0 || w["namespace"].MemoryBytes == 0 {
		t.Errorf("usage is zero: %+v; the seed annotates pods with usage", w)
	}
}

// TestEvents compares the live events and their filters with the apiserver.
func TestEvents(t *testing.T) {
	s, cs := seeded(t)
	events := func() map[string][]corev1.Event {
		return byCluster(t, cs, func(c testenv.Cluster) ([]corev1.Event, error) {
			l, err := c.Client.CoreV1().Events("").List(ctx, metav1.ListOptions{})
			if err != nil {
				return nil, err
			}
			return l.Items, nil
		})
	}
	tests := []struct {
		name, filter string
		match        func(e corev1.Event) bool
	}{
		{"all", "", func(corev1.Event) bool { return true }},
		{"pods", `{involvedKind: "Pod"}`, func(e corev1.Event) bool { return e.InvolvedObject.Kind == "Pod" }},
		{"scheduled in shop", `{namespace: "shop", reason: "Scheduled"}`, func(e corev1.Event) bool { return e.Namespace == "shop" && e.Reason == "Scheduled" }},
		{"scheduler", `{source: "default-scheduler"}`, func(e corev1.Event) bool {
			return e.Source.Component == "default-scheduler" || e.ReportingController == "default-scheduler"
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := func() []string { return matchingKeys(events(), tc.match) }
			if len(want()) == 0 {
				t.Fatalf("no events match %s; the seed should cause some", tc.filter)
			}
			args := ""
			if tc.filter != "" {
				args = ", filter: " + tc.filter
			}
			agree(t, tc.name, want, func() []string { return s.all(t, "events", args) })
		})
	}
	// Newest first by default.
	var out struct {
		Events struct {
			Nodes []struct{ LastTimestamp time.Time }
		}
	}
	s.query(t, `{ events(first: 50) { nodes { lastTimestamp } } }`, nil, &out)
	for i := 1; i < len(out.Events.Nodes); i++ {
		if out.Events.Nodes[i].LastTimestamp.After(out.Events.Nodes[i-1].LastTimestamp) {
			t.Fatalf("events are not newest first at %d: %v", i, out.Events.Nodes)
		}
	}
}

// TestTopology checks the graph of a namespace against the apiserver's view.
func TestTopology(t *testing.T) {
	s, cs := seeded(t)
	c := cs[0]
	var out struct {
		Topology struct {
			Nodes []struct{ ObjectID, Kind, Name string }
			Edges []struct{ From, To, Type string }
		}
	}
	s.query(t, `query($c: String!) { topology(cluster: $c, namespace: "shop") { nodes { objectId kind name } edges { from to type } } }`, map[string]any{"c": c.Context}, &out)
	names := map[string]string{} // id -> Kind/name
	for _, n := range out.Topology.Nodes {
		names[n.ObjectID] = n.Kind + "/" + n.Name
	}
	edges := map[string]bool{}
	for _, e := range out.Topology.Edges {
		edges[e.Type+" "+names[e.From]+" -> "+names[e.To]] = true
	}
	pods, err := c.Client.CoreV1().Pods("shop").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svcs, err := c.Client.CoreV1().Services("shop").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, p := range pods.Items {
		want = append(want, "RUNS_ON Pod/"+p.Name+" -> Node/"+p.Spec.NodeName)
		if ref := metav1.GetControllerOf(&p); ref != nil {
			want = append(want, "OWNS "+ref.Kind+"/"+ref.Name+" -> Pod/"+p.Name)
		}
	}
	for _, svc := range svcs.Items {
		for _, p := range pods.Items {
			if len(svc.Spec.Selector) > 0 && labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(p.Labels)) {
				want = append(want, "SELECTS Service/"+svc.Name+" -> Pod/"+p.Name)
			}
		}
	}
	if len(want) < 5 {
		t.Fatalf("too few expected edges: %v", want)
	}
	var missing []string
	for _, w := range want {
		if !edges[w] {
			missing = append(missing, w)
		}
	}
	if len(missing) > 0 {
		t.Errorf("edges missing from the topology: %v\nhave: %v", missing, edges)
	}
	routes := 0
	for e := range edges {
		if strings.HasPrefix(e, "ROUTES Ingress/") {
			routes++
		}
	}
	if routes == 0 {
		t.Error("no ROUTES edge; the shop ingress routes to services")
	}
}

// TestOpenYurtNodePools: a cluster serving apps.openyurt.io NodePools gets
// its pools from those objects (with their type).
func TestOpenYurtNodePools(t *testing.T) {
	c := testenv.StartCluster(t, "cg-yurt", 3)
	gvr := schema.GroupVersionResource{Group: "apps.openyurt.io", Version: "v1beta1", Resource: "nodepools"}
	pools := testenv.CreateCRD(t, c, gvr, "NodePool", false)
	for _, p := range []struct{ name, typ string }{{"edge-a", "Edge"}, {"cloud", "Cloud"}} {
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "apps.openyurt.io/v1beta1", "kind": "NodePool",
			"metadata": map[string]any{"name": p.name}, "spec": map[string]any{"type": p.typ},
		}}
		if _, err := pools.Create(ctx, u, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	nodes, err := c.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range nodes.Items[:2] {
		n.Labels["apps.openyurt.io/nodepool"] = "edge-a"
		if i == 1 {
			// A GKE label is ignored when the cluster serves openyurt pools.
			n.Labels["cloud.google.com/gke-nodepool"] = "other"
		}
		if _, err := c.Client.CoreV1().Nodes().Update(ctx, &n, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	s := startServer(t, serverOpts{kubeconfigs: []string{c.Kubeconfig}, waitReady: true})
	type pool struct {
		Name, Source, Status string
		Type                 *string
		NodeCount            int
	}
	var out struct{ NodePools struct{ Nodes []pool } }
	want := []pool{{Name: "cloud", Source: "OPENYURT", Status: "Empty", Type: ptr("Cloud")}, {Name: "edge-a", Source: "OPENYURT", Status: "Healthy", Type: ptr("Edge"), NodeCount: 2}}
	agree(t, "node pools", func() []pool { return want }, func() []pool {
		s.query(t, `{ nodePools(orderBy: {field: NAME}) { nodes { name source status type nodeCount } } }`, nil, &out)
		return out.NodePools.Nodes
	})
	var nodeOut struct {
		Nodes struct {
			Nodes []struct {
				Name string
				Pool *struct{ Name string }
			}
		}
	}
	s.query(t, fmt.Sprintf(`{ nodes(filter: {name: %q}) { nodes { name pool { name } } } }`, nodes.Items[0].Name), nil, &nodeOut)
	if diff := cmp.Diff("edge-a", nodeOut.Nodes.Nodes[0].Pool.Name); diff != "" {
		t.Error(diff)
	}
}
