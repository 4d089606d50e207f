package resolvers_test

import (
	"testing"
	"time"

	"github.com/99designs/gqlgen/client"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/clustergraph/clustergraph/caller"
	"github.com/clustergraph/clustergraph/errkind"
	"github.com/clustergraph/clustergraph/k8s"
)

// t0 is when the fixture's first object was created.
var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// namespace is an active namespace of the fixture.
func namespace(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("ns-" + name)},
		Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}}
}

// pod is a pod of the fixture, created minutes after t0, in phase.
func pod(ns, name, app string, minutes int, phase corev1.PodPhase) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("pod-" + ns + "-" + name),
			Labels: map[string]string{"app": app}, CreationTimestamp: metav1.NewTime(t0.Add(time.Duration(minutes) * time.Minute))},
		Spec:   corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example/" + app + ":1"}}},
		Status: corev1.PodStatus{Phase: phase},
	}
}

// alice may get and list pods in shop of cluster east, and nothing else.
var alice = &caller.Subject{User: "alice", Groups: []string{"system:authenticated"}}

// fixture is two clusters: east with namespaces shop and ops, west with
// shop; pods of three apps; and alice's one Role.
func fixture(t *testing.T) *client.Client {
	t.Helper()
	reg, err := k8s.NewStaticRegistry(map[string][]runtime.Object{
		"east": {
			namespace("shop"), namespace("ops"),
			pod("ops", "agent", "agent", 0, corev1.PodRunning),
			pod("shop", "web-1", "web", 1, corev1.PodRunning),
			pod("shop", "db-0", "db", 2, corev1.PodRunning),
			pod("shop", "web-2", "web", 3, corev1.PodPending),
			&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "pod-reader"},
				Rules: []rbacv1.PolicyRule{{Verbs: []string{"get", "list"}, APIGroups: []string{""}, Resources: []string{"pods"}}}},
			&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "alice-reads-pods"},
				RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "pod-reader"},
				Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "alice"}}},
		},
		"west": {
			namespace("shop"),
			pod("shop", "web-3", "web", 4, corev1.PodRunning),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return newClient(reg)
}

// podPage is what the list tests read of a page of pods.
type podPage struct {
	TotalCount int
	PageInfo   struct {
		HasNextPage, HasPreviousPage bool
		EndCursor                    *string
	}
	Nodes []struct {
		Name, Namespace string
		Cluster         struct{ Name string }
	}
}

// keys names the page's pods as cluster/namespace/name.
func (p podPage) keys() []string {
	out := []string{}
	for _, n := range p.Nodes {
		out = append(out, n.Cluster.Name+"/"+n.Namespace+"/"+n.Name)
	}
	return out
}

const podsQuery = `query($clusters: [String!], $filter: PodFilter, $order: Order, $first: Int, $after: String) {
	pods(clusters: $clusters, filter: $filter, orderBy: $order, first: $first, after: $after) {
		totalCount pageInfo { hasNextPage hasPreviousPage endCursor } nodes { name namespace cluster { name } } } }`

