package k8s

import (
	"context"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"

	"github.com/clustergraph/clustergraph/caller"
)

// Sorted lists: a console asks for the same first page (pods with a label,
// newest first, with the total) again and again, and on a large cluster
// each answer filters and ranks thousands of cached objects. When neither
// the filter nor the order can change without an object being added,
// deleted or relabelled, the sorted matches of a query are kept and a page
// is cut from them: binary search to the cursor, then a page of lookups.
//
// A resource's generation counts its adds, deletes and label changes; a
// kept list of an older generation is rebuilt. Status updates, the bulk of
// a cluster's changes, leave it valid: the page's objects are read afresh
// from the cache. A query whose list was outdated before it was used twice
// churns, and is answered without keeping a list until its generation holds
// still (so a busy cluster does not pay for sorting every match).

// maxSortedLists bounds the lists kept per cluster, and maxSortedKeys the
// keys in them all (a key is about 80 bytes: 40 MB at most); a list larger
// than that is used once and not kept.
const (
	maxSortedLists = 64
	maxSortedKeys  = 1 << 19
)

type sortedLists struct {
	gens map[resource]*atomic.Uint64 // fixed after newCaches

	mu    sync.Mutex
	lists map[sortedQuery]*sortedList
	clock uint64
	keys  int // in all lists

	maxLists, maxKeys int
}

// sortedQuery is what a kept list answers. Its filter holds only
// properties that never change (namespace, name, creation time) and
// labels, whose changes bump the generation.
type sortedQuery struct {
	r                           resource
	field                       OrderField
	namespace, name, labels     string
	createdAfter, createdBefore time.Time // zero: not set
}

type sortedList struct {
	gen  uint64
	used uint64 // clock of the last use, for eviction
	hits int
	// keys are the matches in ascending order; nil while the query waits
	// for its generation to hold still.
	keys []sortKey
	// tooLarge: the query matched more than the whole budget; it is
	// answered by filtering from then on.
	tooLarge bool
}

func newSortedLists() *sortedLists {
	return &sortedLists{gens: map[resource]*atomic.Uint64{}, lists: map[sortedQuery]*sortedList{},
		maxLists: maxSortedLists, maxKeys: maxSortedKeys}
}

// track counts r's membership changes from its informer's events.
func (s *sortedLists) track(r resource, inf cache.SharedIndexInformer) {
	g := &atomic.Uint64{}
	s.gens[r] = g
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { g.Add(1) },
		UpdateFunc: func(old, obj any) {
			if regrouped(old, obj) {
				g.Add(1)
			}
		},
		DeleteFunc: func(any) { g.Add(1) },
	})
}

// regrouped reports whether an update may move an object in or out of a
// kept list, or within it: its labels changed, or it is another object of
// the same name (deleted and created again while the watch was down, which
// a relist reports as an update), with its own UID and creation time.
func regrouped(old, obj any) bool {
	om, err1 := metaOf(old)
	nm, err2 := metaOf(obj)
	return err1 != nil || err2 != nil || om.GetUID() != nm.GetUID() ||
		!om.GetCreationTimestamp().Time.Equal(nm.GetCreationTimestamp().Time) ||
		!maps.Equal(om.GetLabels(), nm.GetLabels())
}

// sortable reports whether a query can be answered from a kept list, and
// its key: a filter of unchanging properties and labels, an order by
// unchanging keys.
func sortable(r resource, f *Filter, field OrderField) (sortedQuery, bool) {
	switch {
	case f.Status != "", f.Match != nil, f.Fields != nil && !f.Fields.Empty():
		return sortedQuery{}, false
	}
	switch field {
	case OrderCreated, OrderName, OrderNamespace, OrderCluster:
	default:
		return sortedQuery{}, false
	}
	q := sortedQuery{r: r, field: field, namespace: f.Namespace, name: f.Name}
	if f.Labels != nil {
		q.labels = f.Labels.String()
	}
	// The instant alone: no location or monotonic reading in the key.
	q.createdAfter, q.createdBefore = f.CreatedAfter.Round(0).UTC(), f.CreatedBefore.Round(0).UTC()
	return q, true
}

// window is one cluster's part of a page answered from a kept list.
type window struct {
	items  []Item // up to need matches after the cursor, fresh from the cache
	before int    // matches the cursor skips
	total  int    // every match
}

