package api_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/clustergraph/clustergraph/caller"
	"github.com/clustergraph/clustergraph/internal/testenv"
	"github.com/clustergraph/clustergraph/k8s"
)

// The differential RBAC test of this file holds the in-process evaluator
// (k8s.Access, computed from the cached Roles, ClusterRoles and bindings)
// to the apiserver's own authorizer: on a seeded random policy, for
// thousands of random questions (who, verb, API group, resource and
// subresource, namespace or cluster-wide, name or none) both must answer
// alike. The random rules come from ruleVocab, which the enumeration test
// (TestEnumerationMatchesSAR, the list-through-the-graph half) shares.
//
// Only resource requests are asked: the evaluator authorizes reads and
// writes of resources, never a nonResourceURL (/healthz, /metrics), so
// rules with nonResourceURLs are not generated. Identities in the
// system:nodes group are not asked either: the testbed authorizes with
// Node,RBAC, and the Node authorizer's answers come from the pods bound to
// a node, not from RBAC objects, so nothing the evaluator reads could
// model them (clustergraph never reviews a foreign node identity, see
// caller.Subject.ForeignSystemIdentity). system:masters, which the apiserver
// allows before any authorizer, is asked (the evaluator models it).

// ruleVocab is what random RBAC rules are drawn from: verbs, API groups,
// resources (subresources as "pods/log", wildcards as "*", "*/scale" or
// the literal "pods/*", which RBAC does not treat as a wildcard) and the
// resourceNames some rules carry.
type ruleVocab struct {
	verbs, groups, resources, names []string
}

// pick returns a random element of from.
func pick[T any](rng *rand.Rand, from []T) T { return from[rng.IntN(len(from))] }

// someOf returns a random non-empty subset of from, in its order, of at
// most most elements (0: any number).
func someOf(rng *rand.Rand, from []string, most int) []string {
	for {
		var out []string
		for _, s := range from {
			if rng.IntN(2) == 0 {
				out = append(out, s)
			}
		}
		if len(out) > 0 && (most == 0 || len(out) <= most) {
			return out
		}
	}
}

// rule draws one rule: its verbs, API groups and resources are each "*"
// alone one time in seven, else a random subset of the vocabulary (at
// most three resources, to keep rules narrow enough that a random
// question is sometimes refused), sometimes with a "*" among them; one
// rule in four restricts itself to resourceNames.
func (v ruleVocab) rule(rng *rand.Rand) rbacv1.PolicyRule {
	part := func(from []string, most int) []string {
		switch rng.IntN(14) {
		case 0, 1:
			return []string{"*"}
		case 2:
			return append(someOf(rng, from, most), "*")
		}
		return someOf(rng, from, most)
	}
	r := rbacv1.PolicyRule{Verbs: part(v.verbs, 0), APIGroups: part(v.groups, 0), Resources: part(v.resources, 3)}
	if rng.IntN(4) == 0 && len(v.names) > 0 {
		// The vocabulary may repeat a name to draw it more often; a rule
		// names it once.
		for _, n := range someOf(rng, v.names, 2) {
			if !slices.Contains(r.ResourceNames, n) {
				r.ResourceNames = append(r.ResourceNames, n)
			}
		}
	}
	return r
}

// ruleCovers reports whether r allows verb on the resource for some name:
// the generators' own reading of a rule, used to steer them (which grants
// keep the enumeration oracle exact, which identity a question is about),
// never as an oracle.
func ruleCovers(r rbacv1.PolicyRule, verb string, gr schema.GroupResource) bool {
	in := func(list []string, v string) bool { return slices.Contains(list, "*") || slices.Contains(list, v) }
	return in(r.Verbs, verb) && in(r.APIGroups, gr.Group) && in(r.Resources, gr.Resource)
}

