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

func TestAlertLifecycle(t *testing.T) {
	eachDB(t, func(t *testing.T, s *db.Store) {
		ctx := context.Background()
		start := at("2026-11-20T10:00:00Z")
		firing := db.Alert{Fingerprint: "f1", StartsAt: start, Status: db.Firing, Cluster: "a", Namespace: "shop",
			Name: "web-1", ObjectKind: "Pod", AlertName: "PodCrashLooping", Severity: "critical",
			Labels: map[string]string{"alertname": "PodCrashLooping", "pod": "web-1", "team": "shop"}, Message: "crash"}
		last, err := s.LastAlertChange(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// Posted twice: stored once, the second is no change.
		for i, wantChanged := range []int{1, 0} {
			got, err := s.RecordAlerts(ctx, []db.Alert{firing})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != wantChanged {
				t.Errorf("post %d: %d changed, want %d", i+1, len(got), wantChanged)
			}
		}
		resolved := firing
		resolved.Status, resolved.EndsAt = db.Resolved, start.Add(time.Hour)
		for i, wantChanged := range []int{1, 0} {
			got, err := s.RecordAlerts(ctx, []db.Alert{resolved})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != wantChanged {
				t.Errorf("resolve %d: %d changed, want %d", i+1, len(got), wantChanged)
			}
		}
		// A late firing resend after the resolution changes nothing.
		if got, _ := s.RecordAlerts(ctx, []db.Alert{firing}); len(got) != 0 {
			t.Errorf("late resend changed %d alerts", len(got))
		}
		list, total, err := s.Alerts(ctx, db.AlertQuery{Scope: all("a"), Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if total != 1 || len(list) != 1 {
			t.Fatalf("alerts: total %d, %d listed, want exactly one", total, len(list))
		}
		a := list[0]
		if a.Status != db.Resolved || !a.EndsAt.Equal(start.Add(time.Hour)) || !a.StartsAt.Equal(start) || a.Labels["team"] != "shop" {
			t.Errorf("stored alert = %+v", a)
		}
		// By id, in one query: what exists, nothing for what does not.
		byID, err := s.AlertsByID(ctx, []uint64{a.ID, a.ID + 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(byID) != 1 || byID[a.ID].Fingerprint != "f1" || byID[a.ID].Labels["team"] != "shop" || !byID[a.ID].EndsAt.Equal(a.EndsAt) {
			t.Errorf("alerts by id %d and %d: %+v", a.ID, a.ID+1000, byID)
		}
		// Subscribers see the two changes, in order.
		changes, upTo, err := s.AlertChanges(ctx, last, 100)
		if err != nil {
			t.Fatal(err)
		}
		var statuses []string
		for _, c := range changes {
			statuses = append(statuses, c.Status)
		}
		if diff := cmp.Diff([]string{db.Resolved, db.Resolved}, statuses); diff != "" {
			// Both change rows point at the one alert, read now: resolved.
			t.Errorf("changes (-want +got):\n%s", diff)
		}
		if more, _, _ := s.AlertChanges(ctx, upTo, 100); len(more) != 0 {
			t.Errorf("changes after the last: %d", len(more))
		}

		// The hypercloud form has no startsAt: it joins the open alert.
		hc := db.Alert{Fingerprint: "hc", Status: db.Firing, Cluster: "a", Namespace: "ops", Name: "db-0", ObjectKind: "Pod", AlertName: "CPU_noti", Message: "cpu 20%"}
		for range 2 {
			if _, err := s.RecordAlerts(ctx, []db.Alert{hc}); err != nil {
				t.Fatal(err)
			}
		}
		hc.Message = "cpu 90%"
		if got, _ := s.RecordAlerts(ctx, []db.Alert{hc}); len(got) != 1 {
			t.Errorf("changed message: %d changes, want 1", len(got))
		}
		_, total, _ = s.Alerts(ctx, db.AlertQuery{Scope: all("a"), AlertNames: []string{"CPU_noti"}, Limit: 10})
		if total != 1 {
			t.Errorf("hypercloud alert stored %d times, want once", total)
		}

		if _, err := s.RecordAlerts(ctx, []db.Alert{{Fingerprint: "x", Status: "maybe"}}); !errors.Is(err, errkind.BadInput) {
			t.Errorf("bad status: %v, want errkind.BadInput", err)
		}
		if _, err := s.RecordAlerts(ctx, []db.Alert{{Fingerprint: "x", Status: db.Firing, Cluster: "a", Namespace: "sh\x00op"}}); !errors.Is(err, errkind.BadInput) {
			t.Errorf("a NUL in the namespace: %v, want errkind.BadInput", err)
		}
	})
}

func TestAlertQuery(t *testing.T) {
	eachDB(t, func(t *testing.T, s *db.Store) {
		ctx := context.Background()
		t0 := at("2026-11-20T10:00:00Z")
		mk := func(fp string, minute int, cluster, ns, kind, name, alertname, sev, source string, labels map[string]string) db.Alert {
			return db.Alert{Fingerprint: fp, StartsAt: t0.Add(time.Duration(minute) * time.Minute), Status: db.Firing, Cluster: cluster, Namespace: ns,
				ObjectKind: kind, Name: name, AlertName: alertname, Severity: sev, Source: source, Module: "m-" + source, Type: "t-" + sev, Labels: labels}
		}
		in := []db.Alert{
			mk("1", 0, "a", "shop", "Pod", "web-1", "Crash", "critical", "prom", map[string]string{"team": "shop", "tier": "web"}),
			mk("2", 1, "a", "shop", "Deployment", "web", "Replicas", "warning", "prom", map[string]string{"team": "shop"}),
			mk("3", 2, "a", "ops", "Pod", "db-0", "Crash", "critical", "bcs", map[string]string{"team": "ops"}),
			mk("4", 3, "a", "", "Node", "n1", "NodeDown", "critical", "prom", nil),
			mk("5", 4, "b", "shop", "Pod", "web-1", "Crash", "warning", "prom", map[string]string{"tier": "web"}),
		}
		if _, err := s.RecordAlerts(ctx, in); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RecordAlerts(ctx, []db.Alert{{Fingerprint: "2", StartsAt: in[1].StartsAt, Status: db.Resolved}}); err != nil {
			t.Fatal(err)
		}
		for name, tc := range map[string]struct {
			q    db.AlertQuery
			want []string
		}{
			"everything newest first":       {db.AlertQuery{Scope: all("a", "b")}, []string{"5", "4", "3", "2", "1"}},
			"oldest first":                  {db.AlertQuery{Scope: all("a"), Ascending: true}, []string{"1", "2", "3", "4"}},
			"namespace scope hides cluster": {db.AlertQuery{Scope: db.Scope{"a": {Namespaces: []string{"shop"}}}}, []string{"2", "1"}},
			"namespace":                     {db.AlertQuery{Scope: all("a", "b"), Namespaces: []string{"shop"}}, []string{"5", "2", "1"}},
			"name":                          {db.AlertQuery{Scope: all("a", "b"), Names: []string{"web-1"}}, []string{"5", "1"}},
			"alert name":                    {db.AlertQuery{Scope: all("a", "b"), AlertNames: []string{"Crash"}}, []string{"5", "3", "1"}},
			"severity":                      {db.AlertQuery{Scope: all("a", "b"), Severities: []string{"warning"}}, []string{"5", "2"}},
			"status":                        {db.AlertQuery{Scope: all("a", "b"), Statuses: []string{db.Resolved}}, []string{"2"}},
			"source":                        {db.AlertQuery{Scope: all("a", "b"), Sources: []string{"bcs"}}, []string{"3"}},
			"module":                        {db.AlertQuery{Scope: all("a", "b"), Modules: []string{"m-bcs"}}, []string{"3"}},
			"type":                          {db.AlertQuery{Scope: all("a", "b"), Types: []string{"t-warning"}}, []string{"5", "2"}},
			"time range":                    {db.AlertQuery{Scope: all("a", "b"), Start: t0.Add(time.Minute), End: t0.Add(3 * time.Minute)}, []string{"3", "2"}},
			"label equals":                  {db.AlertQuery{Scope: all("a", "b"), Labels: []db.LabelRequirement{{Key: "team", Op: "=", Values: []string{"shop"}}}}, []string{"2", "1"}},
			"label in and exists":           {db.AlertQuery{Scope: all("a", "b"), Labels: []db.LabelRequirement{{Key: "team", Op: "in", Values: []string{"shop", "ops"}}, {Key: "tier", Op: "exists"}}}, []string{"1"}},
			"label not equals":              {db.AlertQuery{Scope: all("a", "b"), Labels: []db.LabelRequirement{{Key: "team", Op: "!=", Values: []string{"shop"}}}}, []string{"5", "4", "3"}},
			"label absent":                  {db.AlertQuery{Scope: all("a", "b"), Labels: []db.LabelRequirement{{Key: "team", Op: "!"}}}, []string{"5", "4"}},
			"paging":                        {db.AlertQuery{Scope: all("a", "b"), Offset: 1, Limit: 2}, []string{"4", "3"}},
		} {
			t.Run(name, func(t *testing.T) {
				if tc.q.Limit == 0 {
					tc.q.Limit = 100
				}
				got, total, err := s.Alerts(ctx, tc.q)
				if err != nil {
					t.Fatal(err)
				}
				var fps []string
				for _, a := range got {
					fps = append(fps, a.Fingerprint)
				}
				if diff := cmp.Diff(tc.want, fps); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
				if tc.q.Offset == 0 && int(total) != len(tc.want) {
					t.Errorf("total %d, want %d", total, len(tc.want))
				}
			})
		}
		of, err := s.AlertsOf(ctx, []db.AlertRef{{"a", "Pod", "shop", "web-1"}, {"a", "Namespace", "", "shop"}, {"a", "Node", "", "n1"}, {"b", "Pod", "shop", "web-1"}}, true, 0)
		if err != nil {
			t.Fatal(err)
		}
		count := map[db.AlertRef]int{}
		for k, v := range of {
			count[k] = len(v)
		}
		want := map[db.AlertRef]int{{"a", "Pod", "shop", "web-1"}: 1, {"a", "Namespace", "", "shop"}: 1, {"a", "Node", "", "n1"}: 1, {"b", "Pod", "shop", "web-1"}: 1}
		if diff := cmp.Diff(want, count); diff != "" {
			t.Errorf("AlertsOf open alerts (-want +got):\n%s", diff)
		}
	})
}
