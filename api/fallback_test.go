package api_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clustergraph/clustergraph/api"
	"github.com/clustergraph/clustergraph/caller"
	"github.com/clustergraph/clustergraph/internal/testenv"
	"github.com/clustergraph/clustergraph/k8s"
)

// webhook stands in for an authorizer besides RBAC: it allows get and
// list of services in one namespace to one user, and leaves every other
// question to the real apiserver. It records what it was asked.
type webhook struct {
	user, namespace string

	mu    sync.Mutex
	asked []k8s.Question
}

func (w *webhook) review(ctx context.Context, c *k8s.Cluster, s *caller.Subject, q k8s.Question) (bool, error) {
	w.mu.Lock()
	w.asked = append(w.asked, q)
	w.mu.Unlock()
	if s.User == w.user && q.Group == "" && q.Resource == "services" && q.Namespace == w.namespace && (q.Verb == "get" || q.Verb == "list" || q.Verb == "watch") {
		return true, nil
	}
	if s.User == w.user && q.Group == "" && q.Resource == "namespaces" && q.Name == w.namespace && q.Verb == "get" {
		return true, nil
	}
	return k8s.SubjectAccessReview(ctx, c, s, q)
}

func (w *webhook) take() []k8s.Question {
	w.mu.Lock()
	defer w.mu.Unlock()
	q := w.asked
	w.asked = nil
	return q
}