// rbacDiffVocab is the differential test's rule vocabulary. The names
// include "" now and then: the apiserver accepts resourceNames: [""], and
// its authorizer then allows the requests that carry no name (a list, a
// create).
var rbacDiffVocab = ruleVocab{
	verbs:  []string{"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"},
	groups: []string{"", "apps", "batch", rbacv1.GroupName},
	resources: []string{"pods", "pods/log", "pods/exec", "pods/*", "deployments", "deployments/scale", "configmaps",
		"secrets", "jobs", "roles", "namespaces", "*/scale", "*/status"},
	names: []string{"n0", "n1", "n2", "n0", "n1", "n2", ""},
}

// rbacQueryResources are the resources questions ask about, with their
// API group; a question uses another group one time in four.
var rbacQueryResources = []schema.GroupResource{
	{Resource: "pods"}, {Resource: "pods/log"}, {Resource: "pods/exec"}, {Resource: "pods/status"}, {Resource: "pods/eviction"},
	{Resource: "services"}, {Resource: "configmaps"}, {Resource: "secrets"}, {Resource: "namespaces"},
	{Group: "apps", Resource: "deployments"}, {Group: "apps", Resource: "deployments/scale"}, {Group: "apps", Resource: "deployments/status"},
	{Group: "apps", Resource: "replicasets/scale"}, {Group: "batch", Resource: "jobs"}, {Group: "batch", Resource: "jobs/status"},
	{Group: rbacv1.GroupName, Resource: "roles"}, {Group: rbacv1.GroupName, Resource: "rolebindings"},
	{Group: "authorization.k8s.io", Resource: "selfsubjectaccessreviews"},
}

var (
	rbacQueryGroups = []string{"", "apps", "batch", rbacv1.GroupName, "cg.example.com"}
	rbacQueryVerbs  = []string{"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}
	rbacQueryNames  = []string{"", "n0", "n1", "n2", "n3"}
)

// diffRole is a Role (ns set) or ClusterRole of the generated policy;
// rules of an aggregated ClusterRole are what the controller manager
// filled in.
type diffRole struct {
	ns, name    string
	labels      map[string]string
	aggregation *rbacv1.AggregationRule
	rules       []rbacv1.PolicyRule
}

// diffBinding is a RoleBinding (ns set) or ClusterRoleBinding.
type diffBinding struct {
	ns, name string
	ref      rbacv1.RoleRef
	subjects []rbacv1.Subject
}

// identity is who a question is about, as a SubjectAccessReview puts it.
type identity struct {
	user   string
	groups []string
}

// names reports whether the binding names the identity: the generator's
// reading, used to aim questions and to print a disagreement's policy.
func (b diffBinding) names(id identity) bool {
	for _, s := range b.subjects {
		switch s.Kind {
		case rbacv1.UserKind:
			if s.Name == id.user {
				return true
			}
		case rbacv1.GroupKind:
			if slices.Contains(id.groups, s.Name) {
				return true
			}
		case rbacv1.ServiceAccountKind:
			ns := s.Namespace
			if ns == "" {
				ns = b.ns
			}
			if ns != "" && id.user == "system:serviceaccount:"+ns+":"+s.Name {
				return true
			}
		}
	}
	return false
}

// question is one authorization question; gr.Resource may name a
// subresource ("pods/log"), as the evaluator takes it. ns is the
// namespace the evaluator is asked in; sarNS the one the review asks in
// (they differ only for one Namespace object, see namespacesQuestion).
type question struct {
	id          identity
	verb        string
	gr          schema.GroupResource
	ns, sarNS   string
	name        string
	aimedAtRule bool
}

func (q question) String() string {
	ns := q.ns
	if ns == "" {
		ns = "(cluster-wide)"
	}
	if q.sarNS != q.ns {
		ns += " [review in " + q.sarNS + "]"
	}
	return fmt.Sprintf("may %s (groups %q) %s group %q resource %q in %s name %q", q.id.user, q.id.groups, q.verb, q.gr.Group, q.gr.Resource, ns, q.name)
}

// namespacesQuestion fixes a question about Namespace objects the way the
// apiserver's request parser would put it: clustergraph asks about one
// Namespace object with no namespace and its name (Access.Allows), and the
// request that addresses it by its path (/api/v1/namespaces/NAME) is
// authorized in that namespace; a list or watch narrowed to a name by a
// field selector stays cluster-wide, and a create or deletecollection
// carries no name in its path.
func (q *question) namespacesQuestion() {
	if q.gr.Group != "" || q.gr.Resource != "namespaces" {
		return
	}
	q.ns, q.sarNS = "", ""
	switch q.verb {
	case "create", "deletecollection":
		q.name = ""
	case "list", "watch":
	default:
		q.sarNS = q.name
	}
}

// diffPolicy is the generated policy and what questions are drawn from.
type diffPolicy struct {
	rng        *rand.Rand
	prefix     string
	namespaces []string // with Roles and RoleBindings
	askNS      []string // the namespaces questions ask in: those, "" and one with no grants
	identities []identity
	roles      []diffRole
	bindings   []diffBinding
}

// rbacDiffCases reads CLUSTERGRAPH_RBAC_CASES (more questions; default
// 4000); the seed is CLUSTERGRAPH_RBAC_SEED (see envSeed).
func rbacDiffCases(t *testing.T) int {
	t.Helper()
	if v := os.Getenv("CLUSTERGRAPH_RBAC_CASES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			t.Fatalf("CLUSTERGRAPH_RBAC_CASES=%q: want a positive number", v)
		}
		return n
	}
	return 4000
}

