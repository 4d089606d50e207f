package loaders

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/clustergraph/clustergraph/db"
	"github.com/clustergraph/clustergraph/errkind"
	"github.com/clustergraph/clustergraph/k8s"
)

// MeteringKey asks for a namespace's metering records.
type MeteringKey struct {
	Namespace  db.NamespaceKey
	Unit       db.TimeUnit
	Start, End int64 // Unix seconds; 0 is open
	Limit      int
}

// AlertsKey asks for an object's alerts.
type AlertsKey struct {
	Ref      db.AlertRef
	OnlyOpen bool
	Status   string // "" for any
	Limit    int
}

// HistoryKey asks for a node's or pod's recent usage.
type HistoryKey struct {
	Object db.ObjectKey
	Since  int64
}

// RecordKey names one stored record as its global id does: where it is,
// which decides who may read it, and its key (an alert's id, a metering
// record's period start in Unix seconds with Unit).
type RecordKey struct {
	Cluster, Namespace string
	Unit               db.TimeUnit
	Key                uint64
}

// storedLoaders are the database loaders: one SQL query per batch and
// argument set, never one per object.
type storedLoaders struct {
	// Metering loads namespaces' metering records.
	Metering *Loader[MeteringKey, []db.Record]
	// Alerts loads objects' alerts.
	Alerts *Loader[AlertsKey, []db.Alert]
	// ArchivedEvents loads objects' archived events.
	ArchivedEvents *Loader[db.InvolvedRef, []db.ArchivedEvent]
	// UsageHistory loads nodes' and pods' usage samples.
	UsageHistory *Loader[HistoryKey, []db.UsagePoint]

	// By global id (node(id:)): nil when the record does not exist or is
	// not where its key says; Forbidden, before the database is asked, when
	// the caller may not read records there.

	// Alert loads alerts by id.
	Alert *Loader[RecordKey, *db.Alert]
	// MeteringRecord loads metering records by period: a namespace's, or a
	// cluster's totals (no namespace).
	MeteringRecord *Loader[RecordKey, *db.Record]
}

func newStored(cfg Config) storedLoaders {
	return storedLoaders{
		Metering: NewLoader(cfg.Wait, cfg.MaxBatch, grouped(cfg,
			func(k MeteringKey) MeteringKey { k.Namespace = db.NamespaceKey{}; return k },
			func(ctx context.Context, reg *k8s.Registry, k MeteringKey) bool {
				return mayListIn(ctx, reg, k.Namespace.Cluster, k.Namespace.Namespace, podsGR)
			},
			func(ctx context.Context, s *db.Store, g MeteringKey, keys []MeteringKey) (map[MeteringKey][]db.Record, error) {
				ns := make([]db.NamespaceKey, len(keys))
				for i, k := range keys {
					ns[i] = k.Namespace
				}
				got, err := s.MeteringOf(ctx, g.Unit, ns, unixOrZero(g.Start), unixOrZero(g.End), g.Limit)
				out := map[MeteringKey][]db.Record{}
				for _, k := range keys {
					out[k] = got[k.Namespace]
				}
				return out, err
			})),
		Alerts: NewLoader(cfg.Wait, cfg.MaxBatch, grouped(cfg,
			func(k AlertsKey) AlertsKey { k.Ref = db.AlertRef{}; return k },
			func(ctx context.Context, reg *k8s.Registry, k AlertsKey) bool {
				return mayListIn(ctx, reg, k.Ref.Cluster, k.Ref.Namespace, eventsGR)
			},
			func(ctx context.Context, s *db.Store, g AlertsKey, keys []AlertsKey) (map[AlertsKey][]db.Alert, error) {
				refs := make([]db.AlertRef, len(keys))
				for i, k := range keys {
					refs[i] = k.Ref
				}
				got, err := s.AlertsOf(ctx, refs, g.OnlyOpen, 0)
				out := map[AlertsKey][]db.Alert{}
				for _, k := range keys {
					for _, a := range got[k.Ref] {
						if (k.Status == "" || a.Status == k.Status) && (k.Limit <= 0 || len(out[k]) < k.Limit) {
							out[k] = append(out[k], a)
						}
					}
				}
				return out, err
			})),
		ArchivedEvents: NewLoader(cfg.Wait, cfg.MaxBatch, grouped(cfg,
			func(db.InvolvedRef) db.InvolvedRef { return db.InvolvedRef{} },
			func(ctx context.Context, reg *k8s.Registry, k db.InvolvedRef) bool {
				return mayListIn(ctx, reg, k.Cluster, k.Namespace, eventsGR)
			},
			func(ctx context.Context, s *db.Store, _ db.InvolvedRef, keys []db.InvolvedRef) (map[db.InvolvedRef][]db.ArchivedEvent, error) {
				return s.EventsOf(ctx, keys, 0)
			})),
		UsageHistory: NewLoader(cfg.Wait, cfg.MaxBatch, grouped(cfg,
			func(k HistoryKey) HistoryKey { return HistoryKey{Since: k.Since} },
			func(ctx context.Context, reg *k8s.Registry, k HistoryKey) bool {
				return maySeeMetrics(ctx, reg, k.Object.Cluster, k.Object.Kind, k.Object.Namespace, k.Object.Name)
			},
			func(ctx context.Context, s *db.Store, g HistoryKey, keys []HistoryKey) (map[HistoryKey][]db.UsagePoint, error) {
				objs := make([]db.ObjectKey, len(keys))
				for i, k := range keys {
					objs[i] = k.Object
				}
				got, err := s.UsageHistory(ctx, objs, time.Unix(g.Since, 0))
				out := map[HistoryKey][]db.UsagePoint{}
				for _, k := range keys {
					out[k] = got[k.Object]
				}
				return out, err
			})),
		Alert: NewLoader(cfg.Wait, cfg.MaxBatch, batched(cfg,
			func(RecordKey) RecordKey { return RecordKey{} },
			func(ctx context.Context, reg *k8s.Registry, k RecordKey) error {
				return mayReadRecords(ctx, reg, k, eventsGR, "alerts")
			},
			func(ctx context.Context, s *db.Store, _ RecordKey, keys []RecordKey) (map[RecordKey]*db.Alert, error) {
				ids := make([]uint64, len(keys))
				for i, k := range keys {
					ids[i] = k.Key
				}
				got, err := s.AlertsByID(ctx, ids)
				out := map[RecordKey]*db.Alert{}
				for _, k := range keys {
					if a, ok := got[k.Key]; ok && a.Cluster == k.Cluster && a.Namespace == k.Namespace {
						out[k] = &a
					}
				}
				return out, err
			})),
		MeteringRecord: NewLoader(cfg.Wait, cfg.MaxBatch, batched(cfg,
			// One query per period, for namespaces' records ("*") or for
			// clusters' totals ("").
			func(k RecordKey) RecordKey {
				g := RecordKey{Unit: k.Unit, Key: k.Key}
				if k.Namespace != "" {
					g.Namespace = "*"
				}
				return g
			},
			func(ctx context.Context, reg *k8s.Registry, k RecordKey) error {
				return mayReadRecords(ctx, reg, k, podsGR, "metering")
			},
			func(ctx context.Context, s *db.Store, g RecordKey, keys []RecordKey) (map[RecordKey]*db.Record, error) {
				start := time.Unix(int64(g.Key), 0)
				end := start.Add(time.Second)
				out := map[RecordKey]*db.Record{}
				if g.Namespace == "" {
					clusters := make([]string, len(keys))
					for i, k := range keys {
						clusters[i] = k.Cluster
					}
					got, err := s.ClusterMetering(ctx, g.Unit, clusters, start, end, 1)
					for _, k := range keys {
						if rs := got[k.Cluster]; len(rs) > 0 {
							out[k] = &rs[0]
						}
					}
					return out, err
				}
				ns := make([]db.NamespaceKey, len(keys))
				for i, k := range keys {
					ns[i] = db.NamespaceKey{Cluster: k.Cluster, Namespace: k.Namespace}
				}
				got, err := s.MeteringOf(ctx, g.Unit, ns, start, end, 1)
				for i, k := range keys {
					if rs := got[ns[i]]; len(rs) > 0 {
						out[k] = &rs[0]
					}
				}
				return out, err
			})),
	}
}

