package api_test

import (
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/clustergraph/clustergraph/api"
	"github.com/clustergraph/clustergraph/internal/testenv"
	"github.com/clustergraph/clustergraph/k8s"
)

// The tests of this file hold clustergraph to the apiserver's rule for
// what a caller may enumerate (see package k8s): an object shows in a
// list, a count, a relation, a watch or an aggregate only if the caller may
// list its kind in its namespace or cluster-wide, or a list or get rule
// names it by resourceNames; a get without resourceNames allows lookups by
// name or id and nothing more.

var (
	podsGR       = schema.GroupResource{Resource: "pods"}
	servicesGR   = schema.GroupResource{Resource: "services"}
	configMapsGR = schema.GroupResource{Resource: "configmaps"}
	secretsGR    = schema.GroupResource{Resource: "secrets"}
)

// listedKind is how clustergraph lists a resource: a root list field and
// its extra arguments, for server.all. ConfigMaps and Secrets go through
// resources(), the apiserver LIST path; pods and services through the
// caches.
type listedKind struct {
	gr          schema.GroupResource
	field, args string
}

var listedKinds = []listedKind{
	{podsGR, "pods", ""},
	{servicesGR, "services", ""},
	{configMapsGR, "resources", `, group: "", version: "v1", resource: "configmaps"`},
	{secretsGR, "resources", `, group: "", version: "v1", resource: "secrets"`},
}

// uniqueSuffix names what a test creates on the shared clusters, so that
// concurrent runs never share a namespace or a cluster-wide object.
func uniqueSuffix(t testing.TB) string {
	t.Helper()
	b := make([]byte, 3)
	if _, err := crand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// seedObjects creates a pod, a Service, a ConfigMap and a Secret of each
// name in the namespace, labelled cg-enum=label (the namespace's deletion
// removes them).
func seedObjects(t testing.TB, c testenv.Cluster, ns, label string, names ...string) {
	t.Helper()
	meta := func(name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"cg-enum": label}}
	}
	for _, name := range names {
		var err error
		if _, err = c.Client.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: meta(name),
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example/app:1"}}}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err = c.Client.CoreV1().Services(ns).Create(ctx, &corev1.Service{ObjectMeta: meta(name),
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err = c.Client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: meta(name),
			Data: map[string]string{"setting": "value"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err = c.Client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: meta(name),
			StringData: map[string]string{"password": "hunter2"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// createRole creates a Role (namespace set) or a ClusterRole and deletes it
// when the test ends.
func createRole(t testing.TB, c testenv.Cluster, ns, name string, rules ...rbacv1.PolicyRule) {
	t.Helper()
	var err error
	if ns == "" {
		_, err = c.Client.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules}, metav1.CreateOptions{})
		t.Cleanup(func() { _ = c.Client.RbacV1().ClusterRoles().Delete(ctx, name, metav1.DeleteOptions{}) })
	} else {
		_, err = c.Client.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Rules: rules}, metav1.CreateOptions{})
		t.Cleanup(func() { _ = c.Client.RbacV1().Roles(ns).Delete(ctx, name, metav1.DeleteOptions{}) })
	}
	if err != nil {
		t.Fatal(err)
	}
}

func coreRule(verbs, resources []string, names ...string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{Verbs: verbs, APIGroups: []string{""}, Resources: resources, ResourceNames: names}
}

// objectID is the global id of a core object of the cluster.
func objectID(c testenv.Cluster, gvk schema.GroupVersionKind, ns, name string) string {
	return k8s.ObjectID{Cluster: c.Context, GVK: gvk, Namespace: ns, Name: name}.Encode()
}

// lookedUp reports whether object(id) returns the named object to the
// caller.
func lookedUp(t *testing.T, s *server, id, ns, name string) bool {
	t.Helper()
	r := s.do(t, `query($id: ID!) { object(id: $id) { metadata { name namespace } } }`, map[string]any{"id": id})
	var out struct {
		Object *struct {
			Metadata struct{ Name, Namespace string }
		}
	}
	return len(r.Errors) == 0 && jsonInto(r, &out) == nil && out.Object != nil && out.Object.Metadata.Name == name && out.Object.Metadata.Namespace == ns
}

// nsReader lets the account read the Namespace object it is bound in, so
// a test reaches the namespace's fields through cluster { namespace }; it
// grants nothing on the kinds the tests judge.
var nsReader = coreRule([]string{"get"}, []string{"namespaces"})

// namespaceFields are what a Namespace lists and counts of the judged
// kinds, by resource, and its overview.
type namespaceFields struct {
	Pods, Services, ConfigMaps, Secrets struct {
		TotalCount int
		Nodes      []struct{ Metadata struct{ Name string } }
	}
	Overview []struct {
		Kind  string
		Total int
	}
}

