package api_test

import (
	"slices"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/clustergraph/clustergraph/k8s"
)

func podKeys(c string, pods []corev1.Pod, keep func(corev1.Pod) bool) []string {
	keys := []string{}
	for _, p := range pods {
		if keep(p) {
			keys = append(keys, key(c, p.Namespace, p.Name))
		}
	}
	sort.Strings(keys)
	return keys
}

type podRef struct {
	Name      string
	Namespace string
	Cluster   struct{ Name string }
}

func refKeys(ps []podRef) []string {
	keys := []string{}
	for _, p := range ps {
		keys = append(keys, key(p.Cluster.Name, p.Namespace, p.Name))
	}
	sort.Strings(keys)
	return keys
}

// TestWorkloadPods: a workload's pods are the pods its selector matches in
// its namespace (the seed has no orphans or overlapping selectors), and each
// pod's owner is the workload (a Deployment for ReplicaSet pods).
func TestWorkloadPods(t *testing.T) {
	s, cs := seeded(t)
	for _, c := range cs {
		pods, err := c.Client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var out struct {
			Cluster struct {
				Workloads struct {
					Nodes []struct {
						Kind, Name, Namespace string
						Selector              *string
						Pods                  struct {
							Nodes []struct {
								podRef
								Owner    *struct{ Kind, Name string }
								Node     *struct{ Name string }
								NodeName *string
							}
						}
					}
				}
			}
		}
		s.query(t, `query($c: String!) { cluster(name: $c) { workloads(first: 100, kinds: [DEPLOYMENT, STATEFUL_SET, DAEMON_SET, JOB]) { nodes {
			kind name namespace selector pods(first: 100) { nodes { name namespace cluster { name } owner { kind name } node { name } nodeName } } } } } }`,
			map[string]any{"c": c.Context}, &out)
		if len(out.Cluster.Workloads.Nodes) < 4 {
			t.Fatalf("%s: only %d workloads", c.Context, len(out.Cluster.Workloads.Nodes))
		}
		for _, w := range out.Cluster.Workloads.Nodes {
			if !seedNamespaces[w.Namespace] {
				continue // other tests' workloads come and go
			}
			if w.Selector == nil {
				t.Errorf("%s/%s has no selector", w.Namespace, w.Name)
				continue
			}
			sel, err := labels.Parse(*w.Selector)
			if err != nil {
				t.Fatal(err)
			}
			want := podKeys(c.Context, pods.Items, func(p corev1.Pod) bool {
				return p.Namespace == w.Namespace && sel.Matches(labels.Set(p.Labels))
			})
			var got []podRef
			for _, p := range w.Pods.Nodes {
				got = append(got, p.podRef)
				if p.Owner == nil || p.Owner.Name != w.Name || p.Owner.Kind != w.Kind {
					t.Errorf("pod %s/%s owner = %+v, want %s %s", p.Namespace, p.Name, p.Owner, w.Kind, w.Name)
				}
				switch {
				case p.NodeName == nil && p.Node != nil, p.NodeName != nil && (p.Node == nil || p.Node.Name != *p.NodeName):
					t.Errorf("pod %s/%s: node %+v does not match nodeName %v", p.Namespace, p.Name, p.Node, p.NodeName)
				}
			}
			if diff := cmp.Diff(want, refKeys(got)); diff != "" {
				t.Errorf("%s %s/%s pods (-selector +clustergraph):\n%s", w.Kind, w.Namespace, w.Name, diff)
			}
			if len(want) == 0 && w.Kind != "JOB" {
				t.Errorf("%s %s/%s has no pods; the seed should run some", w.Kind, w.Namespace, w.Name)
			}
		}
	}
}

