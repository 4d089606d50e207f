package api_test

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clustergraph/clustergraph/db"
	"github.com/clustergraph/clustergraph/internal/testenv"
	"github.com/clustergraph/clustergraph/metering"
)

// meteredNamespace creates a namespace with known contents: two pods with
// simulated usage (one requesting a GPU), a ClusterIP service, a
// LoadBalancer service with two ingress addresses, and a 3Gi volume bound
// to a claim.
func meteredNamespace(t *testing.T, c testenv.Cluster, meterNS string) {
	t.Helper()
	cl := c.Client
	mustCreate := func(err error) {
		t.Helper()
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	_, err := cl.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: meterNS}}, metav1.CreateOptions{})
	mustCreate(err)
	t.Cleanup(func() { _ = cl.CoreV1().Namespaces().Delete(context.Background(), meterNS, metav1.DeleteOptions{}) })
	nodes, err := cl.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil || len(nodes.Items) == 0 {
		t.Fatalf("nodes: %v", err)
	}
	pod := func(name, cpu, mem string, gpu bool) *corev1.Pod {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: meterNS, Labels: map[string]string{"app": "meter"},
				Annotations: map[string]string{"kwok.x-k8s.io/usage-cpu": cpu, "kwok.x-k8s.io/usage-memory": mem}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example/meter:1"}}},
		}
		if gpu {
			// Placed by hand: no kwok node advertises GPUs to the scheduler.
			p.Spec.NodeName = nodes.Items[0].Name
			q := corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("1")}
			p.Spec.Containers[0].Resources = corev1.ResourceRequirements{Requests: q, Limits: q}
		}
		return p
	}
	for _, p := range []*corev1.Pod{pod("meter-a", "250m", "64Mi", false), pod("meter-gpu", "50m", "16Mi", true)} {
		_, err := cl.CoreV1().Pods(meterNS).Create(ctx, p, metav1.CreateOptions{})
		mustCreate(err)
	}
	port := []corev1.ServicePort{{Port: 80}}
	_, err = cl.CoreV1().Services(meterNS).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "internal"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "meter"}, Ports: port}}, metav1.CreateOptions{})
	mustCreate(err)
	lb, err := cl.CoreV1().Services(meterNS).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "public"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: map[string]string{"app": "meter"}, Ports: port}}, metav1.CreateOptions{})
	mustCreate(err)
	if err == nil {
		lb.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "203.0.113.10"}, {IP: "203.0.113.11"}}
		if _, err := cl.CoreV1().Services(meterNS).UpdateStatus(ctx, lb, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: meterNS + "-pv"},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("3Gi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName:              meterNS,
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/tmp/" + meterNS}},
		},
	}
	_, err = cl.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{})
	mustCreate(err)
	t.Cleanup(func() {
		_ = cl.CoreV1().PersistentVolumes().Delete(context.Background(), pv.Name, metav1.DeleteOptions{})
	})
	class := meterNS
	_, err = cl.CoreV1().PersistentVolumeClaims(meterNS).Create(ctx, &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data"},
		Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: &class, AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("2Gi")}}},
	}, metav1.CreateOptions{})
	mustCreate(err)
}

// topPods sums `kubectl top pods` for a namespace: millicores and bytes
// (kubectl prints memory in whole Mi).
func topPods(t *testing.T, c testenv.Cluster, ns string) (cpu, memMi int64, pods int, err error) {
	out, err := testenv.Kubectl(t, c, "top", "pods", "-n", ns, "--no-headers")
	if err != nil {
		return 0, 0, 0, err
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		m, _ := strconv.ParseInt(strings.TrimSuffix(f[1], "m"), 10, 64)
		mi, _ := strconv.ParseInt(strings.TrimSuffix(f[2], "Mi"), 10, 64)
		cpu, memMi, pods = cpu+m, memMi+mi, pods+1
	}
	return cpu, memMi, pods, nil
}

// sampleOf runs the collector's sampling of one cluster and picks a namespace.
func sampleOf(t *testing.T, s *server, cluster, ns string, tick time.Time) (db.Sample, []db.UsageSample) {
	t.Helper()
	cl, err := s.Registry.Cluster(cluster)
	if err != nil {
		t.Fatal(err)
	}
	samples, usage, err := metering.Sample(ctx, cl, tick)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range samples {
		if x.Namespace == ns {
			return x, usage
		}
	}
	t.Fatalf("no sample of namespace %s", ns)
	return db.Sample{}, nil
}