// byResource returns the names a Namespace's fields list and their counts.
func (n namespaceFields) byResource() map[schema.GroupResource]struct {
	names []string
	total int
} {
	out := map[schema.GroupResource]struct {
		names []string
		total int
	}{}
	for gr, l := range map[schema.GroupResource]struct {
		TotalCount int
		Nodes      []struct{ Metadata struct{ Name string } }
	}{podsGR: n.Pods, servicesGR: n.Services, configMapsGR: n.ConfigMaps, secretsGR: n.Secrets} {
		var names []string
		for _, o := range l.Nodes {
			names = append(names, o.Metadata.Name)
		}
		slices.Sort(names)
		out[gr] = struct {
			names []string
			total int
		}{names, l.TotalCount}
	}
	return out
}

// namespaceOf reads a namespace's fields as the caller.
func namespaceOf(t *testing.T, s *server, cluster, ns string) namespaceFields {
	t.Helper()
	var out struct {
		Cluster struct{ Namespace *namespaceFields }
	}
	s.query(t, `query($c: String!, $ns: String!) { cluster(name: $c) { namespace(name: $ns) {
		pods { totalCount nodes { metadata { name } } } services { totalCount nodes { metadata { name } } }
		configMaps { totalCount nodes { metadata { name } } } secrets { totalCount nodes { metadata { name } } }
		overview { kind total } } } }`, map[string]any{"c": cluster, "ns": ns}, &out)
	if out.Cluster.Namespace == nil {
		t.Fatalf("namespace %s is not there for the caller", ns)
	}
	return *out.Cluster.Namespace
}

// watchShowsNothing subscribes to a kind in a namespace: the watch must be
// refused (FORBIDDEN, the caller could see no object of the kind), or its
// current state must be empty (SYNCED first).
func watchShowsNothing(t *testing.T, s *server, token, kind, ns string) {
	t.Helper()
	st := subscribeWS(t, s, token, `subscription($k: String!, $ns: String) { watch(kind: $k, namespace: $ns) { type object { metadata { name } } } }`,
		map[string]any{"k": kind, "ns": ns})
	m, err := wsRead(st.c)
	if err != nil {
		t.Fatalf("watch %s: %v", kind, err)
	}
	var r struct {
		Data struct {
			Watch *struct {
				Type   string
				Object *struct{ Metadata struct{ Name string } }
			}
		}
		Errors []gqlError
	}
	var errs []gqlError
	switch m.Type {
	case "error":
		_ = json.Unmarshal(m.Payload, &errs)
	case "next":
		if err := json.Unmarshal(m.Payload, &r); err != nil {
			t.Fatalf("watch %s: %s: %v", kind, m.Payload, err)
		}
		errs = r.Errors
	default:
		t.Fatalf("watch %s: unexpected message %+v", kind, m)
	}
	switch {
	case len(errs) > 0:
		if errs[0].Extensions["code"] != "FORBIDDEN" {
			t.Errorf("watch %s in %s: %+v, want FORBIDDEN or nothing", kind, ns, errs)
		}
	case r.Data.Watch == nil || r.Data.Watch.Type != "SYNCED":
		t.Errorf("watch %s in %s delivered %+v before SYNCED, want nothing", kind, ns, r.Data.Watch)
	}
}

