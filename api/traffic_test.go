package api_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clustergraph/clustergraph/db"
	"github.com/clustergraph/clustergraph/internal/testenv"
	"github.com/clustergraph/clustergraph/metering"
)

// cadvisorPath is where the testbed's kwok serves each node's cAdvisor
// counters (tools/testbed/cluster.sh); a kubelet serves /metrics/cadvisor.
const cadvisorPath = "/metrics/nodes/{node}/metrics/cadvisor"

// trafficPod is a pod whose simulated network rates are rx and tx bytes/s.
func trafficPod(name, rx, tx string, hostNetwork bool) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{
			"kwok.x-k8s.io/usage-network-rx": rx, "kwok.x-k8s.io/usage-network-tx": tx}},
		Spec: corev1.PodSpec{HostNetwork: hostNetwork, Containers: []corev1.Container{
			{Name: "app", Image: "example/web:1"}, {Name: "sidecar", Image: "example/proxy:1"}}},
	}
}

// TestTrafficFromKubelets: the kubelet traffic source reads every node's
// cAdvisor counters through the apiserver's node proxy; the first read is a
// baseline, later reads give each namespace the bytes its pods moved since
// (the rates kwok simulates times the time between reads), host-network
// pods are not counted, a pod started between reads counts from zero, and
// the collector stores the bytes in the samples' traffic.
func TestTrafficFromKubelets(t *testing.T) {
	cs := testenv.Clusters(t)
	c := cs[0]
	// kwok keeps a pod's counters by name, past the pod's deletion (a real
	// kubelet starts a new pod's at zero): fresh names for each run.
	ns := fmt.Sprintf("metering-traffic-%d", time.Now().Unix())
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Client.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
	for _, p := range []*corev1.Pod{trafficPod("web", "2000", "500", false), trafficPod("host", "90000", "90000", true)} {
		if _, err := c.Client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	s := startServer(t, serverOpts{kubeconfigs: kubeconfigs(cs[:1]), waitReady: true})
	s.waitRunning(t, ns, 2)
	// kwok starts a pod's counters at the first scrape that finds the pod
	// (its own view of the node's pods lags the apiserver a little); scrape
	// until the pod's series appear, as any reader of the endpoint would.
	// It returns the times just before and after that scrape.
	firstScrape := func(pod string) (time.Time, time.Time) {
		t.Helper()
		p, err := c.Client.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{})
		if err != nil || p.Spec.NodeName == "" {
			t.Fatalf("pod %s not placed: %v", pod, err)
		}
		node, series := p.Spec.NodeName, fmt.Sprintf(`namespace=%q,pod=%q`, ns, pod)
		var before, after time.Time
		eventually(t, 30*time.Second, "pod "+pod+" on the node's cAdvisor endpoint", func() bool {
			before = time.Now()
			body, err := c.Client.CoreV1().RESTClient().Get().AbsPath("/api/v1/nodes", node, "proxy/metrics/nodes", node, "metrics/cadvisor").DoRaw(ctx)
			after = time.Now()
			return err == nil && strings.Contains(string(body), series)
		})
		return before, after
	}
	firstScrape("web")
	cl, err := s.Registry.Cluster(c.Context)
	if err != nil {
		t.Fatal(err)
	}

	// A path no kubelet serves: every node fails, and the error says so.
	bad := &metering.Traffic{Path: "/no/such/{node}/path"}
	if rep, err := bad.Read(ctx, cl); err == nil || len(rep.Failed) == 0 {
		t.Errorf("bad path: report %+v, err %v; want every node failed", rep, err)
	}

	src := &metering.Traffic{Path: cadvisorPath}
	// read returns a read's report with the times just before and after it.
	read := func() (metering.TrafficReport, time.Time, time.Time) {
		t.Helper()
		before := time.Now()
		rep, err := src.Read(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Failed) > 0 {
			t.Fatalf("nodes not read: %v", rep.Failed)
		}
		return rep, before, time.Now()
	}
	first, b1, a1 := read()
	if !first.Baseline || len(first.Namespaces) != 0 {
		t.Fatalf("first read: %+v, want a baseline that counts nothing", first)
	}
	nodes, err := c.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if first.Nodes != len(nodes.Items) {
		t.Errorf("read %d nodes, the cluster has %d", first.Nodes, len(nodes.Items))
	}

	time.Sleep(3 * time.Second)
	// within: bytes at rate over the time between two reads, which lies
	// between the end of the first and the start of the second read, and the
	// start of the first and the end of the second (±1 for truncation).
	within := func(what string, got int64, rate float64, from0, from1, to0, to1 time.Time) {
		t.Helper()
		lo, hi := int64(rate*to0.Sub(from1).Seconds())-1, int64(rate*to1.Sub(from0).Seconds())+1
		if got < lo || got > hi {
			t.Errorf("%s: %d bytes, want %d..%d (%.0f B/s for %s..%s)", what, got, lo, hi, rate, to0.Sub(from1), to1.Sub(from0))
		}
	}
	second, b2, a2 := read()
	got := second.Namespaces[ns]
	within("web in", got.In, 2000, b1, a1, b2, a2)
	within("web out", got.Out, 500, b1, a1, b2, a2)

	// A pod started after the second read counts all its bytes at the third.
	if _, err := c.Client.CoreV1().Pods(ns).Create(ctx, trafficPod("late", "1000", "0", false), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	s.waitRunning(t, ns, 3)
	scrape0, scrape1 := firstScrape("late")
	time.Sleep(2 * time.Second)
	third, b3, a3 := read()
	got = third.Namespaces[ns]
	// web over the interval, plus late since that scrape.
	lo := int64(2000*b3.Sub(a2).Seconds()+1000*b3.Sub(scrape1).Seconds()) - 2
	hi := int64(2000*a3.Sub(b2).Seconds()+1000*a3.Sub(scrape0).Seconds()) + 2
	if got.In < lo || got.In > hi {
		t.Errorf("third read in: %d bytes, want %d..%d (web 2000 B/s since the second read, late 1000 B/s since its first scrape)", got.In, lo, hi)
	}
	within("web out, third read", got.Out, 500, b2, a2, b3, a3)

	// The collector puts the bytes into the namespace's samples.
	h, err := db.Connect(ctx, "sqlite://"+filepath.Join(t.TempDir(), "cg.db"), db.Options{Log: testLogger()}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	collector := metering.New(metering.Config{Registry: s.Registry, Store: h.Store, Traffic: src, Log: testLogger()})
	tick := time.Now().UTC().Truncate(time.Minute)
	time.Sleep(2 * time.Second)
	b4 := time.Now()
	if res := collector.Tick(ctx, tick); len(res.Failed) > 0 || res.Samples == 0 || res.Spooled > 0 {
		t.Fatalf("tick: %+v", res)
	}
	a4 := time.Now()
	store, err := h.Store()
	if err != nil {
		t.Fatal(err)
	}
	recs, _, err := store.Metering(ctx, db.MeteringQuery{Unit: db.Hour, Scope: db.Scope{c.Context: {All: true}}, Namespaces: []string{ns}})
	if err != nil || len(recs) != 1 {
		t.Fatalf("hour records %+v, %v", recs, err)
	}
	// web and late receive 3,000 B/s together; host never counts.
	within("stored traffic in", recs[0].TrafficIn, 3000, b3, a3, b4, a4)
	within("stored traffic out", recs[0].TrafficOut, 500, b3, a3, b4, a4)
}