// mayReadRecords is the by-id loaders' check: the records of k's place
// (namespace, or cluster-wide for a cluster's own) open with list on gr
// there. An unknown cluster is NotFound.
func mayReadRecords(ctx context.Context, reg *k8s.Registry, k RecordKey, gr schema.GroupResource, what string) error {
	if reg == nil {
		return errLeftOut
	}
	c, err := reg.Cluster(k.Cluster)
	if err != nil {
		return err
	}
	if !mayList(ctx, c, gr, k.Namespace) {
		return fmt.Errorf("%w: reading %s %s of %s needs list on %s there", errkind.Forbidden, what, where(k.Namespace), c.Name, gr.Resource)
	}
	return nil
}

// errLeftOut is a check's answer for a key whose value is left empty, with
// no error: what the caller may not read in a list is not there.
var errLeftOut = errors.New("left out")

// grouped makes a batch function that leaves out the keys the caller may
// not read (their value is empty, and the database never hears of them),
// splits the rest by the arguments keys share (group strips what differs
// per object) and answers each group with one database call. Without a
// database every key gets its error.
func grouped[K comparable, V any](cfg Config, group func(K) K, may func(ctx context.Context, reg *k8s.Registry, k K) bool, fetch func(ctx context.Context, s *db.Store, g K, keys []K) (map[K]V, error)) func(context.Context, []K) ([]V, []error) {
	return batched(cfg, group, func(ctx context.Context, reg *k8s.Registry, k K) error {
		if !may(ctx, reg, k) {
			return errLeftOut
		}
		return nil
	}, fetch)
}

// batched is grouped with a check that says why a key is refused: its
// error is the key's (errLeftOut: an empty value and no error).
func batched[K comparable, V any](cfg Config, group func(K) K, check func(ctx context.Context, reg *k8s.Registry, k K) error, fetch func(ctx context.Context, s *db.Store, g K, keys []K) (map[K]V, error)) func(context.Context, []K) ([]V, []error) {
	return func(ctx context.Context, keys []K) ([]V, []error) {
		vals := make([]V, len(keys))
		errs := make([]error, len(keys))
		s, err := cfg.Store.Store()
		if err != nil {
			for i := range errs {
				errs[i] = err
			}
			return vals, errs
		}
		allowed := make([]bool, len(keys))
		groups := map[K][]K{}
		var order []K
		for i, k := range keys {
			if err := check(ctx, cfg.Registry, k); err != nil {
				if !errors.Is(err, errLeftOut) {
					errs[i] = err
				}
				continue
			}
			allowed[i] = true
			g := group(k)
			if _, ok := groups[g]; !ok {
				order = append(order, g)
			}
			groups[g] = append(groups[g], k)
		}
		got := map[K]V{}
		failed := map[K]error{}
		for _, g := range order {
			m, err := fetch(ctx, s, g, groups[g])
			if err != nil {
				failed[g] = err
				continue
			}
			for k, v := range m {
				got[k] = v
			}
		}
		for i, k := range keys {
			if allowed[i] {
				vals[i], errs[i] = got[k], failed[group(k)]
			}
		}
		return vals, errs
	}
}

func unixOrZero(s int64) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(s, 0)
}
