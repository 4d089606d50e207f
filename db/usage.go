package db

import (
	"context"
	"sort"
	"time"

	"gorm.io/gorm/clause"
)

// UsageSample is one node's or pod's usage at one tick.
type UsageSample struct {
	Cluster string
	// Kind is "node" or "pod".
	Kind        string
	Namespace   string
	Name        string
	Time        time.Time
	CPUMillis   int64
	MemoryBytes int64
}

// UsagePoint is one point of a usage history.
type UsagePoint struct {
	Time        time.Time
	CPUMillis   int64
	MemoryBytes int64
}

// ObjectKey names a node (Namespace empty) or pod of a cluster.
type ObjectKey struct{ Cluster, Kind, Namespace, Name string }

// WriteUsage stores node and pod usage samples; a sample already stored is
// ignored.
func (s *Store) WriteUsage(ctx context.Context, samples []UsageSample) error {
	if len(samples) == 0 {
		return nil
	}
	rows := make([]usageSample, len(samples))
	for i, x := range samples {
		rows[i] = usageSample{Cluster: x.Cluster, Kind: x.Kind, Namespace: x.Namespace, Name: x.Name,
			Time: x.Time.Unix(), CPUMillis: x.CPUMillis, MemoryBytes: x.MemoryBytes}
	}
	err := s.gdb.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).CreateInBatches(rows, 500).Error
	return s.wrap("writing usage samples", err)
}

// UsageHistory returns the samples of each object asked (one query per
// cluster and kind) taken at or after since, oldest first.
func (s *Store) UsageHistory(ctx context.Context, keys []ObjectKey, since time.Time) (map[ObjectKey][]UsagePoint, error) {
	out := map[ObjectKey][]UsagePoint{}
	type group struct{ cluster, kind string }
	names := map[group][]string{}
	for _, k := range keys {
		g := group{k.Cluster, k.Kind}
		names[g] = append(names[g], k.Name)
	}
	want := map[ObjectKey]bool{}
	for _, k := range keys {
		want[k] = true
	}
	groups := make([]group, 0, len(names))
	for g := range names {
		groups = append(groups, g)
	}
	sort.Slice(groups, func(i, j int) bool { return groups[i].cluster+groups[i].kind < groups[j].cluster+groups[j].kind })
	for _, g := range groups {
		var rows []usageSample
		err := s.gdb.WithContext(ctx).
			Where("cluster = ? AND kind = ? AND name IN ? AND time >= ?", g.cluster, g.kind, names[g], since.Unix()).
			Order("time").Find(&rows).Error
		if err != nil {
			return nil, s.wrap("reading usage history", err)
		}
		for _, r := range rows {
			k := ObjectKey{r.Cluster, r.Kind, r.Namespace, r.Name}
			if want[k] {
				out[k] = append(out[k], UsagePoint{Time: time.Unix(r.Time, 0).UTC(), CPUMillis: r.CPUMillis, MemoryBytes: r.MemoryBytes})
			}
		}
	}
	return out, nil
}