// TestNodesAndPools checks node fields, node → pods, the requests sum and
// node pools against the apiserver.
func TestNodesAndPools(t *testing.T) {
	s, cs := seeded(t)
	c := cs[0]
	nodes, err := c.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pods, err := c.Client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	type node struct {
		Name, Status string
		IP           *string
		Roles        []string
		Pool         *struct{ Name string }
		Capacity     struct {
			CPUMillis, MemoryBytes int64
			Pods                   int
		}
		Allocatable struct{ CPUMillis, MemoryBytes int64 }
		Allocated   struct {
			CPURequestsMillis, MemoryRequestsBytes, CPULimitsMillis, MemoryLimitsBytes int64
			Pods                                                                       int
		}
		NodeInfo struct{ KubeletVersion, OperatingSystem string }
		Pods     struct{ Nodes []podRef }
	}
	var out struct {
		Cluster struct {
			Nodes     struct{ Nodes []node }
			NodePools struct {
				Nodes []struct {
					Name, Label, Status       string
					NodeCount, ReadyNodeCount int
					Nodes                     struct{ Nodes []struct{ Name string } }
				}
			}
		}
	}
	s.query(t, `query($c: String!) { cluster(name: $c) {
		nodes { nodes { name status ip roles pool { name } capacity { cpuMillis memoryBytes pods } allocatable { cpuMillis memoryBytes }
			allocated { cpuRequestsMillis memoryRequestsBytes cpuLimitsMillis memoryLimitsBytes pods }
			nodeInfo { kubeletVersion operatingSystem } pods(first: 100) { nodes { name namespace cluster { name } } } } }
		nodePools { nodes { name label status nodeCount readyNodeCount nodes { nodes { name } } } } } }`, map[string]any{"c": c.Context}, &out)
	if len(out.Cluster.Nodes.Nodes) != len(nodes.Items) {
		t.Fatalf("got %d nodes, want %d", len(out.Cluster.Nodes.Nodes), len(nodes.Items))
	}
	pools := map[string][]string{}
	for i, n := range nodes.Items {
		got := out.Cluster.Nodes.Nodes[i]
		if got.Name != n.Name || got.Status != k8s.NodeStatus(&n) || got.Capacity.CPUMillis != n.Status.Capacity.Cpu().MilliValue() ||
			got.Allocatable.MemoryBytes != n.Status.Allocatable.Memory().Value() || got.NodeInfo.KubeletVersion != n.Status.NodeInfo.KubeletVersion {
			t.Errorf("node %s = %+v", n.Name, got)
		}
		internal := ""
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP && internal == "" {
				internal = a.Address
			}
		}
		if got.IP == nil || *got.IP != internal {
			t.Errorf("node %s ip = %v, want %v", n.Name, got.IP, n.Status.Addresses)
		}
		onNode := podKeys(c.Context, pods.Items, func(p corev1.Pod) bool { return p.Spec.NodeName == n.Name })
		if diff := cmp.Diff(onNode, refKeys(got.Pods.Nodes)); diff != "" {
			t.Errorf("node %s pods (-apiserver +clustergraph):\n%s", n.Name, diff)
		}
		var cpu, mem int64
		count := 0
		for _, p := range pods.Items {
			if p.Spec.NodeName != n.Name || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
				continue
			}
			count++
			for _, ct := range p.Spec.Containers {
				cpu += ct.Resources.Requests.Cpu().MilliValue()
				mem += ct.Resources.Requests.Memory().Value()
			}
		}
		if got.Allocated.CPURequestsMillis != cpu || got.Allocated.MemoryRequestsBytes != mem || got.Allocated.Pods != count {
			t.Errorf("node %s allocated = %+v, want cpu %d mem %d pods %d", n.Name, got.Allocated, cpu, mem, count)
		}
		if pool, _ := k8s.PoolOf(&n); pool != "" {
			pools[pool] = append(pools[pool], n.Name)
			if got.Pool == nil || got.Pool.Name != pool {
				t.Errorf("node %s pool = %+v, want %s", n.Name, got.Pool, pool)
			}
		}
		if _, cp := n.Labels["node-role.kubernetes.io/control-plane"]; cp && !slices.Contains(got.Roles, "control-plane") {
			t.Errorf("node %s roles = %v, want control-plane", n.Name, got.Roles)
		}
	}
	if len(pools) == 0 {
		t.Fatal("the seed labels nodes with pools, but none were found")
	}
	gotPools := map[string][]string{}
	for _, p := range out.Cluster.NodePools.Nodes {
		for _, n := range p.Nodes.Nodes {
			gotPools[p.Name] = append(gotPools[p.Name], n.Name)
		}
		if p.NodeCount != len(pools[p.Name]) || p.Status != "Healthy" || p.ReadyNodeCount != p.NodeCount {
			t.Errorf("pool %+v, want %d nodes, Healthy", p, len(pools[p.Name]))
		}
	}
	if diff := cmp.Diff(pools, gotPools); diff != "" {
		t.Errorf("pools (-labels +clustergraph):\n%s", diff)
	}
}

