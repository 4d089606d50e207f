package k8s

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/clustergraph/clustergraph/caller"
	"github.com/clustergraph/clustergraph/errkind"
)

// listChunk is the page size of dynamic LISTs: large results arrive in
// pieces rather than as one huge response.
const listChunk = 500

// DefaultMaxListObjects is how many objects one ListResources call reads
// from a cluster at most (RegistryConfig.MaxListObjects).
const DefaultMaxListObjects = 10000

// ListResources lists any resource through the dynamic client: apiserver
// requests made as the caller, not the cache. Label and field selectors
// are sent to the apiserver, which rejects fields it does not support for
// the kind (errkind.BadInput); the rest of the filter runs here.
//
// The caller's right decides what is asked, before anything is: a caller
// who may list the kind in the asked scope (by RBAC, or by the authorizer
// fallback) gets one LIST made as themselves; a caller with narrower grants
// gets a LIST as themselves in each namespace they may list in, and a GET
// as themselves of each object a grant names; a caller with no grant gets
// nothing and costs the apiserver nothing. The apiserver so authorizes
// every object returned. Only the unrestricted subject (no authentication)
// lists with clustergraph's own credentials.
//
// want is how many matches the caller's page needs, in (namespace, name)
// order, or in name order across namespaces when byName; 0 means all.
// Where the apiserver's order is the page's (one namespace, or a
// cluster-scoped kind), each LIST stops once it holds want matches. A
// cluster-wide LIST of a namespaced kind stops once no object left unread
// can be among the first want in (namespace, name) order (see enough);
// by name across namespaces it cannot stop early. In all, at most the cluster's
// MaxListObjects objects are read, page by page (and as many GETs): past
// that it returns what it read with an errkind.BadInput saying the list
// was cut, so one request cannot make the apiserver stream a whole huge
// collection.
func (c *Cluster) ListResources(ctx context.Context, gvr schema.GroupVersionResource, f *Filter, want int, byName bool) ([]Item, error) {
	s, gr := caller.From(ctx), gvr.GroupResource()
	budget := c.maxListOr()
	unrestricted := s != nil && s.Unrestricted
	if !unrestricted && c.reviewer(ctx) == nil && !c.AccessFor(s).MaySeeAny(gr, f.Namespace) {
		return nil, nil // no grant could show any: not even discovery is asked
	}
	l := &dynList{c: c, gvr: gvr, f: f, budget: budget, client: c.Dynamic}
	if !unrestricted {
		dyn, err := c.DynamicFor(ctx)
		if err != nil {
			return nil, err
		}
		l.client = dyn
	}
	if unrestricted || c.allows(ctx, "list", gr, f.Namespace, "") {
		if want > 0 {
			scoped, _ := c.clusterScoped(gvr)
			switch {
			case f.Namespace != "" || scoped:
				l.want = want // the apiserver's order is the page's
			case !byName:
				l.firstOf = want // namespace by namespace: see enough
			}
		}
		l.list(ctx, f.Namespace)
		return l.items(), l.err
	}
	clusterScoped, served := c.clusterScoped(gvr)
	if !served {
		return nil, &ClusterError{Cluster: c.Name, Err: errkind.Newf(errkind.NotFound, "%s is not served", gvr)}
	}
	l.want = want // each request below is in one namespace, or of one object
	// Narrower grants: the namespaces the caller may list in, then the
	// objects grants name (those of a listed namespace are in its list).
	listed := map[string]bool{}
	if f.Namespace == "" && !clusterScoped {
		for _, ns := range c.listableNamespaces(ctx, gr) {
			listed[ns] = true
			if !l.list(ctx, ns) {
				return l.items(), l.err
			}
		}
	}
	for _, ref := range c.namedObjects(ctx, gr, f.Namespace, clusterScoped) {
		if !listed[ref.Namespace] && !l.get(ctx, ref) {
			break
		}
	}
	return l.items(), l.err
}

// dynList collects the objects of one ListResources call within its
// budget of objects read.
type dynList struct {
	c      *Cluster
	client dynamic.Interface
	gvr    schema.GroupVersionResource
	f      *Filter
	// want bounds each LIST's matches (0: no bound); firstOf bounds a
	// cluster-wide LIST of a namespaced kind by the first matches in
	// (namespace, name) order it must hold (0: no bound); budget is what
	// may still be read.
	want, firstOf, budget int
	objs                  []any
	err                   error
}

