package db

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/clustergraph/clustergraph/errkind"
)

// Sample is one namespace's usage at one collection tick.
type Sample struct {
	Cluster   string
	Namespace string
	// Time is the tick; samples of one namespace at one tick are kept once.
	Time         time.Time
	CPUMillis    int64
	MemoryBytes  int64
	StorageBytes int64
	// GPUMillis is the GPUs requested by running pods, times 1000.
	GPUMillis  int64
	PublicIPs  int64
	PrivateIPs int64
	TrafficIn  int64
	TrafficOut int64
	// FromRequests: CPU and memory are requests, the cluster served no metrics.
	FromRequests bool
}

// metricCols are the summed columns, in the same order everywhere.
var metricCols = []string{"cpu_millis", "memory_bytes", "storage_bytes", "gpu_millis", "public_ips", "private_ips", "traffic_in", "traffic_out", "from_requests"}

// WriteSamples stores samples and brings the rollups of every period they
// touch up to date. It is idempotent: a sample already stored (same
// cluster, namespace and tick) is ignored, and rollups are recomputed from
// the level below rather than incremented, so a replay never double counts.
func (s *Store) WriteSamples(ctx context.Context, samples []Sample) error {
	if len(samples) == 0 {
		return nil
	}
	rows := make([]meteringSample, len(samples))
	type periodKey struct {
		cluster string
		hour    int64
	}
	touched := map[periodKey]bool{}
	for i, x := range samples {
		rows[i] = meteringSample{Cluster: x.Cluster, Namespace: x.Namespace, Time: x.Time.Unix(), MeteringColumns: MeteringColumns{
			CPUMillis: x.CPUMillis, MemoryBytes: x.MemoryBytes, StorageBytes: x.StorageBytes,
			GPUMillis: x.GPUMillis, PublicIPs: x.PublicIPs, PrivateIPs: x.PrivateIPs,
			TrafficIn: x.TrafficIn, TrafficOut: x.TrafficOut, FromRequests: b2i(x.FromRequests),
		}}
		touched[periodKey{x.Cluster, Hour.Start(x.Time).Unix()}] = true
	}
	keys := make([]periodKey, 0, len(touched))
	for k := range touched {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].cluster != keys[j].cluster {
			return keys[i].cluster < keys[j].cluster
		}
		return keys[i].hour < keys[j].hour
	})
	err := s.gdb.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Clauses(clause.OnConflict{DoNothing: true}).CreateInBatches(rows, 500).Error; err != nil {
			return err
		}
		for _, k := range keys {
			if err := s.rollup(tx, k.cluster, time.Unix(k.hour, 0)); err != nil {
				return err
			}
		}
		return nil
	})
	return s.wrap("writing metering samples", err)
}

