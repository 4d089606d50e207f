package k8s

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"

	"github.com/clustergraph/clustergraph/caller"
	"github.com/clustergraph/clustergraph/errkind"
)

// ChangeType says what happened to an object, or marks the stream.
type ChangeType string

// Change types. ADDED, MODIFIED and DELETED carry an object; RESYNC says the
// stream could not be resumed and the current state follows as ADDED
// changes; SYNCED says the current state (or the replay) is complete and
// live changes follow.
const (
	Added    ChangeType = "ADDED"
	Modified ChangeType = "MODIFIED"
	Deleted  ChangeType = "DELETED"
	Resync   ChangeType = "RESYNC"
	Synced   ChangeType = "SYNCED"
	// Ended is the last change of a stream that ended for a reason the
	// watcher must hear (Change.Err): lost access, a removed cluster.
	Ended ChangeType = "ENDED"
)

// Change is one event of a cluster's caches. Seq orders a cluster's
// changes; with Epoch it is the position a stream can resume from.
type Change struct {
	Type    ChangeType
	Cluster *Cluster
	Obj     any
	// Old is the previous state of a MODIFIED object: a watcher whose
	// filter or access it no longer passes sends it as DELETED.
	Old   any
	Epoch string
	Seq   uint64
	// Err says why the stream ended, on Ended.
	Err error
}

// hub fans the informer events of one cluster out to its subscribers. An
// event is recorded once (in a ring buffer, for resuming) and handed to
// every subscriber's bounded buffer without blocking: a subscriber that
// does not keep up is marked for a resync instead of slowing the informer.
type hub struct {
	epoch string

	mu      sync.Mutex
	seq     uint64
	ring    []Change   // the last len(ring) changes, oldest first once full
	ringRes []resource // the resource of each change in ring
	next    int
	full    bool
	// subs holds the subscribers by resource and namespace ("" for every
	// namespace): a change reaches only the subscribers of its namespace
	// and those of all, not every subscriber's buffer (an object's
	// namespace never changes).
	subs map[subKey]map[*subscriber]struct{}

	// deliveries counts changes handed to subscribers' buffers, overflows
	// subscribers found with a full buffer, resyncs RESYNC markers sent:
	// read by the metrics at scrape time.
	deliveries, overflows, resyncs atomic.Uint64
}

type subKey struct {
	r  resource
	ns string
}

// ringSize is how many recent changes per cluster a stream can resume over.
const ringSize = 8192

type subscriber struct {
	key subKey
	// ch holds pointers: one published change is shared by every
	// subscriber, and an idle subscriber's buffer costs 8 bytes a slot
	// rather than a whole Change (80 bytes; 20 KiB at the default 256).
	ch chan *Change
	// overflow is set (under hub.mu) when ch was full; the subscriber's
	// goroutine reads it after every change without taking the hub lock,
	// which the fan-out holds.
	overflow atomic.Bool
}

func newHub() *hub {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return &hub{epoch: hex.EncodeToString(b), ring: make([]Change, ringSize), ringRes: make([]resource, ringSize), subs: map[subKey]map[*subscriber]struct{}{}}
}

// handler returns the informer event handler of a resource.
func (h *hub) handler(c *Cluster, r resource) cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { h.publish(c, r, Added, obj) },
		UpdateFunc: func(old, obj any) {
			if om, err := metaOf(old); err == nil {
				if nm, err := metaOf(obj); err == nil && om.GetResourceVersion() == nm.GetResourceVersion() {
					return // a resync, not a change
				}
			}
			h.publishChange(c, r, Change{Type: Modified, Obj: obj, Old: old})
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			h.publish(c, r, Deleted, obj)
		},
	}
}

func (h *hub) publish(c *Cluster, r resource, t ChangeType, obj any) {
	h.publishChange(c, r, Change{Type: t, Obj: obj})
}

func (h *hub) publishChange(c *Cluster, r resource, ch Change) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq++
	ch.Cluster, ch.Epoch, ch.Seq = c, h.epoch, h.seq
	h.ring[h.next] = ch
	h.ringRes[h.next] = r
	h.next = (h.next + 1) % len(h.ring)
	if h.next == 0 {
		h.full = true
	}
	shared := &ch
	var delivered, overflowed uint64
	offer := func(subs map[*subscriber]struct{}) {
		for s := range subs {
			if s.overflow.Load() {
				continue
			}
			select {
			case s.ch <- shared:
				delivered++
			default:
				s.overflow.Store(true)
				overflowed++
			}
		}
	}
	offer(h.subs[subKey{r: r}])
	m, err := metaOf(ch.Obj)
	switch {
	case err != nil:
		// No namespace to go by: every subscriber of the resource decides.
		for k, subs := range h.subs {
			if k.r == r && k.ns != "" {
				offer(subs)
			}
		}
	case m.GetNamespace() != "":
		offer(h.subs[subKey{r: r, ns: m.GetNamespace()}])
	}
	if delivered > 0 {
		h.deliveries.Add(delivered)
	}
	if overflowed > 0 {
		h.overflows.Add(overflowed)
	}
}

