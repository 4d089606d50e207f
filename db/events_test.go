package db_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/clustergraph/clustergraph/db"
	"github.com/clustergraph/clustergraph/errkind"
)

func TestEventArchive(t *testing.T) {
	eachDB(t, func(t *testing.T, s *db.Store) {
		ctx := context.Background()
		t0 := at("2026-11-20T10:00:00Z")
		ev := func(cluster, uid, ns, kind, name, typ, reason string, count int64, minute int) db.ArchivedEvent {
			return db.ArchivedEvent{Cluster: cluster, UID: uid, Namespace: ns, Name: name + "." + uid, InvolvedKind: kind,
				InvolvedNamespace: ns, InvolvedName: name, Type: typ, Reason: reason, Source: "kubelet", Count: count,
				FirstSeen: t0, LastSeen: t0.Add(time.Duration(minute) * time.Minute), Raw: []byte(fmt.Sprintf(`{"count":%d}`, count))}
		}
		in := []db.ArchivedEvent{
			ev("a", "u1", "shop", "Pod", "web-1", "Normal", "Scheduled", 1, 0),
			ev("a", "u2", "shop", "Pod", "web-1", "Warning", "BackOff", 3, 5),
			ev("a", "u3", "ops", "Pod", "db-0", "Normal", "Pulled", 1, 2),
			ev("b", "u1", "shop", "Deployment", "web", "Normal", "ScalingReplicaSet", 1, 1),
			// Names with LIKE's wildcards, in a cluster of their own.
			ev("c", "u7", "shop", "Pod", "pct%x", "Normal", "Pulled", 1, 0),
			ev("c", "u8", "shop", "Pod", "db_1", "Normal", "Pulled", 1, 1),
			ev("c", "u9", "shop", "Pod", "dbx1", "Normal", "Pulled", 1, 2),
		}
		if err := s.ArchiveEvents(ctx, in); err != nil {
			t.Fatal(err)
		}
		// A repeat raises the count; a stale copy arriving late does not
		// undo it.
		newer := ev("a", "u2", "shop", "Pod", "web-1", "Warning", "BackOff", 5, 9)
		stale := ev("a", "u2", "shop", "Pod", "web-1", "Warning", "BackOff", 4, 7)
		for _, batch := range [][]db.ArchivedEvent{{newer}, {stale}, {stale, newer}} {
			if err := s.ArchiveEvents(ctx, batch); err != nil {
				t.Fatal(err)
			}
		}
		got, total, err := s.Events(ctx, db.EventQuery{Scope: all("a", "b"), Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, e := range got {
			ids = append(ids, fmt.Sprintf("%s/%s:%d", e.Cluster, e.UID, e.Count))
		}
		if diff := cmp.Diff([]string{"a/u2:5", "a/u3:1", "b/u1:1", "a/u1:1"}, ids); diff != "" {
			t.Errorf("archive newest first (-want +got):\n%s", diff)
		}
		if total != 4 || string(got[0].Raw) != `{"count":5}` || !got[0].LastSeen.Equal(t0.Add(9*time.Minute)) {
			t.Errorf("total %d, first %+v", total, got[0])
		}
		for name, tc := range map[string]struct {
			q    db.EventQuery
			want []string
		}{
			"namespace scope":       {db.EventQuery{Scope: db.Scope{"a": {Namespaces: []string{"ops"}}}}, []string{"a/u3"}},
			"type":                  {db.EventQuery{Scope: all("a", "b"), Type: "Warning"}, []string{"a/u2"}},
			"reason":                {db.EventQuery{Scope: all("a", "b"), Reason: "Pulled"}, []string{"a/u3"}},
			"involved":              {db.EventQuery{Scope: all("a", "b"), InvolvedKind: "Pod", InvolvedName: "web-1"}, []string{"a/u2", "a/u1"}},
			"name contains":         {db.EventQuery{Scope: all("a", "b"), NameContains: "DB-0"}, []string{"a/u3"}},
			"like is escaped":       {db.EventQuery{Scope: all("a", "b"), NameContains: "%"}, nil},
			"underscore is literal": {db.EventQuery{Scope: all("c"), NameContains: "db_1"}, []string{"c/u8"}},
			"percent is literal":    {db.EventQuery{Scope: all("c"), NameContains: "t%x"}, []string{"c/u7"}},
			"time range":            {db.EventQuery{Scope: all("a", "b"), Since: t0.Add(time.Minute), Until: t0.Add(3 * time.Minute)}, []string{"a/u3", "b/u1"}},
			"exclude live":          {db.EventQuery{Scope: all("a", "b"), ExcludeUIDs: map[string][]string{"a": {"u2", "u3"}}}, []string{"b/u1", "a/u1"}},
			"by name asc":           {db.EventQuery{Scope: all("a"), Order: db.EventsByName}, []string{"a/u3", "a/u1", "a/u2"}},
		} {
			t.Run(name, func(t *testing.T) {
				tc.q.Limit = 10
				got, _, err := s.Events(ctx, tc.q)
				if err != nil {
					t.Fatal(err)
				}
				var ids []string
				for _, e := range got {
					ids = append(ids, e.Cluster+"/"+e.UID)
				}
				if diff := cmp.Diff(tc.want, ids); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
			})
		}
		if _, _, err := s.Events(ctx, db.EventQuery{Scope: all("a"), Since: t0, Until: t0}); !errors.Is(err, errkind.BadInput) {
			t.Errorf("empty range: %v, want errkind.BadInput", err)
		}
		of, err := s.EventsOf(ctx, []db.InvolvedRef{{"a", "Pod", "shop", "web-1"}, {"b", "Deployment", "shop", "web"}}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(of[db.InvolvedRef{"a", "Pod", "shop", "web-1"}]) != 2 || len(of[db.InvolvedRef{"b", "Deployment", "shop", "web"}]) != 1 {
			t.Errorf("EventsOf = %v", of)
		}
	})
}

func TestRetention(t *testing.T) {
	eachDB(t, func(t *testing.T, s *db.Store) {
		ctx := context.Background()
		now := at("2026-11-20T12:00:00Z")
		var samples []db.Sample
		for i := range 30 {
			samples = append(samples, db.Sample{Cluster: "a", Namespace: "shop", Time: now.Add(-time.Duration(i) * time.Hour), CPUMillis: 1})
		}
		if err := s.WriteSamples(ctx, samples); err != nil {
			t.Fatal(err)
		}
		if err := s.WriteUsage(ctx, []db.UsageSample{{Cluster: "a", Kind: "pod", Name: "old", Time: now.Add(-25 * time.Hour)}, {Cluster: "a", Kind: "pod", Name: "new", Time: now}}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RecordAlerts(ctx, []db.Alert{
			{Fingerprint: "old", StartsAt: now.Add(-48 * time.Hour), EndsAt: now.Add(-47 * time.Hour), Status: db.Resolved, Cluster: "a", Labels: map[string]string{"x": "y"}},
			{Fingerprint: "open", StartsAt: now.Add(-48 * time.Hour), Status: db.Firing, Cluster: "a"},
		}); err != nil {
			t.Fatal(err)
		}
		if err := s.ArchiveEvents(ctx, []db.ArchivedEvent{{Cluster: "a", UID: "old", LastSeen: now.Add(-3 * time.Hour)}, {Cluster: "a", UID: "new", LastSeen: now}}); err != nil {
			t.Fatal(err)
		}
		r := db.Retention{Samples: 10 * time.Hour, Hour: 20 * time.Hour, Usage: 24 * time.Hour, Alerts: 24 * time.Hour, Events: time.Hour}
		// Batches of 7 rows: the sweep must loop.
		gone, err := s.Purge(ctx, r, now, 7)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]int64{"metering_samples": 19, "metering_hour": 9, "usage_samples": 1, "events": 1, "alerts": 1}
		for k, v := range want {
			if gone[k] != v {
				t.Errorf("purged %d from %s, want %d (all: %v)", gone[k], k, v, gone)
			}
		}
		// Day rollups are kept (no Day retention set), and stay exact.
		recs, _, err := s.Metering(ctx, db.MeteringQuery{Unit: db.Day, Scope: all("a"), Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		for _, r := range recs {
			n += r.Samples
		}
		if n != 30 {
			t.Errorf("day rollups hold %d samples after purging raw samples, want 30", n)
		}
		if _, err := s.Purge(ctx, db.Retention{Samples: time.Minute}, now, 10); !errors.Is(err, errkind.BadInput) {
			t.Errorf("sample retention under 2h: %v, want errkind.BadInput", err)
		}
	})
}
