package api_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/clustergraph/clustergraph/auth"
	"github.com/clustergraph/clustergraph/internal/testenv"
	k8sstream "github.com/clustergraph/clustergraph/k8s/stream"
)

// TestForeignServiceAccount: a service account of the identity cluster
// (cg-a) does not inherit what cg-b grants the service account of the same
// name (or its namespace's service-account group), neither for reads nor
// for writes, which the apiserver of cg-b would allow it; what cg-b binds
// to its user name as a User it gets, reads and writes.
func TestForeignServiceAccount(t *testing.T) {
	cs := testenv.Clusters(t)
	a, b := cs[0], cs[1]
	const twin = "cg-twin"
	bySA, byUser := "foreign-sa-by-sa", "foreign-sa-by-user"
	makeNamespace(t, b, bySA)
	makeNamespace(t, b, byUser)
	// cg-b's own service account default/cg-twin may edit bySA, and every
	// service account of default may view it.
	if _, err := b.Client.CoreV1().ServiceAccounts(accessNS).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: twin}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Client.CoreV1().ServiceAccounts(accessNS).Delete(ctx, twin, metav1.DeleteOptions{}) })
	for name, sub := range map[string]rbacv1.Subject{
		"twin-sa":    {Kind: rbacv1.ServiceAccountKind, Namespace: accessNS, Name: twin},
		"twin-group": {Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "system:serviceaccounts:" + accessNS},
	} {
		rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: bySA},
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "edit"}, Subjects: []rbacv1.Subject{sub}}
		if _, err := b.Client.RbacV1().RoleBindings(bySA).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// The identity cluster's default/cg-twin, bound by user name in byUser,
	// and in bySA to list (not watch) ConfigMaps.
	u := makeUser(t, cs[:1], twin, nil)
	roleBinding(t, b, byUser, twin, "ClusterRole", "edit", u.user)
	lister := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: twin + "-lister", Namespace: bySA},
		Rules: []rbacv1.PolicyRule{{Verbs: []string{"list"}, APIGroups: []string{""}, Resources: []string{"configmaps"}}}}
	if _, err := b.Client.RbacV1().Roles(bySA).Create(ctx, lister, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	roleBinding(t, b, bySA, lister.Name, "Role", lister.Name, u.user)
	// In the identity cluster its own ServiceAccount bindings count.
	home := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: twin + "-sa", Namespace: "shop"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: accessNS, Name: twin}}}
	if _, err := a.Client.RbacV1().RoleBindings("shop").Create(ctx, home, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Client.RbacV1().RoleBindings("shop").Delete(ctx, home.Name, metav1.DeleteOptions{}) })

	// The apiserver of cg-b would let the name in: that is the escalation.
	configmaps := schema.GroupResource{Resource: "configmaps"}
	if !can(t, b, u, "create", configmaps, bySA, "") {
		t.Fatal("cg-b's apiserver does not grant the twin's name; the test proves nothing")
	}
	s := startServer(t, serverOpts{kubeconfigs: kubeconfigs(cs), waitReady: true, auth: true})
	as := s.as(u.token)

	cm := func(ns, name string) string {
		return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\n  namespace: " + ns + "\ndata:\n  k: v\n"
	}
	var out applyOut
	as.query(t, applyMutation, map[string]any{"c": b.Context, "m": cm(bySA, "smuggled")}, &out)
	if out.Apply.Succeeded != 0 || out.Apply.Results[0].Error == nil || out.Apply.Results[0].Error.Code != "FORBIDDEN" ||
		!strings.Contains(out.Apply.Results[0].Error.Message, "identity cluster") {
		t.Errorf("apply through the twin's ServiceAccount binding: %+v, want FORBIDDEN", out.Apply.Results)
	}
	if _, err := b.Client.CoreV1().ConfigMaps(bySA).Get(ctx, "smuggled", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the ConfigMap was created (%v)", err)
	}
	as.query(t, applyMutation, map[string]any{"c": b.Context, "m": cm(byUser, "bound")}, &out)
	if out.Apply.Succeeded != 1 {
		t.Errorf("apply where the user name is bound: %+v", out.Apply.Results)
	}
	if _, err := b.Client.CoreV1().ConfigMaps(byUser).Get(ctx, "bound", metav1.GetOptions{}); err != nil {
		t.Errorf("the ConfigMap the user may create is missing: %v", err)
	}

	// Reads: cg-b shows what the User binding grants and nothing of bySA;
	// cg-a honours its own ServiceAccount binding.
	var reads struct {
		B, BySA, Home struct{ TotalCount int }
	}
	as.query(t, `query($b: [String!], $a: [String!], $sa: String) {
		b: services(clusters: $b) { totalCount }
		bySA: pods(clusters: $b, filter: {namespace: $sa}) { totalCount }
		home: services(clusters: $a, filter: {namespace: "shop"}) { totalCount } }`,
		map[string]any{"a": []string{a.Context}, "b": []string{b.Context}, "sa": bySA}, &reads)
	shop, err := a.Client.CoreV1().Services("shop").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if reads.B.TotalCount != 0 || reads.BySA.TotalCount != 0 || reads.Home.TotalCount != len(shop.Items) {
		t.Errorf("reads = %+v; want nothing in %s, and the %d services of shop in %s", reads, b.Context, len(shop.Items), a.Context)
	}
	var cms struct{ Resources struct{ TotalCount int } }
	as.query(t, `query($b: [String!], $ns: String) { resources(group: "", version: "v1", resource: "configmaps", clusters: $b, filter: {namespace: $ns}) { totalCount } }`,
		map[string]any{"b": []string{b.Context}, "ns": byUser}, &cms)
	if cms.Resources.TotalCount == 0 {
		t.Errorf("the ConfigMaps of %s, which the User binding grants, are not listed", byUser)
	}

	// Requests the account sends itself (kubectl in a cluster shell goes
	// through the same transport) are read as the apiserver reads them: it
	// takes ?watch=yes (any value but false and 0) for a watch, which the
	// User binding in bySA does not grant and cg-b's apiserver would allow
	// through the twin's ServiceAccount binding. The hand-written parser
	// this replaced read it as a list and let it through.
	if !can(t, b, testUser{user: u.user, groups: []string{"system:authenticated"}}, "watch", configmaps, bySA, "") {
		t.Fatal("cg-b's apiserver does not let the twin's name watch; the watch case proves nothing")
	}
	subject, err := auth.New(auth.Config{Registry: s.Registry}).Authenticate(ctx, u.token)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := s.Registry.Cluster(b.Context)
	if err != nil {
		t.Fatal(err)
	}
	rt, base, err := k8sstream.ProxyTransport(cl, subject)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path, query string
		want        int
	}{
		{"/api/v1/namespaces/" + bySA + "/configmaps", "", http.StatusOK},
		{"/api/v1/namespaces/" + bySA + "/configmaps", "watch=yes", http.StatusForbidden},
		{"/api/v1/namespaces/" + bySA + "/configmaps", "watch=true", http.StatusForbidden},
		{"/api/v1/watch/namespaces/" + bySA + "/configmaps", "", http.StatusForbidden},
		{"/api/v1/namespaces/" + byUser + "/configmaps", "watch=yes", http.StatusOK},
	} {
		target := *base
		target.Path, target.RawQuery = tc.path, tc.query
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		req, _ := http.NewRequestWithContext(rctx, http.MethodGet, target.String(), nil)
		resp, err := rt.RoundTrip(req)
		if err != nil {
			cancel()
			t.Fatalf("GET %s: %v", target.String(), err)
		}
		var body []byte
		if resp.StatusCode != http.StatusOK {
			body, _ = io.ReadAll(resp.Body)
		}
		_ = resp.Body.Close()
		cancel()
		if resp.StatusCode != tc.want || tc.want == http.StatusForbidden && !strings.Contains(string(body), "identity cluster") {
			t.Errorf("GET %s?%s as the foreign account: %d %s, want %d", tc.path, tc.query, resp.StatusCode, body, tc.want)
		}
	}
}
