package resolvers

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/selection"

	"github.com/clustergraph/clustergraph/db"
	"github.com/clustergraph/clustergraph/errkind"
	"github.com/clustergraph/clustergraph/graph/model"
	"github.com/clustergraph/clustergraph/k8s"
	"github.com/clustergraph/clustergraph/loaders"
)

// offsetCursor is the opaque cursor of stored lists: the item's position.
func offsetCursor(i int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("o:" + strconv.Itoa(i)))
}

func parseOffsetCursor(s string) (int, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		if n, ok := strings.CutPrefix(string(b), "o:"); ok {
			if i, err := strconv.Atoi(n); err == nil && i >= 0 {
				return i, nil
			}
		}
	}
	return 0, errkind.BadInputf("malformed cursor %q", s)
}

// window turns paging arguments into an offset and a limit for a stored
// list: after (a cursor of this list) or offset, and first or limit (at
// most MaxPage, which is also the default).
func (r *Resolver) window(after *string, first, offset, limit *int) (int, int, error) {
	off := 0
	if after != nil && *after != "" {
		i, err := parseOffsetCursor(*after)
		if err != nil {
			return 0, 0, err
		}
		off = i + 1
	}
	if offset != nil {
		if *offset < 0 {
			return 0, 0, errkind.BadInputf("offset must not be negative")
		}
		off += *offset
	}
	n := r.MaxPage
	switch {
	case first != nil:
		n = *first
	case limit != nil:
		n = *limit
	}
	if n < 0 {
		return 0, 0, errkind.BadInputf("first/limit must not be negative")
	}
	if n > r.MaxPage {
		return 0, 0, errkind.BadInputf("first/limit %d is over the maximum page size %d", n, r.MaxPage)
	}
	return off, n, nil
}

// storedPage reads one page of a list the database pages by offset
// (alerts, metering): forward by after/first/offset/limit (see window), or
// backward by before/last, where the page ends before the before cursor
// (or at the end: the total is read first) and holds its last items.
// fetch reads rows [off, off+n) and the total. It returns the rows, the
// total and the page's offset, for offsetConn.
func storedPage[T any](r *Resolver, after *string, first *int, before *string, last, offset, limit *int, fetch func(off, n int) ([]T, int64, error)) ([]T, int64, int, error) {
	// n is at least 1: a limit of 0 asks the database for every row.
	count := func(off int) ([]T, int64, int, error) {
		_, total, err := fetch(off, 1)
		return nil, total, off, err
	}
	if before == nil && last == nil {
		off, n, err := r.window(after, first, offset, limit)
		if err != nil {
			return nil, 0, 0, err
		}
		if n == 0 {
			return count(off)
		}
		rows, total, err := fetch(off, n)
		return rows, total, off, err
	}
	if offset != nil {
		return nil, 0, 0, errkind.BadInputf("offset pages forward: it does not go with last or before")
	}
	lo, hi := 0, -1
	if after != nil && *after != "" {
		i, err := parseOffsetCursor(*after)
		if err != nil {
			return nil, 0, 0, err
		}
		lo = i + 1
	}
	if before != nil && *before != "" {
		i, err := parseOffsetCursor(*before)
		if err != nil {
			return nil, 0, 0, err
		}
		hi = i
	}
	if hi < 0 {
		_, total, err := fetch(0, 1)
		if err != nil {
			return nil, 0, 0, err
		}
		hi = int(total)
	}
	start, end := lo, hi
	switch {
	case last != nil && (*last <= 0 || *last > r.MaxPage):
		return nil, 0, 0, errkind.BadInputf("last must be between 1 and the maximum page size %d", r.MaxPage)
	case last != nil:
		start = max(lo, hi-*last)
	default:
		_, n, err := r.window(nil, first, nil, limit)
		if err != nil {
			return nil, 0, 0, err
		}
		end = min(lo+n, hi)
	}
	if end <= start {
		return count(max(start, 0))
	}
	rows, total, err := fetch(start, end-start)
	return rows, total, start, err
}

