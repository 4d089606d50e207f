package k8s

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/clustergraph/clustergraph/caller"
	"github.com/clustergraph/clustergraph/errkind"
	"github.com/clustergraph/clustergraph/metrics"
)

// TestMetricClusters: a scrape reads each cluster's state and host, the
// objects each cache holds, and the hub's and the fallback's counters.
func TestMetricClusters(t *testing.T) {
	reg, err := NewStaticRegistry(map[string][]runtime.Object{"east": {
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-1"}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-2"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := reg.Cluster("east")
	c.caches.watchErrs[resPods].Add(2)
	c.reviewCount(true, nil)
	c.reviewCount(false, nil)
	c.reviewCount(false, errNoReview)

	// One subscriber with room for one change: the second overflows it.
	h := c.hub
	s := &subscriber{key: subKey{r: resPods}, ch: make(chan *Change, 1)}
	h.add(s)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-3"}}
	h.publish(c, resPods, Added, pod)
	h.publish(c, resPods, Deleted, pod)
	h.remove(s)

	ms := reg.MetricClusters()
	if len(ms) != 1 {
		t.Fatalf("%d clusters, want 1", len(ms))
	}
	m := ms[0]
	objects := map[string]int{}
	for _, k := range m.Kinds {
		objects[k.Resource] = k.Objects
		if k.Resource == string(resPods) && k.WatchErrors != 2 {
			t.Errorf("pods' watch errors: %d, want 2", k.WatchErrors)
		}
	}
	if objects["pods"] != 2 || objects["namespaces"] != 1 || objects["nodes"] != 0 {
		t.Errorf("objects cached: %v, want 2 pods, 1 namespace, no node", objects)
	}
	m.Kinds, m.LastSync = nil, m.LastSync.Truncate(0)
	want := metrics.Cluster{Name: "east", Host: "east", State: "READY", LastSync: m.LastSync,
		HubDeliveries: 1, HubOverflows: 1, ReviewsAllowed: 1, ReviewsDenied: 1, ReviewsFailed: 1}
	if diff := cmp.Diff(want, m); diff != "" {
		t.Errorf("cluster (-want +got):\n%s", diff)
	}
	if m.LastSync.IsZero() {
		t.Error("no last sync for a READY cluster")
	}
}

// errNoReview stands for a SubjectAccessReview that failed.
var errNoReview = errkind.Newf(errkind.Unavailable, "no answer")

// TestResyncsCounted: a watch that cannot resume where it asks to starts
// with a RESYNC marker, which the hub counts.
func TestResyncsCounted(t *testing.T) {
	reg, err := NewStaticRegistry(map[string][]runtime.Object{"east": {
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-1"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := reg.Cluster("east")
	ctx, cancel := context.WithCancel(caller.With(context.Background(), &caller.Subject{User: "test", Unrestricted: true}))
	defer cancel()
	out, _, err := c.Subscribe(ctx, "Pod", &Filter{}, SubscribeOptions{Resume: true, Epoch: "gone", Seq: 7})
	if err != nil {
		t.Fatal(err)
	}
	if ch := <-out; ch.Type != Resync {
		t.Fatalf("first change %s, want RESYNC", ch.Type)
	}
	if n := reg.MetricClusters()[0].HubResyncs; n != 1 {
		t.Errorf("%d resyncs counted, want 1", n)
	}
}
