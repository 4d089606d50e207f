package k8s

import (
	"context"
	"slices"
	"sort"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"

	"github.com/clustergraph/clustergraph/caller"
)

// Access is what one subject may do in one cluster, computed from the
// cluster's RBAC objects (roles, cluster roles and their bindings; aggregated
// cluster roles carry their rules already, filled in by the controller
// manager). It is computed once per RBAC change and shared by requests.
type Access struct {
	all       bool
	cluster   []rbacv1.PolicyRule
	namespace map[string][]rbacv1.PolicyRule

	mu   sync.Mutex
	memo map[accessKey]bool
}

type accessKey struct {
	verb, group, resource, namespace string
}

// groupResource is the RBAC resource of a cache.
func groupResource(r resource) schema.GroupResource {
	if gr, ok := dynGroupResource(r); ok {
		return gr
	}
	if r == resNodePools {
		// openyurt's NodePool objects have RBAC of their own; pools derived
		// from labels are seen through their nodes (see NodePools).
		return nodePoolGVR.GroupResource()
	}
	for gvk, res := range resourceOfGVK {
		if res == r {
			return schema.GroupResource{Group: gvk.Group, Resource: string(r)}
		}
	}
	return schema.GroupResource{Resource: string(r)}
}

// visible keeps the objects of a cache that the context's subject may see.
func (c *Cluster) visible(ctx context.Context, r resource, objs []any) []any {
	return c.visibleGR(ctx, groupResource(r), objs)
}

// all returns the objects of a cache the context's subject may see.
func (c *Cluster) all(ctx context.Context, r resource) []any {
	store := c.storeOf(r)
	if store == nil {
		return nil
	}
	return c.visible(ctx, r, store.List())
}

// unrestricted may do everything.
var unrestricted = &Access{all: true}

// Allows reports whether the subject may do verb on the resource, in the
// namespace ("" for cluster-scoped resources or all namespaces), on the
// named object ("" for any).
func (a *Access) Allows(verb string, gr schema.GroupResource, namespace, name string) bool {
	if a.all {
		return true
	}
	k := accessKey{verb, gr.Group, gr.Resource, namespace}
	if name == "" {
		a.mu.Lock()
		v, ok := a.memo[k]
		a.mu.Unlock()
		if ok {
			return v
		}
	}
	namespace = requestNamespace(verb, gr, namespace, name)
	allowed := rulesAllow(a.cluster, verb, gr, name) || (namespace != "" && rulesAllow(a.namespace[namespace], verb, gr, name))
	if name == "" {
		a.mu.Lock()
		a.memo[k] = allowed
		a.mu.Unlock()
	}
	return allowed
}

// requestNamespace is the namespace the apiserver authorizes a request in.
// A request addressing one Namespace object by its path (get, update,
// delete of /api/v1/namespaces/NAME) is, to the apiserver, a request in
// that namespace: a RoleBinding there can grant it (kubectl get ns shop
// works for a user with view in shop). A list or watch narrowed to one
// name by a field selector has no namespace in its path and stays
// cluster-wide.
func requestNamespace(verb string, gr schema.GroupResource, namespace, name string) string {
	if isNamespaces(gr) && namespace == "" && name != "" && verb != "list" && verb != "watch" {
		return name
	}
	return namespace
}

func isNamespaces(gr schema.GroupResource) bool {
	return gr.Group == "" && gr.Resource == "namespaces"
}

// CanSee reports whether an object may appear in a list, a connection's
// count, a to-many relation, a watch or an aggregate, by the package's
// visibility rule (see the package doc): the subject may list its kind in
// its namespace or cluster-wide, or a list or get rule names the object
// (Names). A get rule without resourceNames does not count: it allows a get
// of every name, and the apiserver still refuses that caller a list.
func (a *Access) CanSee(gr schema.GroupResource, namespace, name string) bool {
	return a.Allows("list", gr, namespace, "") || a.Names(gr, namespace, name)
}

// Names reports whether a list or get rule names the object by
// resourceNames: the apiserver lets the caller list it (a list narrowed to
// its name) or get it, and showing it reveals no name the grant did not
// already give. A Namespace object is also named by a get rule bound in
// that namespace, which allows a get of it and of no other namespace.
func (a *Access) Names(gr schema.GroupResource, namespace, name string) bool {
	switch {
	case a.all:
		return true
	case name == "":
		return false
	case isNamespaces(gr):
		return rulesName(a.cluster, gr, name) || rulesAllow(a.namespace[name], "get", gr, name)
	case !a.mayName(gr, namespace):
		return false
	}
	return rulesName(a.cluster, gr, name) || namespace != "" && rulesName(a.namespace[namespace], gr, name)
}