// TestPodListFilterAndOrder: pods across clusters are filtered by
// namespace, name, labels and status and sorted as asked, the default
// order being cluster, namespace, name.
func TestPodListFilterAndOrder(t *testing.T) {
	c := fixture(t)
	for _, tc := range []struct {
		name string
		vars map[string]any
		want []string
	}{
		{"default order", nil, []string{"east/ops/agent", "east/shop/db-0", "east/shop/web-1", "east/shop/web-2", "west/shop/web-3"}},
		{"by label, newest first", map[string]any{"filter": map[string]any{"labelSelector": "app=web"}, "order": map[string]any{"field": "CREATED", "direction": "DESC"}},
			[]string{"west/shop/web-3", "east/shop/web-2", "east/shop/web-1"}},
		{"by set label, by namespace", map[string]any{"filter": map[string]any{"labelSelector": "app in (db,agent)"}, "order": map[string]any{"field": "NAMESPACE"}},
			[]string{"east/ops/agent", "east/shop/db-0"}},
		{"by namespace and status, by name", map[string]any{"filter": map[string]any{"namespace": "shop", "status": "Running"}, "order": map[string]any{"field": "NAME"}},
			[]string{"east/shop/db-0", "east/shop/web-1", "west/shop/web-3"}},
		{"by name, any case, in one cluster", map[string]any{"clusters": []string{"east"}, "filter": map[string]any{"name": "WEB"}},
			[]string{"east/shop/web-1", "east/shop/web-2"}},
		{"nothing matches", map[string]any{"filter": map[string]any{"labelSelector": "app=none"}}, []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out struct{ Pods podPage }
			if errs := run(t, c, podsQuery, tc.vars, &out, as(admin)); len(errs) > 0 {
				t.Fatalf("errors: %+v", errs)
			}
			if diff := cmp.Diff(tc.want, out.Pods.keys()); diff != "" {
				t.Errorf("pods (-want +got):\n%s", diff)
			}
			if out.Pods.TotalCount != len(tc.want) || out.Pods.PageInfo.HasNextPage {
				t.Errorf("totalCount %d, hasNextPage %v; want %d, false", out.Pods.TotalCount, out.Pods.PageInfo.HasNextPage, len(tc.want))
			}
		})
	}
	t.Run("bad selector", func(t *testing.T) {
		errs := run(t, c, podsQuery, map[string]any{"filter": map[string]any{"labelSelector": "app in ("}}, nil, as(admin))
		if diff := cmp.Diff([]refusal{{Code: errkind.CodeBadUserInput}}, refusals(errs)); diff != "" {
			t.Errorf("errors (-want +got):\n%s", diff)
		}
	})
}

// TestPodPagesFollowTheirCursors: pages of a sorted list, each after the
// last page's endCursor, hold the whole list once in order; a cursor is
// its order's, and another order refuses it.
func TestPodPagesFollowTheirCursors(t *testing.T) {
	c := fixture(t)
	byName := map[string]any{"field": "NAME"}
	var all []string
	var after any
	for page := 0; ; page++ {
		var out struct{ Pods podPage }
		if errs := run(t, c, podsQuery, map[string]any{"order": byName, "first": 2, "after": after}, &out, as(admin)); len(errs) > 0 {
			t.Fatalf("page %d: errors: %+v", page, errs)
		}
		p := out.Pods
		if p.TotalCount != 5 || p.PageInfo.HasPreviousPage != (page > 0) || len(p.Nodes) > 2 {
			t.Fatalf("page %d: totalCount %d, hasPreviousPage %v, %d nodes", page, p.TotalCount, p.PageInfo.HasPreviousPage, len(p.Nodes))
		}
		all = append(all, p.keys()...)
		if !p.PageInfo.HasNextPage {
			break
		}
		if page > 5 || p.PageInfo.EndCursor == nil {
			t.Fatalf("page %d: hasNextPage without an end (cursor %v)", page, p.PageInfo.EndCursor)
		}
		after = *p.PageInfo.EndCursor
	}
	want := []string{"east/ops/agent", "east/shop/db-0", "east/shop/web-1", "east/shop/web-2", "west/shop/web-3"}
	if diff := cmp.Diff(want, all); diff != "" {
		t.Errorf("pages (-want +got):\n%s", diff)
	}

	var first struct{ Pods podPage }
	run(t, c, podsQuery, map[string]any{"order": byName, "first": 1}, &first, as(admin))
	errs := run(t, c, podsQuery, map[string]any{"order": map[string]any{"field": "CREATED"}, "after": *first.Pods.PageInfo.EndCursor}, nil, as(admin))
	if diff := cmp.Diff([]refusal{{Code: errkind.CodeBadUserInput}}, refusals(errs)); diff != "" {
		t.Errorf("a NAME cursor for a CREATED list: errors (-want +got):\n%s", diff)
	}
}

