package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/clustergraph/clustergraph/api"
	"github.com/clustergraph/clustergraph/caller"
	"github.com/clustergraph/clustergraph/internal/testenv"
	"github.com/clustergraph/clustergraph/k8s"
)

// TestAccessMatchesRBAC: for a cluster admin, a user bound to two
// namespaces, a user limited by resourceNames, a user who may get (not
// list) in one namespace and a user with no grant, every list returns
// exactly the objects the apiserver would let them enumerate (see
// mayEnumerate), in both clusters, and a direct lookup of anything they
// may not get is FORBIDDEN. So it is with the SubjectAccessReview fallback
// on: the testbed authorizes with RBAC alone, so the apiserver's answers to
// the fallback's reviews must change nothing.
//
// Its oracle was once "may list in the namespace, or may get by name",
// which encoded issue 24's defect: a get without resourceNames allows a get
// of every name, and the apiserver still refuses that caller the list.
func TestAccessMatchesRBAC(t *testing.T) {
	cs := testenv.Clusters(t)
	paths := kubeconfigs(cs)
	// Names the resourceNames user may get: a pod and a service of shop.
	pods, err := cs[0].Client.CoreV1().Pods("shop").List(ctx, metav1.ListOptions{})
	if err != nil || len(pods.Items) == 0 {
		t.Fatalf("shop pods: %v", err)
	}
	namedPod := pods.Items[0].Name
	users := []testUser{
		makeUser(t, cs, "cg-admin", func(c testenv.Cluster, user string) {
			clusterBinding(t, c, "cg-admin", "cluster-admin", user)
		}),
		makeUser(t, cs, "cg-two", func(c testenv.Cluster, user string) {
			// view is an aggregated cluster role: its rules come from others.
			roleBinding(t, c, "shop", "cg-two", "ClusterRole", "view", user)
			roleBinding(t, c, "data", "cg-two", "ClusterRole", "view", user)
		}),
		makeUser(t, cs, "cg-named", func(c testenv.Cluster, user string) {
			r := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "cg-named", Namespace: "shop"}, Rules: []rbacv1.PolicyRule{
				{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods"}, ResourceNames: []string{namedPod}},
				{Verbs: []string{"get", "list"}, APIGroups: []string{""}, Resources: []string{"services"}, ResourceNames: []string{"frontend"}},
			}}
			if _, err := c.Client.RbacV1().Roles("shop").Create(ctx, r, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Client.RbacV1().Roles("shop").Delete(ctx, "cg-named", metav1.DeleteOptions{}) })
			roleBinding(t, c, "shop", "cg-named", "Role", "cg-named", user)
		}),
		makeUser(t, cs, "cg-getter", func(c testenv.Cluster, user string) {
			r := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "cg-getter", Namespace: "shop"}, Rules: []rbacv1.PolicyRule{
				{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods", "services"}},
			}}
			if _, err := c.Client.RbacV1().Roles("shop").Create(ctx, r, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Client.RbacV1().Roles("shop").Delete(ctx, "cg-getter", metav1.DeleteOptions{}) })
			roleBinding(t, c, "shop", "cg-getter", "Role", "cg-getter", user)
		}),
		makeUser(t, cs, "cg-none", nil),
	}
	s := startServer(t, serverOpts{kubeconfigs: paths, waitReady: true, auth: true})
	var reviews atomic.Int64
	withSAR := startServer(t, serverOpts{kubeconfigs: paths, waitReady: true, auth: true, authzFallback: api.AuthzFallbackSAR,
		accessReview: func(ctx context.Context, c *k8s.Cluster, sub *caller.Subject, q k8s.Question) (bool, error) {
			reviews.Add(1)
			return k8s.SubjectAccessReview(ctx, c, sub, q)
		}})
	servers := map[string]*server{"rbac": s, "rbac+sar": withSAR}

	kinds := []struct {
		field string
		gr    schema.GroupResource
		list  func(testenv.Cluster) ([]metav1.Object, error)
	}{
		{"pods", schema.GroupResource{Resource: "pods"}, func(c testenv.Cluster) ([]metav1.Object, error) {
			l, err := c.Client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
			return objects(l.Items), err
		}},
		{"services", schema.GroupResource{Resource: "services"}, func(c testenv.Cluster) ([]metav1.Object, error) {
			l, err := c.Client.CoreV1().Services("").List(ctx, metav1.ListOptions{})
			return objects(l.Items), err
		}},
		{"namespaces", schema.GroupResource{Resource: "namespaces"}, func(c testenv.Cluster) ([]metav1.Object, error) {
			l, err := c.Client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
			return objects(l.Items), err
		}},
		{"nodes", schema.GroupResource{Resource: "nodes"}, func(c testenv.Cluster) ([]metav1.Object, error) {
			l, err := c.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
			return objects(l.Items), err
		}},
		{"workloads(kinds: [DEPLOYMENT])", schema.GroupResource{Group: "apps", Resource: "deployments"}, func(c testenv.Cluster) ([]metav1.Object, error) {
			l, err := c.Client.AppsV1().Deployments("").List(ctx, metav1.ListOptions{})
			return objects(l.Items), err
		}},
		{"ingresses", schema.GroupResource{Group: "networking.k8s.io", Resource: "ingresses"}, func(c testenv.Cluster) ([]metav1.Object, error) {
			l, err := c.Client.NetworkingV1().Ingresses("").List(ctx, metav1.ListOptions{})
			return objects(l.Items), err
		}},
	}
	for _, u := range users {
		t.Run(u.name, func(t *testing.T) {
			var viewer struct{ Viewer struct{ Username string } }
			s.as(u.token).query(t, `{ viewer { username } }`, nil, &viewer)
			if viewer.Viewer.Username != u.user {
				t.Fatalf("viewer = %q, want %q", viewer.Viewer.Username, u.user)
			}
			for _, k := range kinds {
				var want []string
				for _, c := range cs {
					objs, err := k.list(c)
					if err != nil {
						t.Fatal(err)
					}
					e := newEnumerationOracle(t, c, u, k.gr)
					for _, o := range objs {
						if e.mayEnumerate(o.GetNamespace(), o.GetName()) {
							want = append(want, key(c.Context, o.GetNamespace(), o.GetName()))
						}
					}
				}
				sort.Strings(want)
				field, args := k.field, ""
				if i := strings.Index(field, "("); i > 0 {
					field, args = field[:i], ", "+strings.Trim(field[i:], "()")
				}
				for mode, srv := range servers {
					agree(t, u.name+" "+k.field+" ("+mode+")", func() []string { return want }, func() []string { return srv.as(u.token).all(t, field, args) })
				}
			}
			// Direct lookups: an object the user may not get is FORBIDDEN.
			for _, p := range pods.Items {
				id := k8s.ObjectID{Cluster: cs[0].Context, GVK: k8s.GVKPod, Namespace: p.Namespace, Name: p.Name}.Encode()
				allowed := can(t, cs[0], u, "get", schema.GroupResource{Resource: "pods"}, p.Namespace, p.Name)
				for mode, srv := range servers {
					r := srv.as(u.token).do(t, `query($id: ID!) { object(id: $id) { id } }`, map[string]any{"id": id})
					switch {
					case allowed && len(r.Errors) > 0:
						t.Errorf("%s: %s may get pod %s but got %+v", mode, u.name, p.Name, r.Errors)
					case !allowed && (len(r.Errors) == 0 || r.Errors[0].Extensions["code"] != "FORBIDDEN"):
						t.Errorf("%s: %s may not get pod %s but got %s %+v", mode, u.name, p.Name, r.Data, r.Errors)
					}
				}
			}
		})
	}
	// The fallback was consulted (the restricted users' lists asked it).
	if reviews.Load() == 0 {
		t.Error("no SubjectAccessReview was made with the fallback on")
	}
	// The lists were not trivially empty or full, and the get-only user,
	// who may get every shop pod, lists none.
	var none, two, getter struct{ Pods struct{ TotalCount int } }
	s.as(users[4].token).query(t, `{ pods { totalCount } }`, nil, &none)
	s.as(users[1].token).query(t, `{ pods { totalCount } }`, nil, &two)
	s.as(users[3].token).query(t, `{ pods { totalCount } }`, nil, &getter)
	if none.Pods.TotalCount != 0 || two.Pods.TotalCount == 0 || getter.Pods.TotalCount != 0 {
		t.Errorf("pods seen: none %d, two-namespace user %d, get-only user %d", none.Pods.TotalCount, two.Pods.TotalCount, getter.Pods.TotalCount)
	}
	if !can(t, cs[0], users[3], "get", schema.GroupResource{Resource: "pods"}, "shop", namedPod) {
		t.Error("the get-only user may not get a shop pod: its grant is not what the test means")
	}
	t.Run("viewer", func(t *testing.T) {
		var out struct {
			Viewer struct {
				Clusters []struct {
					AllNamespaces bool
					Namespaces    []struct{ Name string }
					Permissions   []struct {
						Group, Resource string
						Verbs           []string
					}
				}
			}
		}
		s.as(users[1].token).query(t, `{ viewer { clusters { allNamespaces namespaces { name } permissions(namespace: "shop") { group resource verbs } } } }`, nil, &out)
		if len(out.Viewer.Clusters) != len(cs) {
			t.Fatalf("viewer clusters = %+v", out.Viewer.Clusters)
		}
		for _, vc := range out.Viewer.Clusters {
			var names []string
			for _, n := range vc.Namespaces {
				names = append(names, n.Name)
			}
			if vc.AllNamespaces || !slices.Equal(names, []string{"data", "shop"}) {
				t.Errorf("two-namespace user: all=%v namespaces %v", vc.AllNamespaces, names)
			}
			for _, p := range vc.Permissions {
				if p.Resource == "pods" && !slices.Equal(p.Verbs, []string{"get", "list", "watch"}) {
					t.Errorf("pods verbs in shop = %v, want view's get, list, watch", p.Verbs)
				}
			}
		}
	})
}