// TestMeteringSamplesMatchTheCluster: the collector's sample of a namespace
// agrees with `kubectl top pods` and with the services, pods and volumes
// created in it.
func TestMeteringSamplesMatchTheCluster(t *testing.T) {
	cs := testenv.Clusters(t)
	c := cs[0]
	const meterNS = "metering-sample"
	meteredNamespace(t, c, meterNS)
	s := startServer(t, serverOpts{kubeconfigs: kubeconfigs(cs[:1]), waitReady: true})
	s.waitRunning(t, meterNS, 2)
	var last db.Sample
	var top [3]int64
	metricsEventually(t, c, "a sample that matches kubectl top and the namespace's objects", func() bool {
		cpu, mi, pods, err := topPods(t, c, meterNS)
		if err != nil || pods != 2 {
			return false
		}
		last, _ = sampleOf(t, s, c.Context, meterNS, time.Now().Truncate(time.Minute))
		top = [3]int64{cpu, mi, int64(pods)}
		return last.CPUMillis == cpu && last.MemoryBytes>>20 >= mi && last.MemoryBytes>>20 <= mi+1 &&
			last.StorageBytes == 3<<30 && last.PublicIPs == 2
	})
	want := db.Sample{Cluster: c.Context, Namespace: meterNS, Time: last.Time, CPUMillis: top[0], MemoryBytes: last.MemoryBytes,
		StorageBytes: 3 << 30, GPUMillis: 1000, PublicIPs: 2, PrivateIPs: 4}
	if last != want {
		t.Errorf("sample %+v\nwant   %+v (kubectl top: %dm, %dMi; 2 pod IPs and 2 cluster IPs are private)", last, want, top[0], top[1])
	}
	if last.CPUMillis < 290 || last.CPUMillis > 310 {
		// 250m + 50m from the kwok usage annotations.
		t.Errorf("CPU %dm, want about 300m", last.CPUMillis)
	}
}

