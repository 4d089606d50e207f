package resolvers

import (
	"context"
	"math"
	"slices"
	"time"

	"github.com/99designs/gqlgen/graphql"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/clustergraph/clustergraph/errkind"
	"github.com/clustergraph/clustergraph/graph/model"
	"github.com/clustergraph/clustergraph/k8s"
)

// page holds the paging arguments every list field takes.
type page struct {
	After, Before              *string
	First, Last, Offset, Limit *int
	OrderBy                    *model.Order
}

// pageOf is the one conversion of a list field's paging arguments, in the
// order every connection field declares them.
func pageOf(after *string, first *int, before *string, last, offset, limit *int, orderBy *model.Order) page {
	return page{After: after, First: first, Before: before, Last: last, Offset: offset, Limit: limit, OrderBy: orderBy}
}

// scope is where a list looks: the named clusters (all when none are
// named), or one cluster, or one namespace of one cluster.
type scope struct {
	names     []string
	cluster   *k8s.Cluster
	namespace string
}

func inClusters(names []string) scope             { return scope{names: names} }
func inCluster(c *k8s.Cluster) scope              { return scope{cluster: c} }
func inNamespace(c *k8s.Cluster, ns string) scope { return scope{cluster: c, namespace: ns} }

// listOf is a list field's whole body: it converts the field's filter
// argument, finds the scope's clusters, and lists, filters, sorts and pages
// the kinds as the caller may see them.
func listOf[F, T any](ctx context.Context, r *Resolver, s scope, kinds []schema.GroupVersionKind, convert func(F) (*k8s.Filter, error), filter F, p page, wrap func(k8s.Item) T) (*model.Connection[T], error) {
	f, err := convert(filter)
	if err != nil {
		return nil, err
	}
	cs := []*k8s.Cluster{s.cluster}
	if s.cluster == nil {
		if cs, err = r.clustersOf(s.names); err != nil {
			return nil, err
		}
	}
	if s.namespace != "" {
		f.Namespace = s.namespace
	}
	return listKinds(ctx, r, cs, kinds, f, p, defaultOrder, wrap)
}

// defaultOrder is the order of lists that do not ask for one.
var defaultOrder = k8s.Order{Field: k8s.OrderCluster}

// paged adds the clusters' errors to the response, then sorts, pages and
// wraps the items.
func paged[T any](ctx context.Context, r *Resolver, items []k8s.Item, errs []error, p page, def k8s.Order, wrap func(k8s.Item) T) (*model.Connection[T], error) {
	for _, err := range errs {
		graphql.AddError(ctx, err)
	}
	order, args, err := p.args(def)
	if err != nil {
		return nil, err
	}
	pg, err := k8s.Paginate(items, order, args, r.MaxPage)
	if err != nil {
		return nil, err
	}
	return connection(pg, wrap), nil
}

// args converts a list field's paging arguments; def is the order of lists
// that do not ask for one.
func (p page) args(def k8s.Order) (k8s.Order, k8s.PageArgs, error) {
	args := k8s.PageArgs{First: -1}
	if p.After != nil {
		args.After = *p.After
	}
	switch {
	case p.First != nil:
		args.First = *p.First
	case p.Limit != nil:
		args.First = *p.Limit
	}
	if (p.First != nil || p.Limit != nil) && args.First < 0 {
		return def, args, errkind.BadInputf("first/limit must not be negative")
	}
	if p.Offset != nil {
		args.Offset = *p.Offset
	}
	if p.Before != nil {
		args.Before = *p.Before
	}
	if p.Last != nil {
		if *p.Last <= 0 {
			return def, args, errkind.BadInputf("last must be positive")
		}
		args.Last = *p.Last
	}
	order := def
	if p.OrderBy != nil {
		order = k8s.Order{Field: k8s.OrderField(p.OrderBy.Field), Desc: p.OrderBy.Direction != nil && *p.OrderBy.Direction == model.OrderDirectionDesc}
	}
	return order, args, nil
}

// prefix is how many of a list's items, in the default order and from its
// start, can make up the page (one more tells whether a next page exists);
// 0 when the page can lie anywhere in the list: after a cursor, in another
// order, or when the selection asks for totalCount, which counts them all.
// A source that yields items in that order may stop there.
func (p page) prefix(ctx context.Context, maxPage int) int {
	if p.After != nil || p.Before != nil || p.Last != nil || p.OrderBy != nil && (p.OrderBy.Direction != nil && *p.OrderBy.Direction == model.OrderDirectionDesc ||
		!slices.Contains([]model.OrderField{model.OrderFieldCluster, model.OrderFieldNamespace, model.OrderFieldName}, p.OrderBy.Field)) {
		return 0
	}
	if slices.Contains(graphql.CollectAllFields(ctx), "totalCount") {
		return 0
	}
	first := maxPage
	switch {
	case p.First != nil:
		first = *p.First
	case p.Limit != nil:
		first = *p.Limit
	}
	offset := 0
	if p.Offset != nil {
		offset = *p.Offset
	}
	if first < 0 || offset < 0 || first > maxPage || offset > math.MaxInt32 {
		return 0 // refused by the paging that follows
	}
	return offset + first + 1
}

