package api_test

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clustergraph/clustergraph/internal/testenv"
)

// The benchmarks compare, in the same run against the same seeded clusters,
// what a console's screen costs through clustergraph (over HTTP, from the
// caches) and straight from the apiserver (a LIST per screen, as REST
// consoles do). Run them with `make bench`; issue 7 grows them to large
// clusters.

const firstPageQuery = `{ pods(first: 20, filter: {labelSelector: "tier"}, orderBy: {field: CREATED, direction: DESC}) {
	totalCount nodes { name namespace status node { name } } } }`

// BenchmarkFirstPageClustergraph: the first page of pods with a label,
// newest first, with each pod's node, across both clusters.
func BenchmarkFirstPageClustergraph(b *testing.B) {
	cs := testenv.Clusters(b)
	paths := kubeconfigs(cs)
	s := startServer(b, serverOpts{kubeconfigs: paths, waitReady: true})
	var out struct{ Pods struct{ TotalCount int } }
	for b.Loop() {
		s.query(b, firstPageQuery, nil, &out)
	}
	if out.Pods.TotalCount == 0 {
		b.Fatal("no pods matched")
	}
}

// BenchmarkFirstPageAPIServer: the same page the way a REST console gets it:
// LIST the pods of every cluster with the selector, sort, cut, and look up
// each pod's node.
func BenchmarkFirstPageAPIServer(b *testing.B) {
	cs := testenv.Clusters(b)
	for b.Loop() {
		var all []corev1.Pod
		for _, c := range cs {
			l, err := c.Client.CoreV1().Pods("").List(ctx, metav1.ListOptions{LabelSelector: "tier"})
			if err != nil {
				b.Fatal(err)
			}
			all = append(all, l.Items...)
		}
		slices.SortFunc(all, func(x, y corev1.Pod) int { return y.CreationTimestamp.Compare(x.CreationTimestamp.Time) })
		page := all[:min(20, len(all))]
		for _, p := range page {
			if p.Spec.NodeName == "" {
				continue
			}
			for _, c := range cs {
				if _, err := c.Client.CoreV1().Nodes().Get(ctx, p.Spec.NodeName, metav1.GetOptions{}); err == nil {
					break
				}
			}
		}
	}
}

// BenchmarkDeepQueryClustergraph: every deployment with its pods and each
// pod's node, in one query.
func BenchmarkDeepQueryClustergraph(b *testing.B) {
	cs := testenv.Clusters(b)
	paths := kubeconfigs(cs)
	s := startServer(b, serverOpts{kubeconfigs: paths, waitReady: true})
	var out map[string]any
	for b.Loop() {
		s.query(b, `{ workloads(kinds: [DEPLOYMENT]) { nodes { name pods { nodes { name node { name status } } } } } }`, nil, &out)
	}
}

// BenchmarkDeepQueryAPIServer: the same through the apiserver: deployments,
// their ReplicaSets and pods, and the nodes.
func BenchmarkDeepQueryAPIServer(b *testing.B) {
	cs := testenv.Clusters(b)
	for b.Loop() {
		for _, c := range cs {
			ds, err := c.Client.AppsV1().Deployments("").List(ctx, metav1.ListOptions{})
			if err != nil {
				b.Fatal(err)
			}
			for _, d := range ds.Items {
				sel := metav1.FormatLabelSelector(d.Spec.Selector)
				pods, err := c.Client.CoreV1().Pods(d.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
				if err != nil {
					b.Fatal(err)
				}
				for _, p := range pods.Items {
					if _, err := c.Client.CoreV1().Nodes().Get(ctx, p.Spec.NodeName, metav1.GetOptions{}); err != nil && !strings.Contains(err.Error(), "not found") {
						b.Fatal(err)
					}
				}
			}
		}
	}
}