// sortedWindow returns up to need matches after the cursor, in the page's
// order, from a kept list; ok is false when the query must be answered by
// filtering the cache (not sortable, not all visible, not kept yet, or the
// cache moved under the list).
func (c *Cluster) sortedWindow(ctx context.Context, gvk schema.GroupVersionKind, f *Filter, order Order, after *sortKey, need int) (w window, ok bool) {
	r, known := resourceOfGVK[gvk]
	if !known || c.caches == nil {
		return w, false
	}
	s := c.caches.sorted
	gen := s.gens[r]
	if gen == nil {
		return w, false
	}
	q, ok := sortable(r, f, order.Field)
	if !ok {
		return w, false
	}
	if ready, warn := c.readable(); !ready || warn != nil || c.kindReadable(r) != nil {
		return w, false
	}
	// Everything the filter matches must be visible: what a subject may
	// not see is left out per request (see visibleGR).
	if !c.AccessFor(caller.From(ctx)).Allows("list", groupResource(r), f.Namespace, "") {
		return w, false
	}
	store := c.caches.store(r)
	g := gen.Load() // before reading the cache: a later change bumps it again
	keys := s.lookup(q, g)
	if keys == nil {
		if !s.wanted(q, g) {
			return w, false
		}
		items, err := c.List(ctx, gvk, f) // the same matches a filtering answer has
		if err != nil {
			return w, false
		}
		keys = s.build(q, g, items)
	}
	return cutWindow(c, store, f, keys, order, after, need)
}

// lookup returns the kept list of q at generation g, counting a hit.
func (s *sortedLists) lookup(q sortedQuery, g uint64) []sortKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.lists[q]
	if l == nil || l.gen != g || l.keys == nil {
		return nil
	}
	s.clock++
	l.used, l.hits = s.clock, l.hits+1
	return l.keys
}

// wanted decides whether q's list is worth building at generation g: not
// when its previous list went out of date unused (the resource churns);
// then the generation is noted, and a second request that finds it
// unchanged builds.
func (s *sortedLists) wanted(q sortedQuery, g uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.lists[q]
	switch {
	case l != nil && l.tooLarge:
		return false
	case l == nil || l.gen == g || l.hits > 0:
		return true
	}
	s.clock++
	s.keys -= len(l.keys)
	l.gen, l.used, l.keys = g, s.clock, nil
	return false
}

// build sorts the keys of q's matches and keeps them at generation g.
func (s *sortedLists) build(q sortedQuery, g uint64, matches []Item) []sortKey {
	keys := make([]sortKey, len(matches))
	for i, it := range matches {
		keys[i] = keyOf(it, q.field)
	}
	slices.SortFunc(keys, sortKey.compare)
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.lists[q]; old != nil {
		s.keys -= len(old.keys)
		delete(s.lists, q)
	}
	large := len(keys) > s.maxKeys
	for len(s.lists) > 0 && (len(s.lists) >= s.maxLists || !large && s.keys+len(keys) > s.maxKeys) {
		s.evict()
	}
	s.clock++
	if large {
		s.lists[q] = &sortedList{gen: g, used: s.clock, tooLarge: true}
		return keys
	}
	s.lists[q] = &sortedList{gen: g, used: s.clock, keys: keys}
	s.keys += len(keys)
	return keys
}

// evict drops the least recently used list. Called with mu held.
func (s *sortedLists) evict() {
	var oldest *sortedQuery
	var at uint64
	for q, l := range s.lists {
		if oldest == nil || l.used < at {
			oldest, at = &q, l.used
		}
	}
	if oldest != nil {
		s.keys -= len(s.lists[*oldest].keys)
		delete(s.lists, *oldest)
	}
}

// cutWindow reads up to need matches after the cursor from an ascending
// list of keys, walking it backwards for a descending order. Each object is
// read afresh; one that is gone or no longer matches means the cache moved
// past the list, and the query is answered by filtering instead.
func cutWindow(c *Cluster, store cache.Indexer, f *Filter, keys []sortKey, order Order, after *sortKey, need int) (window, bool) {
	w := window{total: len(keys)}
	// lo..hi: the keys after the cursor in the page's order.
	lo, hi := 0, len(keys)
	if after != nil {
		if order.Desc {
			hi, _ = slices.BinarySearchFunc(keys, *after, sortKey.compare) // keys below the cursor
			w.before = len(keys) - hi
		} else {
			i, found := slices.BinarySearchFunc(keys, *after, sortKey.compare)
			if found {
				i++
			}
			lo, w.before = i, i
		}
	}
	n := min(need, hi-lo)
	w.items = make([]Item, 0, n)
	for j := range n {
		i := lo + j
		if order.Desc {
			i = hi - 1 - j
		}
		obj, exists, err := store.GetByKey(keys[i].storeKey(order.Field))
		if err != nil || !exists || !f.Matches(obj) {
			return window{}, false
		}
		w.items = append(w.items, Item{Cluster: c, Obj: obj})
	}
	return w, true
}

// storeKey is the cache key (namespace/name) of the object a key was made
// from by keyOf.
func (k sortKey) storeKey(field OrderField) string {
	var ns, name string
	switch field {
	case OrderName:
		name, ns = k.s[0], k.s[1]
	case OrderNamespace:
		ns, name = k.s[0], k.s[1]
	case OrderCreated, OrderLastSeen:
		ns, name = k.s[2], k.s[3]
	default:
		ns, name = k.s[1], k.s[2]
	}
	if ns == "" {
		return name
	}
	return ns + "/" + name
}