// connection wraps a page's items.
func connection[T any](pg k8s.Page, wrap func(k8s.Item) T) *model.Connection[T] {
	conn := &model.Connection[T]{
		TotalCount: pg.Total,
		PageInfo:   &model.PageInfo{HasNextPage: pg.HasNext, HasPreviousPage: pg.HasPrev},
		Nodes:      make([]T, len(pg.Items)),
		Cursor:     pg.Cursor,
	}
	for i, it := range pg.Items {
		conn.Nodes[i] = wrap(it)
	}
	if n := len(pg.Items); n > 0 {
		start, end := pg.Cursor(0), pg.Cursor(n-1)
		conn.PageInfo.StartCursor, conn.PageInfo.EndCursor = &start, &end
	}
	return conn
}

// listKinds lists kinds across clusters and pages the union. One kind is
// paged by k8s.PageAcross, which can answer from kept sorted lists.
func listKinds[T any](ctx context.Context, r *Resolver, clusters []*k8s.Cluster, gvks []schema.GroupVersionKind, f *k8s.Filter, p page, def k8s.Order, wrap func(k8s.Item) T) (*model.Connection[T], error) {
	if len(gvks) == 1 {
		order, args, err := p.args(def)
		if err != nil {
			return nil, err
		}
		pg, errs, err := k8s.PageAcross(ctx, clusters, gvks[0], f, order, args, r.MaxPage)
		for _, e := range errs {
			graphql.AddError(ctx, e)
		}
		if err != nil {
			return nil, err
		}
		return connection(pg, wrap), nil
	}
	items, errs := k8s.ListKindsAcross(ctx, clusters, gvks, f)
	return paged(ctx, r, items, errs, p, def, wrap)
}

// clustersOf resolves a `clusters:` argument.
func (r *Resolver) clustersOf(names []string) ([]*k8s.Cluster, error) {
	return r.Registry.Select(names)
}

// itemsOf wraps related objects of one cluster as items that pass f.
func itemsOf[O any](c *k8s.Cluster, objs []O, f *k8s.Filter) []k8s.Item {
	items := make([]k8s.Item, 0, len(objs))
	for _, o := range objs {
		if f.Matches(o) {
			items = append(items, k8s.Item{Cluster: c, Obj: o})
		}
	}
	return items
}