// Labels of the aggregation sources: the run's own key, so that no
// aggregated role of the cluster (view, edit, admin select
// rbac.authorization.k8s.io/aggregate-to-*) picks up a generated rule and
// no run's aggregated role picks up another run's.
const (
	diffRunLabel = "cg-rbacdiff.test/run"
	diffAggLabel = "cg-rbacdiff.test/agg"
)

// generate draws the policy: Roles in each namespace, plain ClusterRoles
// (some labelled as aggregation sources), aggregated ClusterRoles (one
// selector; two selectors, one by expression; one selecting an aggregated
// role), RoleBindings to Roles and ClusterRoles, ClusterRoleBindings, a
// binding to a role that does not exist of each kind. Subjects are Users,
// Groups and ServiceAccounts (in a RoleBinding sometimes without a
// namespace, meaning the binding's), some naming no identity; each binding
// also names a probe user of its own (probeUser), which the test uses to
// see that the evaluator and the apiserver both hold it.
func (p *diffPolicy) generate(run string) {
	rng := p.rng
	users := []string{p.prefix + "-u0", p.prefix + "-u1", p.prefix + "-u2", p.prefix + "-u3", p.prefix + "-bare"}
	groups := []string{p.prefix + "-g0", p.prefix + "-g1", p.prefix + "-g2"}
	nsA, nsB := p.namespaces[0], p.namespaces[1]
	type sa struct{ ns, name string }
	accounts := []sa{{nsA, "sa0"}, {nsA, "sa1"}, {nsB, "sa0"}}
	for _, u := range users[:4] {
		p.identities = append(p.identities, identity{u, append(someOfOrNone(rng, groups), "system:authenticated")})
	}
	p.identities = append(p.identities, identity{users[4], nil})
	for _, a := range accounts {
		p.identities = append(p.identities, identity{"system:serviceaccount:" + a.ns + ":" + a.name,
			[]string{"system:serviceaccounts", "system:serviceaccounts:" + a.ns, "system:authenticated"}})
	}
	p.identities = append(p.identities, identity{p.prefix + "-root", []string{"system:masters", "system:authenticated"}})

	// Subjects bindings may name: the identities' users, groups and
	// service accounts, a service account's user as a User, the
	// namespaces' service-account groups (the test's own namespaces:
	// never system:authenticated or system:serviceaccounts, which every
	// other test's callers hold), and some that name no identity.
	subject := func(bindingNS string) rbacv1.Subject {
		switch rng.IntN(3) {
		case 0:
			u := pick(rng, append(slices.Clone(users), "system:serviceaccount:"+nsA+":sa1", p.prefix+"-nobody"))
			return rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: u}
		case 1:
			g := pick(rng, append(slices.Clone(groups), "system:serviceaccounts:"+nsA, "system:serviceaccounts:"+nsB, p.prefix+"-g-none"))
			return rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: g}
		}
		a := pick(rng, append(slices.Clone(accounts), sa{nsB, "sa-none"}))
		s := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: a.ns, Name: a.name}
		if bindingNS != "" && rng.IntN(3) == 0 {
			s.Namespace = "" // the binding's namespace
		}
		return s
	}
	rules := func() []rbacv1.PolicyRule {
		out := make([]rbacv1.PolicyRule, 1+rng.IntN(3))
		for i := range out {
			out[i] = rbacDiffVocab.rule(rng)
		}
		return out
	}

	for _, ns := range p.namespaces {
		for i := range 3 {
			p.roles = append(p.roles, diffRole{ns: ns, name: fmt.Sprintf("%s-role-%d", p.prefix, i), rules: rules()})
		}
	}
	// Plain ClusterRoles; 0-3 are aggregation sources, labelled agg=0,
	// agg=0, agg=1, agg=2.
	aggOf := []string{"0", "0", "1", "2"}
	for i := range 6 {
		r := diffRole{name: fmt.Sprintf("%s-cr-%d", p.prefix, i), rules: rules()}
		if i < len(aggOf) {
			r.labels = map[string]string{diffRunLabel: run, diffAggLabel: aggOf[i]}
		}
		p.roles = append(p.roles, r)
	}
	sel := func(agg string) metav1.LabelSelector {
		return metav1.LabelSelector{MatchLabels: map[string]string{diffRunLabel: run, diffAggLabel: agg}}
	}
	p.roles = append(p.roles,
		// agg-0 is itself a source (agg=outer) of agg-2.
		diffRole{name: p.prefix + "-agg-0", labels: map[string]string{diffRunLabel: run, diffAggLabel: "outer"},
			aggregation: &rbacv1.AggregationRule{ClusterRoleSelectors: []metav1.LabelSelector{sel("0")}}},
		diffRole{name: p.prefix + "-agg-1", aggregation: &rbacv1.AggregationRule{ClusterRoleSelectors: []metav1.LabelSelector{
			sel("1"),
			{MatchLabels: map[string]string{diffRunLabel: run}, MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: diffAggLabel, Operator: metav1.LabelSelectorOpIn, Values: []string{"2", "none"}}}},
		}}},
		diffRole{name: p.prefix + "-agg-2", aggregation: &rbacv1.AggregationRule{ClusterRoleSelectors: []metav1.LabelSelector{sel("outer"), sel("2")}}},
	)

	var clusterRoles []string
	rolesIn := map[string][]string{}
	for _, r := range p.roles {
		if r.ns == "" {
			clusterRoles = append(clusterRoles, r.name)
		} else {
			rolesIn[r.ns] = append(rolesIn[r.ns], r.name)
		}
	}
	bind := func(ns string, ref rbacv1.RoleRef) {
		b := diffBinding{ns: ns, name: fmt.Sprintf("%s-b-%d", p.prefix, len(p.bindings)), ref: ref}
		for range 1 + rng.IntN(3) {
			b.subjects = append(b.subjects, subject(ns))
		}
		b.subjects = append(b.subjects, rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: p.probeUser(len(p.bindings))})
		p.bindings = append(p.bindings, b)
	}
	clusterRef := func(name string) rbacv1.RoleRef {
		return rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name}
	}
	for _, ns := range p.namespaces {
		for range 8 {
			if rng.IntN(2) == 0 {
				bind(ns, rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: pick(rng, rolesIn[ns])})
			} else {
				bind(ns, clusterRef(pick(rng, clusterRoles)))
			}
		}
	}
	for range 5 {
		bind("", clusterRef(pick(rng, clusterRoles)))
	}
	bind(nsA, rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: p.prefix + "-missing"})
	bind("", clusterRef(p.prefix+"-missing"))
}