// TestCallerSeesWhatRBACGrants: a caller's lists, lookups and viewer
// follow the cluster's RBAC objects: alice sees the pods of shop in east
// and nothing else, a pod she may not get is FORBIDDEN, one that does not
// exist is null.
func TestCallerSeesWhatRBACGrants(t *testing.T) {
	c := fixture(t)

	var pods struct{ Pods podPage }
	if errs := run(t, c, podsQuery, nil, &pods, as(alice)); len(errs) > 0 {
		t.Fatalf("errors: %+v", errs)
	}
	if diff := cmp.Diff([]string{"east/shop/db-0", "east/shop/web-1", "east/shop/web-2"}, pods.Pods.keys()); diff != "" {
		t.Errorf("alice's pods (-want +got):\n%s", diff)
	}

	type permission struct {
		Group, Resource string
		Verbs           []string
	}
	var v struct {
		Viewer struct {
			Clusters []struct {
				Cluster       struct{ Name string }
				AllNamespaces bool
				Namespaces    []struct{ Name string }
				Permissions   []permission
			}
		}
	}
	if errs := run(t, c, `{ viewer { clusters { cluster { name } allNamespaces namespaces { name } permissions(namespace: "shop") { group resource verbs } } } }`, nil, &v, as(alice)); len(errs) > 0 {
		t.Fatalf("viewer: errors: %+v", errs)
	}
	if len(v.Viewer.Clusters) != 2 {
		t.Fatalf("viewer clusters: %+v", v.Viewer.Clusters)
	}
	east, west := v.Viewer.Clusters[0], v.Viewer.Clusters[1]
	if east.Cluster.Name != "east" || east.AllNamespaces || len(east.Namespaces) != 1 || east.Namespaces[0].Name != "shop" {
		t.Errorf("alice in east: %+v", east)
	}
	for _, p := range east.Permissions {
		want := []string{}
		if p.Group == "" && p.Resource == "pods" {
			want = []string{"get", "list"}
		}
		if diff := cmp.Diff(want, p.Verbs); diff != "" {
			t.Errorf("alice's verbs on %s in shop (-want +got):\n%s", p.Resource, diff)
		}
	}
	if west.Cluster.Name != "west" || west.AllNamespaces || len(west.Namespaces) != 0 {
		t.Errorf("alice in west: %+v", west)
	}

	const object = `query($id: ID!) { object(id: $id) { ... on Pod { name } } }`
	var found struct{ Object *struct{ Name string } }
	if errs := run(t, c, object, map[string]any{"id": podID("east", "shop", "web-1")}, &found, as(alice)); len(errs) > 0 || found.Object == nil || found.Object.Name != "web-1" {
		t.Errorf("alice looks up shop/web-1: %+v %+v", found.Object, errs)
	}
	errs := run(t, c, object, map[string]any{"id": podID("east", "ops", "agent")}, nil, as(alice))
	if diff := cmp.Diff([]refusal{{Code: errkind.CodeForbidden, Cluster: "east"}}, refusals(errs)); diff != "" {
		t.Errorf("alice looks up ops/agent: errors (-want +got):\n%s", diff)
	}
	missing := map[string]any{"object": "unset"}
	if errs := run(t, c, object, map[string]any{"id": podID("east", "shop", "gone")}, &missing, as(admin)); len(errs) > 0 || missing["object"] != nil {
		t.Errorf("a pod that does not exist: %v %+v, want null", missing["object"], errs)
	}
}

// TestMutationsRefuseTheWrongKind: a mutation given the id of an object
// of a kind it does not act on refuses it with BAD_USER_INPUT before it
// writes anything (the fixture has no apiserver to write to).
func TestMutationsRefuseTheWrongKind(t *testing.T) {
	c := fixture(t)
	id := podID("east", "shop", "web-1")
	node := k8s.ObjectID{Cluster: "east", GVK: k8s.GVKNode, Name: "n1"}.Encode()
	for _, tc := range []struct {
		name, query string
		vars        map[string]any
	}{
		{"drain a pod", `mutation($id: ID!) { drain(id: $id) { __typename } }`, map[string]any{"id": id}},
		{"drain for too long", `mutation($id: ID!) { drain(id: $id, timeoutSeconds: 3601) { __typename } }`, map[string]any{"id": node}},
		{"extend a pod's trial", `mutation($id: ID!) { extendTrial(id: $id, days: 7) { __typename } }`, map[string]any{"id": id}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := run(t, c, tc.query, tc.vars, nil, as(admin))
			if diff := cmp.Diff([]refusal{{Code: errkind.CodeBadUserInput}}, refusals(errs)); diff != "" {
				t.Errorf("errors (-want +got):\n%s\n%+v", diff, errs)
			}
		})
	}
}

