package api_test

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clustergraph/clustergraph/db"
)

// Storage behind the server: a database of the test's own, and alerts
// posted into it as Alertmanager posts them.

// sqlite opens a SQLite database of the test's own, closed when it ends.
func sqlite(t *testing.T) *db.Handle {
	t.Helper()
	h, err := db.Connect(ctx, "sqlite://"+filepath.Join(t.TempDir(), "cg.db"), db.Options{Log: testLogger()}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// alertToken is the bearer token postAlert sends; a server that takes
// alerts is configured with it.
const alertToken = "alert-test-token"

// postAlert posts a body to /alert and returns the status code.
func postAlert(t *testing.T, s *server, body string, edit func(*http.Request)) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL+"/alert", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+alertToken)
	if edit != nil {
		edit(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// amPayload is a webhook body as Alertmanager 0.27 sends it.
func amPayload(cluster, status, startsAt, endsAt string) string {
	return fmt.Sprintf(`{
  "version": "4", "groupKey": "{}:{alertname=\"PodCrashLooping\"}", "truncatedAlerts": 0,
  "status": %[2]q, "receiver": "clustergraph",
  "groupLabels": {"alertname": "PodCrashLooping"},
  "commonLabels": {"alertname": "PodCrashLooping", "severity": "critical"},
  "commonAnnotations": {"summary": "frontend is crash looping"},
  "externalURL": "http://alertmanager:9093",
  "alerts": [{
    "status": %[2]q,
    "labels": {"alertname": "PodCrashLooping", "severity": "critical", "cluster": %[1]q, "namespace": "shop", "pod": "frontend-0", "team": "web"},
    "annotations": {"summary": "frontend is crash looping"},
    "startsAt": %[3]q, "endsAt": %[4]q,
    "generatorURL": "http://prometheus:9090/graph?g0.expr=...",
    "fingerprint": "c0ffee0123456789"
  }]
}`, cluster, status, startsAt, endsAt)
}