// enumerationOracle answers, from the apiserver's SubjectAccessReviews,
// which objects of one resource an account may enumerate, asking each
// namespace's questions once.
type enumerationOracle struct {
	t      *testing.T
	c      testenv.Cluster
	u      testUser
	gr     schema.GroupResource
	list   map[string]bool // may list in the namespace (or cluster-wide)
	anyGet map[string]bool // may get a name no object has
}

func newEnumerationOracle(t *testing.T, c testenv.Cluster, u testUser, gr schema.GroupResource) *enumerationOracle {
	return &enumerationOracle{t: t, c: c, u: u, gr: gr, list: map[string]bool{}, anyGet: map[string]bool{}}
}

// mayEnumerate is the rule of package k8s asked of the apiserver: the
// account may list the resource in the object's namespace (or
// cluster-wide), or list it by name (a list narrowed to one name is
// authorized against resourceNames), or a get rule names it: it may get
// the object, but not a name no object has (a get without resourceNames
// allows both; here no account holds both kinds of get rule on one
// resource and namespace, which keeps this exact). The apiserver asks
// about one Namespace object in that namespace (its request info does so);
// a list of namespaces, even narrowed to a name, is cluster-wide.
func (e *enumerationOracle) mayEnumerate(ns, name string) bool {
	e.t.Helper()
	l, asked := e.list[ns]
	if !asked {
		l = can(e.t, e.c, e.u, "list", e.gr, ns, "")
		e.list[ns] = l
	}
	if l || can(e.t, e.c, e.u, "list", e.gr, ns, name) {
		return true
	}
	getNS, noSuchNS := ns, ns
	const noSuch = "cg-no-such-object"
	if e.gr.Group == "" && e.gr.Resource == "namespaces" {
		getNS, noSuchNS = name, noSuch
	}
	g, asked := e.anyGet[noSuchNS]
	if !asked {
		g = can(e.t, e.c, e.u, "get", e.gr, noSuchNS, noSuch)
		e.anyGet[noSuchNS] = g
	}
	return !g && can(e.t, e.c, e.u, "get", e.gr, getNS, name)
}

