package alerting

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/clustergraph/clustergraph/db"
)

func TestObjectOf(t *testing.T) {
	for _, tc := range []struct {
		labels     map[string]string
		kind, name string
	}{
		{map[string]string{"pod": "web-1", "deployment": "web", "namespace": "shop"}, "Pod", "web-1"},
		{map[string]string{"deployment": "web", "namespace": "shop"}, "Deployment", "web"},
		{map[string]string{"statefulset": "db", "namespace": "data"}, "StatefulSet", "db"},
		{map[string]string{"job_name": "backup", "namespace": "ops"}, "Job", "backup"},
		// Prometheus' own job label without a namespace is a scrape job, not a Job.
		{map[string]string{"job": "node-exporter", "node": "n1"}, "Node", "n1"},
		{map[string]string{"node": "n1"}, "Node", "n1"},
		{map[string]string{"namespace": "shop"}, "Namespace", "shop"},
		{map[string]string{"alertname": "Watchdog"}, "", ""},
	} {
		kind, name := objectOf(tc.labels)
		if kind != tc.kind || name != tc.name {
			t.Errorf("objectOf(%v) = %s %s, want %s %s", tc.labels, kind, name, tc.kind, tc.name)
		}
	}
}

func TestParse(t *testing.T) {
	start := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	got, err := Parse([]byte(`{"version":"4","status":"firing","alerts":[
		{"status":"firing","labels":{"alertname":"A","pod":"p","namespace":"shop","severity":"warning"},"annotations":{"description":"d"},"startsAt":"2026-11-20T10:00:00Z","endsAt":"0001-01-01T00:00:00Z","fingerprint":"f1"},
		{"status":"resolved","labels":{"alertname":"B","cluster":"east"},"annotations":{"summary":"s"},"startsAt":"2026-11-20T10:00:00Z","endsAt":"2026-11-20T11:00:00Z"}]}`), "only")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d alerts", len(got))
	}
	want0 := db.Alert{Fingerprint: "f1", StartsAt: start, Status: db.Firing, Cluster: "only", Namespace: "shop", Name: "p", ObjectKind: "Pod",
		AlertName: "A", Severity: "warning", Source: "alertmanager", Message: "d",
		Labels: map[string]string{"alertname": "A", "pod": "p", "namespace": "shop", "severity": "warning"}, Annotations: map[string]string{"description": "d"}}
	if diff := cmp.Diff(want0, got[0]); diff != "" {
		t.Errorf("firing alert (-want +got):\n%s", diff)
	}
	if got[1].Cluster != "east" || got[1].Status != db.Resolved || !got[1].EndsAt.Equal(start.Add(time.Hour)) || got[1].Fingerprint == "" || got[1].Message != "s" {
		t.Errorf("resolved alert %+v", got[1])
	}

	hc, err := Parse([]byte(` [{"name":"pod-1","alert":"CPU_noti","namespace":"default","message":"cpu 20%"}]`), "c")
	if err != nil || len(hc) != 1 || hc[0].ObjectKind != "Pod" || hc[0].Source != "hypercloud" || hc[0].Status != db.Firing || !hc[0].StartsAt.IsZero() {
		t.Errorf("hypercloud form: %+v %v", hc, err)
	}
	again, _ := Parse([]byte(`[{"name":"pod-1","alert":"CPU_noti","namespace":"default","message":"cpu 90%"}]`), "c")
	if again[0].Fingerprint != hc[0].Fingerprint {
		t.Error("the same hypercloud alert with a new message has a new identity")
	}

	for _, bad := range []string{``, `null`, `{"alerts":[{"status":"firing","labels":{},"startsAt":"2026-11-20T10:00:00Z"}]}`,
		`{"alerts":[{"status":"firing","labels":{"alertname":"A"}}]}`, `{"version":"5","alerts":[]}`, `[{"alert":"A","status":"gone"}]`, `[1]`} {
		if _, err := Parse([]byte(bad), ""); err == nil {
			t.Errorf("Parse(%q) accepted it", bad)
		}
	}
}

func TestHubDropsSlowSubscriber(t *testing.T) {
	h := NewHub(func() (*db.Store, error) { return nil, db.ErrUnavailable }, time.Hour, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	slow := h.Subscribe(ctx, func(db.Alert) bool { return true })
	fast := h.Subscribe(ctx, func(a db.Alert) bool { return strings.HasPrefix(a.AlertName, "x") })
	batch := make([]db.Alert, SubscriberBuffer+1)
	for i := range batch {
		batch[i] = db.Alert{AlertName: "y"}
	}
	batch[0].AlertName = "x"
	h.publish(batch)
	n := 0
	for range slow {
		n++
	}
	if n != SubscriberBuffer {
		t.Errorf("the slow subscriber got %d alerts before its stream closed, want %d", n, SubscriberBuffer)
	}
	if a := <-fast; a.AlertName != "x" || h.Subscribers() != 1 {
		t.Errorf("the other subscriber: %+v, %d subscribers left", a, h.Subscribers())
	}
}