// list reads the matches in namespace ns ("" for all, or a cluster-scoped
// kind), page by page; false once the budget is spent or a request
// failed.
func (l *dynList) list(ctx context.Context, ns string) bool {
	opts := metav1.ListOptions{}
	if l.f.Labels != nil {
		opts.LabelSelector = l.f.Labels.String()
	}
	if l.f.Fields != nil {
		opts.FieldSelector = l.f.Fields.String()
	}
	local := *l.f
	local.Labels, local.Fields = nil, nil
	matched, step := 0, l.firstOf
	for {
		if l.budget <= 0 {
			l.cut()
			return false
		}
		opts.Limit = min(listChunk, int64(l.budget))
		switch {
		case l.want > 0:
			opts.Limit = min(opts.Limit, int64(l.want-matched))
		case l.firstOf > 0:
			// What is still missing, or twice the last page when that is
			// more: each pass that did not suffice (too few matches, or a
			// namespace that sorts first may still follow: see enough)
			// reads more at once.
			opts.Limit = min(opts.Limit, int64(max(l.firstOf-matched, step)))
			step = min(2*step, listChunk)
		}
		list, err := l.client.Resource(l.gvr).Namespace(ns).List(ctx, opts)
		if err != nil {
			l.err = l.c.APIError(err, l.gvr.String())
			return false
		}
		l.budget -= len(list.Items)
		for i := range list.Items {
			if u := &list.Items[i]; local.Matches(u) {
				l.objs = append(l.objs, u)
				matched++
			}
		}
		if list.GetContinue() == "" || l.want > 0 && matched >= l.want ||
			l.firstOf > 0 && len(list.Items) > 0 && l.enough(list.Items[len(list.Items)-1].GetNamespace()) {
			return true
		}
		opts.Continue = list.GetContinue()
	}
}

// enough reports whether the matches read so far hold the first firstOf
// of all in (namespace, name) order, the read having reached namespace
// last. The apiserver lists in the order of its storage keys,
// "namespace/name" compared as bytes: objects of one namespace come
// together, by name, and namespaces come in the order of "namespace/".
// That is the order of namespace names but where one name is another's
// beginning followed by '-' (the one character of a namespace name below
// '/'): "app-dev/" comes before "app/", though "app" sorts first. So the
// firstOf-th match m is final once every namespace that sorts before m's
// and may not have been read yet has been: the beginnings of m's namespace
// that end before a '-', each read when its key block lies wholly before
// last's. (Every resource of the generic registry, custom resources
// included, lists in key order, from etcd and from the watch cache alike;
// an aggregated API server of its own making may not, and one that pages
// in another order would get pages cut short.)
func (l *dynList) enough(last string) bool {
	if len(l.objs) < l.firstOf {
		return false
	}
	type key struct{ ns, name string }
	keys := make([]key, len(l.objs))
	for i, o := range l.objs {
		m, _ := metaOf(o)
		keys[i] = key{m.GetNamespace(), m.GetName()}
	}
	slices.SortFunc(keys, func(a, b key) int { return cmp.Or(strings.Compare(a.ns, b.ns), strings.Compare(a.name, b.name)) })
	ns := keys[l.firstOf-1].ns
	for i := range len(ns) {
		if ns[i] < '/' && ns[:i]+"/" >= last+"/" {
			return false
		}
	}
	return true
}

// get reads one object a grant names, keeping it when it exists and
// matches the filter: by a GET, or where only a list rule names it by a
// LIST of that one name (which the filter's field selector joins). A GET's
// object is matched against the field selector on its name and namespace,
// the fields every kind has. False once the budget is spent or a request
// failed for a reason other than absence or refusal.
func (l *dynList) get(ctx context.Context, ref objectRef) bool {
	if l.budget <= 0 {
		l.cut()
		return false
	}
	l.budget--
	var objs []*unstructured.Unstructured
	var err error
	res := l.client.Resource(l.gvr).Namespace(ref.Namespace)
	if ref.byList {
		sel := fields.OneTermEqualSelector("metadata.name", ref.Name)
		if l.f.Fields != nil {
			sel = fields.AndSelectors(sel, l.f.Fields)
		}
		opts := metav1.ListOptions{FieldSelector: sel.String()}
		if l.f.Labels != nil {
			opts.LabelSelector = l.f.Labels.String()
		}
		var list *unstructured.UnstructuredList
		if list, err = res.List(ctx, opts); err == nil {
			for i := range list.Items {
				objs = append(objs, &list.Items[i])
			}
		}
	} else {
		var u *unstructured.Unstructured
		if u, err = res.Get(ctx, ref.Name, metav1.GetOptions{}); err == nil &&
			(l.f.Labels == nil || l.f.Labels.Matches(labels.Set(u.GetLabels()))) &&
			(l.f.Fields == nil || l.f.Fields.Matches(fields.Set{"metadata.name": u.GetName(), "metadata.namespace": u.GetNamespace()})) {
			objs = append(objs, u)
		}
	}
	switch {
	case apierrors.IsNotFound(err) || apierrors.IsForbidden(err):
		return true
	case err != nil:
		l.err = l.c.APIError(err, l.gvr.String())
		return false
	}
	local := *l.f
	local.Labels, local.Fields = nil, nil
	for _, u := range objs {
		if local.Matches(u) {
			l.objs = append(l.objs, u)
		}
	}
	return true
}