// TestAuthentication: no token, a malformed header, a token the identity
// cluster refuses: each is UNAUTHENTICATED before any resolver runs; smuggled
// impersonation headers change nothing.
func TestAuthentication(t *testing.T) {
	cs := testenv.Clusters(t)
	none := makeUser(t, cs, "cg-nobody", nil)
	s := startServer(t, serverOpts{kubeconfigs: []string{cs[0].Kubeconfig}, waitReady: true, auth: true})
	post := func(header map[string]string) (int, response) {
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/query", strings.NewReader(`{"query":"{ pods { totalCount } }"}`))
		req.Header.Set("Content-Type", "application/json")
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r response
		_ = json.NewDecoder(resp.Body).Decode(&r)
		return resp.StatusCode, r
	}
	for name, h := range map[string]map[string]string{
		"no token":     nil,
		"basic auth":   {"Authorization": "Basic YWRtaW46YWRtaW4="},
		"empty bearer": {"Authorization": "Bearer "},
		"bogus token":  {"Authorization": "Bearer not-a-token"},
	} {
		status, r := post(h)
		if status != http.StatusUnauthorized || len(r.Errors) == 0 || r.Errors[0].Extensions["code"] != "UNAUTHENTICATED" {
			t.Errorf("%s: status %d, %+v; want 401 UNAUTHENTICATED", name, status, r)
		}
	}
	// A token whose service account is gone (as good as expired).
	gone := makeUser(t, cs, "cg-gone", nil)
	if err := cs[0].Client.CoreV1().ServiceAccounts(accessNS).Delete(ctx, "cg-gone", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// The apiserver itself takes a moment to stop accepting it (its service
	// account cache); ask it first, so clustergraph is asked only after and
	// does not remember an earlier yes.
	eventually(t, 30*time.Second, "the apiserver to refuse the deleted account's token", func() bool {
		tr, err := cs[0].Client.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: gone.token}}, metav1.CreateOptions{})
		return err == nil && !tr.Status.Authenticated
	})
	if st, _ := post(map[string]string{"Authorization": "Bearer " + gone.token}); st != http.StatusUnauthorized {
		t.Errorf("token of a deleted service account: status %d, want 401", st)
	}
	// Impersonation headers from a client are dropped: the user still sees
	// only what it may.
	status, r := post(map[string]string{"Authorization": "Bearer " + none.token, "Impersonate-User": "system:admin", "Impersonate-Group": "system:masters"})
	var out struct{ Pods struct{ TotalCount int } }
	if status != http.StatusOK || json.Unmarshal(r.Data, &out) != nil || out.Pods.TotalCount != 0 {
		t.Errorf("with impersonation headers: status %d, %s %+v; want 0 pods", status, r.Data, r.Errors)
	}
	// Health, readiness and GraphiQL need no token.
	for _, path := range []string{"/healthz", "/readyz", "/"} {
		resp, err := http.Get(s.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %d without a token, want 200", path, resp.StatusCode)
		}
	}
}