// someOfOrNone returns a random subset of from, possibly empty.
func someOfOrNone(rng *rand.Rand, from []string) []string {
	var out []string
	for _, s := range from {
		if rng.IntN(2) == 0 {
			out = append(out, s)
		}
	}
	return out
}

// probeUser is the user only binding i names.
func (p *diffPolicy) probeUser(i int) string { return fmt.Sprintf("%s-probe-%d", p.prefix, i) }

// role returns the role a binding refers to, if the policy has it.
func (p *diffPolicy) role(b diffBinding) (diffRole, bool) {
	for _, r := range p.roles {
		if r.name == b.ref.Name && (b.ref.Kind == "Role") == (r.ns != "") && (r.ns == "" || r.ns == b.ns) {
			return r, true
		}
	}
	return diffRole{}, false
}

// apply creates the policy's namespaces, roles and bindings (sources
// before the roles aggregating them), deleted when the test ends.
func (p *diffPolicy) apply(t *testing.T, c testenv.Cluster) {
	t.Helper()
	for _, ns := range p.namespaces {
		makeNamespace(t, c, ns)
	}
	rbac := c.Client.RbacV1()
	for _, r := range p.roles {
		meta := metav1.ObjectMeta{Name: r.name, Namespace: r.ns, Labels: r.labels}
		var err error
		switch {
		case r.ns != "":
			_, err = rbac.Roles(r.ns).Create(ctx, &rbacv1.Role{ObjectMeta: meta, Rules: r.rules}, metav1.CreateOptions{})
		default:
			_, err = rbac.ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: meta, Rules: r.rules, AggregationRule: r.aggregation}, metav1.CreateOptions{})
			t.Cleanup(func() { _ = rbac.ClusterRoles().Delete(ctx, r.name, metav1.DeleteOptions{}) })
		}
		if err != nil {
			t.Fatalf("creating role %s/%s: %v", r.ns, r.name, err)
		}
	}
	for _, b := range p.bindings {
		meta := metav1.ObjectMeta{Name: b.name, Namespace: b.ns}
		var err error
		if b.ns != "" {
			_, err = rbac.RoleBindings(b.ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: meta, RoleRef: b.ref, Subjects: b.subjects}, metav1.CreateOptions{})
		} else {
			_, err = rbac.ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: meta, RoleRef: b.ref, Subjects: b.subjects}, metav1.CreateOptions{})
			t.Cleanup(func() { _ = rbac.ClusterRoleBindings().Delete(ctx, b.name, metav1.DeleteOptions{}) })
		}
		if err != nil {
			t.Fatalf("creating binding %s/%s: %v", b.ns, b.name, err)
		}
	}
}

