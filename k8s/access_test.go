package k8s

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"

	"github.com/clustergraph/clustergraph/caller"
)

// policy builds RBAC stores from objects, as the informers would hold them.
func policy(t *testing.T, objs ...any) rbacStores {
	t.Helper()
	st := rbacStores{
		roles: cache.NewStore(cache.MetaNamespaceKeyFunc), roleBindings: cache.NewStore(cache.MetaNamespaceKeyFunc),
		clusterRoles: cache.NewStore(cache.MetaNamespaceKeyFunc), clusterRoleBindings: cache.NewStore(cache.MetaNamespaceKeyFunc),
	}
	for _, o := range objs {
		var s cache.Store
		switch o.(type) {
		case *rbacv1.Role:
			s = st.roles
		case *rbacv1.RoleBinding:
			s = st.roleBindings
		case *rbacv1.ClusterRole:
			s = st.clusterRoles
		case *rbacv1.ClusterRoleBinding:
			s = st.clusterRoleBindings
		}
		if err := s.Add(o); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

func clusterRole(name string, rules ...rbacv1.PolicyRule) *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules}
}

func roleBindingTo(ns, name, clusterRoleName string, subjects ...rbacv1.Subject) *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		RoleRef: rbacv1.RoleRef{Kind: "ClusterRole", Name: clusterRoleName}, Subjects: subjects}
}

// TestSubresourceRules: a rule for "*/scale" grants the scale subresource
// of every resource, and nothing else; "*" covers subresources too.
func TestSubresourceRules(t *testing.T) {
	u := rbacv1.Subject{Kind: rbacv1.UserKind, Name: "u"}
	st := policy(t,
		clusterRole("scaler", rbacv1.PolicyRule{Verbs: []string{"update"}, APIGroups: []string{"*"}, Resources: []string{"*/scale"}}),
		clusterRole("execer", rbacv1.PolicyRule{Verbs: []string{"create"}, APIGroups: []string{""}, Resources: []string{"*"}}),
		roleBindingTo("shop", "scaler", "scaler", u),
		roleBindingTo("shop", "execer", "execer", u),
	)
	a := computeAccess(&caller.Subject{User: "u"}, false, st)
	for _, tc := range []struct {
		verb, group, resource, ns string
		want                      bool
	}{
		{"update", "apps", "deployments/scale", "shop", true},
		{"update", "", "replicationcontrollers/scale", "shop", true},
		{"update", "apps", "deployments", "shop", false},
		{"update", "apps", "deployments/status", "shop", false},
		{"update", "apps", "deployments/scale", "data", false},
		{"create", "", "pods/exec", "shop", true},
		{"create", "", "pods", "shop", true},
		{"create", "apps", "deployments", "shop", false},
	} {
		if got := a.Allows(tc.verb, schema.GroupResource{Group: tc.group, Resource: tc.resource}, tc.ns, ""); got != tc.want {
			t.Errorf("%s %s/%s in %s = %v, want %v", tc.verb, tc.group, tc.resource, tc.ns, got, tc.want)
		}
	}
}

// TestPrivilegedGroup: system:masters may do everything without a
// binding, as the apiserver allows it before asking RBAC.
func TestPrivilegedGroup(t *testing.T) {
	a := computeAccess(&caller.Subject{User: "root", Groups: []string{"system:authenticated", "system:masters"}}, false, policy(t))
	if !a.Allows("delete", schema.GroupResource{Resource: "nodes"}, "", "n1") || !a.CanSee(schema.GroupResource{Group: "example.com", Resource: "widgets"}, "x", "y") {
		t.Error("system:masters was refused")
	}
	if _, all := a.Namespaces(); !all {
		t.Error("system:masters does not see every namespace")
	}
	none := computeAccess(&caller.Subject{User: "system:masters"}, false, policy(t))
	if none.Allows("get", schema.GroupResource{Resource: "pods"}, "shop", "") {
		t.Error("a user named system:masters (not in the group) was allowed")
	}
}

