package k8s

import (
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"
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
	a := computeAccess(&Subject{User: "u"}, false, st)
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
	a := computeAccess(&Subject{User: "root", Groups: []string{"system:authenticated", "system:masters"}}, false, policy(t))
	if !a.Allows("delete", schema.GroupResource{Resource: "nodes"}, "", "n1") || !a.CanSee(schema.GroupResource{Group: "example.com", Resource: "widgets"}, "x", "y") {
		t.Error("system:masters was refused")
	}
	if _, all := a.Namespaces(); !all {
		t.Error("system:masters does not see every namespace")
	}
	none := computeAccess(&Subject{User: "system:masters"}, false, policy(t))
	if none.Allows("get", schema.GroupResource{Resource: "pods"}, "shop", "") {
		t.Error("a user named system:masters (not in the group) was allowed")
	}
}

// TestSubjectKeysDistinct: subjects differing in how their strings are
// split between user and groups never share an access cache key.
func TestSubjectKeysDistinct(t *testing.T) {
	subjects := []*Subject{
		{User: "a\x00b"},
		{User: "a", Groups: []string{"b"}},
		{User: "a", Groups: []string{"b", ""}},
		{User: "a", Groups: []string{"b\x00"}},
		{User: "a:b"},
		{User: "1:a"},
		{User: "a", Identity: "kwok-cg-a"},
		{User: "a", Identity: "kwok-cg-b"},
	}
	seen := map[string]int{}
	for i, s := range subjects {
		k := s.key()
		if j, dup := seen[k]; dup {
			t.Errorf("subjects %d %+v and %d %+v share the key %q", j, subjects[j], i, s, k)
		}
		seen[k] = i
	}
	// Group order does not matter.
	if (&Subject{User: "u", Groups: []string{"x", "y"}}).key() != (&Subject{User: "u", Groups: []string{"y", "x"}}).key() {
		t.Error("group order changes the key")
	}
}

// TestRequestAttributes: requests are authorized as the apiserver would
// name them.
func TestRequestAttributes(t *testing.T) {
	for _, tc := range []struct {
		method, path, watch string
		want                Question
		ok                  bool
	}{
		{"GET", "/api/v1/pods", "", Question{Verb: "list", Resource: "pods"}, true},
		{"GET", "/api/v1/namespaces/shop/pods", "true", Question{Verb: "watch", Resource: "pods", Namespace: "shop"}, true},
		{"GET", "/api/v1/namespaces/shop/pods/web/log", "", Question{Verb: "get", Resource: "pods/log", Namespace: "shop", Name: "web"}, true},
		{"GET", "/api/v1/namespaces/shop/pods/web/exec", "", Question{Verb: "create", Resource: "pods/exec", Namespace: "shop", Name: "web"}, true},
		{"POST", "/api/v1/namespaces/shop/pods/web/eviction", "", Question{Verb: "create", Resource: "pods/eviction", Namespace: "shop", Name: "web"}, true},
		{"PATCH", "/apis/apps/v1/namespaces/shop/deployments/web", "", Question{Verb: "patch", Group: "apps", Resource: "deployments", Namespace: "shop", Name: "web"}, true},
		{"PUT", "/apis/apps/v1/namespaces/shop/deployments/web/scale", "", Question{Verb: "update", Group: "apps", Resource: "deployments/scale", Namespace: "shop", Name: "web"}, true},
		{"DELETE", "/api/v1/namespaces/shop/configmaps", "", Question{Verb: "deletecollection", Resource: "configmaps", Namespace: "shop"}, true},
		{"DELETE", "/api/v1/namespaces/shop", "", Question{Verb: "delete", Resource: "namespaces", Namespace: "shop", Name: "shop"}, true},
		{"PUT", "/api/v1/namespaces/shop/finalize", "", Question{Verb: "update", Resource: "namespaces/finalize", Namespace: "shop", Name: "shop"}, true},
		{"PATCH", "/api/v1/nodes/n1", "", Question{Verb: "patch", Resource: "nodes", Name: "n1"}, true},
		{"POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", "", Question{Verb: "create", Group: "rbac.authorization.k8s.io", Resource: "clusterrolebindings"}, true},
		{"GET", "/apis", "", Question{}, false},
		{"GET", "/version", "", Question{}, false},
		{"GET", "/apis/apps/v1", "", Question{}, false},
	} {
		got, ok := requestAttributes(tc.method, tc.path, tc.watch)
		if ok != tc.ok || ok && got != tc.want {
			t.Errorf("%s %s: %+v %v, want %+v %v", tc.method, tc.path, got, ok, tc.want, tc.ok)
		}
	}
}

// TestForeignServiceAccountPolicy: outside its identity cluster a service
// account matches User and Group subjects, never ServiceAccount subjects or
// its service-account groups; in the identity cluster it matches all.
func TestForeignServiceAccountPolicy(t *testing.T) {
	user := "system:serviceaccount:ci:deployer"
	s := &Subject{User: user, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:ci", "system:authenticated"}, Identity: "a"}
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
	for _, s := range []*Subject{
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