// TestGetOnlyGrantEnumeratesNothing: an account with a Role allowing get
// (not list) on Secrets, ConfigMaps and Pods in a namespace, which the
// apiserver refuses `kubectl get secrets|configmaps|pods` there, sees none
// of them through clustergraph: not in the pods list, resources(), the
// namespace's fields and overview, its topology or a watch, while
// object(id) still returns each.
func TestGetOnlyGrantEnumeratesNothing(t *testing.T) {
	cs := testenv.Clusters(t)
	c := cs[0]
	ns := "vault-" + uniqueSuffix(t)
	makeNamespace(t, c, ns)
	seedObjects(t, c, ns, ns, "alpha", "beta")
	getter := makeUser(t, cs[:1], "cg-"+ns, func(c testenv.Cluster, user string) {
		createRole(t, c, ns, "getter", coreRule([]string{"get"}, []string{"secrets", "configmaps", "pods"}), nsReader)
		roleBinding(t, c, ns, "getter", "Role", "getter", user)
	})
	for _, gr := range []schema.GroupResource{podsGR, configMapsGR, secretsGR} {
		authorized(t, c, getter, "get", gr, ns, "alpha")
		if can(t, c, getter, "list", gr, ns, "") || can(t, c, getter, "list", gr, ns, "alpha") {
			t.Fatalf("the apiserver lets the get-only account list %s", gr)
		}
	}
	s := startServer(t, serverOpts{kubeconfigs: []string{c.Kubeconfig}, waitReady: true, auth: true})
	as := s.as(getter.token)

	// Lookups by id work: waiting for them waits until the caches hold
	// the objects and the grant, so the empty answers below are not early.
	for _, gvk := range []schema.GroupVersionKind{k8s.GVKPod, k8s.GVKConfigMap, k8s.GVKSecret} {
		for _, name := range []string{"alpha", "beta"} {
			id := objectID(c, gvk, ns, name)
			eventually(t, 15*time.Second, fmt.Sprintf("object(id) of %s %s/%s", gvk.Kind, ns, name), func() bool { return lookedUp(t, as, id, ns, name) })
		}
	}

	inNS := fmt.Sprintf(`, filter: {namespace: %q}`, ns)
	for _, l := range []struct{ field, args string }{
		{"pods", inNS},
		{"pods", ""},
		{"resources", `, group: "", version: "v1", resource: "pods"` + inNS},
		{"resources", `, group: "", version: "v1", resource: "configmaps"` + inNS},
		{"resources", `, group: "", version: "v1", resource: "secrets"` + inNS},
	} {
		for _, k := range as.all(t, l.field, l.args) {
			if strings.HasPrefix(k, c.Context+"/"+ns+"/") {
				t.Errorf("%s(%s) lists %s", l.field, l.args, k)
			}
		}
	}

	// The namespace is offered (the account holds a rule in it), not every
	// namespace; every field of it that lists or counts shows nothing.
	var v struct {
		Viewer struct {
			Clusters []struct {
				AllNamespaces bool
				Namespaces    []struct{ Name string }
			}
		}
	}
	as.query(t, `{ viewer { clusters { allNamespaces namespaces { name } } } }`, nil, &v)
	for _, vc := range v.Viewer.Clusters {
		if vc.AllNamespaces || !slices.ContainsFunc(vc.Namespaces, func(n struct{ Name string }) bool { return n.Name == ns }) {
			t.Errorf("viewer: all namespaces %v, namespaces %v; want %s among them, not all", vc.AllNamespaces, vc.Namespaces, ns)
		}
	}
	fields := namespaceOf(t, as, c.Context, ns)
	for gr, l := range fields.byResource() {
		if l.total != 0 || len(l.names) != 0 {
			t.Errorf("namespace %s's %s: %d, %v; want none", ns, gr.Resource, l.total, l.names)
		}
	}
	if len(fields.Overview) == 0 {
		t.Errorf("namespace %s has no overview", ns)
	}
	for _, kc := range fields.Overview {
		if kc.Total != 0 {
			t.Errorf("namespace %s overview counts %d %s", ns, kc.Total, kc.Kind)
		}
	}

	var topo struct {
		Topology struct{ Nodes []struct{ ObjectID string } }
	}
	as.query(t, `query($c: String!, $ns: String) { topology(cluster: $c, namespace: $ns) { nodes { objectId } } }`, map[string]any{"c": c.Context, "ns": ns}, &topo)
	if len(topo.Topology.Nodes) != 0 {
		t.Errorf("topology of %s shows %v", ns, topo.Topology.Nodes)
	}

	for _, kind := range []string{"Pod", "ConfigMap", "Secret"} {
		watchShowsNothing(t, s, getter.token, kind, ns)
	}
}