func (h *hub) add(s *subscriber) {
	subs := h.subs[s.key]
	if subs == nil {
		subs = map[*subscriber]struct{}{}
		h.subs[s.key] = subs
	}
	subs[s] = struct{}{}
}

func (h *hub) remove(s *subscriber) {
	subs := h.subs[s.key]
	delete(subs, s)
	if len(subs) == 0 {
		delete(h.subs, s.key)
	}
}

// SubscribeOptions tune a subscription.
type SubscribeOptions struct {
	// Epoch and Seq resume after a change a previous stream delivered; an
	// unknown epoch or a change no longer held starts with a RESYNC.
	Epoch string
	Seq   uint64
	// Resume says Epoch and Seq are set.
	Resume bool
	// Buffer bounds the changes held for a slow reader (default 256).
	Buffer int
	// LiveOnly streams new changes only: no current state, no markers. A
	// reader that falls behind loses the changes it could not take.
	LiveOnly bool
	// Readable delivers what the visibility rule shows (see CanSee)
	// without asking for watch: for followers inside clustergraph (pod
	// logs follow their pods) where the caller asked for something else
	// than a watch.
	Readable bool
}

// Subscribe streams the changes of a kind that pass the filter and that the
// context's subject may see. The kind is a cached kind or any kind the
// apiserver serves, by kind or resource name (see resolveWatch); kinds that
// are not cached are watched through an informer started on demand and
// stopped with its last subscriber. The stream starts with the current state
// (ADDED changes, then SYNCED), or with a replay of what was missed since
// opts' position (then SYNCED), or with RESYNC and the current state when
// that position is gone. It ends, closing the channel, when ctx ends, when
// the subject loses every grant on the kind, or when the cluster is removed
// or replaced (in the last two cases the reason is sent on the error
// channel first).
func (c *Cluster) Subscribe(ctx context.Context, kind string, f *Filter, opts SubscribeOptions) (<-chan Change, <-chan error, error) {
	if ok, err := c.readable(); !ok {
		return nil, nil, err
	}
	r, gvr, err := c.resolveWatch(kind)
	if err != nil {
		return nil, nil, err
	}
	if gvr == nil {
		if err := c.kindReadable(r); err != nil {
			return nil, nil, err
		}
	}
	ns := ""
	if f != nil {
		ns = f.Namespace
	}
	gr := groupResource(r)
	if !c.maySubscribe(ctx, gr, gvr != nil, f, opts) {
		return nil, nil, &ClusterError{Cluster: c.Name, Err: errkind.Newf(errkind.Forbidden, "you may not read %s", gr.String())}
	}
	release := func() {}
	if gvr != nil {
		if release, err = c.acquireDynamic(*gvr); err != nil {
			return nil, nil, err
		}
	}
	if opts.Buffer <= 0 {
		opts.Buffer = 256
	}
	h := c.hub
	s := &subscriber{key: subKey{r: r, ns: ns}, ch: make(chan *Change, opts.Buffer)}

	// Register and take the starting point under the hub lock, so no change
	// falls between the replay (or snapshot) and the live stream.
	h.mu.Lock()
	var replay []Change
	resumed := opts.Resume && opts.Epoch == h.epoch && h.holds(opts.Seq)
	if resumed {
		replay = h.since(opts.Seq, r)
	}
	h.add(s)
	h.mu.Unlock()

	out := make(chan Change)
	errc := make(chan error, 1)
	go func() {
		defer close(out)
		defer release()
		defer func() {
			h.mu.Lock()
			h.remove(s)
			h.mu.Unlock()
		}()
		w := &watcher{c: c, ctx: ctx, subject: caller.From(ctx), r: r, f: f, out: out, readable: opts.Readable}
		switch {
		case opts.LiveOnly:
		case resumed:
			for _, ch := range replay {
				if !w.send(ch) {
					return
				}
			}
		case opts.Resume:
			if !w.marker(Resync) {
				return
			}
			fallthrough
		default:
			if !w.snapshot() {
				return
			}
		}
		if !opts.LiveOnly && !w.marker(Synced) {
			return
		}
		tick := time.NewTicker(2 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-c.ctx.Done():
				// The informers stopped: nothing will come any more.
				errc <- c.goneError()
				return
			case ch := <-s.ch:
				if !w.send(*ch) {
					return
				}
			case <-tick.C:
				// Every change already passes the subject's access; the end of
				// the stream for a lost grant is checked on the tick, not once
				// per change.
				if err := w.revoked(); err != nil {
					errc <- err
					return
				}
			}
			if s.overflow.Load() {
				// The reader fell behind: drop what is queued and start over
				// from the current state rather than lose a deletion.
				for len(s.ch) > 0 {
					<-s.ch
				}
				s.overflow.Store(false)
				if !opts.LiveOnly && (!w.marker(Resync) || !w.snapshot() || !w.marker(Synced)) {
					return
				}
			}
		}
	}()
	return out, errc, nil
}