// TestGroupAccess: static-token users get what their groups are bound to.
func TestGroupAccess(t *testing.T) {
	cs := testenv.Clusters(t)
	c := cs[0]
	b := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "devs-view", Namespace: "data"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "devs"}}}
	if _, err := c.Client.RbacV1().RoleBindings("data").Create(ctx, b, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Client.RbacV1().RoleBindings("data").Delete(ctx, "devs-view", metav1.DeleteOptions{}) })
	dataPods, err := c.Client.CoreV1().Pods("data").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, serverOpts{kubeconfigs: []string{c.Kubeconfig}, waitReady: true, auth: true})
	for _, user := range []string{"alice", "bob"} {
		var out struct {
			Viewer struct {
				Username string
				Groups   []string
			}
			Pods struct {
				TotalCount int
				Nodes      []struct{ Namespace string }
			}
		}
		agree(t, user+"'s pods", func() int { return len(dataPods.Items) }, func() int {
			s.as(testenv.StaticTokens[user]).query(t, `{ viewer { username groups } pods { totalCount nodes { namespace } } }`, nil, &out)
			return out.Pods.TotalCount
		})
		if out.Viewer.Username != user || !slices.Contains(out.Viewer.Groups, "devs") {
			t.Errorf("viewer = %+v", out.Viewer)
		}
		for _, p := range out.Pods.Nodes {
			if p.Namespace != "data" {
				t.Errorf("%s sees a pod in %s", user, p.Namespace)
			}
		}
	}
}