// TestResourceNamesGrantsListTheNamed: a list rule with resourceNames lets
// the account list exactly the named objects (the apiserver authorizes a
// list narrowed to one name against them), and so does a get rule with
// resourceNames (showing them reveals no name the grant did not give);
// nothing else of the namespace shows.
func TestResourceNamesGrantsListTheNamed(t *testing.T) {
	cs := testenv.Clusters(t)
	c := cs[0]
	ns := "named-" + uniqueSuffix(t)
	makeNamespace(t, c, ns)
	seedObjects(t, c, ns, ns, "alpha", "beta", "gamma")
	lister := makeUser(t, cs[:1], "cg-"+ns+"-list", func(c testenv.Cluster, user string) {
		createRole(t, c, ns, "lister",
			coreRule([]string{"list"}, []string{"configmaps"}, "alpha", "beta"),
			coreRule([]string{"list"}, []string{"pods"}, "alpha"),
			coreRule([]string{"get", "list"}, []string{"services"}, "gamma"), nsReader)
		roleBinding(t, c, ns, "lister", "Role", "lister", user)
	})
	getter := makeUser(t, cs[:1], "cg-"+ns+"-get", func(c testenv.Cluster, user string) {
		createRole(t, c, ns, "getter",
			coreRule([]string{"get"}, []string{"configmaps"}, "gamma"),
			coreRule([]string{"get"}, []string{"secrets"}, "beta"),
			coreRule([]string{"get"}, []string{"pods"}, "beta", "no-such-pod"), nsReader)
		roleBinding(t, c, ns, "getter", "Role", "getter", user)
	})
	authorized(t, c, lister, "list", configMapsGR, ns, "alpha")
	authorized(t, c, getter, "get", secretsGR, ns, "beta")
	if can(t, c, lister, "list", configMapsGR, ns, "") || can(t, c, lister, "list", configMapsGR, ns, "gamma") {
		t.Fatal("the apiserver lets the lister list more than the named ConfigMaps")
	}
	want := map[string]map[schema.GroupResource][]string{
		lister.name: {podsGR: {"alpha"}, servicesGR: {"gamma"}, configMapsGR: {"alpha", "beta"}},
		getter.name: {podsGR: {"beta"}, configMapsGR: {"gamma"}, secretsGR: {"beta"}},
	}
	s := startServer(t, serverOpts{kubeconfigs: []string{c.Kubeconfig}, waitReady: true, auth: true})
	filter := fmt.Sprintf(`, filter: {namespace: %q}`, ns)
	for _, u := range []testUser{lister, getter} {
		for _, k := range listedKinds {
			var keys []string
			for _, name := range want[u.name][k.gr] {
				keys = append(keys, key(c.Context, ns, name))
			}
			agree(t, fmt.Sprintf("%s's %s", u.name, k.gr.Resource), func() []string { return keys }, func() []string {
				return s.as(u.token).all(t, k.field, k.args+filter)
			})
		}
		// The namespace's own fields (the caches' path) list and count the
		// same.
		for gr, l := range namespaceOf(t, s.as(u.token), c.Context, ns).byResource() {
			if w := want[u.name][gr]; !slices.Equal(l.names, w) || l.total != len(w) {
				t.Errorf("%s: namespace %s's %s = %v (totalCount %d), want %v", u.name, ns, gr.Resource, l.names, l.total, w)
			}
		}
	}
}

// makeAccount creates a service account of the differential test, in a
// namespace of the test's own (so its group system:serviceaccounts:NS is
// bound by no one else), and returns it with a token.
func makeAccount(t testing.TB, c testenv.Cluster, ns, name string) testUser {
	t.Helper()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	if _, err := c.Client.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tr, err := c.Client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return testUser{name: ns + ":" + name, token: tr.Status.Token, user: "system:serviceaccount:" + ns + ":" + name,
		groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}}
}

// grant is one binding of the generated policy: rules in a Role of
// namespace ns (clusterRole false), or in a ClusterRole bound in ns, or
// bound cluster-wide (ns empty). An aggregated grant's ClusterRole has no
// rules of its own: it aggregates one labelled ClusterRole per rule,
// which the controller manager copies into it.
type grant struct {
	ns          string
	clusterRole bool
	aggregated  bool
	rules       []rbacv1.PolicyRule
	subject     rbacv1.Subject
}

// binds reports whether the grant's subject names the account.
func (g grant) binds(u testUser) bool {
	switch g.subject.Kind {
	case rbacv1.UserKind:
		return g.subject.Name == u.user
	case rbacv1.ServiceAccountKind:
		return u.user == "system:serviceaccount:"+g.subject.Namespace+":"+g.subject.Name
	case rbacv1.GroupKind:
		return slices.Contains(u.groups, g.subject.Name)
	}
	return false
}

// getsIn reports whether one of the grant's rules allows get of the
// resource in ns for u: unrestricted (no resourceNames), or by name.
func (g grant) getsIn(u testUser, gr schema.GroupResource, ns string) (unrestricted, named bool) {
	if !g.binds(u) || g.ns != "" && g.ns != ns {
		return false, false
	}
	for _, r := range g.rules {
		if ruleCovers(r, "get", gr) {
			if len(r.ResourceNames) == 0 {
				unrestricted = true
			} else {
				named = true
			}
		}
	}
	return unrestricted, named
}

// policyGen generates random grants over the test's accounts, keeping the
// oracle's get term exact: no account holds both an unrestricted get and
// a get by resourceNames on one resource in one namespace (the apiserver
// would then say yes to any name, and a yes for one name would not tell
// whether a rule names it).
type policyGen struct {
	rng        *rand.Rand
	accounts   []testUser // the accounts random grants may bind
	groups     []string
	namespaces []string
	names      []string // names the objects have
	all        []testUser
	grants     []grant
}

// add keeps g when it leaves the oracle exact for every account.
func (p *policyGen) add(g grant) bool {
	next := append(slices.Clone(p.grants), g)
	for _, u := range p.all {
		for _, k := range listedKinds {
			for _, ns := range p.namespaces {
				var unrestricted, named bool
				for _, h := range next {
					un, nm := h.getsIn(u, k.gr, ns)
					unrestricted, named = unrestricted || un, named || nm
				}
				if unrestricted && named {
					return false
				}
			}
		}
	}
	p.grants = next
	return true
}

