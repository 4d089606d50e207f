package alerting

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/clustergraph/clustergraph/db"
	"github.com/clustergraph/clustergraph/metrics"
)

// TestReceiverMetrics: stored alerts are counted received, each refused
// delivery by why.
func TestReceiverMetrics(t *testing.T) {
	store, err := db.Open(context.Background(), "sqlite::memory:", db.Options{Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	up := func() (*db.Store, error) { return store, nil }
	down := func() (*db.Store, error) { return nil, errors.New("database down") }
	rejected := func(reason string) float64 {
		return metrics.Sum("clustergraph_alert_deliveries_rejected_total", map[string]string{"source": "webhook", "reason": reason})
	}
	reasons := []string{"method", "unauthorized", "malformed", "unavailable"}
	read := func() []float64 {
		out := []float64{metrics.Sum("clustergraph_alerts_received_total", map[string]string{"source": "webhook"})}
		for _, r := range reasons {
			out = append(out, rejected(r))
		}
		return out
	}
	before := read()
	post := func(rc *Receiver, method, auth, body string) {
		r := httptest.NewRequest(method, "/alert", strings.NewReader(body))
		if auth != "" {
			r.Header.Set("Authorization", "Bearer "+auth)
		}
		rc.ServeHTTP(httptest.NewRecorder(), r)
	}
	rc := &Receiver{Store: up, Token: "t0ken", Log: slog.New(slog.DiscardHandler), DefaultCluster: func() string { return "c" }}
	two := `[{"alert": "A", "namespace": "ns"}, {"alert": "B", "namespace": "ns"}]`
	post(rc, http.MethodPost, "t0ken", two)
	post(rc, http.MethodGet, "t0ken", two)
	post(rc, http.MethodPost, "wrong", two)
	post(rc, http.MethodPost, "t0ken", "not json")
	post(&Receiver{Store: down, Token: "t0ken", Log: rc.Log}, http.MethodPost, "t0ken", two)
	got := read()
	for i := range got {
		got[i] -= before[i]
	}
	if diff := cmp.Diff([]float64{2, 1, 1, 1, 1}, got); diff != "" {
		t.Errorf("received, then rejected by %v (-want +got):\n%s", reasons, diff)
	}
}