// awaitAggregation waits until the controller manager has filled every
// aggregated ClusterRole with the rules of every role it selects
// (aggregated sources included, so transitively), and records them.
func (p *diffPolicy) awaitAggregation(t *testing.T, c testenv.Cluster) {
	t.Helper()
	want := func(r diffRole, seen map[string]bool) []rbacv1.PolicyRule {
		var out []rbacv1.PolicyRule
		var walk func(r diffRole)
		walk = func(r diffRole) {
			if seen[r.name] {
				return
			}
			seen[r.name] = true
			for _, s := range p.roles {
				if s.ns != "" || s.name == r.name || !selects(r.aggregation, s.labels) {
					continue
				}
				if s.aggregation != nil {
					walk(s)
				} else {
					out = append(out, s.rules...)
				}
			}
		}
		walk(r)
		return out
	}
	for i, r := range p.roles {
		if r.aggregation == nil {
			continue
		}
		p.roles[i].rules = awaitAggregated(t, c, r.name, want(r, map[string]bool{}))
	}
}

// awaitAggregated waits until the controller manager has filled the
// aggregated ClusterRole with every rule of want, and returns its rules.
func awaitAggregated(t testing.TB, c testenv.Cluster, name string, want []rbacv1.PolicyRule) []rbacv1.PolicyRule {
	t.Helper()
	var got []rbacv1.PolicyRule
	eventually(t, 30*time.Second, "the controller manager to aggregate "+name, func() bool {
		cr, err := c.Client.RbacV1().ClusterRoles().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false
		}
		got = cr.Rules
		for _, w := range want {
			if !slices.ContainsFunc(got, func(g rbacv1.PolicyRule) bool { return equality.Semantic.DeepEqual(g, w) }) {
				return false
			}
		}
		return true
	})
	return got
}

