package api_test

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clustergraph/clustergraph/api"
	"github.com/clustergraph/clustergraph/internal/testenv"
	"github.com/clustergraph/clustergraph/k8s"
)

// TestManagementOperations covers what the replaced consoles offered:
// namespace name checks across clusters, trial extension, initial role
// bindings and component versions.
func TestManagementOperations(t *testing.T) {
	cs := testenv.Clusters(t)
	paths := kubeconfigs(cs)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "component-versions"},
		Data: map[string]string{"console": `{"version": "4.1.4", "status": "Normal"}`, "operator": "b4.1.3"}}
	if _, err := cs[0].Client.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs[0].Client.CoreV1().ConfigMaps("default").Delete(ctx, cm.Name, metav1.DeleteOptions{}) })
	admin := makeUser(t, cs, "cg-manager", func(c testenv.Cluster, user string) {
		clusterBinding(t, c, "cg-manager", "cluster-admin", user)
	})
	viewer := makeUser(t, cs, "cg-onlooker", func(c testenv.Cluster, user string) {
		roleBinding(t, c, "shop", "cg-onlooker", "ClusterRole", "view", user)
	})
	s := startServerWith(t, serverOpts{kubeconfigs: paths, waitReady: true, auth: true}, func(cfg *api.Config) {
		cfg.VersionsConfigMap = "default/component-versions"
	})
	as := s.as(admin.token)

	t.Run("namespace name", func(t *testing.T) {
		type check struct {
			Available     bool
			InvalidReason *string
			TakenIn       []string
		}
		var out struct{ A, B, C check }
		as.query(t, `{ A: namespaceNameAvailable(name: "shop") { available invalidReason takenIn }
			B: namespaceNameAvailable(name: "free-name-42") { available invalidReason takenIn }
			C: namespaceNameAvailable(name: "Not_Valid") { available invalidReason takenIn } }`, nil, &out)
		if out.A.Available || len(out.A.TakenIn) != 2 || !out.B.Available || out.C.Available || out.C.InvalidReason == nil {
			t.Errorf("checks = %+v", out)
		}
	})

	t.Run("trial", func(t *testing.T) {
		makeNamespace(t, cs[0], "trial-ns")
		nsID := k8s.ObjectID{Cluster: cs[0].Context, GVK: k8s.GVKNamespace, Name: "trial-ns"}.Encode()
		var out struct {
			ExtendTrial struct {
				Namespace struct{ TrialExpiresAt time.Time }
			}
		}
		as.query(t, `mutation($id: ID!) { extendTrial(id: $id, days: 7) { namespace { trialExpiresAt } } }`, map[string]any{"id": nsID}, &out)
		first := out.ExtendTrial.Namespace.TrialExpiresAt
		if d := time.Until(first); d < 6*24*time.Hour || d > 8*24*time.Hour {
			t.Errorf("expiry %s is not about 7 days away", first)
		}
		as.query(t, `mutation($id: ID!) { extendTrial(id: $id, days: 3) { namespace { trialExpiresAt } } }`, map[string]any{"id": nsID}, &out)
		if got := out.ExtendTrial.Namespace.TrialExpiresAt.Sub(first); got != 3*24*time.Hour {
			t.Errorf("the second extension added %s, want 72h", got)
		}
		ns, err := cs[0].Client.CoreV1().Namespaces().Get(ctx, "trial-ns", metav1.GetOptions{})
		if err != nil || ns.Annotations[k8s.TrialAnnotation] == "" {
			t.Errorf("annotation missing: %v %v", ns.Annotations, err)
		}
		if r := s.as(viewer.token).do(t, `mutation($id: ID!) { extendTrial(id: $id, days: 1) { namespace { name } } }`, map[string]any{"id": nsID}); len(r.Errors) == 0 || r.Errors[0].Extensions["code"] != "FORBIDDEN" {
			t.Errorf("a viewer's extension: %+v, want FORBIDDEN", r.Errors)
		}
	})

	t.Run("initial role", func(t *testing.T) {
		grant := `mutation($c: String!) { grantInitialRole(cluster: $c, user: "alice@example.com", clusterRole: "view") { binding { metadata { name } } } }`
		var out struct {
			GrantInitialRole struct {
				Binding struct{ Metadata struct{ Name string } }
			}
		}
		as.query(t, grant, map[string]any{"c": cs[1].Context}, &out)
		name := out.GrantInitialRole.Binding.Metadata.Name
		b, err := cs[1].Client.RbacV1().ClusterRoleBindings().Get(ctx, name, metav1.GetOptions{})
		if err != nil || b.RoleRef.Name != "view" || b.Subjects[0].Name != "alice@example.com" {
			t.Fatalf("binding %+v %v", b, err)
		}
		if r := as.do(t, grant, map[string]any{"c": cs[1].Context}); len(r.Errors) == 0 || r.Errors[0].Extensions["code"] != "CONFLICT" {
			t.Errorf("granting twice: %+v, want CONFLICT", r.Errors)
		}
		if r := s.as(viewer.token).do(t, grant, map[string]any{"c": cs[1].Context}); len(r.Errors) == 0 || r.Errors[0].Extensions["code"] != "FORBIDDEN" {
			t.Errorf("a viewer's grant: %+v, want FORBIDDEN", r.Errors)
		}
		var ok struct{ RevokeInitialRole bool }
		as.query(t, `mutation($c: String!) { revokeInitialRole(cluster: $c, user: "alice@example.com") }`, map[string]any{"c": cs[1].Context}, &ok)
		if _, err := cs[1].Client.RbacV1().ClusterRoleBindings().Get(ctx, name, metav1.GetOptions{}); err == nil {
			t.Error("the binding survived its revocation")
		}
	})

	t.Run("versions", func(t *testing.T) {
		var out struct {
			Versions []struct{ Name, Cluster, Status, Version string }
		}
		r := as.do(t, `{ versions { name cluster status version } }`, nil)
		if err := jsonInto(r, &out); err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, v := range out.Versions {
			got[v.Cluster+"/"+v.Name] = v.Status + " " + v.Version
		}
		a, b := cs[0].Context, cs[1].Context
		if got[a+"/console"] != "Normal 4.1.4" || got[a+"/operator"] != "Unknown b4.1.3" || got[a+"/kube-apiserver"] != "READY v1.37.2" || got[b+"/kube-apiserver"] != "READY v1.37.2" {
			t.Errorf("versions = %v", got)
		}
		// cg-b has no such ConfigMap: an error names it, the rest is served.
		if !hasClusterError(r.Errors, b, "NOT_FOUND") {
			t.Errorf("errors %+v should name %s", r.Errors, b)
		}
	})
}
