package api_test

import (
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clustergraph/clustergraph/api"
	"github.com/clustergraph/clustergraph/archive"
	"github.com/clustergraph/clustergraph/db"
	"github.com/clustergraph/clustergraph/internal/testenv"
	"github.com/clustergraph/clustergraph/k8s/lease"
	"github.com/clustergraph/clustergraph/metering"
)

type eventOut struct {
	Reason, Type string
	Count        int
	Archived     bool
	Metadata     struct{ Name string }
}

// TestEventArchive: events are archived as they arrive and change, and
// answered after the apiserver dropped them, merged with live ones without
// duplicates, on Query.events and on the object's events field, as RBAC
// allows.
func TestEventArchive(t *testing.T) {
	cs := testenv.Clusters(t)
	c := cs[0]
	const ns = "archive-e2e"
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Client.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "victim", Namespace: ns}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example/app:1"}}}}
	if _, err := c.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	event := func(name, reason string) *corev1.Event {
		return &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Name: name, Namespace: ns},
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: "victim", APIVersion: "v1"},
			Reason:         reason, Message: "archive test " + reason, Type: corev1.EventTypeWarning,
			Source: corev1.EventSource{Component: "archive-test"}, Count: 1, FirstTimestamp: now, LastTimestamp: now,
		}
	}
	evs := c.Client.CoreV1().Events(ns)
	for _, e := range []*corev1.Event{event("gone-1", "Gone"), event("gone-2", "AlsoGone"), event("stays", "Stays")} {
		if _, err := evs.Create(ctx, e, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	h := sqlite(t)
	s := startServer(t, serverOpts{kubeconfigs: kubeconfigs(cs), waitReady: true, db: h})
	arch := &archive.Archiver{Registry: s.Registry, Store: h.Store, Log: testLogger()}
	store, _ := h.Store()
	archived := func(reason string) (db.ArchivedEvent, bool) {
		got, _, err := store.Events(ctx, db.EventQuery{Scope: db.Scope{c.Context: {All: true}}, Namespace: ns, Reason: reason, Limit: 10})
		if err != nil || len(got) != 1 {
			return db.ArchivedEvent{}, false
		}
		return got[0], true
	}
	eventually(t, 20*time.Second, "three events archived", func() bool {
		if _, err := arch.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		_, a := archived("Gone")
		_, b := archived("AlsoGone")
		_, c := archived("Stays")
		return a && b && c
	})
	// A repeat (count 1 -> 3) reaches the archive.
	e, err := evs.Get(ctx, "gone-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e.Count, e.LastTimestamp = 3, metav1.NewTime(now.Add(time.Minute))
	if _, err := evs.Update(ctx, e, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the repeat archived", func() bool {
		_, _ = arch.Sweep(ctx)
		a, ok := archived("Gone")
		return ok && a.Count == 3
	})
	// The apiserver drops two of them.
	for _, name := range []string{"gone-1", "gone-2"} {
		if err := evs.Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var out struct {
		Events struct {
			TotalCount int
			Nodes      []eventOut
		}
	}
	q := `query($c: [String!], $ns: String) { events(clusters: $c, filter: {namespace: $ns}) { totalCount nodes { reason type count archived metadata { name } } } }`
	vars := map[string]any{"c": []string{c.Context}, "ns": ns}
	eventually(t, 20*time.Second, "the deleted events gone from the cache", func() bool {
		s.query(t, q, vars, &out)
		live := 0
		for _, n := range out.Events.Nodes {
			if !n.Archived {
				live++
			}
		}
		return live == len(out.Events.Nodes)-2
	})
	byReason := map[string]eventOut{}
	for _, n := range out.Events.Nodes {
		if _, dup := byReason[n.Reason]; dup {
			t.Errorf("event %s listed twice", n.Reason)
		}
		byReason[n.Reason] = n
	}
	for reason, want := range map[string]eventOut{
		"Gone":     {Reason: "Gone", Type: "Warning", Count: 3, Archived: true},
		"AlsoGone": {Reason: "AlsoGone", Type: "Warning", Count: 1, Archived: true},
		"Stays":    {Reason: "Stays", Type: "Warning", Count: 1, Archived: false},
	} {
		got := byReason[reason]
		got.Metadata.Name = ""
		if got != want {
			t.Errorf("event %s: %+v, want %+v", reason, got, want)
		}
	}
	if out.Events.TotalCount != len(out.Events.Nodes) {
		t.Errorf("totalCount %d, %d listed", out.Events.TotalCount, len(out.Events.Nodes))
	}
	// Newest first: the repeated event is the newest.
	if len(out.Events.Nodes) > 0 && out.Events.Nodes[0].Reason != "Gone" {
		t.Errorf("first event %s, want the repeated Gone", out.Events.Nodes[0].Reason)
	}

	// Paging through the merged list visits each event once.
	seen := map[string]int{}
	after := ""
	for range 5 {
		var page struct {
			Events struct {
				Nodes    []eventOut
				PageInfo struct {
					HasNextPage bool
					EndCursor   string
				}
			}
		}
		s.query(t, `query($c: [String!], $ns: String, $after: String) { events(clusters: $c, filter: {namespace: $ns}, first: 1, after: $after) { nodes { reason archived } pageInfo { hasNextPage endCursor } } }`,
			map[string]any{"c": []string{c.Context}, "ns": ns, "after": after}, &page)
		for _, n := range page.Events.Nodes {
			seen[n.Reason]++
		}
		if !page.Events.PageInfo.HasNextPage {
			break
		}
		after = page.Events.PageInfo.EndCursor
	}
	for _, r := range []string{"Gone", "AlsoGone", "Stays"} {
		if seen[r] != 1 {
			t.Errorf("paging saw %s %d times, want once (all: %v)", r, seen[r], seen)
		}
	}

	// The pod's own events field merges the same way.
	var podOut struct {
		Pods struct {
			Nodes []struct {
				Events struct{ Nodes []eventOut }
			}
		}
	}
	s.query(t, `query($c: [String!], $ns: String) { pods(clusters: $c, filter: {namespace: $ns}) { nodes { events { nodes { reason archived count } } } } }`, vars, &podOut)
	ours := map[string]bool{}
	if len(podOut.Pods.Nodes) == 1 {
		for _, e := range podOut.Pods.Nodes[0].Events.Nodes {
			if e.Reason == "Gone" || e.Reason == "AlsoGone" || e.Reason == "Stays" {
				if ours[e.Reason] {
					t.Errorf("pod event %s listed twice", e.Reason)
				}
				ours[e.Reason] = true
				if e.Archived != (e.Reason != "Stays") {
					t.Errorf("pod event %+v: archived is wrong", e)
				}
			}
		}
	}
	if len(ours) != 3 {
		t.Errorf("pod events %+v, want the three test events (two archived) among them", podOut.Pods.Nodes)
	}

	// A caller who may not list events in the namespace sees none of them.
	user := makeUser(t, cs, "archive-viewer", func(cl testenv.Cluster, u string) {
		if cl.Context == c.Context {
			roleBinding(t, cl, "shop", "archive-viewer", "ClusterRole", "view", u)
		}
	})
	authed := startServer(t, serverOpts{kubeconfigs: kubeconfigs(cs), waitReady: true, auth: true, db: h})
	var theirs struct{ Events struct{ TotalCount int } }
	authed.as(user.token).query(t, `query($c: [String!], $ns: String) { events(clusters: $c, filter: {namespace: $ns}) { totalCount } }`, vars, &theirs)
	if theirs.Events.TotalCount != 0 {
		t.Errorf("a viewer of shop sees %d events of %s", theirs.Events.TotalCount, ns)
	}
}

// TestDatabaseOutage: with MariaDB stopped for a while, the collector
// spools its samples and POST /alert answers 503 (so Alertmanager
// retries); once MariaDB is back, nothing is lost and nothing counted twice.
func TestDatabaseOutage(t *testing.T) {
	cs := testenv.Clusters(t)
	m := testenv.StartMariaDB(t)
	h, err := db.Connect(ctx, m.DSN, db.Options{Log: testLogger()}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	a := startServer(t, serverOpts{kubeconfigs: kubeconfigs(cs[:1]), waitReady: true, db: h,
		configHook: func(c *api.Config) { c.AlertAuth.Token = alertToken }})
	spool, err := db.OpenSpool[db.Sample](filepath.Join(t.TempDir(), "spool.jsonl"), 100000)
	if err != nil {
		t.Fatal(err)
	}
	collector := metering.New(metering.Config{Registry: a.Registry, Store: h.Store, Spool: spool, Log: testLogger()})
	t0 := time.Now().UTC().Truncate(time.Hour).Add(-3 * time.Hour)
	tick := func(i int) metering.TickResult {
		return collector.Tick(ctx, t0.Add(time.Duration(i)*time.Minute))
	}
	first := tick(0)
	if first.Samples == 0 || first.Spooled != 0 {
		t.Fatalf("first tick: %+v", first)
	}
	alert := amPayload(cs[0].Context, "firing", t0.Format(time.RFC3339), "0001-01-01T00:00:00Z")

	m.Stop()
	down := tick(1)
	if down.Spooled != down.Samples || spool.Len() != down.Samples {
		t.Errorf("tick with the database down: %+v, spool holds %d; want every sample spooled", down, spool.Len())
	}
	if code := postAlert(t, a, alert, nil); code != 503 {
		t.Errorf("POST /alert with the database down: %d, want 503", code)
	}
	r := a.do(t, `{ metering { totalCount } }`, nil)
	if len(r.Errors) == 0 || r.Errors[0].Extensions["code"] != "UNAVAILABLE" {
		t.Errorf("metering with the database down: %+v, want UNAVAILABLE", r.Errors)
	}

	m.Start()
	up := tick(2)
	if up.Flushed != down.Samples || up.Spooled != 0 || spool.Len() != 0 {
		t.Errorf("tick after recovery: %+v, spool %d; want the spool flushed", up, spool.Len())
	}
	tick(2) // replayed
	for range 2 {
		if code := postAlert(t, a, alert, nil); code != 200 {
			t.Errorf("POST /alert after recovery: %d", code)
		}
	}
	var out struct {
		Metering struct {
			TotalCount int
			Nodes      []struct {
				Namespace string
				Samples   int
			}
		}
		Alerts struct{ TotalCount int }
	}
	a.query(t, `{ metering(timeUnit: HOUR, first: 100) { totalCount nodes { namespace samples } } alerts { totalCount } }`, nil, &out)
	if out.Metering.TotalCount == 0 {
		t.Fatal("no metering records")
	}
	// Namespaces other tests create or delete meanwhile hold fewer samples;
	// the seeded ones lived through all three ticks. None may hold more.
	stable := map[string]bool{"default": true, "kube-system": true}
	for ns := range seedNamespaces {
		stable[ns] = true
	}
	seen := 0
	for _, n := range out.Metering.Nodes {
		if stable[n.Namespace] {
			seen++
			if n.Samples != 3 {
				t.Errorf("namespace %s: %d samples in the hour, want 3 (one per tick, none lost, none doubled)", n.Namespace, n.Samples)
			}
		} else if n.Samples > 3 {
			t.Errorf("namespace %s: %d samples from 3 ticks", n.Namespace, n.Samples)
		}
	}
	if seen != len(stable) {
		t.Errorf("%d of the %d seeded namespaces have records", seen, len(stable))
	}
	if out.Alerts.TotalCount != 1 {
		t.Errorf("%d alerts, want 1", out.Alerts.TotalCount)
	}
}

// TestLeaderFailover: two replicas campaign for the Lease; one works at a
// time, and when the leader dies without releasing, the other takes over
// within the lease duration (plus one retry period).
func TestLeaderFailover(t *testing.T) {
	cs := testenv.Clusters(t)
	s := startServer(t, serverOpts{kubeconfigs: kubeconfigs(cs[:1]), waitReady: true})
	c := s.Registry.Clusters()[0]
	name := "cg-failover-" + time.Now().Format("150405")
	t.Cleanup(func() {
		_ = cs[0].Client.CoordinationV1().Leases("default").Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	var running, maxRunning atomic.Int32
	var mu sync.Mutex
	started := map[string]time.Time{}
	const duration = 3 * time.Second
	campaign := func(id string) context.CancelFunc {
		cctx, cancel := context.WithCancel(context.Background())
		go lease.RunWhileLeader(cctx, c, lease.Options{Namespace: "default", Name: name, Identity: id, Duration: duration, Log: testLogger(), KeepOnStop: true},
			func(wctx context.Context) {
				n := running.Add(1)
				for {
					m := maxRunning.Load()
					if n <= m || maxRunning.CompareAndSwap(m, n) {
						break
					}
				}
				mu.Lock()
				started[id] = time.Now()
				mu.Unlock()
				<-wctx.Done()
				running.Add(-1)
			})
		return cancel
	}
	stopA := campaign("replica-a")
	eventually(t, 20*time.Second, "replica-a leading", func() bool { mu.Lock(); defer mu.Unlock(); return !started["replica-a"].IsZero() })
	stopB := campaign("replica-b")
	defer stopB()
	time.Sleep(2 * duration)
	mu.Lock()
	if !started["replica-b"].IsZero() {
		t.Errorf("replica-b led while replica-a held the lease")
	}
	mu.Unlock()
	killed := time.Now()
	stopA() // dies without releasing the lease
	eventually(t, 4*duration, "replica-b taking over", func() bool { mu.Lock(); defer mu.Unlock(); return !started["replica-b"].IsZero() })
	mu.Lock()
	took := started["replica-b"].Sub(killed)
	mu.Unlock()
	t.Logf("replica-b took over %s after replica-a died (lease duration %s)", took.Round(100*time.Millisecond), duration)
	if maxRunning.Load() > 1 {
		t.Errorf("%d replicas worked at once", maxRunning.Load())
	}
}