// selects reports whether an aggregation rule selects a role with the
// labels; the selectors of generate use matchLabels and In only.
func selects(a *rbacv1.AggregationRule, labels map[string]string) bool {
	if a == nil {
		return false
	}
	for _, s := range a.ClusterRoleSelectors {
		ok := true
		for k, v := range s.MatchLabels {
			ok = ok && labels[k] == v
		}
		for _, e := range s.MatchExpressions {
			v, has := labels[e.Key]
			ok = ok && has && e.Operator == metav1.LabelSelectorOpIn && slices.Contains(e.Values, v)
		}
		if ok {
			return true
		}
	}
	return false
}

// concreteResource turns a rule's (possibly wildcard) resource
// into one a request could carry.
func concreteResource(rng *rand.Rand, r string) string {
	switch {
	case r == "*":
		return pick(rng, rbacQueryResources).Resource
	case strings.HasPrefix(r, "*/"):
		return pick(rng, []string{"deployments", "replicasets", "statefulsets", "pods", "jobs"}) + r[1:]
	case strings.HasSuffix(r, "/*"):
		return strings.TrimSuffix(r, "*") + pick(rng, []string{"log", "exec", "status"})
	}
	return r
}

// randomQuestion draws a question. Half are aimed at a rule: an identity
// a binding names, a verb, group, resource, namespace and name its role's
// rule allows, then one of them changed half the time; the rest are drawn
// from the whole vocabulary.
func (p *diffPolicy) randomQuestion() question {
	rng := p.rng
	q := question{
		id:   pick(rng, p.identities),
		verb: pick(rng, rbacQueryVerbs),
		gr:   pick(rng, rbacQueryResources),
		ns:   pick(rng, p.askNS),
		name: pick(rng, rbacQueryNames),
	}
	if rng.IntN(4) == 0 {
		q.gr.Group = pick(rng, rbacQueryGroups)
	}
	if rng.IntN(2) == 0 {
		b := pick(rng, p.bindings)
		role, ok := p.role(b)
		var bound []identity
		for _, id := range p.identities {
			if b.names(id) {
				bound = append(bound, id)
			}
		}
		if ok && len(role.rules) > 0 && len(bound) > 0 {
			r := pick(rng, role.rules)
			q.aimedAtRule = true
			q.id = pick(rng, bound)
			if v := pick(rng, r.Verbs); v != "*" {
				q.verb = v
			}
			if g := pick(rng, r.APIGroups); g != "*" {
				q.gr.Group = g
			}
			q.gr.Resource = concreteResource(rng, pick(rng, r.Resources))
			if b.ns != "" {
				q.ns = b.ns
			}
			if len(r.ResourceNames) > 0 {
				q.name = pick(rng, r.ResourceNames)
			}
			switch rng.IntN(10) {
			case 0:
				q.verb = pick(rng, rbacQueryVerbs)
			case 1:
				q.gr.Group = pick(rng, rbacQueryGroups)
			case 2:
				q.ns = pick(rng, p.askNS)
			case 3:
				q.name = pick(rng, rbacQueryNames)
			case 4:
				q.id = pick(rng, p.identities)
			}
		}
	}
	q.sarNS = q.ns
	q.namespacesQuestion()
	return q
}

