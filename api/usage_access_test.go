package api_test

import (
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"

	"github.com/clustergraph/clustergraph/internal/testenv"
)

// TestUsageNeedsMetricsRBAC: usage is served to a caller who may read the
// metrics, not to one who may only read the pods: for them every usage is
// null, without an error (as a related object they may not see is null),
// and they cost no metrics call. Each pod's usage is there exactly when the
// apiserver would let the caller get its metrics.
func TestUsageNeedsMetricsRBAC(t *testing.T) {
	cs := testenv.Clusters(t)
	c := cs[0]
	mc := metricsclient.NewForConfigOrDie(c.Config)
	metricsEventually(t, c, "metrics for every shop pod", func() bool {
		pm, err := mc.MetricsV1beta1().PodMetricses("shop").List(ctx, metav1.ListOptions{})
		pods, err2 := c.Client.CoreV1().Pods("shop").List(ctx, metav1.ListOptions{})
		return err == nil && err2 == nil && len(pm.Items) > 0 && len(pm.Items) == len(pods.Items)
	})
	role := func(name string, rules ...rbacv1.PolicyRule) func(testenv.Cluster, string) {
		return func(c testenv.Cluster, user string) {
			r := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop"}, Rules: rules}
			if _, err := c.Client.RbacV1().Roles("shop").Create(ctx, r, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Client.RbacV1().Roles("shop").Delete(ctx, name, metav1.DeleteOptions{}) })
			roleBinding(t, c, "shop", name, "Role", name, user)
		}
	}
	readPods := rbacv1.PolicyRule{Verbs: []string{"get", "list"}, APIGroups: []string{""}, Resources: []string{"pods", "namespaces"}}
	readMetrics := rbacv1.PolicyRule{Verbs: []string{"get", "list"}, APIGroups: []string{"metrics.k8s.io"}, Resources: []string{"pods"}}
	podsOnly := makeUser(t, cs[:1], "cg-usage-pods", role("cg-usage-pods", readPods))
	withMetrics := makeUser(t, cs[:1], "cg-usage-metrics", role("cg-usage-metrics", readPods, readMetrics))
	s := startServer(t, serverOpts{kubeconfigs: []string{c.Kubeconfig}, waitReady: true, auth: true})

	type usage struct{ CPUMillis int64 }
	var out struct {
		Cluster struct {
			Usage     *usage
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
	q := `query($c: String!) { cluster(name: $c) { usage { cpuMillis }
		namespace(name: "shop") { usage { cpuMillis } pods { nodes { name usage { cpuMillis } } } } } }`
	for _, u := range []testUser{podsOnly, withMetrics} {
		metricsGR := schema.GroupResource{Group: "metrics.k8s.io", Resource: "pods"}
		mayList := can(t, c, u, "list", metricsGR, "shop", "")
		var viewer struct{ Viewer struct{ Username string } }
		s.as(u.token).query(t, `{ viewer { username } }`, nil, &viewer) // its TokenReview
		before := s.requests.Load()
		s.as(u.token).query(t, q, map[string]any{"c": c.Context}, &out)
		calls := s.requests.Load() - before
		ns := out.Cluster.Namespace
		if len(ns.Pods.Nodes) == 0 {
			t.Fatalf("%s sees no shop pods", u.name)
		}
		if out.Cluster.Usage != nil {
			t.Errorf("%s: cluster usage %+v, but it may not list node metrics", u.name, out.Cluster.Usage)
		}
		if (ns.Usage != nil) != mayList || mayList && ns.Usage.CPUMillis == 0 {
			t.Errorf("%s: namespace usage %+v; the apiserver says it may list pod metrics: %v", u.name, ns.Usage, mayList)
		}
		for _, p := range ns.Pods.Nodes {
			if may := can(t, c, u, "get", metricsGR, "shop", p.Name); (p.Usage != nil) != may {
				t.Errorf("%s: pod %s usage %+v; the apiserver says it may get its metrics: %v", u.name, p.Name, p.Usage, may)
			}
		}
		if !mayList && calls != 0 {
			t.Errorf("%s, who may read no metrics, cost %d apiserver calls", u.name, calls)
		}
	}
}