// rollup recomputes, for one cluster, the hour starting at hour from the
// samples, then the day holding it from its hours, the month from its
// days and the year from its months.
func (s *Store) rollup(tx *gorm.DB, cluster string, hour time.Time) error {
	src, srcTime := "metering_samples", "time"
	count := "COUNT(*)"
	for _, u := range Units {
		start := u.Start(hour)
		end := u.Next(start)
		sums := make([]string, len(metricCols))
		for i, c := range metricCols {
			sums[i] = fmt.Sprintf("SUM(%s)", c)
		}
		cols := append([]string{"samples"}, metricCols...)
		q := fmt.Sprintf("INSERT INTO %s (cluster, namespace, period_start, %s) SELECT cluster, namespace, ?, %s, %s FROM %s WHERE cluster = ? AND %s >= ? AND %s < ? GROUP BY cluster, namespace",
			u.table(), strings.Join(cols, ", "), count, strings.Join(sums, ", "), src, srcTime, srcTime) +
			s.upsert([]string{"cluster", "namespace", "period_start"}, cols)
		if err := tx.Exec(q, start.Unix(), cluster, start.Unix(), end.Unix()).Error; err != nil {
			return fmt.Errorf("rolling up %s: %w", u.table(), err)
		}
		src, srcTime, count = u.table(), "period_start", "SUM(samples)"
	}
	return nil
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// Record is a namespace's (or, with Namespace empty, a cluster's) usage
// over one period: averages of its samples, and traffic summed.
type Record struct {
	// Cluster, Namespace, Unit and PeriodStart are the record's identity.
	Cluster     string
	Namespace   string
	Unit        TimeUnit
	PeriodStart time.Time
	Samples     int64
	// Averages over the period's samples.
	CPUMillis    float64
	MemoryBytes  float64
	StorageBytes float64
	GPU          float64
	PublicIPs    float64
	PrivateIPs   float64
	// Totals over the period.
	TrafficIn  int64
	TrafficOut int64
	// RequestsSamples is how many samples took CPU and memory from requests.
	RequestsSamples int64
}

func (r *meteringRollup) record(u TimeUnit) Record {
	n := float64(max(r.Samples, 1))
	return Record{
		Cluster: r.Cluster, Namespace: r.Namespace, Unit: u,
		PeriodStart: time.Unix(r.PeriodStart, 0).UTC(), Samples: r.Samples,
		CPUMillis: float64(r.CPUMillis) / n, MemoryBytes: float64(r.MemoryBytes) / n,
		StorageBytes: float64(r.StorageBytes) / n, GPU: float64(r.GPUMillis) / n / 1000,
		PublicIPs: float64(r.PublicIPs) / n, PrivateIPs: float64(r.PrivateIPs) / n,
		TrafficIn: r.TrafficIn, TrafficOut: r.TrafficOut, RequestsSamples: r.FromRequests,
	}
}

// Scope is what a caller may read: per cluster, every namespace (All) or
// the listed ones. A cluster missing from the scope is not read at all.
type Scope map[string]ClusterScope

// ClusterScope is a caller's reach in one cluster.
type ClusterScope struct {
	All        bool
	Namespaces []string
}

// where renders the scope as a condition on cluster and namespace columns;
// false when it allows nothing.
func (sc Scope) where(tx *gorm.DB) *gorm.DB {
	if len(sc) == 0 {
		return tx.Where("1 = 0")
	}
	names := make([]string, 0, len(sc))
	for c := range sc {
		names = append(names, c)
	}
	sort.Strings(names)
	var conds []string
	var args []any
	for _, c := range names {
		cs := sc[c]
		switch {
		case cs.All:
			conds = append(conds, "(cluster = ?)")
			args = append(args, c)
		case len(cs.Namespaces) > 0:
			conds = append(conds, "(cluster = ? AND namespace IN ?)")
			args = append(args, c, cs.Namespaces)
		}
	}
	if len(conds) == 0 {
		return tx.Where("1 = 0")
	}
	return tx.Where(strings.Join(conds, " OR "), args...)
}

// SortField is a metering sort key.
type SortField string

// Metering sort keys.
const (
	SortTime       SortField = "meteringTime"
	SortCluster    SortField = "cluster"
	SortNamespace  SortField = "namespace"
	SortCPU        SortField = "cpu"
	SortMemory     SortField = "memory"
	SortStorage    SortField = "storage"
	SortGPU        SortField = "gpu"
	SortPublicIP   SortField = "publicIp"
	SortPrivateIP  SortField = "privateIp"
	SortTrafficIn  SortField = "trafficIn"
	SortTrafficOut SortField = "trafficOut"
)

var sortExpr = map[SortField]string{
	SortTime:       "period_start",
	SortCluster:    "cluster",
	SortNamespace:  "namespace",
	SortCPU:        "cpu_millis * 1.0 / samples",
	SortMemory:     "memory_bytes * 1.0 / samples",
	SortStorage:    "storage_bytes * 1.0 / samples",
	SortGPU:        "gpu_millis * 1.0 / samples",
	SortPublicIP:   "public_ips * 1.0 / samples",
	SortPrivateIP:  "private_ips * 1.0 / samples",
	SortTrafficIn:  "traffic_in",
	SortTrafficOut: "traffic_out",
}

// Sort is one sort key and its direction.
type Sort struct {
	Field SortField
	Desc  bool
}

// MeteringQuery selects metering records.
type MeteringQuery struct {
	Unit  TimeUnit
	Scope Scope
	// Namespaces narrows to these namespaces (any cluster in scope).
	Namespaces []string
	// Start and End bound the period start: Start <= start < End; zero is open.
	Start, End time.Time
	// Sort orders the records; default newest first, then cluster, namespace.
	Sort []Sort
	// Offset skips records; Limit caps them (0: no cap).
	Offset, Limit int
}

// Metering returns a page of records and how many match in all.
func (s *Store) Metering(ctx context.Context, q MeteringQuery) ([]Record, int64, error) {
	if q.Unit == "" {
		q.Unit = Day
	}
	if !q.Start.IsZero() && !q.End.IsZero() && !q.Start.Before(q.End) {
		return nil, 0, fmt.Errorf("%w: startTime %s is not before endTime %s", errkind.BadInput, q.Start.Format(time.RFC3339), q.End.Format(time.RFC3339))
	}
	tx := q.Scope.where(s.gdb.WithContext(ctx).Table(q.Unit.table()))
	if len(q.Namespaces) > 0 {
		tx = tx.Where("namespace IN ?", q.Namespaces)
	}
	if !q.Start.IsZero() {
		tx = tx.Where("period_start >= ?", q.Start.Unix())
	}
	if !q.End.IsZero() {
		tx = tx.Where("period_start < ?", q.End.Unix())
	}
	var total int64
	if err := tx.Session(&gorm.Session{}).Count(&total).Error; err != nil {
		return nil, 0, s.wrap("counting metering records", err)
	}
	order, err := orderBy(q.Sort)
	if err != nil {
		return nil, 0, err
	}
	limit := q.Limit
	if limit <= 0 {
		limit = -1 // gorm: no LIMIT
	}
	var rows []meteringRollup
	err = tx.Order(order).Offset(q.Offset).Limit(limit).Find(&rows).Error
	if err != nil {
		return nil, 0, s.wrap("reading metering records", err)
	}
	out := make([]Record, len(rows))
	for i := range rows {
		out[i] = rows[i].record(q.Unit)
	}
	return out, total, nil
}

func orderBy(keys []Sort) (string, error) {
	if len(keys) == 0 {
		keys = []Sort{{Field: SortTime, Desc: true}}
	}
	var parts []string
	seen := map[SortField]bool{}
	for _, k := range keys {
		e, ok := sortExpr[k.Field]
		if !ok {
			return "", fmt.Errorf("%w: cannot sort metering by %q", errkind.BadInput, k.Field)
		}
		seen[k.Field] = true
		if k.Desc {
			e += " DESC"
		}
		parts = append(parts, e)
	}
	// A total order, so offset pages never repeat or skip a record.
	for _, f := range []SortField{SortCluster, SortNamespace, SortTime} {
		if !seen[f] {
			parts = append(parts, sortExpr[f])
		}
	}
	return strings.Join(parts, ", ") + ", id", nil
}

// NamespaceKey names a namespace of a cluster.
type NamespaceKey struct{ Cluster, Namespace string }

// MeteringOf returns, for each namespace asked (one SQL query for all), its
// records of unit in [start, end), newest first, at most limit each.
func (s *Store) MeteringOf(ctx context.Context, unit TimeUnit, keys []NamespaceKey, start, end time.Time, limit int) (map[NamespaceKey][]Record, error) {
	out := map[NamespaceKey][]Record{}
	if len(keys) == 0 {
		return out, nil
	}
	byCluster := map[string][]string{}
	for _, k := range keys {
		byCluster[k.Cluster] = append(byCluster[k.Cluster], k.Namespace)
	}
	sc := Scope{}
	for c, ns := range byCluster {
		sc[c] = ClusterScope{Namespaces: ns}
	}
	tx := sc.where(s.gdb.WithContext(ctx).Table(unit.table()))
	if !start.IsZero() {
		tx = tx.Where("period_start >= ?", start.Unix())
	}
	if !end.IsZero() {
		tx = tx.Where("period_start < ?", end.Unix())
	}
	var rows []meteringRollup
	if err := tx.Order("cluster, namespace, period_start DESC").Find(&rows).Error; err != nil {
		return nil, s.wrap("reading metering records", err)
	}
	for i := range rows {
		k := NamespaceKey{rows[i].Cluster, rows[i].Namespace}
		if limit <= 0 || len(out[k]) < limit {
			out[k] = append(out[k], rows[i].record(unit))
		}
	}
	return out, nil
}

// ClusterMetering returns each cluster's totals per period (the sum of its
// namespaces' averages) in [start, end), newest first, at most limit each.
func (s *Store) ClusterMetering(ctx context.Context, unit TimeUnit, clusters []string, start, end time.Time, limit int) (map[string][]Record, error) {
	out := map[string][]Record{}
	if len(clusters) == 0 {
		return out, nil
	}
	avg := func(c string) string { return fmt.Sprintf("SUM(%s * 1.0 / samples)", c) }
	type row struct {
		Cluster                                          string
		PeriodStart                                      int64
		Samples                                          int64
		CPU, Memory, Storage, GPU, PublicIPs, PrivateIPs float64
		TrafficIn, TrafficOut, FromRequests              int64
	}
	tx := s.gdb.WithContext(ctx).Table(unit.table()).
		Select(strings.Join([]string{"cluster", "period_start", "MAX(samples) AS samples",
			avg("cpu_millis") + " AS cpu", avg("memory_bytes") + " AS memory", avg("storage_bytes") + " AS storage",
			avg("gpu_millis") + " AS gpu", avg("public_ips") + " AS public_ips", avg("private_ips") + " AS private_ips",
			"SUM(traffic_in) AS traffic_in", "SUM(traffic_out) AS traffic_out", "SUM(from_requests) AS from_requests"}, ", ")).
		Where("cluster IN ?", clusters)
	if !start.IsZero() {
		tx = tx.Where("period_start >= ?", start.Unix())
	}
	if !end.IsZero() {
		tx = tx.Where("period_start < ?", end.Unix())
	}
	var rows []row
	if err := tx.Group("cluster, period_start").Order("cluster, period_start DESC").Scan(&rows).Error; err != nil {
		return nil, s.wrap("reading cluster metering", err)
	}
	for _, r := range rows {
		if limit > 0 && len(out[r.Cluster]) >= limit {
			continue
		}
		out[r.Cluster] = append(out[r.Cluster], Record{
			Cluster: r.Cluster, Unit: unit, PeriodStart: time.Unix(r.PeriodStart, 0).UTC(), Samples: r.Samples,
			CPUMillis: r.CPU, MemoryBytes: r.Memory, StorageBytes: r.Storage, GPU: r.GPU / 1000,
			PublicIPs: r.PublicIPs, PrivateIPs: r.PrivateIPs, TrafficIn: r.TrafficIn, TrafficOut: r.TrafficOut,
			RequestsSamples: r.FromRequests,
		})
	}
	return out, nil
}