// maySubscribe decides before any informer starts (an on-demand one lists
// with clustergraph's credentials) whether a subscription may: the subject
// could see some object of the kind (AnyOn: a get without resourceNames
// does not count), or it is a readable follower of one object, pinned by
// name, that the subject may get. With an authorizer fallback, grants RBAC
// does not show may exist in any namespace: the watch starts and every
// change passes the caller's access (an on-demand informer only when the
// authorizer allows the watch outright).
func (c *Cluster) maySubscribe(ctx context.Context, gr schema.GroupResource, onDemand bool, f *Filter, opts SubscribeOptions) bool {
	if c.AccessFor(caller.From(ctx)).AnyOn(gr) {
		return true
	}
	ns := ""
	if f != nil {
		ns = f.Namespace
	}
	if name := f.pinnedName(); opts.Readable && name != "" && c.allows(ctx, "get", gr, ns, name) {
		return true
	}
	return c.reviewer(ctx) != nil && (!onDemand || c.allows(ctx, "watch", gr, ns, ""))
}

// pinnedName is the one name a filter selects by an exact metadata.name
// field requirement, or "".
func (f *Filter) pinnedName() string {
	if f == nil || f.Fields == nil {
		return ""
	}
	name, _ := f.Fields.RequiresExactMatch("metadata.name")
	return name
}

// holds reports whether the ring still has every change after seq.
func (h *hub) holds(seq uint64) bool {
	oldest := uint64(1)
	if h.full {
		oldest = h.seq - uint64(len(h.ring)) + 1
	}
	return seq+1 >= oldest && seq <= h.seq
}

// since returns the recorded changes of a resource after seq, oldest first.
func (h *hub) since(seq uint64, r resource) []Change {
	var out []Change
	n := len(h.ring)
	start := 0
	if h.full {
		start = h.next
	}
	for i := 0; i < n; i++ {
		j := (start + i) % n
		ch := h.ring[j]
		if ch.Seq > seq && ch.Seq != 0 && h.ringRes[j] == r {
			out = append(out, ch)
		}
	}
	return out
}

// watcher delivers one subscription's changes.
type watcher struct {
	c   *Cluster
	ctx context.Context
	// subject is the context's, looked up once rather than per change,
	// and acc its access set of RBAC generation accGen (see access).
	subject *caller.Subject
	acc     *Access
	accGen  uint64
	r       resource
	f       *Filter
	out     chan<- Change
	// readable: deliver by get/list rights, not watch (SubscribeOptions).
	readable bool
	// last is the position of the last change seen, for markers.
	epoch string
	last  uint64
}

func (w *watcher) deliver(ch Change) bool {
	select {
	case w.out <- ch:
		return true
	case <-w.ctx.Done():
		return false
	}
}

// send delivers a change when it passes the filter and the subject may
// see the object. An object that stops passing (relabelled, its phase
// changed, its namespace's grant revoked) is sent as DELETED with its last
// state the watcher could see, as the apiserver's own watch does.
func (w *watcher) send(ch Change) bool {
	w.epoch, w.last = ch.Epoch, ch.Seq
	if w.passes(ch.Obj) {
		return w.deliver(ch)
	}
	if ch.Type == Modified && ch.Old != nil && w.passes(ch.Old) {
		return w.deliver(Change{Type: Deleted, Cluster: ch.Cluster, Obj: ch.Old, Epoch: ch.Epoch, Seq: ch.Seq})
	}
	return true
}