// offsetConn wraps one page of a stored list.
func offsetConn[T any](nodes []T, total int64, off int) *model.Connection[T] {
	conn := &model.Connection[T]{
		TotalCount: int(total),
		PageInfo:   &model.PageInfo{HasNextPage: int64(off+len(nodes)) < total, HasPreviousPage: off > 0},
		Nodes:      nodes,
		Cursor:     func(i int) string { return offsetCursor(off + i) },
	}
	if n := len(nodes); n > 0 {
		start, end := offsetCursor(off), offsetCursor(off+n-1)
		conn.PageInfo.StartCursor, conn.PageInfo.EndCursor = &start, &end
	}
	return conn
}

// meteringSort converts the API sort keys.
func meteringSort(in []*model.MeteringSort) []db.Sort {
	fields := map[model.MeteringSortField]db.SortField{
		model.MeteringSortFieldMeteringTime: db.SortTime, model.MeteringSortFieldCluster: db.SortCluster,
		model.MeteringSortFieldNamespace: db.SortNamespace, model.MeteringSortFieldCPU: db.SortCPU,
		model.MeteringSortFieldMemory: db.SortMemory, model.MeteringSortFieldStorage: db.SortStorage,
		model.MeteringSortFieldGpu: db.SortGPU, model.MeteringSortFieldPublicIP: db.SortPublicIP,
		model.MeteringSortFieldPrivateIP: db.SortPrivateIP, model.MeteringSortFieldTrafficIn: db.SortTrafficIn,
		model.MeteringSortFieldTrafficOut: db.SortTrafficOut,
	}
	out := make([]db.Sort, 0, len(in))
	for _, s := range in {
		out = append(out, db.Sort{Field: fields[s.Field], Desc: s.Direction != nil && *s.Direction == model.OrderDirectionDesc})
	}
	return out
}

func unitOf(u *model.TimeUnit) db.TimeUnit {
	if u == nil {
		return db.Day
	}
	return u.Unit()
}

func records(rs []db.Record) []*model.MeteringRecord {
	out := make([]*model.MeteringRecord, len(rs))
	for i := range rs {
		out[i] = &model.MeteringRecord{R: rs[i]}
	}
	return out
}

func alerts(as []db.Alert) []*model.Alert {
	out := make([]*model.Alert, len(as))
	for i := range as {
		out[i] = model.NewAlert(as[i])
	}
	return out
}

// listCap bounds the short lists on objects (alerts, metering) by MaxPage.
func (r *Resolver) listCap(first *int, def int) (int, error) {
	n := def
	if first != nil {
		n = *first
	}
	if n < 0 || n > r.MaxPage {
		return 0, errkind.BadInputf("first must be between 0 and %d", r.MaxPage)
	}
	return n, nil
}

// alertQuery converts the API filter; the scope is added by the caller.
func alertQuery(f *model.AlertFilter) (db.AlertQuery, error) {
	var q db.AlertQuery
	if f == nil {
		return q, nil
	}
	q.Namespaces, q.Names, q.AlertNames, q.Severities = f.Namespaces, f.Names, f.AlertNames, f.Severities
	q.Sources, q.Modules, q.Types, q.ObjectKinds = f.Sources, f.Modules, f.Types, f.ObjectKinds
	if f.Status != nil {
		q.Statuses = []string{statusOf(*f.Status)}
	}
	q.Start, q.End = timeOr(f.Since), timeOr(f.Until)
	if sel := str(f.LabelSelector); sel != "" {
		// Bounded like every selector (k8s.ParseSelectors): it becomes SQL.
		parsed, _, err := k8s.ParseSelectors(sel, "")
		if err != nil {
			return q, err
		}
		reqs, _ := parsed.Requirements()
		for _, r := range reqs {
			op, ok := map[selection.Operator]string{
				selection.Equals: "=", selection.DoubleEquals: "=", selection.In: "in",
				selection.NotEquals: "!=", selection.NotIn: "notin",
				selection.Exists: "exists", selection.DoesNotExist: "!",
			}[r.Operator()]
			if !ok {
				return q, errkind.BadInputf("labelSelector: operator %s is not supported on alerts", r.Operator())
			}
			q.Labels = append(q.Labels, db.LabelRequirement{Key: r.Key(), Op: op, Values: r.Values().List()})
		}
	}
	return q, nil
}