// enumVocab is what the random grants' rules are drawn from (see
// ruleVocab.rule: wildcards and resourceNames among them): the verbs
// that show objects, the core group of the listed kinds and another
// (whose rules grant nothing on them), the listed kinds' resources and
// two that grant no list of them (a subresource, and every status
// subresource), the objects' names, a name no object has and "" (which
// allows a list, not a get of any object).
var enumVocab = ruleVocab{
	verbs:     []string{"get", "list", "watch"},
	groups:    []string{"", "", "apps"},
	resources: []string{"pods", "services", "configmaps", "secrets", "pods/log", "*/status"},
	names:     []string{"x0", "x1", "x2", "x0", "x1", "x2", "ghost", ""},
}

// random returns a random grant: rules of enumVocab, bound by a Role, by
// a ClusterRole (aggregated one time in three) in a namespace or
// cluster-wide, to an account (as a User or a ServiceAccount) or to one of
// the test's groups.
func (p *policyGen) random() grant {
	var rules []rbacv1.PolicyRule
	for range 1 + p.rng.IntN(2) {
		rules = append(rules, enumVocab.rule(p.rng))
	}
	g := grant{rules: rules}
	switch p.rng.IntN(3) {
	case 0:
		g.ns = p.namespaces[p.rng.IntN(len(p.namespaces))]
	case 1:
		g.ns, g.clusterRole = p.namespaces[p.rng.IntN(len(p.namespaces))], true
	default:
		g.clusterRole = true
	}
	g.aggregated = g.clusterRole && p.rng.IntN(3) == 0
	switch n := p.rng.IntN(len(p.accounts) + len(p.groups)); {
	case n >= len(p.accounts):
		g.subject = rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: p.groups[n-len(p.accounts)]}
	case p.rng.IntN(2) == 0:
		g.subject = rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: p.accounts[n].user}
	default:
		ns, name, _ := strings.Cut(strings.TrimPrefix(p.accounts[n].user, "system:serviceaccount:"), ":")
		g.subject = rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: name}
	}
	return g
}

// aggregateLabel labels the sources of an aggregated grant's ClusterRole
// with its name: no aggregated role of the cluster selects it.
const aggregateLabel = "cg-enum.test/aggregate-to"

// apply creates the grant's role and binding, named by i, and waits for
// an aggregated role to hold its rules.
func (g grant) apply(t *testing.T, c testenv.Cluster, prefix string, i int) {
	t.Helper()
	name := fmt.Sprintf("%s-%d", prefix, i)
	roleNS := g.ns
	if g.clusterRole {
		roleNS = ""
	}
	if g.aggregated {
		roles := c.Client.RbacV1().ClusterRoles()
		for j, r := range g.rules {
			src := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-src-%d", name, j), Labels: map[string]string{aggregateLabel: name}},
				Rules: []rbacv1.PolicyRule{r}}
			if _, err := roles.Create(ctx, src, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = roles.Delete(ctx, src.Name, metav1.DeleteOptions{}) })
		}
		agg := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, AggregationRule: &rbacv1.AggregationRule{
			ClusterRoleSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{aggregateLabel: name}}}}}
		if _, err := roles.Create(ctx, agg, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = roles.Delete(ctx, name, metav1.DeleteOptions{}) })
		awaitAggregated(t, c, name, g.rules)
	} else {
		createRole(t, c, roleNS, name, g.rules...)
	}
	kind := "Role"
	if g.clusterRole {
		kind = "ClusterRole"
	}
	ref := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: kind, Name: name}
	meta := metav1.ObjectMeta{Name: name, Namespace: g.ns}
	var err error
	if g.ns == "" {
		_, err = c.Client.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: meta, RoleRef: ref, Subjects: []rbacv1.Subject{g.subject}}, metav1.CreateOptions{})
		t.Cleanup(func() { _ = c.Client.RbacV1().ClusterRoleBindings().Delete(ctx, name, metav1.DeleteOptions{}) })
	} else {
		_, err = c.Client.RbacV1().RoleBindings(g.ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: meta, RoleRef: ref, Subjects: []rbacv1.Subject{g.subject}}, metav1.CreateOptions{})
		t.Cleanup(func() { _ = c.Client.RbacV1().RoleBindings(g.ns).Delete(ctx, name, metav1.DeleteOptions{}) })
	}
	if err != nil {
		t.Fatal(err)
	}
}

