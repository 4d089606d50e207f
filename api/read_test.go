package api_test

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clustergraph/clustergraph/internal/testenv"
)

// apiserverKeys lists a kind in every test cluster through client-go.
func apiserverKeys(t *testing.T, cs []testenv.Cluster, list func(testenv.Cluster) ([]metav1.Object, error)) []string {
	t.Helper()
	var keys []string
	for _, c := range cs {
		objs, err := list(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			keys = append(keys, key(c.Context, o.GetNamespace(), o.GetName()))
		}
	}
	sort.Strings(keys)
	return keys
}

func objects[T any](items []T) []metav1.Object {
	out := make([]metav1.Object, len(items))
	for i := range items {
		out[i] = any(&items[i]).(metav1.Object)
	}
	return out
}

func TestClusters(t *testing.T) {
	s, cs := seeded(t)
	var out struct {
		Clusters []struct {
			Name   string
			Server string
			Status struct {
				State         string
				ServerVersion string
				LastSyncTime  *time.Time
			}
		}
	}
	s.query(t, `{ clusters { name server status { state serverVersion lastSyncTime } } }`, nil, &out)
	if len(out.Clusters) != len(cs) {
		t.Fatalf("got %d clusters, want %d", len(out.Clusters), len(cs))
	}
	for i, c := range cs {
		got := out.Clusters[i]
		v, err := c.Client.Discovery().ServerVersion()
		if err != nil {
			t.Fatal(err)
		}
		if got.Name != c.Context || got.Status.State != "READY" || got.Status.ServerVersion != v.GitVersion || got.Status.LastSyncTime == nil {
			t.Errorf("cluster %d = %+v, want name %s READY version %s with a sync time", i, got, c.Context, v.GitVersion)
		}
	}
	var one struct{ Cluster *struct{ Name string } }
	s.query(t, `query($n: String!) { cluster(name: $n) { name } }`, map[string]any{"n": cs[0].Context}, &one)
	if one.Cluster == nil || one.Cluster.Name != cs[0].Context {
		t.Errorf("cluster(name) = %+v", one.Cluster)
	}
	s.query(t, `{ cluster(name: "no-such-cluster") { name } }`, nil, &one)
	if one.Cluster != nil {
		t.Errorf("unknown cluster = %+v, want null", one.Cluster)
	}
}

