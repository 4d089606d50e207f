package api_test

// Fault tests: real processes fail under clustergraph (an apiserver killed
// and restarted with its etcd history compacted, an apiserver paused,
// MariaDB killed, MariaDB closing idle connections) and the tests check
// what it promises then. Each fault hits a cluster or server of the test's
// own, never the shared seeded ones.

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/clustergraph/clustergraph/api"
	"github.com/clustergraph/clustergraph/db"
	"github.com/clustergraph/clustergraph/internal/testenv"
	"github.com/clustergraph/clustergraph/k8s"
	"github.com/clustergraph/clustergraph/metering"
)

// podVersion is what the fault tests compare of a pod: which object (a
// pod deleted and created again under its name has another uid) at which
// version. Equal versions mean equal objects.
type podVersion struct{ UID, RV string }

// faultPod creates a pod whose label mark is "v0000000", a value etcd
// holds exactly once in the pod's record (see rewriteInEtcd).
func faultPod(t *testing.T, c testenv.Cluster, ns, name string) {
	t.Helper()
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": "faults", "mark": "v0000000"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example/app:1"}}}}
	// A new namespace's default ServiceAccount, which admission wants, comes
	// a moment after the namespace.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := c.Client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
		switch {
		case err == nil:
			return
		case apierrors.IsForbidden(err) && strings.Contains(err.Error(), "service account") && time.Now().Before(deadline):
			time.Sleep(100 * time.Millisecond)
		default:
			t.Fatal(err)
		}
	}
}