func statusOf(s model.AlertStatus) string {
	if s == model.AlertStatusResolved {
		return db.Resolved
	}
	return db.Firing
}

// alertMatcher is a subscription's filter, asked per alert at delivery
// time; Records.SubscribeAlerts adds the caller's right to read it.
func alertMatcher(f *model.AlertFilter) (func(db.Alert) bool, error) {
	q, err := alertQuery(f)
	if err != nil {
		return nil, err
	}
	var sel labels.Selector
	if f != nil && str(f.LabelSelector) != "" {
		sel, _, _ = k8s.ParseSelectors(*f.LabelSelector, "") // checked by alertQuery
	}
	in := func(list []string, v string) bool {
		if len(list) == 0 {
			return true
		}
		for _, x := range list {
			if x == v {
				return true
			}
		}
		return false
	}
	return func(a db.Alert) bool {
		return in(q.Namespaces, a.Namespace) && in(q.Names, a.Name) && in(q.AlertNames, a.AlertName) &&
			in(q.Severities, a.Severity) && in(q.Statuses, a.Status) && in(q.Sources, a.Source) &&
			in(q.Modules, a.Module) && in(q.Types, a.Type) && in(q.ObjectKinds, a.ObjectKind) &&
			(q.Start.IsZero() || !a.StartsAt.Before(q.Start)) && (q.End.IsZero() || a.StartsAt.Before(q.End)) &&
			(sel == nil || sel.Matches(labels.Set(a.Labels)))
	}, nil
}

// alertObjectGVK maps an alert's object kind to the cached kind.
var alertObjectGVK = map[string]schema.GroupVersionKind{
	"Pod": k8s.GVKPod, "Node": k8s.GVKNode, "Namespace": k8s.GVKNamespace,
	"Deployment": k8s.GVKDeployment, "StatefulSet": k8s.GVKStatefulSet, "DaemonSet": k8s.GVKDaemonSet,
	"ReplicaSet": k8s.GVKReplicaSet, "Job": k8s.GVKJob, "CronJob": k8s.GVKCronJob,
}

// alertObject finds the cached object an alert names, as the caller may
// see it; nil when it is gone, unknown or not the caller's to read.
func (r *Resolver) alertObject(ctx context.Context, a db.Alert) (*k8s.Cluster, any) {
	gvk, ok := alertObjectGVK[a.ObjectKind]
	if !ok || a.Cluster == "" || a.Name == "" {
		return nil, nil
	}
	c, err := r.Registry.Cluster(a.Cluster)
	if err != nil {
		return nil, nil
	}
	ns := a.Namespace
	if gvk == k8s.GVKNode || gvk == k8s.GVKNamespace {
		ns = ""
	}
	obj, err := c.Get(ctx, gvk, ns, a.Name)
	if err != nil {
		return nil, nil
	}
	return c, obj
}

// objectAlerts loads an object's alerts through the batching loader.
func (r *Resolver) objectAlerts(ctx context.Context, c *k8s.Cluster, kind, namespace, name string, status *model.AlertStatus, first *int) ([]*model.Alert, error) {
	n, err := r.listCap(first, 20)
	if err != nil {
		return nil, err
	}
	// The loader leaves out what the caller may not read (by the access sets, in loaders).
	key := loaders.AlertsKey{Ref: db.AlertRef{Cluster: c.Name, Kind: kind, Namespace: namespace, Name: name}, Limit: n}
	if kind == "Namespace" {
		key.Ref = db.AlertRef{Cluster: c.Name, Kind: kind, Name: name}
	}
	if status != nil {
		key.Status = statusOf(*status)
	}
	got, err := loaders.For(ctx).Alerts.Load(ctx, key)
	if err != nil {
		return nil, err
	}
	return alerts(got), nil
}