// sar asks the apiserver whether u may do verb (a SubjectAccessReview, as
// `kubectl auth can-i`); safe to call from several goroutines.
func sar(c testenv.Cluster, u testUser, verb string, gr schema.GroupResource, ns, name string) (bool, error) {
	got, err := c.Client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: u.user, Groups: u.groups,
		ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: verb, Group: gr.Group, Resource: gr.Resource, Namespace: ns, Name: name},
	}}, metav1.CreateOptions{})
	if err != nil {
		return false, fmt.Errorf("review %s %s %s/%s for %s: %w", verb, gr, ns, name, u.user, err)
	}
	return got.Status.Allowed, nil
}

// authorized waits until the apiserver allows what a new grant allows:
// its authorizer follows RBAC objects by a watch of its own, so a review
// right after a binding is created may not see it yet.
func authorized(t *testing.T, c testenv.Cluster, u testUser, verb string, gr schema.GroupResource, ns, name string) {
	t.Helper()
	eventually(t, 15*time.Second, fmt.Sprintf("the apiserver to allow %s %s %s/%s to %s", verb, gr, ns, name, u.name), func() bool {
		return can(t, c, u, verb, gr, ns, name)
	})
}

// probes are questions the grant allows one of the accounts, one per rule
// (its first verb, API group and resource, literally, wildcards included,
// and its first name): once the apiserver allows them all, its authorizer
// has seen the grant, an aggregated role's rules included.
func (g grant) probes(accounts []testUser, namespaces []string) (u testUser, qs []authorizationv1.ResourceAttributes) {
	for _, a := range accounts {
		if g.binds(a) {
			u = a
			break
		}
	}
	ns := g.ns
	if ns == "" {
		ns = namespaces[0]
	}
	for _, r := range g.rules {
		q := authorizationv1.ResourceAttributes{Verb: r.Verbs[0], Group: r.APIGroups[0], Resource: r.Resources[0], Namespace: ns}
		if len(r.ResourceNames) > 0 {
			q.Name = r.ResourceNames[0]
		}
		qs = append(qs, q)
	}
	return u, qs
}

// noSuchName is a name no object of the test has and no rule names.
const noSuchName = "cg-no-such-object"

// oracleTally counts the oracle's answers, by the term that decided.
type oracleTally struct {
	visible, invisible               int
	byList, byListedName, byNamedGet int
	// gettableHidden are objects the account may get (by a get without
	// resourceNames) but not list: those the old rule showed.
	gettableHidden int
}

// visibleBySAR is the oracle for one account, resource and namespace: the
// keys of the objects the apiserver lets the account enumerate, which are
// those it may list in the namespace (or cluster-wide: a namespaced list
// question is allowed by either), those it may list by name (a list
// narrowed to the name is authorized against resourceNames), and those a
// get rule names: get of the name allowed while get of a name no object has
// (noSuchName) is refused, which policyGen keeps exact. It asks per
// namespace first and per object only when the namespace's list is refused.
func visibleBySAR(c testenv.Cluster, u testUser, gr schema.GroupResource, ns string, names []string, tally *oracleTally) ([]string, error) {
	var out []string
	list, err := sar(c, u, "list", gr, ns, "")
	if err != nil {
		return nil, err
	}
	if list {
		for _, n := range names {
			out = append(out, key(c.Context, ns, n))
		}
		tally.byList += len(names)
		return out, nil
	}
	getsAny, err := sar(c, u, "get", gr, ns, noSuchName)
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		listed, err := sar(c, u, "list", gr, ns, n)
		if err != nil {
			return nil, err
		}
		got, err := sar(c, u, "get", gr, ns, n)
		if err != nil {
			return nil, err
		}
		switch {
		case listed:
			tally.byListedName++
		case got && !getsAny:
			tally.byNamedGet++
		case got:
			tally.gettableHidden++
			continue
		default:
			continue
		}
		out = append(out, key(c.Context, ns, n))
	}
	return out, nil
}

// visibleByKubectl is the same oracle as visibleBySAR asked the way
// kubectl asks, by requests made as the account (kubectl get --as): a LIST
// of the namespace's labelled objects shows them all when allowed; else an
// object shows when a LIST of its name (--field-selector metadata.name=)
// or a GET of it is allowed, the GET only when a GET of a name that does
// not exist is refused (a get without resourceNames names no object).
func visibleByKubectl(c testenv.Cluster, u testUser, gr schema.GroupResource, ns, selector string, names []string) ([]string, error) {
	cfg := rest.CopyConfig(c.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: u.user, Groups: u.groups}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	res := dyn.Resource(gr.WithVersion("v1")).Namespace(ns)
	var out []string
	list, err := res.List(ctx, metav1.ListOptions{LabelSelector: selector})
	switch {
	case err == nil:
		for _, o := range list.Items {
			out = append(out, key(c.Context, ns, o.GetName()))
		}
		slices.Sort(out)
		return out, nil
	case !apierrors.IsForbidden(err):
		return nil, err
	}
	_, err = res.Get(ctx, noSuchName, metav1.GetOptions{})
	getsAny := apierrors.IsNotFound(err)
	if err != nil && !getsAny && !apierrors.IsForbidden(err) {
		return nil, err
	}
	for _, n := range names {
		byName, err := res.List(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + n})
		listed := err == nil && len(byName.Items) == 1
		if err != nil && !apierrors.IsForbidden(err) {
			return nil, err
		}
		_, err = res.Get(ctx, n, metav1.GetOptions{})
		if err != nil && !apierrors.IsForbidden(err) {
			return nil, err
		}
		if listed || err == nil && !getsAny {
			out = append(out, key(c.Context, ns, n))
		}
	}
	slices.Sort(out)
	return out, nil
}