// backwardQuery pages pods backward (Relay's last/before).
const backwardQuery = `query($order: Order, $last: Int, $before: String) {
	pods(orderBy: $order, last: $last, before: $before) {
		totalCount pageInfo { hasNextPage hasPreviousPage startCursor } nodes { name namespace cluster { name } } } }`

// TestPodPagesBackward: last/before walk the list from its end to its
// start, page by page, and meet exactly the forward order; hasNextPage
// and hasPreviousPage say what lies on each side; offset with last, and a
// last that is not positive or over the page limit, are refused.
func TestPodPagesBackward(t *testing.T) {
	c := fixture(t)
	byName := map[string]any{"field": "NAME"}
	var pages [][]string
	var before any
	for page := 0; ; page++ {
		var out struct {
			Pods struct {
				TotalCount int
				PageInfo   struct {
					HasNextPage, HasPreviousPage bool
					StartCursor                  *string
				}
				Nodes []struct {
					Name, Namespace string
					Cluster         struct{ Name string }
				}
			}
		}
		if errs := run(t, c, backwardQuery, map[string]any{"order": byName, "last": 2, "before": before}, &out, as(admin)); len(errs) > 0 {
			t.Fatalf("page %d: errors: %+v", page, errs)
		}
		p := out.Pods
		if p.TotalCount != 5 || p.PageInfo.HasNextPage != (page > 0) || len(p.Nodes) > 2 || len(p.Nodes) == 0 {
			t.Fatalf("page %d: totalCount %d, hasNextPage %v, %d nodes", page, p.TotalCount, p.PageInfo.HasNextPage, len(p.Nodes))
		}
		var keys []string
		for _, n := range p.Nodes {
			keys = append(keys, n.Cluster.Name+"/"+n.Namespace+"/"+n.Name)
		}
		pages = append([][]string{keys}, pages...)
		if !p.PageInfo.HasPreviousPage {
			break
		}
		if page > 5 || p.PageInfo.StartCursor == nil {
			t.Fatalf("page %d: hasPreviousPage without a start (cursor %v)", page, p.PageInfo.StartCursor)
		}
		before = *p.PageInfo.StartCursor
	}
	var all []string
	for _, p := range pages {
		all = append(all, p...)
	}
	want := []string{"east/ops/agent", "east/shop/db-0", "east/shop/web-1", "east/shop/web-2", "west/shop/web-3"}
	if diff := cmp.Diff(want, all); diff != "" {
		t.Errorf("backward pages, put in order (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([][]string{{"east/ops/agent"}, {"east/shop/db-0", "east/shop/web-1"}, {"east/shop/web-2", "west/shop/web-3"}}, pages); diff != "" {
		t.Errorf("backward pages (-want +got):\n%s", diff)
	}

	for name, tc := range map[string]struct {
		query string
		vars  map[string]any
	}{
		"offset with last":   {`query { pods(last: 2, offset: 1) { totalCount } }`, nil},
		"last not positive":  {`query { pods(last: 0) { totalCount } }`, nil},
		"last over the page": {`query { pods(last: 1000) { totalCount } }`, nil},
	} {
		errs := run(t, c, tc.query, tc.vars, nil, as(admin))
		if diff := cmp.Diff([]refusal{{Code: errkind.CodeBadUserInput}}, refusals(errs)); diff != "" {
			t.Errorf("%s: errors (-want +got):\n%s", name, diff)
		}
	}
}