// TestForeignServiceAccountPolicy: outside its identity cluster a service
// account matches User and Group subjects, never ServiceAccount subjects or
// its service-account groups; in the identity cluster it matches all.
func TestForeignServiceAccountPolicy(t *testing.T) {
	user := "system:serviceaccount:ci:deployer"
	s := &caller.Subject{User: user, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:ci", "system:authenticated"}, Identity: "a"}
	st := policy(t,
		clusterRole("view", rbacv1.PolicyRule{Verbs: []string{"get", "list"}, APIGroups: []string{""}, Resources: []string{"pods", "services", "configmaps"}}),
		roleBindingTo("by-sa", "b", "view", rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: "ci", Name: "deployer"}),
		roleBindingTo("by-sa-group", "b", "view", rbacv1.Subject{Kind: rbacv1.GroupKind, Name: "system:serviceaccounts:ci"}),
		roleBindingTo("by-user", "b", "view", rbacv1.Subject{Kind: rbacv1.UserKind, Name: user}),
		roleBindingTo("by-authenticated", "b", "view", rbacv1.Subject{Kind: rbacv1.GroupKind, Name: "system:authenticated"}),
	)
	pods := schema.GroupResource{Resource: "pods"}
	for _, tc := range []struct {
		cluster string
		want    map[string]bool
	}{
		{"a", map[string]bool{"by-sa": true, "by-sa-group": true, "by-user": true, "by-authenticated": true}},
		{"b", map[string]bool{"by-sa": false, "by-sa-group": false, "by-user": true, "by-authenticated": true}},
	} {
		a := computeAccess(s, s.ForeignServiceAccount(tc.cluster), st)
		for ns, want := range tc.want {
			if got := a.Allows("list", pods, ns, ""); got != want {
				t.Errorf("in cluster %s, list pods in %s = %v, want %v", tc.cluster, ns, got, want)
			}
		}
	}
	for _, s := range []*caller.Subject{
		{User: "alice", Identity: "a"},
		{User: user, Unrestricted: true, Identity: "a"},
		{User: user},
	} {
		if s.ForeignServiceAccount("b") {
			t.Errorf("%+v is not a foreign service account", s)
		}
	}
	if g := s.GroupsIn("b"); len(g) != 1 || g[0] != "system:authenticated" {
		t.Errorf("groups in another cluster = %v", g)
	}
}

func role(ns, name string, rules ...rbacv1.PolicyRule) *rbacv1.Role {
	return &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Rules: rules}
}

func roleBindingToRole(ns, name, roleName string, subjects ...rbacv1.Subject) *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		RoleRef: rbacv1.RoleRef{Kind: "Role", Name: roleName}, Subjects: subjects}
}

func clusterRoleBindingTo(name, clusterRoleName string, subjects ...rbacv1.Subject) *rbacv1.ClusterRoleBinding {
	return &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef: rbacv1.RoleRef{Kind: "ClusterRole", Name: clusterRoleName}, Subjects: subjects}
}

func rule(verbs []string, resources []string, names ...string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{Verbs: verbs, APIGroups: []string{""}, Resources: resources, ResourceNames: names}
}

var (
	podsGR       = schema.GroupResource{Resource: "pods"}
	secretsGR    = schema.GroupResource{Resource: "secrets"}
	configMapsGR = schema.GroupResource{Resource: "configmaps"}
	namespacesGR = schema.GroupResource{Resource: "namespaces"}
	userU        = rbacv1.Subject{Kind: rbacv1.UserKind, Name: "u"}
)

// TestGetOnlyGrantListsNothing: a get without resourceNames, in a
// namespace or cluster-wide, lets the subject get every object by name and
// shows none in a list (the apiserver refuses it the list), opens no
// namespace and counts as no grant on the kind.
func TestGetOnlyGrantListsNothing(t *testing.T) {
	getOnly := rule([]string{"get"}, []string{"secrets", "configmaps", "pods"})
	for name, st := range map[string]rbacStores{
		"namespaced":   policy(t, role("vault", "getter", getOnly), roleBindingToRole("vault", "getter", "getter", userU)),
		"cluster-wide": policy(t, clusterRole("getter", getOnly), clusterRoleBindingTo("getter", "getter", userU)),
	} {
		a := computeAccess(&caller.Subject{User: "u"}, false, st)
		for _, gr := range []schema.GroupResource{secretsGR, configMapsGR, podsGR} {
			if !a.Allows("get", gr, "vault", "db-password") {
				t.Errorf("%s: get %s vault/db-password refused", name, gr)
			}
			if a.Allows("list", gr, "vault", "") {
				t.Errorf("%s: list %s in vault allowed", name, gr)
			}
			if a.CanSee(gr, "vault", "db-password") {
				t.Errorf("%s: %s vault/db-password shows in a list", name, gr)
			}
			if a.AnyOn(gr) {
				t.Errorf("%s: a get-only grant counts as a grant to see %s", name, gr)
			}
		}
		if names, all := a.Namespaces(); all {
			t.Errorf("%s: a get-only grant opens every namespace (names %v)", name, names)
		}
	}
}