// workloadAlerts are a workload's own alerts and its pods', newest first.
func (r *Resolver) workloadAlerts(ctx context.Context, w *model.Workload, status *model.AlertStatus, first *int) ([]*model.Alert, error) {
	id := w.C.IDOf(w.Obj)
	own, err := r.objectAlerts(ctx, w.C, id.GVK.Kind, id.Namespace, id.Name, status, first)
	if err != nil {
		return nil, err
	}
	pods, err := loaders.For(ctx).PodsOf.Load(ctx, loaders.ObjRef{C: w.C, Obj: w.Obj})
	if err != nil {
		return nil, err
	}
	out := own
	for _, p := range pods {
		got, err := r.objectAlerts(ctx, w.C, "Pod", p.Namespace, p.Name, status, first)
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
	}
	// Newest first, as each part already is.
	slices.SortFunc(out, func(a, b *model.Alert) int {
		if c := b.A.StartsAt.Compare(a.A.StartsAt); c != 0 {
			return c
		}
		return cmp.Compare(b.A.ID, a.A.ID)
	})
	n, _ := r.listCap(first, 20)
	return out[:min(n, len(out))], nil
}

// usageHistory loads a node's or pod's recent samples; the loader serves
// them when the caller may see the object's metrics by the visibility rule
// (k8s.Access.CanSee), as the live usage is served.
func (r *Resolver) usageHistory(ctx context.Context, c *k8s.Cluster, kind, namespace, name string, since *time.Time) ([]*model.UsagePoint, error) {
	from := time.Now().Add(-time.Hour)
	if since != nil {
		from = *since
	}
	got, err := loaders.For(ctx).UsageHistory.Load(ctx, loaders.HistoryKey{Object: db.ObjectKey{Cluster: c.Name, Kind: kind, Namespace: namespace, Name: name}, Since: from.Unix()})
	if err != nil {
		return nil, err
	}
	out := make([]*model.UsagePoint, len(got))
	for i, p := range got {
		out[i] = &model.UsagePoint{Time: p.Time, CPUMillis: p.CPUMillis, MemoryBytes: p.MemoryBytes}
	}
	return out, nil
}

// archivedEvent decodes an archived event; nil when its JSON is unreadable.
func archivedEvent(c *k8s.Cluster, e db.ArchivedEvent) *model.Event {
	var ev corev1.Event
	if err := json.Unmarshal(e.Raw, &ev); err != nil {
		return nil
	}
	m := model.NewEvent(c, &ev)
	m.Archived = true
	return m
}

var eventOrders = map[k8s.OrderField]db.EventOrder{
	k8s.OrderLastSeen: db.EventsByLastSeen, k8s.OrderCreated: db.EventsByFirstSeen, k8s.OrderStatus: db.EventsByType,
	k8s.OrderName: db.EventsByName, k8s.OrderNamespace: db.EventsByNamespace, k8s.OrderCluster: db.EventsByCluster,
}

