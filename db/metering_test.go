package db_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/clustergraph/clustergraph/db"
	"github.com/clustergraph/clustergraph/errkind"
)

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func all(clusters ...string) db.Scope {
	sc := db.Scope{}
	for _, c := range clusters {
		sc[c] = db.ClusterScope{All: true}
	}
	return sc
}

// The samples straddle an hour, a day, a month and a year boundary:
// 2025-12-31 23:58 and 23:59 fall in one hour, day, month and year;
// 2026-01-01 00:00 and 00:01 in the next of each.
var boundarySamples = []db.Sample{
	{Cluster: "a", Namespace: "shop", Time: at("2025-12-31T23:58:00Z"), CPUMillis: 100, MemoryBytes: 1000, StorageBytes: 10, GPUMillis: 1000, PublicIPs: 1, PrivateIPs: 4, TrafficIn: 7, TrafficOut: 1},
	{Cluster: "a", Namespace: "shop", Time: at("2025-12-31T23:59:00Z"), CPUMillis: 300, MemoryBytes: 3000, StorageBytes: 10, GPUMillis: 0, PublicIPs: 1, PrivateIPs: 2, TrafficIn: 5, TrafficOut: 2},
	{Cluster: "a", Namespace: "shop", Time: at("2026-01-01T00:00:00Z"), CPUMillis: 500, MemoryBytes: 5000, StorageBytes: 20, PublicIPs: 2, PrivateIPs: 2, TrafficIn: 1, TrafficOut: 3, FromRequests: true},
	{Cluster: "a", Namespace: "shop", Time: at("2026-01-01T00:01:00Z"), CPUMillis: 700, MemoryBytes: 7000, StorageBytes: 20, PublicIPs: 2, PrivateIPs: 2, TrafficIn: 2, TrafficOut: 4},
	{Cluster: "a", Namespace: "ops", Time: at("2026-01-01T00:00:00Z"), CPUMillis: 50, MemoryBytes: 500},
	{Cluster: "b", Namespace: "shop", Time: at("2026-01-01T00:00:00Z"), CPUMillis: 1, MemoryBytes: 2},
}

type rec struct {
	Cluster, Namespace string
	Start              time.Time
	Samples            int64
	CPU, Mem, Storage  float64
	GPU, Pub, Priv     float64
	In, Out, Req       int64
}

func recs(rs []db.Record) []rec {
	out := make([]rec, len(rs))
	for i, r := range rs {
		out[i] = rec{r.Cluster, r.Namespace, r.PeriodStart, r.Samples, r.CPUMillis, r.MemoryBytes, r.StorageBytes, r.GPU, r.PublicIPs, r.PrivateIPs, r.TrafficIn, r.TrafficOut, r.RequestsSamples}
	}
	return out
}