// TestRootListsMatchAPIServer compares every cached root list, across both
// clusters and paged to the end, with what the apiserver lists.
func TestRootListsMatchAPIServer(t *testing.T) {
	s, cs := seeded(t)
	tests := []struct {
		field, args string
		list        func(testenv.Cluster) ([]metav1.Object, error)
	}{
		{"namespaces", "", func(c testenv.Cluster) ([]metav1.Object, error) {
			l, err := c.Client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
			return objects(l.Items), err
		}},
		{"nodes", "", func(c testenv.Cluster) ([]metav1.Object, error) {
			l, err := c.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
			return objects(l.Items), err
		}},
		{"pods", "", func(c testenv.Cluster) ([]metav1.Object, error) {
			l, err := c.Client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
			return objects(l.Items), err
		}},
		{"services", "", func(c testenv.Cluster) ([]metav1.Object, error) {
			l, err := c.Client.CoreV1().Services("").List(ctx, metav1.ListOptions{})
			return objects(l.Items), err
		}},
		{"ingresses", "", func(c testenv.Cluster) ([]metav1.Object, error) {
			l, err := c.Client.NetworkingV1().Ingresses("").List(ctx, metav1.ListOptions{})
			return objects(l.Items), err
		}},
		{"workloads", ", kinds: [DEPLOYMENT]", func(c testenv.Cluster) ([]metav1.Object, error) {
			l, err := c.Client.AppsV1().Deployments("").List(ctx, metav1.ListOptions{})
			return objects(l.Items), err
		}},
		{"workloads", ", kinds: [STATEFUL_SET, DAEMON_SET]", func(c testenv.Cluster) ([]metav1.Object, error) {
			a, err := c.Client.AppsV1().StatefulSets("").List(ctx, metav1.ListOptions{})
			if err != nil {
				return nil, err
			}
			b, err := c.Client.AppsV1().DaemonSets("").List(ctx, metav1.ListOptions{})
			return append(objects(a.Items), objects(b.Items)...), err
		}},
		{"workloads", ", kinds: [REPLICA_SET]", func(c testenv.Cluster) ([]metav1.Object, error) {
			l, err := c.Client.AppsV1().ReplicaSets("").List(ctx, metav1.ListOptions{})
			return objects(l.Items), err
		}},
		{"workloads", ", kinds: [JOB, CRON_JOB]", func(c testenv.Cluster) ([]metav1.Object, error) {
			a, err := c.Client.BatchV1().Jobs("").List(ctx, metav1.ListOptions{})
			if err != nil {
				return nil, err
			}
			b, err := c.Client.BatchV1().CronJobs("").List(ctx, metav1.ListOptions{})
			return append(objects(a.Items), objects(b.Items)...), err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.field+tc.args, func(t *testing.T) {
			agree(t, tc.field, func() []string { return apiserverKeys(t, cs, tc.list) }, func() []string { return s.all(t, tc.field, tc.args) })
			if len(s.all(t, tc.field, tc.args)) == 0 {
				t.Errorf("%s%s is empty: the seed should hold some", tc.field, tc.args)
			}
		})
	}
}

// TestPaginationAndOrder walks pods page by page in every order and checks
// each object comes exactly once, in the order a reference sort gives.
func TestPaginationAndOrder(t *testing.T) {
	s, cs := seeded(t)
	type pod struct {
		Name      string
		Namespace string
		Phase     string
		Cluster   struct{ Name string }
		Metadata  struct{ CreationTimestamp time.Time }
	}
	ref := func() []pod {
		var out []pod
		for _, c := range cs {
			l, err := c.Client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range l.Items {
				var x pod
				x.Name, x.Namespace, x.Phase, x.Cluster.Name = p.Name, p.Namespace, string(p.Status.Phase), c.Context
				x.Metadata.CreationTimestamp = p.CreationTimestamp.Time
				out = append(out, x)
			}
		}
		return out
	}
	tie := func(a, b pod) int {
		return slices.Compare([]string{a.Cluster.Name, a.Namespace, a.Name}, []string{b.Cluster.Name, b.Namespace, b.Name})
	}
	orders := []struct {
		field, dir string
		less       func(a, b pod) int
	}{
		{"CLUSTER", "ASC", tie},
		{"NAME", "ASC", func(a, b pod) int {
			return slices.Compare([]string{a.Name, a.Namespace, a.Cluster.Name}, []string{b.Name, b.Namespace, b.Cluster.Name})
		}},
		{"NAMESPACE", "DESC", func(a, b pod) int {
			return -slices.Compare([]string{a.Namespace, a.Name, a.Cluster.Name}, []string{b.Namespace, b.Name, b.Cluster.Name})
		}},
		{"CREATED", "DESC", func(a, b pod) int {
			if c := b.Metadata.CreationTimestamp.Compare(a.Metadata.CreationTimestamp); c != 0 {
				return c
			}
			return -tie(a, b)
		}},
		{"STATUS", "ASC", func(a, b pod) int {
			if c := strings.Compare(a.Phase, b.Phase); c != 0 {
				return c
			}
			return tie(a, b)
		}},
	}
	for _, o := range orders {
		t.Run(o.field+"_"+o.dir, func(t *testing.T) {
			want := func() []string {
				r := ref()
				slices.SortFunc(r, o.less)
				var keys []string
				for _, p := range r {
					keys = append(keys, key(p.Cluster.Name, p.Namespace, p.Name))
				}
				return keys
			}
			walk := func(pageSize int) []string {
				var keys []string
				after := ""
				for {
					var out struct {
						Pods struct {
							TotalCount int
							PageInfo   struct {
								HasNextPage bool
								EndCursor   string
							}
							Nodes []pod
						}
					}
					s.query(t, `query($after: String, $first: Int, $o: Order) { pods(first: $first, after: $after, orderBy: $o) {
						totalCount pageInfo { hasNextPage endCursor } nodes { name namespace phase cluster { name } metadata { creationTimestamp } } } }`,
						map[string]any{"after": after, "first": pageSize, "o": map[string]any{"field": o.field, "direction": o.dir}}, &out)
					for _, p := range out.Pods.Nodes {
						keys = append(keys, key(p.Cluster.Name, p.Namespace, p.Name))
					}
					if !out.Pods.PageInfo.HasNextPage {
						return keys
					}
					after = out.Pods.PageInfo.EndCursor
				}
			}
			agree(t, "pages of 7", want, func() []string { return walk(7) })
			agree(t, "pages of 1", want, func() []string { return walk(1) })
			// offset/limit paging reaches the same objects.
			agree(t, "offset paging", want, func() []string {
				var keys []string
				for off := 0; ; off += 10 {
					var out struct {
						Pods struct {
							TotalCount int
							Nodes      []pod
						}
					}
					s.query(t, `query($off: Int, $o: Order) { pods(offset: $off, limit: 10, orderBy: $o) { totalCount nodes { name namespace cluster { name } } } }`,
						map[string]any{"off": off, "o": map[string]any{"field": o.field, "direction": o.dir}}, &out)
					for _, p := range out.Pods.Nodes {
						keys = append(keys, key(p.Cluster.Name, p.Namespace, p.Name))
					}
					if off+10 >= out.Pods.TotalCount {
						return keys
					}
				}
			})
		})
	}
}

// TestPodFilters checks each filter against a reference computed here.
func TestPodFilters(t *testing.T) {
	s, cs := seeded(t)
	pods := func() map[string][]corev1.Pod {
		return byCluster(t, cs, func(c testenv.Cluster) ([]corev1.Pod, error) {
			l, err := c.Client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
			if err != nil {
				return nil, err
			}
			return l.Items, nil
		})
	}
	// Pick real values from the seed so each filter selects some, not all.
	all := pods()
	var node, label, ns, nameSub string
	var apps []string
	var created []time.Time
	for _, p := range all[cs[0].Context] {
		if p.Spec.NodeName != "" && node == "" {
			node = p.Spec.NodeName
		}
		if v := p.Labels["app"]; v != "" && !slices.Contains(apps, v) {
			apps = append(apps, v)
		}
		if ns == "" && p.Namespace != "kube-system" {
			ns = p.Namespace
			nameSub = p.Name[:3]
		}
		if !slices.ContainsFunc(created, p.CreationTimestamp.Time.Equal) {
			created = append(created, p.CreationTimestamp.Time)
		}
	}
	if len(apps) < 3 || len(created) < 2 {
		t.Fatalf("the seed needs pods of 3 apps created at 2 times at least: apps %v, times %v", apps, created)
	}
	label = apps[0]
	slices.SortFunc(created, time.Time.Compare)
	// A time some pods were created before and some at or after.
	since := created[len(created)/2]
	tests := []struct {
		name, filter string
		match        func(p corev1.Pod) bool
	}{
		{"namespace", fmt.Sprintf(`{namespace: %q}`, ns), func(p corev1.Pod) bool { return p.Namespace == ns }},
		{"label", fmt.Sprintf(`{labelSelector: "app=%s"}`, label), func(p corev1.Pod) bool { return p.Labels["app"] == label }},
		{"label set", fmt.Sprintf(`{labelSelector: "app in (%s, %s, zzz), tier!=x"}`, apps[1], apps[2]), func(p corev1.Pod) bool {
			return (p.Labels["app"] == apps[1] || p.Labels["app"] == apps[2]) && p.Labels["tier"] != "x"
		}},
		{"field node", fmt.Sprintf(`{fieldSelector: "spec.nodeName=%s"}`, node), func(p corev1.Pod) bool { return p.Spec.NodeName == node }},
		{"node", fmt.Sprintf(`{node: %q}`, node), func(p corev1.Pod) bool { return p.Spec.NodeName == node }},
		{"field phase", `{fieldSelector: "status.phase!=Running"}`, func(p corev1.Pod) bool { return p.Status.Phase != corev1.PodRunning }},
		{"status", `{status: "Running"}`, func(p corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning }},
		{"name", fmt.Sprintf(`{name: %q}`, nameSub), func(p corev1.Pod) bool { return containsFold(p.Name, nameSub) }},
		{"created", fmt.Sprintf(`{createdAfter: %q}`, since.Format(time.RFC3339)), func(p corev1.Pod) bool { return !p.CreationTimestamp.Time.Before(since) }},
		{"created before", fmt.Sprintf(`{createdBefore: %q}`, since.Format(time.RFC3339)), func(p corev1.Pod) bool { return p.CreationTimestamp.Time.Before(since) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := func() []string { return matchingKeys(pods(), tc.match) }
			w := want()
			if len(w) == 0 || len(w) == len(all[cs[0].Context])+len(all[cs[1].Context]) {
				t.Fatalf("filter %s selects %d pods: the test needs one that selects some, not all", tc.filter, len(w))
			}
			agree(t, tc.filter, want, func() []string { return s.all(t, "pods", ", filter: "+tc.filter) })
		})
	}
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}