// MaySeeAny reports whether the visibility rule could show the subject any
// object of the resource in the namespace ("" for any namespace). Where it
// cannot, a list needs no apiserver LIST: a caller without a grant costs
// the apiserver nothing.
func (a *Access) MaySeeAny(gr schema.GroupResource, namespace string) bool {
	switch {
	case a.all || isNamespaces(gr):
		return true // Namespace objects are named by grants in themselves
	case namespace != "":
		return a.Allows("list", gr, namespace, "") || a.mayName(gr, namespace)
	case rulesAllow(a.cluster, "list", gr, "") || rulesName(a.cluster, gr, ""):
		return true
	}
	for _, rules := range a.namespace {
		if rulesAllow(rules, "list", gr, "") || rulesName(rules, gr, "") {
			return true
		}
	}
	return false
}

// namingVerb is the memo key of mayName (no RBAC verb has a NUL).
const namingVerb = "\x00names"

// mayName reports whether any rule could name objects of the resource in
// the namespace, memoized: a list the subject may not list asks Names per
// object, and most subjects hold no rule with resourceNames at all.
func (a *Access) mayName(gr schema.GroupResource, namespace string) bool {
	k := accessKey{namingVerb, gr.Group, gr.Resource, namespace}
	a.mu.Lock()
	v, ok := a.memo[k]
	a.mu.Unlock()
	if ok {
		return v
	}
	v = rulesName(a.cluster, gr, "") || namespace != "" && rulesName(a.namespace[namespace], gr, "")
	a.mu.Lock()
	a.memo[k] = v
	a.mu.Unlock()
	return v
}

// rulesName reports whether a list or get rule on the resource names the
// object by resourceNames ("" for: names any object).
func rulesName(rules []rbacv1.PolicyRule, gr schema.GroupResource, name string) bool {
	for i := range rules {
		r := &rules[i]
		if len(r.ResourceNames) > 0 && (name == "" || slices.Contains(r.ResourceNames, name)) &&
			(has(r.Verbs, "list") || has(r.Verbs, "get")) && has(r.APIGroups, gr.Group) && resourceMatches(r.Resources, gr.Resource) {
			return true
		}
	}
	return false
}

// Namespaces returns the namespaces in which the subject holds any rule; all
// is true when a cluster-wide rule lets it list a namespaced main kind in
// every namespace. A cluster-wide get does not: it shows no object in a
// list (see CanSee), and offering every namespace would enumerate them.
// (Every authenticated user holds cluster-wide rules on things like
// selfsubjectaccessreviews; those do not open namespaces.)
func (a *Access) Namespaces() (names []string, all bool) {
	if a.all {
		return nil, true
	}
	for _, gr := range MainResources {
		if gr.Resource == "namespaces" || gr.Resource == "nodes" {
			continue
		}
		if rulesAllow(a.cluster, "list", gr, "") {
			return nil, true
		}
	}
	return a.RuleNamespaces(), false
}

// RuleNamespaces returns the namespaces in which the subject holds any
// rule, whatever it may do cluster-wide: where a grant of its own can
// allow what no cluster-wide rule does.
func (a *Access) RuleNamespaces() []string {
	var names []string
	for ns, rules := range a.namespace {
		if len(rules) > 0 {
			names = append(names, ns)
		}
	}
	sort.Strings(names)
	return names
}

func rulesAllow(rules []rbacv1.PolicyRule, verb string, gr schema.GroupResource, name string) bool {
	for i := range rules {
		if ruleAllows(&rules[i], verb, gr, name) {
			return true
		}
	}
	return false
}

// ruleAllows matches one RBAC rule the way the apiserver's RBAC authorizer
// does: verbs, API groups and resources (see resourceMatches), and
// resourceNames, which a request's name (none: "") must be among. A
// request without a name (a list, a create) is so refused by a rule with
// resourceNames, unless they hold "": the apiserver accepts such a rule
// and then allows exactly the requests that carry no name.
func ruleAllows(r *rbacv1.PolicyRule, verb string, gr schema.GroupResource, name string) bool {
	if !has(r.Verbs, verb) || !has(r.APIGroups, gr.Group) || !resourceMatches(r.Resources, gr.Resource) {
		return false
	}
	return len(r.ResourceNames) == 0 || slices.Contains(r.ResourceNames, name)
}

// resourceMatches reports whether a rule's resources cover a requested
// resource, "pods" or "pods/exec": "*" covers every resource and
// subresource, "pods/exec" itself, and "*/exec" that subresource of every
// resource.
func resourceMatches(ruleResources []string, requested string) bool {
	_, sub, isSub := strings.Cut(requested, "/")
	for _, r := range ruleResources {
		if r == rbacv1.ResourceAll || r == requested || isSub && r == "*/"+sub {
			return true
		}
	}
	return false
}