// cut records that the budget ran out.
func (l *dynList) cut() {
	if l.err == nil {
		l.err = &ClusterError{Cluster: l.c.Name, Err: errkind.Newf(errkind.BadInput,
			"%s: only the first %d objects were read (the most one list reads from a cluster); narrow it with a namespace, labelSelector or fieldSelector", l.gvr.GroupResource(), l.c.maxListOr())}
	}
}

func (l *dynList) items() []Item {
	items := make([]Item, len(l.objs))
	for i, o := range l.objs {
		items[i] = Item{Cluster: l.c, Obj: o}
	}
	return items
}

// maxListOr is the cluster's bound on objects one dynamic list reads.
func (c *Cluster) maxListOr() int {
	if c.maxList <= 0 {
		return DefaultMaxListObjects
	}
	return c.maxList
}

// clusterScoped reports whether the resource is cluster-scoped, and
// whether the cluster serves it at all.
func (c *Cluster) clusterScoped(gvr schema.GroupVersionResource) (clusterScoped, served bool) {
	gvk, err := c.restMapper().KindFor(gvr)
	if err != nil {
		return false, false
	}
	m, err := c.restMapper().RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return false, false
	}
	return m.Scope.Name() == meta.RESTScopeNameRoot, true
}

// listableNamespaces are the namespaces, sorted, in which the context's
// subject may list the resource: those RBAC lets them list in, and with an
// authorizer fallback, those of the cluster's namespaces it allows (one
// review for all of them).
func (c *Cluster) listableNamespaces(ctx context.Context, gr schema.GroupResource) []string {
	a := c.AccessFor(caller.From(ctx))
	var out, ask []string
	for ns := range a.namespace {
		if a.Allows("list", gr, ns, "") {
			out = append(out, ns)
		}
	}
	if r := c.reviewer(ctx); r != nil && c.kindReadable(resNamespaces) == nil {
		var qs []Question
		for _, ns := range c.caches.store(resNamespaces).ListKeys() {
			if !slices.Contains(out, ns) {
				ask = append(ask, ns)
				qs = append(qs, question("list", gr, ns, ""))
			}
		}
		if len(qs) > 0 {
			for i, ok := range r.Review(ctx, c, qs) {
				if ok {
					out = append(out, ask[i])
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// objectRef names one object of a known resource, granted by name; byList
// when only a list rule grants it (it is read by a LIST of that name).
type objectRef struct {
	Namespace, Name string
	byList          bool
}

// namedObjects are the objects of the resource that RBAC grants the
// context's subject by name (list or get rules with resourceNames), in
// namespace ns ("" for every namespace): a namespace's rules name objects
// in it; cluster-wide rules name a cluster-scoped object, or one of that
// name in every namespace (each of the cluster's namespaces, when ns is
// "").
func (c *Cluster) namedObjects(ctx context.Context, gr schema.GroupResource, ns string, clusterScoped bool) []objectRef {
	a := c.AccessFor(caller.From(ctx))
	if a.all {
		return nil
	}
	// One request per object: a GET where some rule grants get.
	seen := map[objectRef]int{}
	var out []objectRef
	add := func(ref objectRef) {
		key := objectRef{Namespace: ref.Namespace, Name: ref.Name}
		if i, ok := seen[key]; ok {
			out[i].byList = out[i].byList && ref.byList
			return
		}
		seen[key] = len(out)
		out = append(out, ref)
	}
	// names are the objects rules name: by a get rule, read by a GET;
	// by a list rule only, by a LIST of that one name (the apiserver
	// authorizes a LIST with a metadata.name field selector as a list of
	// that name).
	names := func(rules []rbacv1.PolicyRule) []objectRef {
		byGet := map[string]bool{}
		var order []string
		for i := range rules {
			r := &rules[i]
			get, list := has(r.Verbs, "get"), has(r.Verbs, "list")
			if !get && !list || !has(r.APIGroups, gr.Group) || !resourceMatches(r.Resources, gr.Resource) {
				continue
			}
			for _, n := range r.ResourceNames {
				if n == "" {
					continue
				}
				if _, ok := byGet[n]; !ok {
					order = append(order, n)
				}
				byGet[n] = byGet[n] || get
			}
		}
		out := make([]objectRef, len(order))
		for i, n := range order {
			out[i] = objectRef{Name: n, byList: !byGet[n]}
		}
		return out
	}
	clusterNames := names(a.cluster)
	in := func(ns string, refs []objectRef) {
		for _, r := range refs {
			r.Namespace = ns
			add(r)
		}
	}
	switch {
	case clusterScoped:
		in("", clusterNames)
		return out
	case ns != "":
		in(ns, names(a.namespace[ns]))
		in(ns, clusterNames)
		return out
	}
	for ns, rules := range a.namespace {
		in(ns, names(rules))
	}
	if len(clusterNames) > 0 && c.kindReadable(resNamespaces) == nil {
		for _, ns := range c.caches.store(resNamespaces).ListKeys() {
			in(ns, clusterNames)
		}
	}
	slices.SortFunc(out, func(x, y objectRef) int {
		return cmp.Or(strings.Compare(x.Namespace, y.Namespace), strings.Compare(x.Name, y.Name))
	})
	return out
}

// GetResource reads one object of any kind from the apiserver.
func (c *Cluster) GetResource(ctx context.Context, id ObjectID) (any, error) {
	m, err := c.restMapper().RESTMapping(id.GVK.GroupKind(), id.GVK.Version)
	if err != nil {
		return nil, &ClusterError{Cluster: c.Name, Err: errkind.Newf(errkind.NotFound, "kind %s is not served", id.GVK)}
	}
	if m.Scope.Name() == meta.RESTScopeNameRoot {
		id.Namespace = "" // a cluster-scoped object: namespace rules do not apply
	}
	if !c.allows(ctx, "get", m.Resource.GroupResource(), id.Namespace, id.Name) {
		return nil, &ClusterError{Cluster: c.Name, Err: errkind.Newf(errkind.Forbidden, "you may not get %s %s/%s", id.GVK.Kind, id.Namespace, id.Name)}
	}
	obj, err := c.Dynamic.Resource(m.Resource).Namespace(id.Namespace).Get(ctx, id.Name, metav1.GetOptions{})
	if err != nil {
		return nil, c.APIError(err, id.GVK.Kind+" "+id.Name)
	}
	_, _ = stripForCache(obj) // strips in place; it fails on no object it is given here
	return obj, nil
}

// APIError translates an apiserver error into the package's sentinels,
// keeping the apiserver's message.
func (c *Cluster) APIError(err error, what string) error {
	// Already one of ours (a request refused or abandoned because the
	// apiserver is not answering, see answering).
	var ce *ClusterError
	if errors.As(err, &ce) {
		return ce
	}
	var kind error
	switch {
	case apierrors.IsNotFound(err):
		kind = errkind.NotFound
	case apierrors.IsBadRequest(err), apierrors.IsInvalid(err):
		kind = errkind.BadInput
	case apierrors.IsForbidden(err), apierrors.IsUnauthorized(err):
		kind = errkind.Forbidden
	case apierrors.IsConflict(err):
		kind = errkind.Conflict
	case apierrors.IsUnsupportedMediaType(err):
		kind = errkind.BadInput
	default:
		kind = errkind.Unavailable
	}
	msg := err.Error()
	// The generic message of a 400 hides the reason in the causes.
	var status apierrors.APIStatus
	if errors.As(err, &status) && status.Status().Details != nil {
		for _, cause := range status.Status().Details.Causes {
			msg += "; " + strings.TrimSpace(cause.Field+" "+cause.Message)
		}
	}
	return &ClusterError{Cluster: c.Name, Err: errkind.Newf(kind, "%s: %s", what, msg)}
}

// restMapper is the cluster's kind-to-resource mapper, with discovery
// cached in memory. It belongs to the cluster (a field, not a table keyed by
// cluster), so a cluster removed or replaced by a kubeconfig edit leaves
// nothing behind.
func (c *Cluster) restMapper() meta.RESTMapper {
	c.mapperOnce.Do(func() {
		// Its discovery requests, like writes, are not left hanging on an
		// apiserver that stopped answering (see answering).
		disc := c.Discovery
		cfg := rest.CopyConfig(c.config)
		cfg.Wrap(c.whileAnswering)
		if d, err := discovery.NewDiscoveryClientForConfig(cfg); err == nil {
			disc = d
		}
		c.mapper = restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc))
	})
	return c.mapper
}
