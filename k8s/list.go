package k8s

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/tools/cache"

	"github.com/clustergraph/clustergraph/errkind"
)

// Item is one object and the cluster it belongs to.
type Item struct {
	Cluster *Cluster
	Obj     any
}

// Filter selects objects. The zero value selects everything.
type Filter struct {
	Namespace     string
	Name          string // case-insensitive substring of the name
	Labels        labels.Selector
	Fields        fields.Selector
	Status        string // see StatusOf
	CreatedAfter  time.Time
	CreatedBefore time.Time
	// Match is a kind-specific extra condition; nil matches everything.
	Match func(obj any) bool
}

// ParseSelectors parses a label and a field selector; empty strings select
// everything. Malformed selectors, and selectors over MaxSelectorBytes or
// MaxSelectorTerms, are errkind.BadInput. A selector repeated (under many
// aliases, say) is parsed once: the result is shared, and never changed.
func ParseSelectors(label, field string) (labels.Selector, fields.Selector, error) {
	return selectors.parse(label, field)
}

// Matches reports whether obj passes the filter.
func (f *Filter) Matches(obj any) bool {
	m, err := metaOf(obj)
	if err != nil {
		return false
	}
	switch {
	case f.Namespace != "" && m.GetNamespace() != f.Namespace,
		f.Name != "" && !containsFold(m.GetName(), f.Name),
		f.Labels != nil && !f.Labels.Empty() && !f.Labels.Matches(labels.Set(m.GetLabels())),
		f.Fields != nil && !f.Fields.Empty() && !f.Fields.Matches(fieldsOf(obj)),
		f.Status != "" && !statusMatches(obj, f.Status),
		!f.CreatedAfter.IsZero() && m.GetCreationTimestamp().Time.Before(f.CreatedAfter),
		!f.CreatedBefore.IsZero() && !m.GetCreationTimestamp().Time.Before(f.CreatedBefore),
		f.Match != nil && !f.Match(obj):
		return false
	}
	return true
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

// candidates narrows a store with its indexes before the filter runs: a
// namespace or an equality label requirement turns a scan of the whole
// cluster into a lookup.
func candidates(store cache.Indexer, f *Filter) []any {
	if store == nil {
		return nil
	}
	if f.Namespace != "" {
		objs, err := store.ByIndex(IndexNamespace, f.Namespace)
		if err == nil {
			return objs
		}
	}
	if f.Labels != nil {
		if reqs, ok := f.Labels.Requirements(); ok {
			for _, r := range reqs {
				if (r.Operator() == selection.Equals || r.Operator() == selection.DoubleEquals) && r.Values().Len() == 1 {
					objs, err := store.ByIndex(IndexLabel, r.Key()+"="+r.Values().UnsortedList()[0])
					if err == nil {
						return objs
					}
				}
			}
		}
	}
	return store.List()
}

// List returns the cached objects of a kind that pass the filter. A cluster
// whose caches are stale returns its objects and an error saying so.
func (c *Cluster) List(ctx context.Context, gvk schema.GroupVersionKind, f *Filter) ([]Item, error) {
	ok, warn := c.readable()
	if !ok {
		return nil, warn
	}
	var objs []any
	if gvk == GVKNodePoolLabel || gvk == GVKNodePoolObject {
		for _, p := range c.NodePools(ctx) {
			objs = append(objs, p)
		}
	} else {
		r, known := resourceOfGVK[gvk]
		if !known {
			return nil, &ClusterError{Cluster: c.Name, Err: errkind.Newf(errkind.NotFound, "kind %s is not cached", gvk.Kind)}
		}
		if err := c.kindReadable(r); err != nil {
			return nil, err
		}
		objs = c.visible(ctx, r, candidates(c.caches.store(r), f))
	}
	items := make([]Item, 0, len(objs))
	for _, o := range objs {
		if f.Matches(o) {
			items = append(items, Item{Cluster: c, Obj: o})
		}
	}
	return items, warn
}

// ListAcross lists a kind in several clusters. Clusters that cannot be read
// add an error each; the others' objects are still returned.
func ListAcross(ctx context.Context, clusters []*Cluster, gvk schema.GroupVersionKind, f *Filter) ([]Item, []error) {
	var items []Item
	var errs []error
	for _, c := range clusters {
		got, err := c.List(ctx, gvk, f)
		items = append(items, got...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return items, errs
}

// ListKindsAcross lists several kinds in several clusters. A cluster that
// cannot be read, or some of whose kinds cannot, adds one error (not one
// per kind) naming what is missing; everything readable is returned.
func ListKindsAcross(ctx context.Context, clusters []*Cluster, gvks []schema.GroupVersionKind, f *Filter) ([]Item, []error) {
	var items []Item
	var errs []error
	for _, c := range clusters {
		var cerrs []error
		for _, gvk := range gvks {
			got, err := c.List(ctx, gvk, f)
			items = append(items, got...)
			if err != nil {
				cerrs = append(cerrs, err)
			}
		}
		if err := joinClusterErrors(c.Name, cerrs); err != nil {
			errs = append(errs, err)
		}
	}
	return items, errs
}

// joinClusterErrors makes one error of one cluster's errors: the same
// message is told once, different ones are joined; the first error's
// kind decides the code.
func joinClusterErrors(cluster string, errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	var msgs []string
	seen := map[string]bool{}
	for _, err := range errs {
		m := err.Error()
		var ce *ClusterError
		if errors.As(err, &ce) && ce.Cluster == cluster {
			m = ce.Err.Error()
		}
		if !seen[m] {
			seen[m] = true
			msgs = append(msgs, m)
		}
	}
	if len(msgs) == 1 {
		return errs[0]
	}
	kind := errkind.Of(errs[0])
	if kind == nil {
		kind = errkind.Unavailable
	}
	return &ClusterError{Cluster: cluster, Err: errkind.Newf(kind, "%s", strings.Join(msgs, "; "))}
}

// Get returns one cached object, errkind.Forbidden when the context's subject
// may not get it (checked first, as the apiserver does), or errkind.NotFound.
func (c *Cluster) Get(ctx context.Context, gvk schema.GroupVersionKind, namespace, name string) (any, error) {
	ok, warn := c.readable()
	if !ok {
		return nil, warn
	}
	r, known := resourceOfGVK[gvk]
	if !known {
		return nil, &ClusterError{Cluster: c.Name, Err: errkind.Newf(errkind.NotFound, "kind %s is not cached", gvk.Kind)}
	}
	if !c.allows(ctx, "get", groupResource(r), namespace, name) {
		return nil, &ClusterError{Cluster: c.Name, Err: errkind.Newf(errkind.Forbidden, "you may not get %s %s/%s", gvk.Kind, namespace, name)}
	}
	if err := c.kindReadable(r); err != nil {
		return nil, err
	}
	key := name
	if namespace != "" {
		key = namespace + "/" + name
	}
	obj, exists, err := c.caches.store(r).GetByKey(key)
	if err != nil || !exists {
		return nil, errkind.Newf(errkind.NotFound, "%s %s", gvk.Kind, key)
	}
	return obj, nil
}

// byIndex returns the cached objects of a resource under an index value
// that the context's subject may see.
func (c *Cluster) byIndex(ctx context.Context, r resource, index, value string) []any {
	store := c.caches.store(r)
	if store == nil || c.kindReadable(r) != nil {
		return nil
	}
	objs, _ := store.ByIndex(index, value)
	return c.visible(ctx, r, objs)
}

// OrderField names what a list is sorted by.
type OrderField string

// The orders every list offers. Ties are broken by cluster, namespace and
// name, so every order is total and cursors are stable.
const (
	OrderCluster   OrderField = "CLUSTER"
	OrderName      OrderField = "NAME"
	OrderNamespace OrderField = "NAMESPACE"
	OrderCreated   OrderField = "CREATED"
	OrderStatus    OrderField = "STATUS"
	OrderLastSeen  OrderField = "LAST_SEEN"
)

// Order is a list's sort order.
type Order struct {
	Field OrderField
	Desc  bool
}

// PageArgs are a client's paging arguments. First < 0 means not given.
type PageArgs struct {
	After  string
	First  int
	Offset int
	// Before and Last page backward (Relay's last/before): the page ends
	// before the Before cursor (or at the end), and holds its Last items
	// (0: not asked; with Before and no Last, the first First of them).
	Before string
	Last   int
}

// backward reports whether the arguments page backward.
func (a PageArgs) backward() bool { return a.Before != "" || a.Last > 0 }

// Page is one page of a sorted list.
type Page struct {
	Items []Item
	keys  []sortKey
	// Total counts every item that passed the filter, on all pages.
	Total   int
	HasNext bool
	HasPrev bool
}

// Cursor is the cursor of Items[i]: a page after it starts with Items[i+1].
// Computed on demand (it costs a JSON encoding); most pages never need one.
func (p Page) Cursor(i int) string { return p.keys[i].cursor() }

// sortKey orders items: by time first for the time orders (nanoseconds,
// no string to build for every item of a list), then by strings whose
// first depends on the order field.
type sortKey struct {
	t     int64
	timed bool
	s     [4]string
}

func (k sortKey) compare(b sortKey) int {
	if c := cmp.Compare(k.t, b.t); c != 0 {
		return c
	}
	return slices.Compare(k.s[:], b.s[:])
}

// cursor renders the key as four strings (a time as 20 digits, whose
// string order is its time order).
func (k sortKey) cursor() string {
	s := k.s
	if k.timed {
		s[0] = timeKey(k.t)
	}
	b, _ := json.Marshal(s)
	return base64.RawURLEncoding.EncodeToString(b)
}

func parseCursor(c string, field OrderField) (sortKey, error) {
	var k sortKey
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err == nil {
		err = json.Unmarshal(b, &k.s)
	}
	if err == nil && (field == OrderCreated || field == OrderLastSeen) {
		k.timed = true
		k.t, err = strconv.ParseInt(k.s[0], 10, 64)
		k.s[0] = ""
	}
	if err != nil {
		return k, errkind.BadInputf("malformed cursor %q", c)
	}
	return k, nil
}

// timeKey renders Unix nanoseconds in 20 digits, so that a cursor's string
// order is time order.
func timeKey(n int64) string { return fmt.Sprintf("%020d", n) }

// bounded keeps the n smallest values pushed to it by cmp in a max-heap,
// so that a short page of a long list costs n log k and memory for k
// values, not a key for every item.
type bounded[T any] struct {
	h   []T
	n   int
	cmp func(a, b T) int
}

func newBounded[T any](n int, cmp func(a, b T) int) *bounded[T] {
	return &bounded[T]{h: make([]T, 0, n), n: n, cmp: cmp}
}

// above reports whether heap slot i orders after slot j (max at the root).
func (b *bounded[T]) above(i, j int) bool { return b.cmp(b.h[i], b.h[j]) > 0 }

func (b *bounded[T]) push(x T) {
	if b.n <= 0 {
		return
	}
	if len(b.h) < b.n {
		b.h = append(b.h, x)
		for i := len(b.h) - 1; i > 0; {
			p := (i - 1) / 2
			if !b.above(i, p) {
				break
			}
			b.h[i], b.h[p] = b.h[p], b.h[i]
			i = p
		}
		return
	}
	if b.cmp(x, b.h[0]) >= 0 {
		return
	}
	b.h[0] = x
	for i := 0; ; {
		l, m := 2*i+1, i
		if l < len(b.h) && b.above(l, m) {
			m = l
		}
		if r := l + 1; r < len(b.h) && b.above(r, m) {
			m = r
		}
		if m == i {
			return
		}
		b.h[i], b.h[m] = b.h[m], b.h[i]
		i = m
	}
}

// sorted returns the values kept, smallest first.
func (b *bounded[T]) sorted() []T {
	slices.SortFunc(b.h, b.cmp)
	return b.h
}

// keyOf is an item's sort key for an order field. sortKey.storeKey reads
// the namespace and name back from where each order puts them: change the
// two together.
func keyOf(it Item, field OrderField) sortKey {
	m, err := metaOf(it.Obj)
	if err != nil {
		return sortKey{}
	}
	cl, ns, name := it.Cluster.Name, m.GetNamespace(), m.GetName()
	switch field {
	case OrderName:
		return sortKey{s: [4]string{name, ns, cl}}
	case OrderNamespace:
		return sortKey{s: [4]string{ns, name, cl}}
	case OrderCreated:
		return sortKey{t: m.GetCreationTimestamp().UnixNano(), timed: true, s: [4]string{"", cl, ns, name}}
	case OrderStatus:
		return sortKey{s: [4]string{StatusOf(it.Obj), cl, ns, name}}
	case OrderLastSeen:
		return sortKey{t: LastSeen(it.Obj).UnixNano(), timed: true, s: [4]string{"", cl, ns, name}}
	}
	return sortKey{s: [4]string{cl, ns, name}}
}

// EventSource is the component that reported an Event: the legacy
// source component, else the reporting controller.
func EventSource(e *corev1.Event) string {
	if e.Source.Component != "" {
		return e.Source.Component
	}
	return e.ReportingController
}

// EventCount is how often an Event happened (at least once): its series'
// count when it has one.
func EventCount(e *corev1.Event) int {
	if e.Series != nil {
		return int(e.Series.Count)
	}
	return max(int(e.Count), 1)
}

// LastSeen is when an Event last happened; for other kinds, creation time.
func LastSeen(obj any) time.Time {
	if e, ok := obj.(*corev1.Event); ok {
		switch {
		case !e.LastTimestamp.IsZero():
			return e.LastTimestamp.Time
		case !e.EventTime.IsZero():
			return e.EventTime.Time
		}
	}
	if m, err := metaOf(obj); err == nil {
		return m.GetCreationTimestamp().Time
	}
	return time.Time{}
}

// Paginate sorts items and cuts the page the arguments ask for. Items after
// the cursor come first, then offset skips, then first limits. maxFirst
// bounds first; a larger first is errkind.BadInput.
func Paginate(items []Item, order Order, args PageArgs, maxFirst int) (Page, error) {
	order, first, after, err := pageArgs(order, args, maxFirst)
	if err != nil {
		return Page{}, err
	}
	if args.backward() {
		return paginateBackward(items, order, first, args, after, maxFirst)
	}
	return paginate(items, order, first, args.Offset, after), nil
}

// paginateBackward cuts a page by Relay's backward arguments: the items
// after the after cursor and before the before cursor, in order; of them
// the last Last, or with no Last the first first. Offsets do not go with
// it.
func paginateBackward(items []Item, order Order, first int, args PageArgs, after *sortKey, maxFirst int) (Page, error) {
	if args.Offset != 0 {
		return Page{}, errkind.BadInputf("offset pages forward: it does not go with last or before")
	}
	if args.Last > maxFirst {
		return Page{}, errkind.BadInputf("last %d is over the maximum of %d", args.Last, maxFirst)
	}
	var before *sortKey
	if args.Before != "" {
		k, err := parseCursor(args.Before, order.Field)
		if err != nil {
			return Page{}, err
		}
		before = &k
	}
	cmp := func(a, b sortKey) int {
		if order.Desc {
			return -a.compare(b)
		}
		return a.compare(b)
	}
	type keyed struct {
		key  sortKey
		item Item
	}
	var ks []keyed
	preceding, following := 0, 0
	for _, it := range items {
		k := keyOf(it, order.Field)
		switch {
		case after != nil && cmp(k, *after) <= 0:
			preceding++
		case before != nil && cmp(k, *before) >= 0:
			following++
		default:
			ks = append(ks, keyed{k, it})
		}
	}
	slices.SortFunc(ks, func(a, b keyed) int { return cmp(a.key, b.key) })
	start, end := 0, len(ks)
	if args.Last > 0 {
		start = max(0, end-args.Last)
	} else {
		end = min(first, len(ks))
	}
	p := Page{Total: len(items), HasPrev: preceding+start > 0, HasNext: following+len(ks)-end > 0}
	for _, k := range ks[start:end] {
		p.Items = append(p.Items, k.item)
		p.keys = append(p.keys, k.key)
	}
	return p, nil
}

// PageAcross lists a kind in several clusters and cuts a page, as
// ListAcross and Paginate do. Where every cluster keeps the query's sorted
// matches (see sorted.go) the page costs a lookup per item on it rather
// than a filter of the whole cache.
func PageAcross(ctx context.Context, clusters []*Cluster, gvk schema.GroupVersionKind, f *Filter, order Order, args PageArgs, maxFirst int) (Page, []error, error) {
	order, first, after, err := pageArgs(order, args, maxFirst)
	if err != nil {
		return Page{}, nil, err
	}
	if args.backward() {
		// The kept sorted lists serve forward pages; a backward one is cut
		// from the whole list.
		items, errs := ListAcross(ctx, clusters, gvk, f)
		p, err := paginateBackward(items, order, first, args, after, maxFirst)
		return p, errs, err
	}
	var items []Item
	before, total := 0, 0
	for _, c := range clusters {
		w, ok := c.sortedWindow(ctx, gvk, f, order, after, args.Offset+first+1)
		if !ok {
			items, errs := ListAcross(ctx, clusters, gvk, f)
			return paginate(items, order, first, args.Offset, after), errs, nil
		}
		items = append(items, w.items...)
		before, total = before+w.before, total+w.total
	}
	// The windows hold only keys after the cursor, and enough of each
	// cluster's for the page and one more.
	p := paginate(items, order, first, args.Offset, nil)
	p.Total, p.HasPrev = total, p.HasPrev || before > 0
	return p, nil, nil
}

// maxOffset bounds offsets far past any list, so that offset+first never
// overflows.
const maxOffset = 1 << 31

// pageArgs checks paging arguments: the order with its default field, the
// page size and the parsed cursor.
func pageArgs(order Order, args PageArgs, maxFirst int) (Order, int, *sortKey, error) {
	first := args.First
	if first > maxFirst {
		return order, 0, nil, errkind.BadInputf("first/limit %d is over the maximum of %d", first, maxFirst)
	}
	if first < 0 {
		first = maxFirst
	}
	if args.Offset < 0 {
		return order, 0, nil, errkind.BadInputf("offset must not be negative")
	}
	if args.Offset > maxOffset {
		return order, 0, nil, errkind.BadInputf("offset %d is over the maximum of %d", args.Offset, maxOffset)
	}
	if order.Field == "" {
		order.Field = OrderCluster
	}
	if args.After == "" {
		return order, first, nil, nil
	}
	k, err := parseCursor(args.After, order.Field)
	if err != nil {
		return order, 0, nil, err
	}
	return order, first, &k, nil
}

func paginate(items []Item, order Order, first, offset int, after *sortKey) Page {
	field := order.Field
	type keyed struct {
		key  sortKey
		item Item
	}
	cmp := func(a, b sortKey) int {
		c := a.compare(b)
		if order.Desc {
			return -c
		}
		return c
	}
	// Only what lies after the cursor can be on the page; the rest counts
	// towards HasPrev. A page needs the smallest offset+first keys in
	// order, not all of them: for a short page of a long list, keys go
	// straight into a bounded heap (n log k, and no key kept for every
	// item) instead of a slice that is sorted whole (n log n).
	byKey := func(a, b keyed) int { return cmp(a.key, b.key) }
	need := offset + first + 1 // one more says whether a next page exists
	var ks []keyed
	var top *bounded[keyed]
	if need < len(items)/4 {
		top = newBounded(need, byKey)
	} else {
		ks = make([]keyed, 0, len(items))
	}
	before := 0
	for _, it := range items {
		k := keyOf(it, field)
		if after != nil && cmp(k, *after) <= 0 {
			before++
			continue
		}
		if top != nil {
			top.push(keyed{k, it})
		} else {
			ks = append(ks, keyed{k, it})
		}
	}
	remaining := len(items) - before
	if top != nil {
		ks = top.sorted()
	} else {
		slices.SortFunc(ks, byKey)
	}
	start := min(offset, len(ks))
	end := min(start+first, len(ks))
	p := Page{
		Items:   make([]Item, 0, end-start),
		keys:    make([]sortKey, 0, end-start),
		Total:   len(items),
		HasNext: end < remaining,
		HasPrev: before+start > 0,
	}
	for _, k := range ks[start:end] {
		p.Items = append(p.Items, k.item)
		p.keys = append(p.keys, k.key)
	}
	return p
}