func timeOr(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

func str(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// listFilter converts the generic filter input.
func listFilter(in *model.ListFilter) (*k8s.Filter, error) {
	if in == nil {
		return &k8s.Filter{}, nil
	}
	ls, fs, err := k8s.ParseSelectors(str(in.LabelSelector), str(in.FieldSelector))
	if err != nil {
		return nil, err
	}
	return &k8s.Filter{
		Namespace: str(in.Namespace), Name: str(in.Name), Labels: ls, Fields: fs, Status: str(in.Status),
		CreatedAfter: timeOr(in.CreatedAfter), CreatedBefore: timeOr(in.CreatedBefore),
	}, nil
}

// podFilter converts the pod filter input.
func podFilter(in *model.PodFilter) (*k8s.Filter, error) {
	if in == nil {
		return &k8s.Filter{}, nil
	}
	f, err := listFilter(&model.ListFilter{
		Namespace: in.Namespace, Name: in.Name, LabelSelector: in.LabelSelector, FieldSelector: in.FieldSelector,
		Status: in.Status, CreatedAfter: in.CreatedAfter, CreatedBefore: in.CreatedBefore,
	})
	if err != nil {
		return nil, err
	}
	node, hostIP := str(in.Node), str(in.HostIP)
	if node != "" || hostIP != "" {
		f.Match = func(obj any) bool {
			p := obj.(*corev1.Pod)
			return (node == "" || p.Spec.NodeName == node) && (hostIP == "" || p.Status.HostIP == hostIP)
		}
	}
	return f, nil
}

// nodeFilter converts the node filter input.
func nodeFilter(in *model.NodeFilter) (*k8s.Filter, error) {
	if in == nil {
		return &k8s.Filter{}, nil
	}
	f, err := listFilter(&model.ListFilter{
		Name: in.Name, LabelSelector: in.LabelSelector, FieldSelector: in.FieldSelector,
		Status: in.Status, CreatedAfter: in.CreatedAfter, CreatedBefore: in.CreatedBefore,
	})
	if err != nil {
		return nil, err
	}
	pool, role := str(in.Pool), str(in.Role)
	if pool != "" || role != "" {
		f.Match = func(obj any) bool {
			n := obj.(*corev1.Node)
			if p, _ := k8s.PoolOf(n); pool != "" && p != pool {
				return false
			}
			if role != "" {
				_, tagged := n.Labels["node-role.kubernetes.io/"+role]
				return tagged || n.Labels["kubernetes.io/role"] == role
			}
			return true
		}
	}
	return f, nil
}

// eventFilter converts the event filter input.
func eventFilter(in *model.EventFilter) (*k8s.Filter, error) {
	if in == nil {
		return &k8s.Filter{}, nil
	}
	typ, reason, source, kind, name := str(in.Type), str(in.Reason), str(in.Source), str(in.InvolvedKind), str(in.InvolvedName)
	since, until := timeOr(in.Since), timeOr(in.Until)
	return &k8s.Filter{
		Namespace: str(in.Namespace),
		Match: func(obj any) bool {
			e := obj.(*corev1.Event)
			seen := k8s.LastSeen(e)
			return (typ == "" || e.Type == typ) && (reason == "" || e.Reason == reason) &&
				(source == "" || e.Source.Component == source || e.ReportingController == source) &&
				(kind == "" || e.InvolvedObject.Kind == kind) && (name == "" || e.InvolvedObject.Name == name) &&
				(since.IsZero() || !seen.Before(since)) && (until.IsZero() || seen.Before(until))
		},
	}, nil
}

// eventOrder is the default order of events: newest first.
var eventOrder = k8s.Order{Field: k8s.OrderLastSeen, Desc: true}

// wrap converts any cached object to its GraphQL type.
func wrap(c *k8s.Cluster, obj any) model.KubeObject {
	switch o := obj.(type) {
	case *corev1.Pod:
		return model.NewPod(c, o)
	case *corev1.Node:
		return model.NewNode(c, o)
	case *corev1.Namespace:
		return model.NewNamespace(c, o)
	case *corev1.Service:
		return model.NewService(c, o)
	case *corev1.Event:
		return model.NewEvent(c, o)
	case *corev1.PersistentVolumeClaim:
		return model.NewPersistentVolumeClaim(c, o)
	case *metav1.PartialObjectMetadata:
		return model.NewMetadataObject(c, o)
	case *unstructured.Unstructured:
		return model.NewResource(c, o)
	}
	if model.IsWorkload(obj) {
		return model.NewWorkload(c, obj)
	}
	if i, ok := obj.(*networkingv1.Ingress); ok {
		return model.NewIngress(c, i)
	}
	return nil
}

// Per-type wrappers for paged.
func wrapPod(it k8s.Item) *model.Pod       { return model.NewPod(it.Cluster, it.Obj.(*corev1.Pod)) }
func wrapNode(it k8s.Item) *model.KubeNode { return model.NewNode(it.Cluster, it.Obj.(*corev1.Node)) }
func wrapNamespace(it k8s.Item) *model.Namespace {
	return model.NewNamespace(it.Cluster, it.Obj.(*corev1.Namespace))
}
func wrapService(it k8s.Item) *model.Service {
	return model.NewService(it.Cluster, it.Obj.(*corev1.Service))
}
func wrapEvent(it k8s.Item) *model.Event       { return model.NewEvent(it.Cluster, it.Obj.(*corev1.Event)) }
func wrapWorkload(it k8s.Item) *model.Workload { return model.NewWorkload(it.Cluster, it.Obj) }
func wrapPool(it k8s.Item) *model.NodePool {
	return &model.NodePool{C: it.Cluster, P: it.Obj.(*k8s.NodePool)}
}
func wrapPVC(it k8s.Item) *model.PersistentVolumeClaim {
	return model.NewPersistentVolumeClaim(it.Cluster, it.Obj.(*corev1.PersistentVolumeClaim))
}
func wrapMeta(it k8s.Item) *model.MetadataObject {
	return model.NewMetadataObject(it.Cluster, it.Obj.(*metav1.PartialObjectMetadata))
}
func wrapResource(it k8s.Item) *model.Resource {
	return model.NewResource(it.Cluster, it.Obj.(*unstructured.Unstructured))
}
func wrapIngress(it k8s.Item) *model.Ingress {
	return model.NewIngress(it.Cluster, it.Obj.(*networkingv1.Ingress))
}