// passes reports whether the watcher delivers obj: it matches the filter,
// the visibility rule shows it (see the package doc: a watch enumerates
// like a list, so a get without resourceNames shows nothing here either),
// and, unless the watcher is readable, the subject may watch it (the verb
// the apiserver asks of a watch; by name where a rule names the object).
func (w *watcher) passes(obj any) bool {
	if !w.f.Matches(obj) {
		return false
	}
	m, err := metaOf(obj)
	if err != nil {
		return false
	}
	a := w.access()
	gr := groupResource(w.r)
	ns, name := m.GetNamespace(), m.GetName()
	if w.readable {
		return a.CanSee(gr, ns, name) || w.pinnedGet(a, ns, name) || w.reviewed("list", gr, ns, "")
	}
	if !a.CanSee(gr, ns, name) && !w.reviewed("list", gr, ns, "") {
		return false
	}
	return a.Allows("watch", gr, ns, "") || a.Allows("watch", gr, ns, name) || w.reviewed("watch", gr, ns, "")
}

// pinnedGet reports whether a readable follower pinned to the object's
// name may get it: following one object the caller named is a lookup by
// name (podLogs of one pod), which a get allows without a list.
func (w *watcher) pinnedGet(a *Access, namespace, name string) bool {
	if !w.readable || name == "" || w.f.pinnedName() != name {
		return false
	}
	gr := groupResource(w.r)
	return a.Allows("get", gr, namespace, name) || w.reviewed("get", gr, namespace, name)
}

// reviewed asks the cluster's authorizer, with --authz-fallback=sar, what
// RBAC refused: one question per namespace, answered once per subscription
// (the operation's reviewer remembers it), never one per object (so, as in
// visibleGR, a grant by name that only the authorizer gives stays hidden);
// name is set only for the one object a pinned follower may get.
func (w *watcher) reviewed(verb string, gr schema.GroupResource, namespace, name string) bool {
	r := w.c.reviewer(w.ctx)
	return r != nil && r.Review(w.ctx, w.c, []Question{question(verb, gr, requestNamespace(verb, gr, namespace, name), name)})[0]
}

// access is the subject's access set, asked of the cluster again only
// after an RBAC change: AccessFor builds the subject's key and takes the
// cluster's access lock, once per change and subscriber otherwise. The
// generation is read first, so a set is never older than its generation.
func (w *watcher) access() *Access {
	if gen := w.c.caches.rbacGen.Load(); w.acc == nil || gen != w.accGen {
		w.acc, w.accGen = w.c.AccessFor(w.subject), gen
	}
	return w.acc
}

func (w *watcher) marker(t ChangeType) bool {
	if t == Resync {
		w.c.hub.resyncs.Add(1)
		// The state follows: like it, RESYNC is no place to resume from.
		return w.deliver(Change{Type: t, Cluster: w.c})
	}
	h := w.c.hub
	h.mu.Lock()
	if w.epoch == "" {
		w.epoch, w.last = h.epoch, h.seq
	}
	h.mu.Unlock()
	return w.deliver(Change{Type: t, Cluster: w.c, Epoch: w.epoch, Seq: w.last})
}

// snapshot delivers the current state as ADDED changes. Their position is
// empty: a stream cut off inside the state cannot resume from there, and
// resuming from an empty position resyncs. SYNCED carries the real one.
func (w *watcher) snapshot() bool {
	h := w.c.hub
	h.mu.Lock()
	w.epoch, w.last = h.epoch, h.seq
	h.mu.Unlock()
	for _, o := range candidates(w.c.storeOf(w.r), w.f) {
		if w.passes(o) && !w.deliver(Change{Type: Added, Cluster: w.c, Obj: o}) {
			return false
		}
	}
	return true
}

// revoked returns errkind.Forbidden once the subject could see no object of the
// watched kind any more (a binding was deleted, say; see maySubscribe).
func (w *watcher) revoked() error {
	// With an authorizer fallback, grants RBAC does not show may exist:
	// the stream stays, and every change still passes the caller's access.
	a := w.access()
	ns := ""
	if w.f != nil {
		ns = w.f.Namespace
	}
	if a.AnyOn(groupResource(w.r)) || w.pinnedGet(a, ns, w.f.pinnedName()) || w.c.reviewer(w.ctx) != nil {
		return nil
	}
	return &ClusterError{Cluster: w.c.Name, Err: errkind.Newf(errkind.Forbidden, "you may no longer read %s", groupResource(w.r).String())}
}