// TestServicesAndIngresses checks service → pods and endpoints, and
// ingress → services.
func TestServicesAndIngresses(t *testing.T) {
	s, cs := seeded(t)
	c := cs[0]
	svcs, err := c.Client.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pods, err := c.Client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Cluster struct {
			Services struct {
				Nodes []struct {
					Name, Namespace, Type string
					Pods                  struct{ Nodes []podRef }
					Endpoints             []struct{ PodName *string }
				}
			}
			Ingresses struct {
				Nodes []struct {
					Name, Namespace string
					Services        []struct{ Name string }
					Paths           []struct {
						ServiceName *string
						Service     *struct{ Name string }
					}
				}
			}
		}
	}
	s.query(t, `query($c: String!) { cluster(name: $c) {
		services(first: 100) { nodes { name namespace type pods(first: 100) { nodes { name namespace cluster { name } } } endpoints { podName } } }
		ingresses { nodes { name namespace services { name } paths { serviceName service { name } } } } } }`, map[string]any{"c": c.Context}, &out)
	if len(out.Cluster.Services.Nodes) != len(svcs.Items) {
		t.Fatalf("got %d services, want %d", len(out.Cluster.Services.Nodes), len(svcs.Items))
	}
	selecting := 0
	for i, svc := range svcs.Items {
		got := out.Cluster.Services.Nodes[i]
		want := podKeys(c.Context, pods.Items, func(p corev1.Pod) bool {
			return len(svc.Spec.Selector) > 0 && p.Namespace == svc.Namespace && labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(p.Labels))
		})
		if diff := cmp.Diff(want, refKeys(got.Pods.Nodes)); diff != "" {
			t.Errorf("service %s/%s pods (-selector +clustergraph):\n%s", svc.Namespace, svc.Name, diff)
		}
		if len(want) > 0 {
			selecting++
		}
		if got.Type != string(svc.Spec.Type) {
			t.Errorf("service %s type %s, want %s", svc.Name, got.Type, svc.Spec.Type)
		}
	}
	if selecting == 0 {
		t.Error("no service selects pods; the seed should have some")
	}
	if len(out.Cluster.Ingresses.Nodes) == 0 {
		t.Fatal("no ingresses; the seed has some")
	}
	for _, ing := range out.Cluster.Ingresses.Nodes {
		if len(ing.Services) == 0 {
			t.Errorf("ingress %s/%s routes to no existing service", ing.Namespace, ing.Name)
		}
		for _, p := range ing.Paths {
			if p.ServiceName != nil && (p.Service == nil || p.Service.Name != *p.ServiceName) {
				t.Errorf("ingress %s path service %v resolved to %+v", ing.Name, *p.ServiceName, p.Service)
			}
		}
	}
}

// TestOverview compares the per-kind counts with the apiserver's lists.
func TestOverview(t *testing.T) {
	s, cs := seeded(t)
	c := cs[0]
	count := func(ns string) map[string]int {
		l := func(n int, err error) int {
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		lo := metav1.ListOptions{}
		m := map[string]int{
			"Pod":         l(lenOf(c.Client.CoreV1().Pods(ns).List(ctx, lo))),
			"Deployment":  l(lenOf(c.Client.AppsV1().Deployments(ns).List(ctx, lo))),
			"StatefulSet": l(lenOf(c.Client.AppsV1().StatefulSets(ns).List(ctx, lo))),
			"DaemonSet":   l(lenOf(c.Client.AppsV1().DaemonSets(ns).List(ctx, lo))),
			"Service":     l(lenOf(c.Client.CoreV1().Services(ns).List(ctx, lo))),
			"Secret":      l(lenOf(c.Client.CoreV1().Secrets(ns).List(ctx, lo))),
		}
		if ns == "" {
			m["Node"] = l(lenOf(c.Client.CoreV1().Nodes().List(ctx, lo)))
		}
		return m
	}
	for _, ns := range []string{"", "shop"} {
		agree(t, "overview of "+ns, func() map[string]int { return count(ns) }, func() map[string]int {
			var out struct {
				Cluster struct {
					Overview []struct {
						Kind  string
						Total int
					}
					Namespace *struct {
						Overview []struct {
							Kind  string
							Total int
						}
					}
				}
			}
			s.query(t, `query($c: String!, $ns: String!) { cluster(name: $c) { overview { kind total } namespace(name: $ns) { overview { kind total } } } }`,
				map[string]any{"c": c.Context, "ns": or(ns, "shop")}, &out)
			rows := out.Cluster.Overview
			if ns != "" {
				rows = out.Cluster.Namespace.Overview
			}
			got := map[string]int{}
			want := count(ns)
			for _, r := range rows {
				if _, ok := want[r.Kind]; ok {
					got[r.Kind] = r.Total
				}
			}
			return got
		})
	}
}

func lenOf(l runtime.Object, err error) (int, error) {
	if err != nil {
		return 0, err
	}
	return meta.LenList(l), nil
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
