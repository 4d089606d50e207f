package api_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/clustergraph/clustergraph/internal/testenv"
	"github.com/clustergraph/clustergraph/k8s"
)

// TestWatch: a watch streams the current state, then additions,
// modifications and deletions; a cursor resumes it without losing a
// deletion; an unknown cursor resyncs.
func TestWatch(t *testing.T) {
	cs := testenv.Clusters(t)
	c := cs[0]
	ns := "watch-test"
	makeNamespace(t, c, ns)
	makePod(t, c, ns, "before")
	s := startServer(t, serverOpts{kubeconfigs: []string{c.Kubeconfig}, waitReady: true})
	eventually(t, 10*time.Second, "the pod in the cache", func() bool {
		var out struct{ Pods struct{ TotalCount int } }
		s.query(t, `{ pods(filter: {namespace: "watch-test"}) { totalCount } }`, nil, &out)
		return out.Pods.TotalCount == 1
	})

	st := subscribeWS(t, s, "", watchQuery, map[string]any{"ns": ns})
	snapshotEvent := st.nextWatch()
	if snapshotEvent.Type != "ADDED" || snapshotEvent.Object.Metadata.Name != "before" {
		t.Fatalf("first event %+v, want the current state", snapshotEvent)
	}
	if ev := st.nextWatch(); ev.Type != "SYNCED" {
		t.Fatalf("second event %+v, want SYNCED", ev)
	}
	makePod(t, c, ns, "p1")
	added := st.until("ADDED", "p1")
	cursor := added[len(added)-1].Cursor
	if _, err := c.Client.CoreV1().Pods(ns).Patch(ctx, "p1", types.MergePatchType, []byte(`{"metadata":{"labels":{"touched":"yes"}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	st.until("MODIFIED", "p1")
	st.c.CloseNow()

	// While nobody watches: p1 goes, p2 comes.
	deletePod(t, c, ns, "p1")
	makePod(t, c, ns, "p2")
	eventually(t, 30*time.Second, "p1 gone from the cache and p2 in it", func() bool {
		var out struct {
			Pods struct{ Nodes []struct{ Name string } }
		}
		s.query(t, `{ pods(filter: {namespace: "watch-test", name: "p"}) { nodes { name } } }`, nil, &out)
		return len(out.Pods.Nodes) == 1 && out.Pods.Nodes[0].Name == "p2"
	})

	resumed := subscribeWS(t, s, "", watchQuery, map[string]any{"ns": ns, "after": cursor})
	seen := resumed.until("SYNCED", "")
	var deleted, addedP2, resync bool
	for _, ev := range seen {
		switch {
		case ev.Type == "DELETED" && ev.Object.Metadata.Name == "p1":
			deleted = true
		case ev.Type == "ADDED" && ev.Object.Metadata.Name == "p2":
			addedP2 = true
		case ev.Type == "RESYNC":
			resync = true
		}
	}
	if !deleted || !addedP2 || resync {
		t.Errorf("resumed stream %+v: want p1 DELETED and p2 ADDED replayed, no RESYNC", seen)
	}

	// A cursor from another server's life cannot be replayed: RESYNC, then
	// the current state.
	stale := encodeTestCursor(c.Context, "0000", 1)
	again := subscribeWS(t, s, "", watchQuery, map[string]any{"ns": ns, "after": stale})
	seen = again.until("SYNCED", "")
	if seen[0].Type != "RESYNC" {
		t.Fatalf("stale cursor: first event %+v, want RESYNC", seen[0])
	}
	var names []string
	for _, ev := range seen[1 : len(seen)-1] {
		names = append(names, ev.Type+" "+ev.Object.Metadata.Name)
	}
	if fmt.Sprint(names) != "[ADDED before ADDED p2]" && fmt.Sprint(names) != "[ADDED p2 ADDED before]" {
		t.Errorf("state after RESYNC = %v", names)
	}
	// A cursor taken inside the initial state cannot resume: the rest of the
	// state would be lost. It resyncs instead.
	mid := subscribeWS(t, s, "", watchQuery, map[string]any{"ns": ns, "after": snapshotEvent.Cursor})
	if seen := mid.until("SYNCED", ""); seen[0].Type != "RESYNC" || len(seen) < 3 {
		t.Errorf("resuming from a snapshot cursor: %+v, want RESYNC and the state", seen)
	}

	// An object that stops matching the filter is DELETED for the watcher.
	labelled := subscribeWS(t, s, "", `subscription { watch(kind: "Pod", namespace: "watch-test", labelSelector: "app=watch") { type cursor object { metadata { name namespace } } } }`, nil)
	labelled.until("SYNCED", "")
	if _, err := c.Client.CoreV1().Pods(ns).Patch(ctx, "p2", types.MergePatchType, []byte(`{"metadata":{"labels":{"app":"other"}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	labelled.until("DELETED", "p2")

	if code := subscribeWS(t, s, "", `subscription { watch(kind: "NoSuchKind") { type } }`, nil).errorCode(); code != "NOT_FOUND" {
		t.Errorf("an unknown kind: code %q, want NOT_FOUND", code)
	}
	if code := subscribeWS(t, s, "", watchQuery, map[string]any{"ns": ns, "after": "%%%"}).errorCode(); code != "BAD_USER_INPUT" {
		t.Errorf("a malformed cursor: code %q, want BAD_USER_INPUT", code)
	}
}

func encodeTestCursor(cluster, epoch string, seq uint64) string {
	b, _ := json.Marshal(map[string]any{cluster: map[string]any{"e": epoch, "s": seq}})
	return base64URL(b)
}

// TestWatchRBAC: a watcher sees only what RBAC grants, and the stream ends
// soon after the grant is revoked.
func TestWatchRBAC(t *testing.T) {
	cs := testenv.Clusters(t)
	c := cs[0]
	ns := "watch-rbac"
	makeNamespace(t, c, ns)
	makePod(t, c, ns, "visible")
	u := makeUser(t, cs[:1], "cg-watcher", func(c testenv.Cluster, user string) {
		roleBinding(t, c, ns, "cg-watcher", "ClusterRole", "view", user)
	})
	s := startServer(t, serverOpts{kubeconfigs: []string{c.Kubeconfig}, waitReady: true, auth: true})
	st := subscribeWS(t, s, u.token, watchQuery, nil)
	for _, ev := range st.until("SYNCED", "") {
		if ev.Object != nil && ev.Object.Metadata.Namespace != ns {
			t.Errorf("watcher bound to %s sees %s/%s", ns, ev.Object.Metadata.Namespace, ev.Object.Metadata.Name)
		}
	}
	makePod(t, c, "shop", "not-for-watcher")
	t.Cleanup(func() { deletePod(t, c, "shop", "not-for-watcher") })
	makePod(t, c, ns, "new")
	for _, ev := range st.until("ADDED", "new") {
		if ev.Object != nil && ev.Object.Metadata.Namespace != ns {
			t.Errorf("watcher sees %s/%s", ev.Object.Metadata.Namespace, ev.Object.Metadata.Name)
		}
	}
	// Listing is not watching: a caller who may get and list pods but not
	// watch them gets the SYNCED marker and no pod.
	lister := makeUser(t, cs[:1], "cg-lister", func(c testenv.Cluster, user string) {
		r := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "cg-lister", Namespace: ns}, Rules: []rbacv1.PolicyRule{
			{Verbs: []string{"get", "list"}, APIGroups: []string{""}, Resources: []string{"pods"}},
		}}
		if _, err := c.Client.RbacV1().Roles(ns).Create(ctx, r, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Client.RbacV1().Roles(ns).Delete(ctx, "cg-lister", metav1.DeleteOptions{}) })
		roleBinding(t, c, ns, "cg-lister", "Role", "cg-lister", user)
	})
	var listed struct{ Pods struct{ TotalCount int } }
	eventually(t, 15*time.Second, "the lister to list pods", func() bool {
		s.as(lister.token).query(t, `{ pods { totalCount } }`, nil, &listed)
		return listed.Pods.TotalCount > 0
	})
	for _, ev := range subscribeWS(t, s, lister.token, watchQuery, map[string]any{"ns": ns}).until("SYNCED", "") {
		if ev.Object != nil {
			t.Errorf("a caller without watch got %s %s", ev.Type, ev.Object.Metadata.Name)
		}
	}

	if err := c.Client.RbacV1().RoleBindings(ns).Delete(ctx, "cg-watcher", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	var last watchEvent
	for {
		var out struct{ Watch watchEvent }
		if !st.next(&out) {
			break
		}
		last = out.Watch
		if time.Since(revoked) > 15*time.Second {
			t.Fatal("the watch outlived the revoked grant by 15s")
		}
	}
	// The stream says why it ended.
	if last.Type != "ENDED" || last.Error == nil || last.Error.Code != "FORBIDDEN" {
		t.Errorf("last event %+v, want ENDED with a FORBIDDEN error", last)
	}
	t.Logf("stream ended %s after the RoleBinding was deleted", time.Since(revoked).Round(time.Millisecond))
}

// TestEventsSubscription: Kubernetes Events arrive as they happen, filtered.
func TestEventsSubscription(t *testing.T) {
	cs := testenv.Clusters(t)
	c := cs[0]
	ns := "watch-events"
	makeNamespace(t, c, ns)
	s := startServer(t, serverOpts{kubeconfigs: []string{c.Kubeconfig}, waitReady: true})
	st := subscribeWS(t, s, "", `subscription { events(filter: {namespace: "watch-events", reason: "Scheduled"}) { reason involvedName namespace } }`, nil)
	// Give the subscription a moment to register before the event happens.
	time.Sleep(500 * time.Millisecond)
	makePod(t, c, ns, "evented")
	var out struct {
		Events struct{ Reason, InvolvedName, Namespace string }
	}
	if !st.next(&out) {
		t.Fatal("the events stream ended")
	}
	if out.Events.Reason != "Scheduled" || out.Events.InvolvedName != "evented" || out.Events.Namespace != ns {
		t.Errorf("event = %+v", out.Events)
	}
}

// TestSlowSubscriberResyncs: a reader that falls behind is resynced (RESYNC,
// the current state, SYNCED) instead of slowing the informer or losing a
// deletion.
func TestSlowSubscriberResyncs(t *testing.T) {
	cs := testenv.Clusters(t)
	c := cs[0]
	ns := "watch-slow"
	makeNamespace(t, c, ns)
	s := startServer(t, serverOpts{kubeconfigs: []string{c.Kubeconfig}, waitReady: true})
	changes := s.rawSubscribe(t, c.Context, ns, 1)
	if ch := <-changes; ch.Type != k8s.Synced {
		t.Fatalf("first change %s, want SYNCED (the namespace is empty)", ch.Type)
	}
	// Not reading while five pods are created overflows the buffer of one.
	for i := range 5 {
		makePod(t, c, ns, fmt.Sprintf("slow-%d", i))
	}
	time.Sleep(2 * time.Second)
	var types []k8s.ChangeType
	resynced := false
	timeout := time.After(30 * time.Second)
	for !resynced {
		select {
		case ch := <-changes:
			types = append(types, ch.Type)
			resynced = ch.Type == k8s.Resync
		case <-timeout:
			t.Fatalf("no RESYNC after overflowing; saw %v", types)
		}
	}
	added := 0
	for ch := range changes {
		if ch.Type == k8s.Synced {
			break
		}
		added++
	}
	if added != 5 {
		t.Errorf("the resync carried %d pods, want 5", added)
	}
}

// TestWatchCRD watches a custom resource through an informer started on
// demand for it.
func TestWatchCRD(t *testing.T) {
	cs := testenv.Clusters(t)
	c := cs[0]
	gvr := schema.GroupVersionResource{Group: "watch.example.com", Version: "v1", Resource: "widgets"}
	widgets := testenv.CreateCRD(t, c, gvr, "Widget", true)
	s := startServer(t, serverOpts{kubeconfigs: []string{c.Kubeconfig}, waitReady: true})
	for _, kind := range []string{"Widget", "widgets.watch.example.com"} {
		st := subscribeWS(t, s, "", `subscription($k: String!) { watch(kind: $k, namespace: "shop") { type cursor object { metadata { name namespace } ... on Resource { kind } } } }`, map[string]any{"k": kind})
		if ev := st.nextWatch(); ev.Type != "SYNCED" {
			t.Fatalf("%s: first event %+v, want SYNCED (no widgets yet)", kind, ev)
		}
		name := "w-" + strings.ToLower(strings.ReplaceAll(kind, ".", "-"))
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "watch.example.com/v1", "kind": "Widget", "metadata": map[string]any{"name": name},
		}}
		if _, err := widgets.Namespace("shop").Create(ctx, u, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		st.until("ADDED", name)
		if err := widgets.Namespace("shop").Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		st.until("DELETED", name)
	}
}

// TestStalledSubscriberDoesNotDelayOthers: one subscriber that never reads
// and one that does; every change still reaches the reader.
func TestStalledSubscriberDoesNotDelayOthers(t *testing.T) {
	cs := testenv.Clusters(t)
	c := cs[0]
	ns := "watch-stall"
	makeNamespace(t, c, ns)
	s := startServer(t, serverOpts{kubeconfigs: []string{c.Kubeconfig}, waitReady: true})
	// The stalled one: subscribed, never read after its first change.
	stalled := s.rawSubscribe(t, c.Context, ns, 1)
	<-stalled
	reader := subscribeWS(t, s, "", watchQuery, map[string]any{"ns": ns})
	reader.until("SYNCED", "")
	const n = 30
	created := map[string]time.Time{}
	for i := range n {
		name := fmt.Sprintf("stall-%02d", i)
		created[name] = time.Now()
		makePod(t, c, ns, name)
	}
	var worst time.Duration
	for seen := map[string]bool{}; len(seen) < n; {
		ev := reader.nextWatch()
		if ev.Type == "ADDED" && !seen[ev.Object.Metadata.Name] {
			seen[ev.Object.Metadata.Name] = true
			worst = max(worst, time.Since(created[ev.Object.Metadata.Name]))
		}
	}
	t.Logf("the reader got all %d pods while another subscriber stalled; slowest creation-to-delivery %s", n, worst.Round(time.Millisecond))
}