func TestMeteringRollupsAcrossBoundaries(t *testing.T) {
	eachDB(t, func(t *testing.T, s *db.Store) {
		ctx := context.Background()
		// Written in two halves and then all again: a restart or a spool
		// replay must not double count.
		for _, batch := range [][]db.Sample{boundarySamples[:3], boundarySamples[3:], boundarySamples} {
			if err := s.WriteSamples(ctx, batch); err != nil {
				t.Fatal(err)
			}
		}
		// Hand-computed: averages of the samples in each period, traffic summed.
		old := rec{"a", "shop", time.Time{}, 2, 200, 2000, 10, 0.5, 1, 3, 12, 3, 0}
		neu := rec{"a", "shop", time.Time{}, 2, 600, 6000, 20, 0, 2, 2, 3, 7, 1}
		ops := rec{"a", "ops", time.Time{}, 1, 50, 500, 0, 0, 0, 0, 0, 0, 0}
		for _, tc := range []struct {
			unit     db.TimeUnit
			old, neu time.Time
		}{
			{db.Hour, at("2025-12-31T23:00:00Z"), at("2026-01-01T00:00:00Z")},
			{db.Day, at("2025-12-31T00:00:00Z"), at("2026-01-01T00:00:00Z")},
			{db.Month, at("2025-12-01T00:00:00Z"), at("2026-01-01T00:00:00Z")},
			{db.Year, at("2025-01-01T00:00:00Z"), at("2026-01-01T00:00:00Z")},
		} {
			got, total, err := s.Metering(ctx, db.MeteringQuery{Unit: tc.unit, Scope: all("a"), Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			o, n, p := old, neu, ops
			o.Start, n.Start, p.Start = tc.old, tc.neu, tc.neu
			// Default order: newest first, then cluster, namespace.
			want := []rec{p, n, o}
			if diff := cmp.Diff(want, recs(got)); diff != "" {
				t.Errorf("%s records (-want +got):\n%s", tc.unit, diff)
			}
			if total != 3 {
				t.Errorf("%s total = %d, want 3", tc.unit, total)
			}
		}
	})
}

func TestMeteringQuery(t *testing.T) {
	eachDB(t, func(t *testing.T, s *db.Store) {
		ctx := context.Background()
		if err := s.WriteSamples(ctx, boundarySamples); err != nil {
			t.Fatal(err)
		}
		q := func(mq db.MeteringQuery) []string {
			t.Helper()
			if mq.Unit == "" {
				mq.Unit = db.Hour
			}
			if mq.Limit == 0 {
				mq.Limit = 10
			}
			got, _, err := s.Metering(ctx, mq)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, r := range got {
				out = append(out, r.Cluster+"/"+r.Namespace+"@"+r.PeriodStart.Format("15"))
			}
			return out
		}
		for name, tc := range map[string]struct {
			q    db.MeteringQuery
			want []string
		}{
			"scope limits clusters":    {db.MeteringQuery{Scope: all("b")}, []string{"b/shop@00"}},
			"scope limits namespaces":  {db.MeteringQuery{Scope: db.Scope{"a": {Namespaces: []string{"ops"}}, "b": {All: true}}}, []string{"a/ops@00", "b/shop@00"}},
			"empty scope sees nothing": {db.MeteringQuery{Scope: db.Scope{}}, nil},
			"namespace filter":         {db.MeteringQuery{Scope: all("a", "b"), Namespaces: []string{"shop"}}, []string{"a/shop@00", "b/shop@00", "a/shop@23"}},
			"time range":               {db.MeteringQuery{Scope: all("a"), Start: at("2025-12-31T23:00:00Z"), End: at("2026-01-01T00:00:00Z")}, []string{"a/shop@23"}},
			"sort by cpu desc":         {db.MeteringQuery{Scope: all("a", "b"), Sort: []db.Sort{{Field: db.SortCPU, Desc: true}}}, []string{"a/shop@00", "a/shop@23", "a/ops@00", "b/shop@00"}},
			"sort by namespace, time":  {db.MeteringQuery{Scope: all("a"), Sort: []db.Sort{{Field: db.SortNamespace}, {Field: db.SortTime}}}, []string{"a/ops@00", "a/shop@23", "a/shop@00"}},
			"offset and limit":         {db.MeteringQuery{Scope: all("a", "b"), Offset: 1, Limit: 2}, []string{"a/shop@00", "b/shop@00"}},
		} {
			t.Run(name, func(t *testing.T) {
				if diff := cmp.Diff(tc.want, q(tc.q)); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
			})
		}
		_, _, err := s.Metering(ctx, db.MeteringQuery{Unit: db.Day, Scope: all("a"), Start: at("2026-01-02T00:00:00Z"), End: at("2026-01-01T00:00:00Z")})
		if !errors.Is(err, errkind.BadInput) {
			t.Errorf("inverted range: err = %v, want errkind.BadInput", err)
		}
		_, _, err = s.Metering(ctx, db.MeteringQuery{Unit: db.Day, Scope: all("a"), Sort: []db.Sort{{Field: "id; DROP TABLE alerts"}}})
		if !errors.Is(err, errkind.BadInput) {
			t.Errorf("unknown sort: err = %v, want errkind.BadInput", err)
		}
		if _, err := db.ParseTimeUnit("week"); !errors.Is(err, errkind.BadInput) {
			t.Errorf("ParseTimeUnit(week) = %v, want errkind.BadInput", err)
		}

		// Batched per namespace (one query) and per cluster.
		of, err := s.MeteringOf(ctx, db.Day, []db.NamespaceKey{{"a", "shop"}, {"a", "ops"}, {"b", "none"}}, time.Time{}, time.Time{}, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(of[db.NamespaceKey{"a", "shop"}]) != 1 || of[db.NamespaceKey{"a", "shop"}][0].PeriodStart != at("2026-01-01T00:00:00Z") ||
			len(of[db.NamespaceKey{"a", "ops"}]) != 1 || len(of[db.NamespaceKey{"b", "none"}]) != 0 {
			t.Errorf("MeteringOf = %+v", of)
		}
		cl, err := s.ClusterMetering(ctx, db.Day, []string{"a"}, time.Time{}, time.Time{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		// 2026-01-01: shop averages 600 mCPU, ops 50: the cluster 650.
		if len(cl["a"]) != 2 || cl["a"][0].CPUMillis != 650 || cl["a"][1].CPUMillis != 200 {
			t.Errorf("ClusterMetering = %+v", cl["a"])
		}
	})
}

func TestUsageHistory(t *testing.T) {
	eachDB(t, func(t *testing.T, s *db.Store) {
		ctx := context.Background()
		t0 := at("2026-11-01T10:00:00Z")
		var in []db.UsageSample
		for i := range 3 {
			in = append(in,
				db.UsageSample{Cluster: "a", Kind: "node", Name: "n1", Time: t0.Add(time.Duration(i) * time.Minute), CPUMillis: int64(i), MemoryBytes: 10},
				db.UsageSample{Cluster: "a", Kind: "pod", Namespace: "shop", Name: "web", Time: t0.Add(time.Duration(i) * time.Minute), CPUMillis: 5, MemoryBytes: int64(i)})
		}
		for range 2 {
			if err := s.WriteUsage(ctx, in); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.UsageHistory(ctx, []db.ObjectKey{{"a", "node", "", "n1"}, {"a", "pod", "shop", "web"}, {"a", "pod", "ops", "web"}}, t0.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		want := map[db.ObjectKey][]db.UsagePoint{
			{"a", "node", "", "n1"}:     {{t0.Add(time.Minute), 1, 10}, {t0.Add(2 * time.Minute), 2, 10}},
			{"a", "pod", "shop", "web"}: {{t0.Add(time.Minute), 5, 1}, {t0.Add(2 * time.Minute), 5, 2}},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
}