// TestResourceNamesGrants: a list or get rule with resourceNames shows
// exactly the named objects, in the namespace it is bound in or, bound
// cluster-wide, in every namespace; a list without them shows the whole
// namespace; a watch rule shows nothing in a list.
func TestResourceNamesGrants(t *testing.T) {
	type object struct{ ns, name string }
	named, other, elsewhere := object{"shop", "a"}, object{"shop", "b"}, object{"data", "a"}
	for _, tc := range []struct {
		name    string
		rule    rbacv1.PolicyRule
		cluster bool
		want    []object
	}{
		{"namespaced get with names", rule([]string{"get"}, []string{"pods"}, "a"), false, []object{named}},
		{"namespaced list with names", rule([]string{"list"}, []string{"pods"}, "a"), false, []object{named}},
		{"namespaced get and list with names", rule([]string{"get", "list"}, []string{"pods"}, "a"), false, []object{named}},
		{"cluster-wide get with names", rule([]string{"get"}, []string{"pods"}, "a"), true, []object{named, elsewhere}},
		{"cluster-wide list with names", rule([]string{"list"}, []string{"pods"}, "a"), true, []object{named, elsewhere}},
		{"any verb with names", rule([]string{"*"}, []string{"pods"}, "a"), false, []object{named}},
		{"watch with names", rule([]string{"watch"}, []string{"pods"}, "a"), false, nil},
		{"namespaced list", rule([]string{"list"}, []string{"pods"}), false, []object{named, other}},
		{"cluster-wide list", rule([]string{"list"}, []string{"pods"}), true, []object{named, other, elsewhere}},
		{"names of another resource", rule([]string{"get", "list"}, []string{"secrets"}, "a"), true, nil},
	} {
		var st rbacStores
		if tc.cluster {
			st = policy(t, clusterRole("r", tc.rule), clusterRoleBindingTo("r", "r", userU))
		} else {
			st = policy(t, role("shop", "r", tc.rule), roleBindingToRole("shop", "r", "r", userU))
		}
		a := computeAccess(&caller.Subject{User: "u"}, false, st)
		for _, o := range []object{named, other, elsewhere} {
			if got, want := a.CanSee(podsGR, o.ns, o.name), slices.Contains(tc.want, o); got != want {
				t.Errorf("%s: pod %s/%s shows in a list = %v, want %v", tc.name, o.ns, o.name, got, want)
			}
		}
		if got := a.AnyOn(podsGR); got != (len(tc.want) > 0) {
			t.Errorf("%s: AnyOn(pods) = %v, want %v", tc.name, got, len(tc.want) > 0)
		}
	}
}

// TestNamespaceObjectVisibility: a Namespace object shows in a list to a
// subject that may list namespaces, that a list or get rule names, or that
// holds a get of namespaces bound in that namespace (which gets it alone);
// a cluster-wide get shows none. A list narrowed to one namespace's name is
// cluster-wide to the apiserver: a RoleBinding does not grant it.
func TestNamespaceObjectVisibility(t *testing.T) {
	view := rule([]string{"get", "list", "watch"}, []string{"namespaces"})
	bound := computeAccess(&caller.Subject{User: "u"}, false, policy(t, clusterRole("view", view), roleBindingTo("shop", "view", "view", userU)))
	if !bound.CanSee(namespacesGR, "", "shop") || bound.CanSee(namespacesGR, "", "data") {
		t.Errorf("view bound in shop: sees shop %v, data %v; want only shop", bound.CanSee(namespacesGR, "", "shop"), bound.CanSee(namespacesGR, "", "data"))
	}
	if !bound.Allows("get", namespacesGR, "", "shop") || bound.Allows("list", namespacesGR, "", "shop") || bound.Allows("watch", namespacesGR, "", "shop") {
		t.Error("view bound in shop: want get of namespace shop, and no list or watch narrowed to it")
	}
	getAll := computeAccess(&caller.Subject{User: "u"}, false, policy(t, clusterRole("g", rule([]string{"get"}, []string{"namespaces"})), clusterRoleBindingTo("g", "g", userU)))
	if getAll.CanSee(namespacesGR, "", "shop") || getAll.AnyOn(namespacesGR) || !getAll.Allows("get", namespacesGR, "", "shop") {
		t.Error("a cluster-wide get of namespaces: want every get and no namespace in a list")
	}
	listNamed := computeAccess(&caller.Subject{User: "u"}, false, policy(t, clusterRole("l", rule([]string{"list"}, []string{"namespaces"}, "data")), clusterRoleBindingTo("l", "l", userU)))
	if !listNamed.CanSee(namespacesGR, "", "data") || listNamed.CanSee(namespacesGR, "", "shop") {
		t.Error("a list of namespaces naming data: want data alone")
	}
}