// TestMeteringOverGraphQL: collector ticks stored in a database come back
// through Query.metering, Namespace.metering, Cluster.metering and the pods'
// usage history, filtered by RBAC; bad arguments are clear errors.
func TestMeteringOverGraphQL(t *testing.T) {
	cs := testenv.Clusters(t)
	c := cs[0]
	const meterNS = "metering-graphql"
	meteredNamespace(t, c, meterNS)
	h, err := db.Connect(ctx, "sqlite://"+filepath.Join(t.TempDir(), "cg.db"), db.Options{Log: testLogger()}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	admin := startServer(t, serverOpts{kubeconfigs: kubeconfigs(cs), waitReady: true, db: h})
	admin.waitRunning(t, meterNS, 2)
	collector := metering.New(metering.Config{Registry: admin.Registry, Store: h.Store, Log: testLogger()})
	// Wait for metrics of the new pods, so both ticks carry their usage.
	metricsEventually(t, c, "metrics of the test pods", func() bool {
		_, usage := sampleOf(t, admin, c.Context, meterNS, time.Now())
		n := 0
		for _, u := range usage {
			if u.Namespace == meterNS {
				n++
			}
		}
		return n == 2
	})
	t1 := time.Now().UTC().Truncate(time.Hour).Add(-2 * time.Hour).Add(10 * time.Minute)
	t2 := t1.Add(time.Minute)
	for _, tick := range []time.Time{t1, t2, t2} { // t2 twice: a replay
		if res := collector.Tick(ctx, tick); len(res.Failed) > 0 || res.Spooled > 0 {
			t.Fatalf("tick %s: %+v", tick, res)
		}
	}

	var out struct {
		Metering struct {
			TotalCount int
			Nodes      []struct {
				Cluster, Namespace, TimeUnit, MeteringTime string
				Samples                                    int
				CPU, Memory, Storage, Gpu                  float64
				PublicIP, PrivateIP                        float64
			}
		}
	}
	admin.query(t, `query($ns: String) { metering(namespace: $ns, timeUnit: HOUR) { totalCount nodes { cluster namespace timeUnit meteringTime samples cpu memory storage gpu publicIp privateIp } } }`, map[string]any{"ns": meterNS}, &out)
	if out.Metering.TotalCount != 1 || len(out.Metering.Nodes) != 1 {
		t.Fatalf("metering of %s: %+v", meterNS, out.Metering)
	}
	r := out.Metering.Nodes[0]
	if r.Samples != 2 || r.Storage != 3<<30 || r.Gpu != 1 || r.PublicIP != 2 || r.PrivateIP != 4 || r.CPU < 0.29 || r.CPU > 0.31 ||
		r.TimeUnit != "HOUR" || r.MeteringTime != t1.Truncate(time.Hour).Format(time.RFC3339) {
		t.Errorf("hour record %+v (want 2 samples, 3Gi, 1 GPU, 2 public and 4 private IPs, about 0.3 cores)", r)
	}

	// Every namespace was sampled once per tick: the seeded ones (which
	// other tests leave alone) hold exactly two samples a day, none more.
	var all struct {
		Metering struct {
			Nodes []struct {
				Cluster, Namespace string
				Samples            int
			}
		}
	}
	admin.query(t, `{ metering(timeUnit: DAY, first: 100) { nodes { cluster namespace samples } } }`, nil, &all)
	stable := map[string]bool{"default": true, "kube-system": true}
	for ns := range seedNamespaces {
		stable[ns] = true
	}
	seen := 0
	for _, n := range all.Metering.Nodes {
		switch {
		case stable[n.Namespace]:
			seen++
			if n.Samples != 2 {
				t.Errorf("%s/%s: %d samples, want 2 (two ticks, one replayed)", n.Cluster, n.Namespace, n.Samples)
			}
		case n.Samples > 2:
			t.Errorf("%s/%s: %d samples from two ticks", n.Cluster, n.Namespace, n.Samples)
		}
	}
	if seen != len(stable)*len(cs) {
		t.Errorf("%d day records of seeded namespaces, want %d (each in each cluster)", seen, len(stable)*len(cs))
	}

	// Batched fields on namespaces, the cluster, and pods.
	var nested struct {
		Cluster struct {
			Metering  []struct{ CPUMillis float64 }
			Namespace struct {
				Metering []struct{ Samples int }
				Pods     struct {
					Nodes []struct {
						Name         string
						UsageHistory []struct{ CPUMillis int64 }
					}
				}
			}
		}
	}
	// A page of 20 pods (the namespace has fewer): usage history since a
	// time is charged as up to a day of samples per pod, so a full page of
	// 100 pods' histories is over the query cost limit.
	admin.query(t, `query($c: String!, $ns: String!, $since: Time) { cluster(name: $c) { metering(timeUnit: HOUR) { cpuMillis }
		namespace(name: $ns) { metering(timeUnit: HOUR) { samples } pods(first: 20) { nodes { name usageHistory(since: $since) { cpuMillis } } } } } }`,
		map[string]any{"c": c.Context, "ns": meterNS, "since": t1.Format(time.RFC3339)}, &nested)
	if len(nested.Cluster.Metering) != 1 || nested.Cluster.Metering[0].CPUMillis < 290 {
		t.Errorf("cluster metering %+v", nested.Cluster.Metering)
	}
	if len(nested.Cluster.Namespace.Metering) != 1 || nested.Cluster.Namespace.Metering[0].Samples != 2 {
		t.Errorf("namespace metering %+v", nested.Cluster.Namespace.Metering)
	}
	for _, p := range nested.Cluster.Namespace.Pods.Nodes {
		if len(p.UsageHistory) != 2 || p.UsageHistory[0].CPUMillis == 0 {
			t.Errorf("pod %s usage history %+v, want two samples", p.Name, p.UsageHistory)
		}
	}

	// RBAC: a user who may view only shop sees only shop's records.
	user := makeUser(t, cs, "metering-viewer", func(cl testenv.Cluster, u string) {
		if cl.Context == c.Context {
			roleBinding(t, cl, "shop", "metering-viewer", "ClusterRole", "view", u)
		}
	})
	authed := startServer(t, serverOpts{kubeconfigs: kubeconfigs(cs), waitReady: true, auth: true, db: h})
	var mine struct {
		Metering struct {
			Nodes []struct{ Cluster, Namespace string }
		}
	}
	eventually(t, 30*time.Second, "the viewer's metering", func() bool {
		authed.as(user.token).query(t, `{ metering(timeUnit: HOUR) { nodes { cluster namespace } } }`, nil, &mine)
		return len(mine.Metering.Nodes) > 0
	})
	for _, n := range mine.Metering.Nodes {
		if n.Cluster != c.Context || n.Namespace != "shop" {
			t.Errorf("viewer of shop sees metering of %s/%s", n.Cluster, n.Namespace)
		}
	}

	for name, q := range map[string]string{
		"inverted range":   `{ metering(startTime: "2026-02-01T00:00:00Z", endTime: "2026-01-01T00:00:00Z") { totalCount } }`,
		"over the maximum": `{ metering(first: 100000) { totalCount } }`,
		"bad cursor":       `{ metering(after: "bogus") { totalCount } }`,
		"unknown sort":     `{ metering(sort: [{field: SIZE}]) { totalCount } }`,
		"unknown timeUnit": `{ metering(timeUnit: WEEK) { totalCount } }`,
	} {
		r := admin.do(t, q, nil)
		if len(r.Errors) == 0 {
			t.Errorf("%s: no error", name)
			continue
		}
		code, _ := r.Errors[0].Extensions["code"].(string)
		if code != "BAD_USER_INPUT" && code != "GRAPHQL_VALIDATION_FAILED" {
			t.Errorf("%s: code %q (%s), want BAD_USER_INPUT or GRAPHQL_VALIDATION_FAILED", name, code, r.Errors[0].Message)
		}
	}
}