func has(list []string, v string) bool {
	return slices.Contains(list, rbacv1.VerbAll) || slices.Contains(list, v)
}

// accessCache memoizes Access per subject for one RBAC generation.
type accessCache struct {
	mu   sync.Mutex
	gen  uint64
	sets map[string]*Access
}

// maxAccessSets bounds the cache; past it the cache starts over, which
// only costs a recomputation per active subject.
const maxAccessSets = 10000

// AccessFor returns what s may do in the cluster. A nil subject may do
// nothing.
func (c *Cluster) AccessFor(s *caller.Subject) *Access {
	switch {
	case s == nil || s.ForeignSystemIdentity(c.Name):
		return &Access{memo: map[accessKey]bool{}}
	case s.Unrestricted:
		return unrestricted
	}
	gen := c.caches.rbacGen.Load()
	key := s.Key()
	ac := &c.access
	ac.mu.Lock()
	if ac.gen != gen || len(ac.sets) > maxAccessSets {
		ac.gen, ac.sets = gen, map[string]*Access{}
	}
	a, ok := ac.sets[key]
	ac.mu.Unlock()
	if ok {
		return a
	}
	a = computeAccess(s, s.ForeignServiceAccount(c.Name), c.rbacStores())
	ac.mu.Lock()
	if ac.gen == gen {
		ac.sets[key] = a
	}
	ac.mu.Unlock()
	return a
}

// rbacStores are the caches an access set is computed from.
type rbacStores struct {
	roles, roleBindings, clusterRoles, clusterRoleBindings cache.Store
}

func (c *Cluster) rbacStores() rbacStores {
	return rbacStores{
		roles: c.caches.store(resRoles), roleBindings: c.caches.store(resRoleBindings),
		clusterRoles: c.caches.store(resClusterRoles), clusterRoleBindings: c.caches.store(resClusterRoleBindings),
	}
}

// privilegedGroup is the group the apiserver allows everything, before
// any authorizer is asked.
const privilegedGroup = "system:masters"

// computeAccess gathers the rules bound to s. foreign marks a service
// account of another cluster (see ForeignServiceAccount): ServiceAccount
// subjects never name it, only User subjects and its remaining groups do.
func computeAccess(s *caller.Subject, foreign bool, st rbacStores) *Access {
	a := &Access{namespace: map[string][]rbacv1.PolicyRule{}, memo: map[accessKey]bool{}}
	groups := s.Groups
	if foreign {
		groups = caller.ForeignGroups(groups)
	}
	if slices.Contains(groups, privilegedGroup) {
		a.all = true
		return a
	}
	clusterRole := func(name string) []rbacv1.PolicyRule {
		o, ok, _ := st.clusterRoles.GetByKey(name)
		if !ok {
			return nil
		}
		return o.(*rbacv1.ClusterRole).Rules
	}
	bound := func(subjects []rbacv1.Subject, ns string) bool {
		return boundBy(s.User, groups, !foreign, subjects, ns)
	}
	for _, o := range st.clusterRoleBindings.List() {
		b := o.(*rbacv1.ClusterRoleBinding)
		if b.RoleRef.Kind == "ClusterRole" && bound(b.Subjects, "") {
			a.cluster = append(a.cluster, clusterRole(b.RoleRef.Name)...)
		}
	}
	for _, o := range st.roleBindings.List() {
		b := o.(*rbacv1.RoleBinding)
		if !bound(b.Subjects, b.Namespace) {
			continue
		}
		switch b.RoleRef.Kind {
		case "ClusterRole":
			a.namespace[b.Namespace] = append(a.namespace[b.Namespace], clusterRole(b.RoleRef.Name)...)
		case "Role":
			if r, ok, _ := st.roles.GetByKey(b.Namespace + "/" + b.RoleRef.Name); ok {
				a.namespace[b.Namespace] = append(a.namespace[b.Namespace], r.(*rbacv1.Role).Rules...)
			}
		}
	}
	for _, r := range a.cluster {
		if has(r.Verbs, "*") && has(r.APIGroups, "*") && has(r.Resources, "*") && len(r.ResourceNames) == 0 {
			a.all = true // cluster-admin: skip every check
		}
	}
	return a
}