// reviewAllows asks the apiserver, with the admin client, the question as
// a SubjectAccessReview (what `kubectl auth can-i --as` asks): the
// subresource apart, as the apiserver's request parser gives it to the
// authorizer.
func reviewAllows(c testenv.Cluster, q question) (bool, error) {
	res, sub, _ := strings.Cut(q.gr.Resource, "/")
	got, err := c.Client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: q.id.user, Groups: q.id.groups,
		ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: q.verb, Group: q.gr.Group, Resource: res, Subresource: sub, Namespace: q.sarNS, Name: q.name},
	}}, metav1.CreateOptions{})
	if err != nil {
		return false, fmt.Errorf("review %s: %w", q, err)
	}
	return got.Status.Allowed && !got.Status.Denied, nil
}

// evaluatorAllows asks the in-process evaluator the question.
func evaluatorAllows(cl *k8s.Cluster, q question) bool {
	return cl.AccessFor(&caller.Subject{User: q.id.user, Groups: q.id.groups, Identity: cl.Name}).Allows(q.verb, q.gr, q.ns, q.name)
}

// probes are, per binding whose role has rules, one question per rule
// that the rule allows the binding's probe user: once both the evaluator
// and the apiserver allow them all, both hold every binding and role of
// the policy, aggregated rules included.
func (p *diffPolicy) probes() []question {
	var out []question
	for i, b := range p.bindings {
		role, ok := p.role(b)
		if !ok {
			continue
		}
		for _, r := range role.rules {
			q := question{id: identity{user: p.probeUser(i)}, verb: r.Verbs[0],
				gr: schema.GroupResource{Group: r.APIGroups[0], Resource: r.Resources[0]}, ns: b.ns}
			if len(r.ResourceNames) > 0 {
				q.name = r.ResourceNames[0]
			}
			q.sarNS = q.ns
			out = append(out, q)
		}
	}
	return out
}

// explain lists the bindings that name the identity and their roles'
// rules, for a disagreement's report.
func (p *diffPolicy) explain(id identity) string {
	var b strings.Builder
	for _, bd := range p.bindings {
		if !bd.names(id) {
			continue
		}
		where := "ClusterRoleBinding " + bd.name
		if bd.ns != "" {
			where = "RoleBinding " + bd.ns + "/" + bd.name
		}
		fmt.Fprintf(&b, "  %s -> %s %s:\n", where, bd.ref.Kind, bd.ref.Name)
		role, ok := p.role(bd)
		if !ok {
			b.WriteString("    (no such role)\n")
		}
		for _, r := range role.rules {
			fmt.Fprintf(&b, "    verbs %q apiGroups %q resources %q resourceNames %q\n", r.Verbs, r.APIGroups, r.Resources, r.ResourceNames)
		}
	}
	if b.Len() == 0 {
		return "  (no binding of the test names it; only the cluster's own bindings apply)\n"
	}
	return b.String()
}