// labelPod sets a label through the apiserver.
func labelPod(t *testing.T, c testenv.Cluster, ns, name, key, value string) {
	t.Helper()
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:%q}}}`, key, value)
	if _, err := c.Client.CoreV1().Pods(ns).Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

// rewriteInEtcd changes a stored pod behind the apiserver's back: from,
// which must occur exactly once in its record, becomes to, of the same
// length (so the protobuf's lengths stay right).
func rewriteInEtcd(t *testing.T, e *testenv.Etcd, ns, name, from, to string) {
	t.Helper()
	key := "/registry/pods/" + ns + "/" + name
	kv := e.Get(key)
	if kv == nil || bytes.Count(kv.Value, []byte(from)) != 1 || len(from) != len(to) {
		t.Fatalf("etcd record of pod %s/%s: want %q exactly once (and a replacement of its length)", ns, name, from)
	}
	e.Put(key, bytes.Replace(kv.Value, []byte(from), []byte(to), 1))
}

// apiserverPods is the oracle: the pods of a namespace as the apiserver
// lists them (a quorum read), by name, with the list's resourceVersion.
func apiserverPods(t *testing.T, c testenv.Cluster, ns, selector string) (map[string]podVersion, string) {
	t.Helper()
	l, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]podVersion{}
	for _, p := range l.Items {
		out[p.Name] = podVersion{UID: string(p.UID), RV: p.ResourceVersion}
	}
	return out, l.ResourceVersion
}

// cachedPods is what clustergraph lists from its cache, ordered by name
// (a sortable query: after a few uses it is answered from a kept list).
func cachedPods(t *testing.T, s *server, ns, selector string) map[string]podVersion {
	t.Helper()
	var out struct {
		Pods struct {
			TotalCount int
			Nodes      []struct {
				Metadata struct{ Name, UID, ResourceVersion string }
			}
		}
	}
	s.query(t, `query($ns: String, $sel: String) { pods(filter: {namespace: $ns, labelSelector: $sel}, orderBy: {field: NAME}, first: 100) {
		totalCount nodes { metadata { name uid resourceVersion } } } }`, map[string]any{"ns": ns, "sel": selector}, &out)
	m := map[string]podVersion{}
	for _, n := range out.Pods.Nodes {
		m[n.Metadata.Name] = podVersion{UID: n.Metadata.UID, RV: n.Metadata.ResourceVersion}
	}
	if out.Pods.TotalCount != len(m) || len(m) != len(out.Pods.Nodes) {
		t.Errorf("pods list: totalCount %d, %d nodes, %d names", out.Pods.TotalCount, len(out.Pods.Nodes), len(m))
	}
	return m
}

// podWatch is one GraphQL watch of a namespace's pods (or objects of
// another kind) over a websocket,
// read without pause by its own goroutine (so a quiet minute does not
// close it) and applied to a model of the namespace. Every event must make
// sense against the model: ADDED for a pod it does not hold, MODIFIED and
// DELETED for one it holds, and no version of a pod delivered twice or
// after a newer one. What breaks these rules is kept in problems.
type podWatch struct {
	kind     string
	mu       sync.Mutex
	state    map[string]podVersion
	seen     map[podVersion]bool
	events   []string // "TYPE name", in order
	problems []string
	synced   int
	// atSync are the state and cursor at the first SYNCED.
	atSync       map[string]podVersion
	atSyncCursor string
	closed       error
}

const faultWatchQuery = `subscription($kind: String!, $ns: String, $after: String) { watch(kind: $kind, namespace: $ns, after: $after) {
	type cursor object { id metadata { name uid resourceVersion } } } }`

// watchPods subscribes to a namespace's pods, resuming after cursor (when
// set) with from as the state the stream had there.
func watchPods(t *testing.T, s *server, ns, cursor string, from map[string]podVersion) *podWatch {
	t.Helper()
	return watchKind(t, s, "Pod", ns, cursor, from)
}

// watchKind is watchPods for any kind clustergraph watches.
func watchKind(t *testing.T, s *server, kind, ns, cursor string, from map[string]podVersion) *podWatch {
	t.Helper()
	w := &podWatch{kind: kind, state: maps.Clone(from), seen: map[podVersion]bool{}}
	if w.state == nil {
		w.state = map[string]podVersion{}
	}
	for _, v := range w.state {
		w.seen[v] = true
	}
	c := initWS(t, s, "")
	vars := map[string]any{"kind": kind, "ns": ns}
	if cursor != "" {
		vars["after"] = cursor
	}
	wsSend(t, c, map[string]any{"id": "w", "type": "subscribe", "payload": map[string]any{"query": faultWatchQuery, "variables": vars}})
	rctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go w.read(rctx, c)
	return w
}

func (w *podWatch) read(ctx context.Context, c *websocket.Conn) {
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			w.mu.Lock()
			w.closed = err
			w.mu.Unlock()
			return
		}
		leaks.check("a websocket frame", b)
		var m wsMessage
		if err := json.Unmarshal(b, &m); err != nil {
			w.problem("frame %s: %v", b, err)
			continue
		}
		switch {
		case m.Type == "ping":
			_ = c.Write(ctx, websocket.MessageText, []byte(`{"type":"pong"}`))
		case m.Type == "next" && m.ID == "w":
			var r struct {
				Data struct {
					Watch struct {
						Type, Cursor string
						Object       *struct {
							ID       string
							Metadata struct{ Name, UID, ResourceVersion string }
						}
					}
				}
				Errors []gqlError
			}
			if err := json.Unmarshal(m.Payload, &r); err != nil || len(r.Errors) > 0 {
				w.problem("watch result %s: %v", m.Payload, err)
				continue
			}
			ev := r.Data.Watch
			var name string
			var v podVersion
			if ev.Object != nil {
				name, v = ev.Object.Metadata.Name, podVersion{UID: ev.Object.Metadata.UID, RV: ev.Object.Metadata.ResourceVersion}
				if id, err := k8s.ParseID(ev.Object.ID); err != nil || id.GVK.Kind != w.kind || id.Name != name {
					w.problem("%s %s: id %q is %+v, %v", ev.Type, name, ev.Object.ID, id, err)
				}
			}
			w.apply(ev.Type, ev.Cursor, name, v)
		case m.Type == "pong" || m.Type == "ka":
		default:
			w.problem("unexpected message %+v", m)
		}
	}
}

func (w *podWatch) problem(format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.problems = append(w.problems, fmt.Sprintf(format, args...))
}

func (w *podWatch) apply(typ, cursor, name string, v podVersion) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.events = append(w.events, strings.TrimSpace(typ+" "+name))
	bad := func(format string, args ...any) {
		w.problems = append(w.problems, fmt.Sprintf(typ+" "+name+": "+format, args...))
	}
	cur, held := w.state[name]
	switch typ {
	case "RESYNC":
		// Documented: the current state follows as ADDED events.
		w.state, w.seen = map[string]podVersion{}, map[podVersion]bool{}
	case "SYNCED":
		w.synced++
		if w.synced == 1 {
			w.atSync, w.atSyncCursor = maps.Clone(w.state), cursor
		}
	case "ADDED", "MODIFIED":
		switch {
		case typ == "ADDED" && held:
			bad("already held at %+v", cur)
		case typ == "MODIFIED" && !held:
			bad("not held")
		case w.seen[v]:
			bad("version %+v delivered again", v)
		case held && cur.UID == v.UID && rvNumber(v.RV) <= rvNumber(cur.RV):
			bad("version %s after %s", v.RV, cur.RV)
		}
		w.seen[v] = true
		w.state[name] = v
	case "DELETED":
		if !held {
			bad("not held")
		}
		delete(w.state, name)
	default:
		bad("unknown event type")
	}
}

// rvNumber reads a resourceVersion as the etcd revision it is on these
// clusters (clients must not, in general; the tests know the backend).
func rvNumber(rv string) uint64 {
	n, _ := strconv.ParseUint(rv, 10, 64)
	return n
}

func (w *podWatch) snapshot() (state map[string]podVersion, events, problems []string, closed error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.state), slices.Clone(w.events), slices.Clone(w.problems), w.closed
}

func (w *podWatch) syncedOnce() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.synced > 0
}

// converged waits until the apiserver, clustergraph's cached lists (all of
// the namespace, and those selector picks) and every watch hold the same
// pods at the same versions, and fails the test with what differed last if
// they never do.
func converged(t *testing.T, c testenv.Cluster, s *server, ns, selector string, timeout time.Duration, watches ...*podWatch) bool {
	t.Helper()
	var diff string
	deadline := time.Now().Add(timeout)
	for {
		want, _ := apiserverPods(t, c, ns, "")
		wantSel, _ := apiserverPods(t, c, ns, selector)
		diff = ""
		if got := cachedPods(t, s, ns, ""); !maps.Equal(got, want) {
			diff += fmt.Sprintf("\ncached list:   %v", got)
		}
		if got := cachedPods(t, s, ns, selector); !maps.Equal(got, wantSel) {
			diff += fmt.Sprintf("\ncached %s: %v (apiserver: %v)", selector, got, wantSel)
		}
		for i, w := range watches {
			if got, _, _, closed := w.snapshot(); !maps.Equal(got, want) {
				diff += fmt.Sprintf("\nwatch %d:       %v (closed: %v)", i, got, closed)
			}
		}
		if diff == "" {
			return true
		}
		if time.Now().After(deadline) {
			t.Errorf("after %s clustergraph and the apiserver still disagree:\napiserver:     %v%s", timeout, want, diff)
			return false
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestAPIServerRestartAndCompaction: the apiserver crashes mid-watch while
// changes are in flight; while it is down, etcd changes behind its back
// (a pod deleted, one relabelled, one deleted and created again under its
// name) and its history is compacted, so the informers' resourceVersion is
// gone (410) and they must relist; it restarts and more changes follow.
// The apiserver is the oracle: clustergraph's cached lists (kept sorted
// lists included), a watch that stayed open throughout and a watch resumed
// from a cursor taken before the crash must all end in exactly its state,
// with no change lost, none delivered twice and none out of order.
func TestAPIServerRestartAndCompaction(t *testing.T) {
	c := testenv.StartCluster(t, "cg-restart", 1)
	const ns, sel = "faults", "mark=v0000000"
	makeNamespace(t, c, ns)
	for i := range 6 {
		faultPod(t, c, ns, fmt.Sprintf("p%d", i))
	}
	start := time.Now()
	phase := func(what string) { t.Logf("%s at %s", what, time.Since(start).Round(time.Millisecond)) }
	s := startServer(t, serverOpts{kubeconfigs: []string{c.Kubeconfig}, waitReady: true})
	open := watchPods(t, s, ns, "", nil)
	eventually(t, 30*time.Second, "the watch's current state", open.syncedOnce)
	// Quiet first (the pods scheduled and running), so the lists are kept
	// and the resumed watch below has a settled starting point.
	if !converged(t, c, s, ns, sel, time.Minute, open) {
		t.FailNow()
	}
	phase("settled")
	open.mu.Lock()
	cursor, atCursor := open.atSyncCursor, open.atSync
	open.mu.Unlock()

	// Changes in flight as the apiserver dies.
	faultPod(t, c, ns, "p6")
	deletePod(t, c, ns, "p2")
	e := c.Etcd(t)
	var gone int64
	p4, err := c.Client.CoreV1().Pods(ns).Get(ctx, "p4", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c.RestartAPIServer(t, func() {
		// Every version clustergraph can have seen is at most this.
		gone = e.Revision()
		if e.Delete("/registry/pods/"+ns+"/p3") != 1 {
			t.Fatal("p3 is not in etcd")
		}
		rewriteInEtcd(t, e, ns, "p1", "v0000000", "v1111111")
		rewriteInEtcd(t, e, ns, "p4", string(p4.UID), string(uuid.NewUUID()))
		rev := e.Put("/clustergraph-faults/bump", []byte("x"))
		e.Compact(rev)
	})
	phase("restarted")
	// The apiserver refuses to resume from any version clustergraph held:
	// its informers can only catch up by listing again.
	wi, err := c.Client.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: strconv.FormatInt(gone, 10)})
	switch {
	case err != nil:
		if !apierrors.IsResourceExpired(err) && !apierrors.IsGone(err) {
			t.Fatalf("watch from version %d: %v, want 410", gone, err)
		}
	default:
		ev := <-wi.ResultChan()
		wi.Stop()
		if status, ok := ev.Object.(*metav1.Status); ev.Type != watch.Error || !ok || status.Code != 410 {
			t.Fatalf("watch from version %d after the compaction: %s %+v, want a 410 error", gone, ev.Type, ev.Object)
		}
	}

	// Changes once it is back, likely before clustergraph reconnects.
	faultPod(t, c, ns, "p7")
	labelPod(t, c, ns, "p0", "touched", "yes")
	deletePod(t, c, ns, "p5")

	resumed := watchPods(t, s, ns, cursor, atCursor)
	converged(t, c, s, ns, sel, time.Minute, open, resumed)
	phase("converged")
	// The changes made in etcd are real to the apiserver.
	want, _ := apiserverPods(t, c, ns, "")
	p1, err := c.Client.CoreV1().Pods(ns).Get(ctx, "p1", metav1.GetOptions{})
	if err != nil || p1.Labels["mark"] != "v1111111" || want["p4"].UID == string(p4.UID) || len(want) != 5 {
		t.Fatalf("the apiserver does not show the changes made in etcd: %v (p1: %v)", want, err)
	}
	for i, w := range []*podWatch{open, resumed} {
		_, events, problems, closed := w.snapshot()
		if len(problems) > 0 {
			t.Errorf("watch %d broke its promises: %v\nevents: %v", i, problems, events)
		}
		if closed != nil {
			t.Errorf("watch %d ended: %v", i, closed)
		}
		for _, ev := range []string{"DELETED p2", "DELETED p3", "DELETED p5"} {
			if !slices.Contains(events, ev) {
				t.Errorf("watch %d has no %q: %v", i, ev, events)
			}
		}
	}
}

// timedPost posts a query and returns the answer and how long it took; it
// never fails the test itself, so a goroutine may call it.
func timedPost(s *server, limit time.Duration, query string, vars map[string]any) (r response, took time.Duration, err error) {
	cctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, err := http.NewRequestWithContext(cctx, http.MethodPost, s.URL+"/query", bytes.NewReader(body))
	if err != nil {
		return r, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return r, time.Since(start), err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	took = time.Since(start)
	if err != nil {
		return r, took, err
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return r, took, fmt.Errorf("response is not JSON (%d): %s", resp.StatusCode, raw)
	}
	r.Status = resp.StatusCode
	return r, took, nil
}

// unavailable reports whether an answer is UNAVAILABLE for the cluster:
// an error naming it, or (apply answers per document) a document's error.
func unavailable(r response, cluster string) bool {
	if hasClusterError(r.Errors, cluster, "UNAVAILABLE") {
		return true
	}
	var out struct {
		Apply struct {
			Results []struct {
				Error *struct{ Message, Code string }
			}
		}
	}
	if len(r.Errors) > 0 || json.Unmarshal(r.Data, &out) != nil || len(out.Apply.Results) == 0 {
		return false
	}
	for _, d := range out.Apply.Results {
		if d.Error == nil || d.Error.Code != "UNAVAILABLE" || !strings.Contains(d.Error.Message, cluster) {
			return false
		}
	}
	return true
}

// failsFast is how long a write to an apiserver that stopped answering may
// take to fail. It is loose on purpose: the point is that the write does
// not hang until some long client timeout (left alone, it waits for
// HTTP/2's health check to drop the connection: 30 s without a frame, 15 s
// for the ping; or forever), not a latency figure (the machine is shared).
const failsFast = 15 * time.Second

// TestAPIServerPaused: an apiserver that stops answering without closing
// anything (a stopped process: connections open, no reply; as a blackholed
// network looks) turns its cluster STALE; reads keep serving the cache
// with an error naming the cluster; writes fail fast with UNAVAILABLE:
// those sent while it is STALE are refused unsent, those already under way
// (one on a server that knows the cluster's kinds, one on a server whose
// first write still asks discovery) are abandoned once the probe finds it
// STALE. Once it answers again the cluster is READY, what changed
// meanwhile is seen and writes work.
func TestAPIServerPaused(t *testing.T) {
	c := testenv.StartCluster(t, "cg-paused", 1)
	const ns = "faults"
	makeNamespace(t, c, ns)
	faultPod(t, c, ns, "target")
	faultPod(t, c, ns, "other")
	s := startServer(t, serverOpts{kubeconfigs: []string{c.Kubeconfig}, waitReady: true})
	if !converged(t, c, s, ns, "mark=v0000000", time.Minute) {
		t.FailNow()
	}
	var ids struct {
		Pods struct {
			Nodes []struct {
				ID       string
				Metadata struct{ Name string }
			}
		}
	}
	s.query(t, `query($ns: String) { pods(filter: {namespace: $ns}) { nodes { id metadata { name } } } }`, map[string]any{"ns": ns}, &ids)
	id := map[string]string{}
	for _, n := range ids.Pods.Nodes {
		id[n.Metadata.Name] = n.ID
	}
	const patch = `mutation($id: ID!, $v: String!) { patch(id: $id, type: MERGE, patch: {metadata: {labels: {written: $v}}}) { object { metadata { resourceVersion } } } }`
	manifest := fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: refused, namespace: %s}\n", ns)
	const apply = `mutation($c: String!, $m: String!) { apply(cluster: $c, manifest: $m) { results { error { code message } } } }`
	const del = `mutation($id: ID!) { delete(id: $id, gracePeriodSeconds: 0) { object { id } } }`
	e := c.Etcd(t)

	// One server has written before (it knows the cluster's kinds), the
	// other not yet (its first write asks the apiserver's discovery).
	var before struct {
		Patch struct {
			Object struct {
				Metadata struct{ ResourceVersion string }
			}
		}
	}
	s.query(t, patch, map[string]any{"id": id["target"], "v": "before"}, &before)
	fresh := startServer(t, serverOpts{kubeconfigs: []string{c.Kubeconfig}, waitReady: true})

	resume := c.Pause(t, testenv.APIServer)
	// Writes sent as the apiserver stops answering, before clustergraph
	// can know it: they must not hang either.
	type outcome struct {
		what string
		r    response
		took time.Duration
		err  error
	}
	inflight := make(chan outcome, 2)
	go func() {
		r, took, err := timedPost(s, 3*time.Minute, patch, map[string]any{"id": id["target"], "v": "in-flight"})
		inflight <- outcome{"patch in flight", r, took, err}
	}()
	go func() {
		m := strings.Replace(manifest, "refused", "in-flight", 1)
		r, took, err := timedPost(fresh, 3*time.Minute, apply, map[string]any{"c": c.Context, "m": m})
		inflight <- outcome{"first apply in flight", r, took, err}
	}()
	eventually(t, 30*time.Second, "the paused cluster to turn STALE", func() bool { return s.states(t)[c.Context] == "STALE" })

	// Reads serve the cache, with an error naming the cluster.
	r := s.do(t, `query($ns: String) { pods(filter: {namespace: $ns}) { totalCount } }`, map[string]any{"ns": ns})
	var count struct{ Pods struct{ TotalCount int } }
	if err := jsonInto(r, &count); err != nil || count.Pods.TotalCount != 2 {
		t.Errorf("pods of the paused cluster: %s %v, want the 2 cached ones", r.Data, err)
	}
	if !hasClusterError(r.Errors, c.Context, "UNAVAILABLE") {
		t.Errorf("errors %+v do not name the paused cluster as UNAVAILABLE", r.Errors)
	}

	// Writes fail fast, naming the cluster, refused before they are sent.
	for name, w := range map[string]struct {
		query string
		vars  map[string]any
	}{
		"patch":  {patch, map[string]any{"id": id["target"], "v": "refused"}},
		"apply":  {apply, map[string]any{"c": c.Context, "m": manifest}},
		"delete": {del, map[string]any{"id": id["other"]}},
	} {
		r, took, err := timedPost(s, 3*time.Minute, w.query, w.vars)
		t.Logf("%s while paused: %s", name, took.Round(time.Millisecond))
		switch {
		case err != nil:
			t.Errorf("%s while paused: %v after %s", name, err, took)
		case took > failsFast:
			t.Errorf("%s while paused took %s, want an error within %s", name, took, failsFast)
		case !unavailable(r, c.Context):
			t.Errorf("%s while paused: %+v %s, want UNAVAILABLE naming %s", name, r.Errors, r.Data, c.Context)
		case !strings.Contains(fmt.Sprint(r.Errors)+string(r.Data), "nothing was sent"):
			// A STALE cluster's writes are refused before they are sent,
			// and the caller hears so: retrying is safe.
			t.Errorf("%s while paused: %+v %s, want it refused up front (nothing was sent)", name, r.Errors, r.Data)
		}
	}
	for range 2 {
		got := <-inflight
		t.Logf("%s at the pause: %s, %+v", got.what, got.took.Round(time.Millisecond), got.r.Errors)
		switch {
		case got.err != nil:
			t.Errorf("%s at the pause: %v after %s", got.what, got.err, got.took)
		case got.took > failsFast:
			t.Errorf("%s at the pause took %s, want an error within %s", got.what, got.took, failsFast)
		case !unavailable(got.r, c.Context):
			t.Errorf("%s at the pause: %+v %s, want UNAVAILABLE naming %s", got.what, got.r.Errors, got.r.Data, c.Context)
		}
	}

	// A change made meanwhile elsewhere (here: in etcd, as through another
	// apiserver of the cluster).
	rewriteInEtcd(t, e, ns, "other", "v0000000", "v2222222")
	resume()
	eventually(t, 30*time.Second, "the resumed cluster to be READY", func() bool { return s.states(t)[c.Context] == "READY" })
	converged(t, c, s, ns, "mark=v0000000", 30*time.Second)
	if cached := cachedPods(t, s, ns, "mark=v2222222"); len(cached) != 1 {
		t.Errorf("the change made during the pause is not seen: %v", cached)
	}
	// The refused writes changed nothing.
	if p, err := c.Client.CoreV1().Pods(ns).Get(ctx, "target", metav1.GetOptions{}); err != nil || p.Labels["written"] == "refused" {
		t.Errorf("target after the refused patch: %v %v", err, p.Labels)
	}
	if _, err := c.Client.CoreV1().Pods(ns).Get(ctx, "other", metav1.GetOptions{}); err != nil {
		t.Errorf("other after the refused delete: %v", err)
	}
	if _, err := c.Client.CoreV1().ConfigMaps(ns).Get(ctx, "refused", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the refused apply: %v, want no ConfigMap", err)
	}
	// Writes work again.
	var out struct {
		Patch struct {
			Object struct {
				Metadata struct{ ResourceVersion string }
			}
		}
	}
	s.query(t, patch, map[string]any{"id": id["target"], "v": "after"}, &out)
	if p, err := c.Client.CoreV1().Pods(ns).Get(ctx, "target", metav1.GetOptions{}); err != nil || p.Labels["written"] != "after" {
		t.Errorf("write after the resume: %v %v", err, p.Labels)
	}
}

// meteringRig is clustergraph with a private MariaDB: its alert receiver
// and a metering collector (spooling to a file while the database is
// down) over the first seeded cluster, ticking on minutes of an hour three
// hours ago so that each tick's samples are countable.
type meteringRig struct {
	s     *server
	m     *testenv.MariaDBServer
	spool *db.Spool[db.Sample]
	tick  func(i int) metering.TickResult
	// alerts counts the distinct alerts posted; all start at startsAt, as
	// Alertmanager sends an alert again the same.
	alerts   atomic.Int64
	startsAt string
	cs       []testenv.Cluster
}

func newMeteringRig(t *testing.T, m *testenv.MariaDBServer) *meteringRig {
	t.Helper()
	cs := testenv.Clusters(t)
	h, err := db.Connect(ctx, m.DSN, db.Options{Log: testLogger()}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	s := startServer(t, serverOpts{kubeconfigs: kubeconfigs(cs[:1]), waitReady: true, db: h,
		configHook: func(c *api.Config) { c.AlertAuth.Token = alertToken }})
	spool, err := db.OpenSpool[db.Sample](filepath.Join(t.TempDir(), "spool.jsonl"), 100000)
	if err != nil {
		t.Fatal(err)
	}
	collector := metering.New(metering.Config{Registry: s.Registry, Store: h.Store, Spool: spool, Log: testLogger()})
	t0 := time.Now().UTC().Truncate(time.Hour).Add(-3 * time.Hour)
	return &meteringRig{s: s, m: m, spool: spool, cs: cs, startsAt: time.Now().UTC().Format(time.RFC3339), tick: func(i int) metering.TickResult {
		return collector.Tick(ctx, t0.Add(time.Duration(i)*time.Minute))
	}}
}

// postNewAlert posts an alert no one posted before (its own fingerprint)
// and returns the answer's status code, 0 when there was none.
func (g *meteringRig) postNewAlert() (fingerprint string, code int) {
	fingerprint = fmt.Sprintf("fa%014d", g.alerts.Add(1))
	return fingerprint, g.postAlert(fingerprint)
}

func (g *meteringRig) postAlert(fingerprint string) int {
	body := strings.Replace(amPayload(g.cs[0].Context, "firing", g.startsAt, "0001-01-01T00:00:00Z"), "c0ffee0123456789", fingerprint, 1)
	cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(cctx, http.MethodPost, g.s.URL+"/alert", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+alertToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// check asserts that the database holds every alert posted and, for each
// seeded namespace, one metering sample per tick.
func (g *meteringRig) check(t *testing.T, ticks int) {
	t.Helper()
	var out struct {
		Metering struct {
			Nodes []struct {
				Namespace string
				Samples   int
			}
		}
		Alerts struct{ TotalCount int }
	}
	g.s.query(t, `{ metering(timeUnit: HOUR, first: 100) { nodes { namespace samples } } alerts { totalCount } }`, nil, &out)
	stable := map[string]bool{"default": true, "kube-system": true}
	for ns := range seedNamespaces {
		stable[ns] = true
	}
	seen := 0
	for _, n := range out.Metering.Nodes {
		switch {
		case stable[n.Namespace]:
			seen++
			if n.Samples != ticks {
				t.Errorf("namespace %s: %d samples in the hour, want %d (one per tick, none lost, none doubled)", n.Namespace, n.Samples, ticks)
			}
		case n.Samples > ticks:
			t.Errorf("namespace %s: %d samples from %d ticks", n.Namespace, n.Samples, ticks)
		}
	}
	if seen != len(stable) {
		t.Errorf("%d of the %d seeded namespaces have records", seen, len(stable))
	}
	if want := int(g.alerts.Load()); out.Alerts.TotalCount != want {
		t.Errorf("%d alerts stored, %d posted", out.Alerts.TotalCount, want)
	}
}

// TestMySQLKilled: MariaDB is killed (SIGKILL: no shutdown, connections
// torn) while alerts arrive. Every alert answered 200 is stored; every
// other one is answered 503 (never left hanging), so Alertmanager sends it
// again, and it is stored once MariaDB is back. Metering samples taken
// while it is down are spooled and written after; nothing is lost or
// counted twice.
func TestMySQLKilled(t *testing.T) {
	m := testenv.StartMariaDB(t)
	g := newMeteringRig(t, m)
	if first := g.tick(0); first.Samples == 0 || first.Spooled != 0 {
		t.Fatalf("first tick: %+v", first)
	}

	// Alerts keep coming while MariaDB dies.
	var mu sync.Mutex
	answers := map[string]int{}
	stop := make(chan struct{})
	var posting sync.WaitGroup
	posting.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			fp, code := g.postNewAlert()
			mu.Lock()
			answers[fp] = code
			mu.Unlock()
			time.Sleep(20 * time.Millisecond)
		}
	})
	eventually(t, 30*time.Second, "a few alerts stored", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(answers) >= 5
	})
	m.Kill()
	mu.Lock()
	killed := len(answers)
	mu.Unlock()
	eventually(t, 30*time.Second, "alerts answered while MariaDB is down", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(answers) >= killed+5
	})
	close(stop)
	posting.Wait()
	var retry []string
	for fp, code := range answers {
		switch code {
		case 200:
		case 503:
			retry = append(retry, fp)
		default:
			t.Errorf("alert %s answered %d, want 200 or 503", fp, code)
		}
	}
	if len(retry) < 5 {
		t.Errorf("%d alerts answered 503 with MariaDB killed: %v", len(retry), answers)
	}

	down := g.tick(1)
	if down.Spooled != down.Samples || g.spool.Len() != down.Samples {
		t.Errorf("tick with MariaDB killed: %+v, spool holds %d; want every sample spooled", down, g.spool.Len())
	}
	r := g.s.do(t, `{ alerts { totalCount } }`, nil)
	if len(r.Errors) == 0 || r.Errors[0].Extensions["code"] != "UNAVAILABLE" {
		t.Errorf("alerts with MariaDB killed: %+v, want UNAVAILABLE", r.Errors)
	}

	m.Start()
	up := g.tick(2)
	if up.Flushed != down.Samples || up.Spooled != 0 || g.spool.Len() != 0 {
		t.Errorf("tick after recovery: %+v, spool %d; want the spool flushed", up, g.spool.Len())
	}
	// Alertmanager sends again what was not acknowledged.
	for _, fp := range retry {
		if code := g.postAlert(fp); code != 200 {
			t.Errorf("alert %s sent again after recovery: %d", fp, code)
		}
	}
	g.check(t, 3)
}

// TestMySQLWaitTimeout: MariaDB closes connections idle longer than its
// wait_timeout (8 hours by default; here 2 s), so after a quiet spell the
// connections clustergraph pooled are dead. No request may fail for it:
// the driver finds a dead connection before using it and database/sql
// takes another.
func TestMySQLWaitTimeout(t *testing.T) {
	m := testenv.StartMariaDB(t)
	admin, err := sql.Open("mysql", strings.TrimPrefix(m.DSN, "mysql://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	if _, err := admin.Exec("SET GLOBAL wait_timeout = 2"); err != nil {
		t.Fatal(err)
	}
	// One connection of the test's own, spared the timeout.
	conn, err := admin.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := conn.ExecContext(ctx, "SET SESSION wait_timeout = 3600"); err != nil {
		t.Fatal(err)
	}
	timedOut := func() int {
		var name string
		var n int
		if err := conn.QueryRowContext(ctx, "SHOW GLOBAL STATUS LIKE 'Aborted_clients'").Scan(&name, &n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	g := newMeteringRig(t, m) // connects after the change: its sessions get the 2 s
	// Many requests at once, so several connections are pooled.
	busy := func(round int) {
		t.Helper()
		var wg sync.WaitGroup
		codes := make([]int, 8)
		for i := range codes {
			wg.Go(func() { _, codes[i] = g.postNewAlert() })
		}
		for range 4 {
			wg.Go(func() {
				if r, _, err := timedPost(g.s, time.Minute, `{ alerts(first: 5) { totalCount nodes { id } } metering(first: 5) { totalCount } }`, nil); err != nil || len(r.Errors) > 0 {
					t.Errorf("round %d: reading alerts and metering: %v %+v", round, err, r.Errors)
				}
			})
		}
		res := g.tick(round)
		wg.Wait()
		if res.Samples == 0 || res.Spooled != 0 || g.spool.Len() != 0 {
			t.Errorf("round %d: tick %+v, spool %d: want every sample written", round, res, g.spool.Len())
		}
		for i, code := range codes {
			if code != 200 {
				t.Errorf("round %d: alert %d answered %d", round, i, code)
			}
		}
	}
	busy(0)
	for round := 1; round <= 2; round++ {
		before := timedOut()
		time.Sleep(3500 * time.Millisecond)
		// The server did close connections (else this test proves nothing).
		if closed := timedOut() - before; closed < 2 {
			t.Fatalf("round %d: MariaDB closed %d idle connections, want several", round, closed)
		}
		busy(round)
	}
	g.check(t, 3)
}