// boundBy reports whether a binding's subjects name the user or one of its
// groups. ServiceAccount subjects count only when serviceAccounts is set;
// bindingNamespace is the namespace such a subject without one defaults to.
func boundBy(user string, groups []string, serviceAccounts bool, subjects []rbacv1.Subject, bindingNamespace string) bool {
	for _, sub := range subjects {
		switch sub.Kind {
		case rbacv1.UserKind:
			if sub.Name == user {
				return true
			}
		case rbacv1.GroupKind:
			if slices.Contains(groups, sub.Name) {
				return true
			}
		case rbacv1.ServiceAccountKind:
			ns := sub.Namespace
			if ns == "" {
				ns = bindingNamespace
			}
			if serviceAccounts && user == caller.ServiceAccountPrefix+ns+":"+sub.Name {
				return true
			}
		}
	}
	return false
}

// MainResources are the resources a viewer's permissions are reported for.
var MainResources = []schema.GroupResource{
	{Resource: "namespaces"}, {Resource: "nodes"}, {Resource: "pods"}, {Resource: "services"},
	{Resource: "configmaps"}, {Resource: "secrets"}, {Resource: "persistentvolumeclaims"}, {Resource: "events"},
	{Group: "apps", Resource: "deployments"}, {Group: "apps", Resource: "statefulsets"}, {Group: "apps", Resource: "daemonsets"},
	{Group: "apps", Resource: "replicasets"}, {Group: "batch", Resource: "jobs"}, {Group: "batch", Resource: "cronjobs"},
	{Group: "networking.k8s.io", Resource: "ingresses"},
}

// Verbs are the verbs a viewer's permissions are reported for.
var Verbs = []string{"get", "list", "watch", "create", "update", "patch", "delete"}

// AccessibleNamespaces returns the namespaces in which the context's subject
// holds any permission, sorted by name: the namespaces a console offers the
// user, even where the user may not get the Namespace object itself.
func (c *Cluster) AccessibleNamespaces(ctx context.Context, sel labels.Selector) ([]*corev1.Namespace, error) {
	ok, warn := c.readable()
	if !ok {
		return nil, warn
	}
	if err := c.kindReadable(resNamespaces); err != nil {
		return nil, err
	}
	names, all := c.AccessFor(caller.From(ctx)).Namespaces()
	store := c.caches.store(resNamespaces)
	var objs []any
	if all {
		objs = store.List()
	} else {
		known := map[string]bool{}
		for _, n := range names {
			known[n] = true
			if o, exists, _ := store.GetByKey(n); exists {
				objs = append(objs, o)
			}
		}
		// With an authorizer fallback, the namespaces RBAC shows nothing
		// in are put to it in one batch: which does the visibility rule
		// let the caller see? (Not: which may it get; an authorizer that
		// allows a get of every namespace would list them all.)
		if r := c.reviewer(ctx); r != nil {
			var rest []any
			var unknown []string
			for _, o := range store.List() {
				if n := o.(*corev1.Namespace).Name; !known[n] {
					rest = append(rest, o)
					unknown = append(unknown, n)
				}
			}
			if len(unknown) > 0 {
				named := c.namedNamespaces(ctx, r, unknown)
				for i, n := range unknown {
					if named[n] {
						objs = append(objs, rest[i])
					}
				}
			}
		}
	}
	out := make([]*corev1.Namespace, 0, len(objs))
	for _, o := range objs {
		ns := o.(*corev1.Namespace)
		if sel == nil || sel.Matches(labels.Set(ns.Labels)) {
			out = append(out, ns)
		}
	}
	slices.SortFunc(out, func(a, b *corev1.Namespace) int { return strings.Compare(a.Name, b.Name) })
	return out, warn
}

// AnyOn reports whether the subject could see some object of the resource
// anywhere, by the visibility rule (see CanSee): it holds a list rule on it
// (cluster-wide, in a namespace, or naming objects), or a get rule naming
// objects (for Namespace objects, also a get rule bound in a namespace). A
// get rule without resourceNames shows nothing in a list and does not count.
func (a *Access) AnyOn(gr schema.GroupResource) bool {
	if a.all {
		return true
	}
	anyRule := func(rules []rbacv1.PolicyRule, boundInNamespace bool) bool {
		for i := range rules {
			r := &rules[i]
			if !has(r.APIGroups, gr.Group) || !resourceMatches(r.Resources, gr.Resource) {
				continue
			}
			switch {
			case boundInNamespace && isNamespaces(gr):
				// A namespace rule sees its own Namespace object by a
				// get; a list of namespaces is never in a namespace.
				if has(r.Verbs, "get") {
					return true
				}
			case has(r.Verbs, "list") || has(r.Verbs, "get") && len(r.ResourceNames) > 0:
				return true
			}
		}
		return false
	}
	if anyRule(a.cluster, false) {
		return true
	}
	for _, rules := range a.namespace {
		if anyRule(rules, true) {
			return true
		}
	}
	return false
}