// TestAuthzFallback: with --authz-fallback=sar, what RBAC refuses is put to
// the cluster's authorizer, and what it allows is served (here an
// authorizer allowing a user the services of one namespace, which RBAC
// does not); a list asks once for the cluster and once per namespace of
// what RBAC hides, never per object, and answers are reused. With the
// fallback off the same user sees nothing.
func TestAuthzFallback(t *testing.T) {
	cs := testenv.Clusters(t)
	c := cs[0]
	granted, other := "fallback-granted", "fallback-other"
	for _, ns := range []string{granted, other} {
		makeNamespace(t, c, ns)
		for i := range 3 {
			svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("svc-%d", i), Namespace: ns},
				Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}
			if _, err := c.Client.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	hooked := makeUser(t, cs[:1], "cg-hooked", nil)
	// A user whose access is RBAC alone is never put to the authorizer.
	bound := makeUser(t, cs[:1], "cg-rbac-bound", func(c testenv.Cluster, user string) {
		roleBinding(t, c, other, "cg-rbac-bound", "ClusterRole", "view", user)
	})
	admin := makeUser(t, cs[:1], "cg-fallback-admin", func(c testenv.Cluster, user string) {
		clusterBinding(t, c, "cg-fallback-admin", "cluster-admin", user)
	})
	wh := &webhook{user: hooked.user, namespace: granted}
	opts := serverOpts{kubeconfigs: []string{c.Kubeconfig}, waitReady: true, auth: true, accessReview: wh.review}
	off := startServer(t, opts)
	opts.authzFallback = api.AuthzFallbackSAR
	on := startServer(t, opts)

	all, err := c.Client.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	namespaces := map[string]bool{}
	for _, s := range all.Items {
		namespaces[s.Namespace] = true
	}
	want := func(ns string) []string {
		var keys []string
		for i := range 3 {
			keys = append(keys, key(c.Context, ns, fmt.Sprintf("svc-%d", i)))
		}
		return keys
	}
	// Wait until the cache holds the new services.
	agree(t, "services of "+granted, func() []string { return want(granted) }, func() []string {
		return off.as(admin.token).all(t, "services", fmt.Sprintf(`, filter: {namespace: %q}`, granted))
	})

	if got := off.as(hooked.token).all(t, "services", ""); len(got) != 0 {
		t.Errorf("fallback off: the user sees %v, want nothing", got)
	}
	if q := wh.take(); len(q) != 0 {
		t.Errorf("fallback off: the authorizer was asked %v", q)
	}

	// One operation, two lists of the same kind: each question once.
	var out struct{ A, B struct{ TotalCount int } }
	on.as(hooked.token).query(t, `{ a: services { totalCount } b: services(first: 1) { totalCount } }`, nil, &out)
	if out.A.TotalCount != 3 || out.B.TotalCount != 3 {
		t.Errorf("fallback on: the user sees %d and %d services, want 3 (those of %s)", out.A.TotalCount, out.B.TotalCount, granted)
	}
	asked := wh.take()
	if len(asked) > 1+len(namespaces) {
		t.Errorf("a list of services asked %d questions, more than 1 + %d namespaces: %v", len(asked), len(namespaces), asked)
	}
	seen := map[k8s.Question]bool{}
	for _, q := range asked {
		if q.Name != "" || q.Verb != "list" || q.Resource != "services" {
			t.Errorf("a list asked %+v: lists ask list questions, never about one object", q)
		}
		if seen[q] {
			t.Errorf("asked twice in one operation: %+v", q)
		}
		seen[q] = true
	}
	if !seen[k8s.Question{Verb: "list", Resource: "services"}] || !seen[k8s.Question{Verb: "list", Resource: "services", Namespace: granted}] {
		t.Errorf("questions %v lack the cluster-wide list or the list in %s", asked, granted)
	}
	if got := on.as(hooked.token).all(t, "services", ""); !slices.Equal(got, want(granted)) {
		t.Errorf("fallback on: services = %v, want %v", got, want(granted))
	}
	if q := wh.take(); len(q) != 0 {
		t.Errorf("answers were not reused within their lifetime: asked again %v", q)
	}

	// Lookups: allowed in the granted namespace, FORBIDDEN elsewhere.
	lookup := func(ns string) response {
		id := k8s.ObjectID{Cluster: c.Context, GVK: k8s.GVKService, Namespace: ns, Name: "svc-0"}.Encode()
		return on.as(hooked.token).do(t, `query($id: ID!) { object(id: $id) { id } }`, map[string]any{"id": id})
	}
	if r := lookup(granted); len(r.Errors) > 0 {
		t.Errorf("lookup in %s: %+v", granted, r.Errors)
	}
	if r := lookup(other); len(r.Errors) == 0 || r.Errors[0].Extensions["code"] != "FORBIDDEN" {
		t.Errorf("lookup in %s: %s %+v, want FORBIDDEN", other, r.Data, r.Errors)
	}

	// A watch delivers what the authorizer allows too: the granted
	// namespace's services, then SYNCED; without the fallback it is refused.
	if code := subscribeWS(t, off, hooked.token, `subscription { watch(kind: "Service") { type } }`, nil).errorCode(); code != "FORBIDDEN" {
		t.Errorf("watch with the fallback off: %q, want FORBIDDEN", code)
	}
	st := subscribeWS(t, on, hooked.token, `subscription { watch(kind: "Service") { type object { metadata { name namespace } } } }`, nil)
	var watched []string
	for {
		var ev struct{ Watch watchEvent }
		if !st.next(&ev) {
			t.Fatalf("watch ended after %v", watched)
		}
		if ev.Watch.Type == "SYNCED" {
			break
		}
		watched = append(watched, key(c.Context, ev.Watch.Object.Metadata.Namespace, ev.Watch.Object.Metadata.Name))
	}
	slices.Sort(watched)
	if !slices.Equal(watched, want(granted)) {
		t.Errorf("fallback on: watch delivered %v, want %v", watched, want(granted))
	}

	// viewer lists the namespace the authorizer lets the user get.
	var v struct {
		Viewer struct {
			Clusters []struct{ Namespaces []struct{ Name string } }
		}
	}
	on.as(hooked.token).query(t, `{ viewer { clusters { namespaces { name } } } }`, nil, &v)
	if len(v.Viewer.Clusters) != 1 || len(v.Viewer.Clusters[0].Namespaces) != 1 || v.Viewer.Clusters[0].Namespaces[0].Name != granted {
		t.Errorf("fallback on: viewer namespaces %+v, want just %s", v.Viewer.Clusters, granted)
	}

	// RBAC's yes is final: the bound user's services of its namespace
	// need no review, and it sees exactly those.
	wh.take()
	if got := on.as(bound.token).all(t, "services", fmt.Sprintf(`, filter: {namespace: %q}`, other)); !slices.Equal(got, want(other)) {
		t.Errorf("RBAC-bound user: services = %v, want %v", got, want(other))
	}
	for _, q := range wh.take() {
		if q.Namespace == other {
			t.Errorf("asked %+v, which RBAC allows", q)
		}
	}
}
