// Package archive copies Kubernetes Events from the informer caches into
// the database as they arrive and change, so they outlive the apiserver's
// event TTL. It runs on one replica at a time (see
// lease.RunWhileLeader in k8s/lease).
package archive

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/clustergraph/clustergraph/caller"
	"github.com/clustergraph/clustergraph/db"
	"github.com/clustergraph/clustergraph/k8s"
)

var system = &caller.Subject{User: "clustergraph:event-archive", Unrestricted: true}

// MaxPending bounds the events held while the database is down.
const MaxPending = 100000

// Archiver sweeps the caches for new or changed events.
type Archiver struct {
	Registry *k8s.Registry
	// Store returns the database, or an error while it is unavailable.
	Store func() (*db.Store, error)
	// Interval between sweeps (default 2s).
	Interval time.Duration
	Log      *slog.Logger

	// seen is the resourceVersion archived per cluster and uid.
	seen map[string]map[string]string
	// pending holds events not yet stored, by cluster and uid.
	pending map[[2]string]db.ArchivedEvent
	dropped int
}

// Run sweeps until ctx ends.
func (a *Archiver) Run(ctx context.Context) {
	if a.Interval <= 0 {
		a.Interval = 2 * time.Second
	}
	a.Log.Info("event archive started", "interval", a.Interval)
	t := time.NewTicker(a.Interval)
	defer t.Stop()
	for {
		if _, err := a.Sweep(ctx); err != nil && ctx.Err() == nil {
			a.Log.Warn("event archive: database unavailable, events held in memory", "pending", len(a.pending), "err", err)
		}
		select {
		case <-ctx.Done():
			a.Log.Info("event archive stopped")
			return
		case <-t.C:
		}
	}
}

// Sweep archives what changed since the last sweep and says how many
// events it wrote.
func (a *Archiver) Sweep(ctx context.Context) (int, error) {
	if a.seen == nil {
		a.seen, a.pending = map[string]map[string]string{}, map[[2]string]db.ArchivedEvent{}
	}
	ctx2 := caller.With(ctx, system)
	live := map[string]bool{}
	for _, c := range a.Registry.Clusters() {
		live[c.Name] = true
		items, err := c.List(ctx2, k8s.GVKEvent, &k8s.Filter{})
		if err != nil && len(items) == 0 {
			continue
		}
		seen := a.seen[c.Name]
		if seen == nil {
			seen = map[string]string{}
			a.seen[c.Name] = seen
		}
		present := make(map[string]bool, len(items))
		for _, it := range items {
			e := it.Obj.(*corev1.Event)
			uid := string(e.UID)
			present[uid] = true
			if seen[uid] == e.ResourceVersion {
				continue
			}
			seen[uid] = e.ResourceVersion
			a.hold(c.Name, e)
		}
		for uid := range seen {
			if !present[uid] {
				delete(seen, uid)
			}
		}
	}
	for name := range a.seen {
		if !live[name] {
			delete(a.seen, name)
		}
	}
	if len(a.pending) == 0 {
		return 0, nil
	}
	store, err := a.Store()
	if err != nil {
		return 0, err
	}
	batch := make([]db.ArchivedEvent, 0, len(a.pending))
	for _, e := range a.pending {
		batch = append(batch, e)
	}
	if err := store.ArchiveEvents(ctx, batch); err != nil {
		return 0, err
	}
	clear(a.pending)
	return len(batch), nil
}

func (a *Archiver) hold(cluster string, e *corev1.Event) {
	k := [2]string{cluster, string(e.UID)}
	if _, ok := a.pending[k]; !ok && len(a.pending) >= MaxPending {
		a.dropped++
		if a.dropped == 1 || a.dropped%1000 == 0 {
			a.Log.Error("event archive: too many events waiting for the database; dropping", "dropped", a.dropped)
		}
		return
	}
	a.pending[k] = FromEvent(cluster, e)
}

// FromEvent is the archived form of an event.
func FromEvent(cluster string, e *corev1.Event) db.ArchivedEvent {
	cp := *e
	cp.APIVersion, cp.Kind = "v1", "Event"
	cp.ManagedFields = nil
	raw, _ := json.Marshal(&cp)
	first, last := e.FirstTimestamp.Time, k8s.LastSeen(e)
	if first.IsZero() {
		first = e.CreationTimestamp.Time
	}
	return db.ArchivedEvent{
		Cluster: cluster, UID: string(e.UID), Namespace: e.Namespace, Name: e.Name,
		InvolvedKind: e.InvolvedObject.Kind, InvolvedNamespace: e.InvolvedObject.Namespace, InvolvedName: e.InvolvedObject.Name,
		Type: e.Type, Reason: e.Reason, Source: k8s.EventSource(e), Message: e.Message, Count: int64(k8s.EventCount(e)),
		FirstSeen: first, LastSeen: last, Raw: raw,
	}
}