// events lists live events and, with a database, archived ones not live any
// more, as one list deduplicated by uid. The archive is read only as deep
// as the page needs: the first offset+first archived events in the list's
// order, merged with every live one, decide the page exactly.
func (r *Resolver) events(ctx context.Context, cs []*k8s.Cluster, in *model.EventFilter, f *k8s.Filter, p page) (*model.Connection[*model.Event], error) {
	if !r.Records.Enabled() {
		return listKinds(ctx, r, cs, gvks(k8s.GVKEvent), f, p, eventOrder, wrapEvent)
	}
	if err := r.Records.Available(); err != nil {
		// The live half still answers; the error says what is missing.
		graphql.AddError(ctx, fmt.Errorf("archived events left out: %w", err))
		return listKinds(ctx, r, cs, gvks(k8s.GVKEvent), f, p, eventOrder, wrapEvent)
	}
	off, n, err := r.window(p.After, p.First, p.Offset, p.Limit)
	if err != nil {
		return nil, err
	}
	order := eventOrder
	if p.OrderBy != nil {
		order = k8s.Order{Field: k8s.OrderField(p.OrderBy.Field), Desc: p.OrderBy.Direction != nil && *p.OrderBy.Direction == model.OrderDirectionDesc}
	}
	live, errs := k8s.ListAcross(ctx, cs, k8s.GVKEvent, f)
	for _, e := range errs {
		graphql.AddError(ctx, e)
	}
	exclude := map[string][]string{}
	for _, it := range live {
		exclude[it.Cluster.Name] = append(exclude[it.Cluster.Name], string(it.Obj.(*corev1.Event).UID))
	}
	q := db.EventQuery{NameContains: f.Name, Order: eventOrders[order.Field], Desc: order.Desc,
		Limit: off + n, ExcludeUIDs: exclude}
	if in != nil {
		q.Namespace, q.Type, q.Reason, q.Source = str(in.Namespace), str(in.Type), str(in.Reason), str(in.Source)
		q.InvolvedKind, q.InvolvedName, q.Since, q.Until = str(in.InvolvedKind), str(in.InvolvedName), timeOr(in.Since), timeOr(in.Until)
	}
	if f.Namespace != "" {
		q.Namespace = f.Namespace
	}
	archived, archivedTotal, err := r.Records.Events(ctx, cs, q)
	if err != nil {
		graphql.AddError(ctx, fmt.Errorf("archived events left out: %w", err))
	}
	byName := map[string]*k8s.Cluster{}
	for _, c := range cs {
		byName[c.Name] = c
	}
	isArchived := map[any]bool{}
	items := live
	for _, e := range archived {
		c := byName[e.Cluster]
		if m := archivedEvent(c, e); c != nil && m != nil {
			items = append(items, k8s.Item{Cluster: c, Obj: m.E})
			isArchived[m.E] = true
		}
	}
	pg, err := k8s.Paginate(items, order, k8s.PageArgs{First: n, Offset: off}, r.MaxPage)
	if err != nil {
		return nil, err
	}
	nodes := make([]*model.Event, len(pg.Items))
	for i, it := range pg.Items {
		nodes[i] = model.NewEvent(it.Cluster, it.Obj.(*corev1.Event))
		nodes[i].Archived = isArchived[it.Obj]
	}
	return offsetConn(nodes, int64(len(live))+archivedTotal, off), nil
}

// objectEvents lists the events about one object: live and archived.
func (r *Resolver) objectEvents(ctx context.Context, c *k8s.Cluster, obj any, in *model.EventFilter, p page) (*model.Connection[*model.Event], error) {
	f, err := eventFilter(in)
	if err != nil {
		return nil, err
	}
	id := c.IDOf(obj)
	kind, namespace, name := id.GVK.Kind, id.Namespace, id.Name
	match := f.Match
	f.Match = func(o any) bool {
		e := o.(*corev1.Event)
		return e.InvolvedObject.Kind == kind && e.InvolvedObject.Name == name &&
			e.InvolvedObject.Namespace == namespace && (match == nil || match(o))
	}
	if namespace != "" {
		f.Namespace = namespace
	}
	live, errs := c.List(ctx, k8s.GVKEvent, f)
	if errs != nil {
		graphql.AddError(ctx, errs)
	}
	items := live
	isArchived := map[any]bool{}
	if r.Records.Enabled() { // the loader keeps what the caller may not read out
		got, err := loaders.For(ctx).ArchivedEvents.Load(ctx, db.InvolvedRef{Cluster: c.Name, Kind: kind, Namespace: namespace, Name: name})
		if err != nil {
			graphql.AddError(ctx, fmt.Errorf("archived events left out: %w", err))
		}
		seen := map[string]bool{}
		for _, it := range live {
			seen[string(it.Obj.(*corev1.Event).UID)] = true
		}
		for _, e := range got {
			if seen[e.UID] {
				continue
			}
			if ev := archivedEvent(c, e); ev != nil && f.Matches(ev.E) {
				items = append(items, k8s.Item{Cluster: c, Obj: ev.E})
				isArchived[ev.E] = true
			}
		}
	}
	conn, err := paged(ctx, r, items, nil, p, eventOrder, wrapEvent)
	if err != nil {
		return nil, err
	}
	for _, n := range conn.Nodes {
		n.Archived = isArchived[any(n.E)]
	}
	return conn, nil
}