// TestRBACMatchesSAR is the differential RBAC test: a seeded random policy
// (see generate) applied to a testbed cluster, then CLUSTERGRAPH_RBAC_CASES
// random questions asked of the evaluator (k8s.Cluster.AccessFor(...)
// .Allows) and of the apiserver (a SubjectAccessReview); every answer must
// be the same. Replay a failure with the seed it logs:
// CLUSTERGRAPH_RBAC_SEED=N go test -run TestRBACMatchesSAR ./api.
func TestRBACMatchesSAR(t *testing.T) {
	cs := testenv.Clusters(t)
	c := cs[0]
	seed, cases := envSeed(t, "CLUSTERGRAPH_RBAC_SEED"), rbacDiffCases(t)
	t.Logf("seed %d, %d cases (replay: CLUSTERGRAPH_RBAC_SEED=%d; more: CLUSTERGRAPH_RBAC_CASES=N)", seed, cases, seed)
	run := uniqueSuffix(t)
	prefix := "cg-rbacdiff-" + run
	p := &diffPolicy{rng: rand.New(rand.NewPCG(seed, seed>>32|1)), prefix: prefix,
		namespaces: []string{prefix + "-a", prefix + "-b"}}
	p.askNS = []string{p.namespaces[0], p.namespaces[1], "", prefix + "-none"}
	p.generate(run)

	s := startServer(t, serverOpts{kubeconfigs: []string{c.Kubeconfig}, waitReady: true})
	cl, err := s.Registry.Cluster(c.Context)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	p.apply(t, c)
	p.awaitAggregation(t, c)
	// Both sides follow RBAC objects by watches of their own: wait until
	// both hold every binding and role (the probes), so that the answers
	// below are about one policy.
	probes := p.probes()
	var unseen []question
	deadline := time.Now().Add(30 * time.Second)
	for {
		unseen = unseen[:0]
		for _, q := range probes {
			ok, err := reviewAllows(c, q)
			if err != nil {
				t.Fatal(err)
			}
			if !ok || !evaluatorAllows(cl, q) {
				unseen = append(unseen, q)
			}
		}
		if len(unseen) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	// A probe the apiserver still refuses means the policy is not what the
	// test applied; one only the evaluator refuses is a disagreement, which
	// the cases (the probes are among them) report.
	for _, q := range unseen {
		if ok, err := reviewAllows(c, q); err != nil || !ok {
			t.Fatalf("the apiserver does not allow a probe of the policy after 30 s: %s (%v)", q, err)
		}
	}
	t.Logf("policy: %d roles, %d bindings, %d probes; applied and seen in %s", len(p.roles), len(p.bindings), len(probes), time.Since(start).Round(time.Millisecond))

	qs := make([]question, cases, cases+len(probes))
	for i := range qs {
		qs[i] = p.randomQuestion()
	}
	qs = append(qs, probes...)
	start = time.Now()
	type result struct{ evaluator, apiserver bool }
	results := make([]result, len(qs))
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for range 16 {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(qs); i = int(next.Add(1) - 1) {
				sar, err := reviewAllows(c, qs[i])
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
				results[i] = result{evaluatorAllows(cl, qs[i]), sar}
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatal(errs[0])
	}
	elapsed := time.Since(start)

	var allowed, aimed, aimedAllowed, sub, subAllowed, named, namedAllowed, clusterWide, clusterWideAllowed int
	var disagreements []string
	for i, q := range qs {
		r := results[i]
		if r.apiserver {
			allowed++
		}
		count := func(n, a *int, cond bool) {
			if cond {
				*n++
				if r.apiserver {
					*a++
				}
			}
		}
		count(&aimed, &aimedAllowed, q.aimedAtRule)
		count(&sub, &subAllowed, strings.Contains(q.gr.Resource, "/"))
		count(&named, &namedAllowed, q.name != "")
		count(&clusterWide, &clusterWideAllowed, q.ns == "")
		if r.evaluator != r.apiserver {
			disagreements = append(disagreements, fmt.Sprintf("case %d: %s\n  evaluator %v, apiserver %v\nrules bound to it by the test:\n%s",
				i, q, r.evaluator, r.apiserver, p.explain(q.id)))
		}
	}
	t.Logf("%d cases in %s: %d allowed by the apiserver, %d refused; aimed at a rule %d (%d allowed), subresources %d (%d), by name %d (%d), cluster-wide %d (%d)",
		len(qs), elapsed.Round(time.Millisecond), allowed, len(qs)-allowed, aimed, aimedAllowed, sub, subAllowed, named, namedAllowed, clusterWide, clusterWideAllowed)
	if len(disagreements) > 0 {
		const show = 20
		n, more := len(disagreements), ""
		if n > show {
			more = fmt.Sprintf("\n... and %d more", len(disagreements)-show)
			disagreements = disagreements[:show]
		}
		t.Fatalf("seed %d: the evaluator and the apiserver disagree on %d of %d cases:\n%s%s",
			seed, n, len(qs), strings.Join(disagreements, "\n"), more)
	}
	if allowed == 0 || allowed == len(qs) {
		t.Fatalf("seed %d: the questions are degenerate: %d of %d allowed", seed, allowed, len(qs))
	}
}