// fakeCluster is a cluster whose caches hold the objects, without an
// apiserver (a static cluster, see NewStaticRegistry): enough for the read
// path's access decisions.
func fakeCluster(t *testing.T, objs ...runtime.Object) *Cluster {
	t.Helper()
	c, err := newStaticCluster("c", objs, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func runtimeObjects(objs []any) []runtime.Object {
	out := make([]runtime.Object, len(objs))
	for i, o := range objs {
		out[i] = o.(runtime.Object)
	}
	return out
}

// fakeAuthorizer stands in for an authorizer besides RBAC: it answers by
// allow and records every question.
type fakeAuthorizer struct {
	allow func(q Question) bool

	mu    sync.Mutex
	asked []Question
}

func (f *fakeAuthorizer) Review(_ context.Context, _ *Cluster, qs []Question) []bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]bool, len(qs))
	for i, q := range qs {
		f.asked = append(f.asked, q)
		out[i] = f.allow(q)
	}
	return out
}

func pod(ns, name string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
}

func namespace(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

func objNames(objs []any) []string {
	var out []string
	for _, o := range objs {
		m, _ := metaOf(o)
		out = append(out, m.GetNamespace()+"/"+m.GetName())
	}
	slices.Sort(out)
	return out
}

// TestFallbackFollowsTheRule: with an authorizer fallback, a list asks the
// authorizer list questions (cluster-wide, then per namespace of what RBAC
// hides), never a bare get: an authorizer that allows every get shows
// nothing. Namespace objects are asked by name, and a get of them counts
// only when a get of a namespace that does not exist is refused.
func TestFallbackFollowsTheRule(t *testing.T) {
	pods := []any{pod("a", "p1"), pod("a", "p2"), pod("b", "p3")}
	nss := []any{namespace("a"), namespace("b"), namespace("c")}
	c := fakeCluster(t, runtimeObjects(append(slices.Clone(pods), nss...))...)
	ctx := caller.With(context.Background(), &caller.Subject{User: "hooked"})
	for _, tc := range []struct {
		name          string
		allow         func(Question) bool
		pods, nss     []string
		accessibleNSs []string
	}{
		{"gets everything", func(q Question) bool { return q.Verb == "get" }, nil, nil, nil},
		{"lists pods in a", func(q Question) bool { return q.Verb == "list" && q.Resource == "pods" && q.Namespace == "a" }, []string{"a/p1", "a/p2"}, nil, nil},
		{"gets namespace b alone", func(q Question) bool {
			return q.Verb == "get" && q.Resource == "namespaces" && q.Name == "b" && q.Namespace == "b"
		},
			nil, []string{"/b"}, []string{"b"}},
		{"lists namespace c by name", func(q Question) bool {
			return q.Verb == "list" && q.Resource == "namespaces" && q.Namespace == "" && q.Name == "c"
		},
			nil, []string{"/c"}, []string{"c"}},
		{"lists everything", func(q Question) bool { return q.Verb == "list" && q.Name == "" }, []string{"a/p1", "a/p2", "b/p3"}, []string{"/a", "/b", "/c"}, []string{"a", "b", "c"}},
	} {
		f := &fakeAuthorizer{allow: tc.allow}
		rctx := WithReviewer(ctx, f)
		if got := objNames(c.visibleGR(rctx, podsGR, slices.Clone(pods))); !slices.Equal(got, tc.pods) {
			t.Errorf("%s: pods %v, want %v", tc.name, got, tc.pods)
		}
		for _, q := range f.asked {
			if q.Verb != "list" || q.Name != "" {
				t.Errorf("%s: a list of pods asked %+v; want list questions about no one object", tc.name, q)
			}
		}
		if got := objNames(c.visibleGR(rctx, namespacesGR, slices.Clone(nss))); !slices.Equal(got, tc.nss) {
			t.Errorf("%s: namespaces %v, want %v", tc.name, got, tc.nss)
		}
		got, err := c.AccessibleNamespaces(rctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		var gotNames []string
		for _, ns := range got {
			gotNames = append(gotNames, ns.Name)
		}
		if !slices.Equal(gotNames, tc.accessibleNSs) {
			t.Errorf("%s: accessible namespaces %v, want %v", tc.name, gotNames, tc.accessibleNSs)
		}
	}
}

// TestWatchFollowsTheRule: a watch delivers what the rule shows and the
// subject may watch; a readable follower what the rule shows, and the one
// object it is pinned to by name when the subject may get it.
func TestWatchFollowsTheRule(t *testing.T) {
	c := fakeCluster(t,
		role("vault", "get", rule([]string{"get"}, []string{"pods"})), roleBindingToRole("vault", "get", "get", userU),
		role("shop", "view", rule([]string{"get", "list", "watch"}, []string{"pods"})), roleBindingToRole("shop", "view", "view", userU),
		role("data", "list", rule([]string{"list"}, []string{"pods"})), roleBindingToRole("data", "list", "list", userU),
		role("named", "named", rule([]string{"get"}, []string{"pods"}, "n1"), rule([]string{"watch"}, []string{"pods"})), roleBindingToRole("named", "named", "named", userU),
	)
	s := &caller.Subject{User: "u"}
	ctx := caller.With(context.Background(), s)
	pinned := &Filter{Namespace: "vault", Fields: fields.OneTermEqualSelector("metadata.name", "v1")}
	for _, tc := range []struct {
		name     string
		obj      *corev1.Pod
		f        *Filter
		readable bool
		want     bool
	}{
		{"get-only, watched", pod("vault", "v1"), &Filter{}, false, false},
		{"get-only, followed", pod("vault", "v1"), &Filter{}, true, false},
		{"get-only, followed by name", pod("vault", "v1"), pinned, true, true},
		{"get-only, watched by name", pod("vault", "v1"), pinned, false, false},
		{"view, watched", pod("shop", "s1"), &Filter{}, false, true},
		{"list without watch, watched", pod("data", "d1"), &Filter{}, false, false},
		{"list without watch, followed", pod("data", "d1"), &Filter{}, true, true},
		{"named get with watch, watched", pod("named", "n1"), &Filter{}, false, true},
		{"unnamed with watch, watched", pod("named", "n2"), &Filter{}, false, false},
	} {
		w := &watcher{c: c, ctx: ctx, subject: s, r: resPods, f: tc.f, readable: tc.readable}
		if got := w.passes(tc.obj); got != tc.want {
			t.Errorf("%s: passes = %v, want %v", tc.name, got, tc.want)
		}
	}
	for _, tc := range []struct {
		name     string
		f        *Filter
		readable bool
		want     bool
	}{
		{"a watch", &Filter{Namespace: "vault"}, false, true}, // shop's view and data's list count
		{"a follower pinned to a pod it may get", pinned, true, true},
	} {
		if got := c.maySubscribe(ctx, podsGR, false, tc.f, SubscribeOptions{Readable: tc.readable}); got != tc.want {
			t.Errorf("%s: may subscribe = %v, want %v", tc.name, got, tc.want)
		}
	}
	getOnly := fakeCluster(t, role("vault", "get", rule([]string{"get"}, []string{"pods"})), roleBindingToRole("vault", "get", "get", userU))
	if getOnly.maySubscribe(ctx, podsGR, false, &Filter{Namespace: "vault"}, SubscribeOptions{}) {
		t.Error("a get-only subject may watch pods")
	}
	if !getOnly.maySubscribe(ctx, podsGR, false, pinned, SubscribeOptions{Readable: true}) {
		t.Error("a get-only subject may not follow the one pod it may get")
	}
}