// envSeed is a differential test's seed: the environment variable name
// when set (to replay a failure), else the clock.
func envSeed(t *testing.T, name string) uint64 {
	t.Helper()
	if v := os.Getenv(name); v != "" {
		seed, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return seed
	}
	return uint64(time.Now().UnixNano())
}

// TestEnumerationMatchesSAR is a seeded differential test with the
// apiserver as the oracle: random Roles, ClusterRoles and aggregated
// ClusterRoles (rules of enumVocab: verbs among get, list and watch, API
// groups, resources and subresources of pods, services, ConfigMaps and
// Secrets, wildcards, some rules with resourceNames), bound by
// RoleBindings and ClusterRoleBindings to service accounts (as Users and
// as ServiceAccounts) and to their groups; for every account and object, what
// clustergraph lists must be what the oracle (visibleBySAR) says the
// account may enumerate, in both directions, with and without the
// SubjectAccessReview fallback. Two witness accounts, which random grants
// never bind, carry fixed grants so that each term of the oracle, and the
// get-only case the old rule got wrong, occur in every run.
func TestEnumerationMatchesSAR(t *testing.T) {
	cs := testenv.Clusters(t)
	c := cs[0]
	seed := envSeed(t, "CLUSTERGRAPH_ENUM_SEED")
	t.Logf("seed %d (replay: CLUSTERGRAPH_ENUM_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed>>32|1))
	prefix := "enum-" + uniqueSuffix(t)
	nsA, nsB, nsW := prefix+"-a", prefix+"-b", prefix+"-w"
	names := []string{"x0", "x1", "x2"}
	for _, ns := range []string{nsA, nsB, nsW} {
		makeNamespace(t, c, ns)
	}
	for _, ns := range []string{nsA, nsB} {
		seedObjects(t, c, ns, prefix, names...)
	}
	var accounts []testUser
	for _, ns := range []string{nsA, nsB} {
		for i := range 3 {
			accounts = append(accounts, makeAccount(t, c, ns, fmt.Sprintf("acct-%d", i)))
		}
	}
	witnesses := []testUser{makeAccount(t, c, nsW, "get-only"), makeAccount(t, c, nsW, "by-name")}
	gen := &policyGen{rng: rng, accounts: accounts, namespaces: []string{nsA, nsB}, names: names,
		groups: []string{"system:serviceaccounts:" + nsA, "system:serviceaccounts:" + nsB},
		all:    append(slices.Clone(accounts), witnesses...)}
	user := func(u testUser) rbacv1.Subject {
		return rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: u.user}
	}
	for _, g := range []grant{
		{ns: nsA, rules: []rbacv1.PolicyRule{coreRule([]string{"get", "watch"}, []string{"pods", "services", "configmaps", "secrets"})}, subject: user(witnesses[0])},
		{ns: nsB, rules: []rbacv1.PolicyRule{coreRule([]string{"list"}, []string{"configmaps"}, "x0")}, subject: user(witnesses[1])},
		{clusterRole: true, rules: []rbacv1.PolicyRule{coreRule([]string{"get"}, []string{"secrets"}, "x1")}, subject: user(witnesses[1])},
		{ns: nsA, clusterRole: true, rules: []rbacv1.PolicyRule{coreRule([]string{"list"}, []string{"pods"})}, subject: user(witnesses[1])},
	} {
		if !gen.add(g) {
			t.Fatalf("a witness grant breaks the oracle: %+v", g)
		}
	}
	for len(gen.grants) < 16 {
		gen.add(gen.random())
	}
	var aggregated, wildcards, unnamed int
	for i, g := range gen.grants {
		g.apply(t, c, prefix, i)
		if g.aggregated {
			aggregated++
		}
		for _, r := range g.rules {
			if slices.Contains(r.Verbs, "*") || slices.Contains(r.APIGroups, "*") || slices.Contains(r.Resources, "*") {
				wildcards++
			}
			if slices.Contains(r.ResourceNames, "") {
				unnamed++
			}
		}
	}
	t.Logf("%d grants, %d of them aggregated; %d rules with a wildcard, %d with resourceNames [\"\"]", len(gen.grants), aggregated, wildcards, unnamed)
	// The oracle must see every grant: a review racing the authorizer's
	// watch would judge by part of the policy.
	for _, g := range gen.grants {
		u, qs := g.probes(gen.all, gen.namespaces)
		for _, q := range qs {
			authorized(t, c, u, q.Verb, schema.GroupResource{Group: q.Group, Resource: q.Resource}, q.Namespace, q.Name)
		}
	}

	// The oracle, asked concurrently per account, kind and namespace.
	want := map[string]map[string][]string{} // account, resource -> keys
	var tally oracleTally
	var mu sync.Mutex
	var wg sync.WaitGroup
	var errs []error
	for _, u := range gen.all {
		want[u.name] = map[string][]string{} // before any goroutine reads want
	}
	for _, u := range gen.all {
		for _, k := range listedKinds {
			for _, ns := range gen.namespaces {
				wg.Go(func() {
					var local oracleTally
					keys, err := visibleBySAR(c, u, k.gr, ns, names, &local)
					var asKubectl []string
					if err == nil {
						asKubectl, err = visibleByKubectl(c, u, k.gr, ns, "cg-enum="+prefix, names)
					}
					if err == nil && !slices.Equal(keys, asKubectl) {
						err = fmt.Errorf("the oracles disagree: %s %s in %s: SubjectAccessReview %q, kubectl get --as %q", u.name, k.gr.Resource, ns, keys, asKubectl)
					}
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						errs = append(errs, err)
						return
					}
					want[u.name][k.gr.Resource] = append(want[u.name][k.gr.Resource], keys...)
					tally.byList += local.byList
					tally.byListedName += local.byListedName
					tally.byNamedGet += local.byNamedGet
					tally.gettableHidden += local.gettableHidden
				})
			}
		}
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatal(errs[0])
	}
	total := len(gen.all) * len(listedKinds) * len(gen.namespaces) * len(names)
	for _, byKind := range want {
		for r := range byKind {
			slices.Sort(byKind[r])
			tally.visible += len(byKind[r])
		}
	}
	tally.invisible = total - tally.visible
	t.Logf("%d grants, %d accounts, %d account-object pairs: %d visible (%d by a list of the namespace, %d by a list by name, %d by a get by name), %d invisible (%d of them gettable by a get without resourceNames)",
		len(gen.grants), len(gen.all), total, tally.visible, tally.byList, tally.byListedName, tally.byNamedGet, tally.invisible, tally.gettableHidden)
	if tally.visible == 0 || tally.invisible == 0 || tally.byList == 0 || tally.byListedName == 0 || tally.byNamedGet == 0 || tally.gettableHidden == 0 {
		t.Fatalf("the oracle is degenerate: %+v", tally)
	}

	paths := []string{c.Kubeconfig}
	servers := map[string]*server{
		"rbac":     startServer(t, serverOpts{kubeconfigs: paths, waitReady: true, auth: true}),
		"rbac+sar": startServer(t, serverOpts{kubeconfigs: paths, waitReady: true, auth: true, authzFallback: api.AuthzFallbackSAR}),
	}
	filter := fmt.Sprintf(`, filter: {labelSelector: "cg-enum=%s"}`, prefix)
	for _, mode := range slices.Sorted(maps.Keys(servers)) {
		s := servers[mode]
		// The caches follow the new grants and objects by a watch event:
		// retry until every list agrees, then count what still differs.
		var shown, hidden []string
		deadline := time.Now().Add(20 * time.Second)
		for {
			shown, hidden = nil, nil
			for _, u := range gen.all {
				for _, k := range listedKinds {
					got := s.as(u.token).all(t, k.field, k.args+filter)
					exp := want[u.name][k.gr.Resource]
					for _, g := range got {
						if !slices.Contains(exp, g) {
							shown = append(shown, fmt.Sprintf("%s: %s %s", u.name, k.gr.Resource, g))
						}
					}
					for _, w := range exp {
						if !slices.Contains(got, w) {
							hidden = append(hidden, fmt.Sprintf("%s: %s %s", u.name, k.gr.Resource, w))
						}
					}
				}
			}
			if len(shown)+len(hidden) == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(300 * time.Millisecond)
		}
		if len(shown)+len(hidden) > 0 {
			t.Errorf("%s (seed %d): %d objects listed that the apiserver would not let the account enumerate:\n%s\n%d objects it may enumerate not listed:\n%s\ngrants: %+v",
				mode, seed, len(shown), strings.Join(shown, "\n"), len(hidden), strings.Join(hidden, "\n"), gen.grants)
		}
	}
}
