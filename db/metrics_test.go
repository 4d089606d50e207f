package db_test

import (
	"context"
	"testing"

	"github.com/clustergraph/clustergraph/db"
	"github.com/clustergraph/clustergraph/metrics"
)

// TestStatementMetrics: every statement is timed by operation and table;
// a record not found is no error, a database that fails is.
func TestStatementMetrics(t *testing.T) {
	eachDB(t, func(t *testing.T, s *db.Store) {
		ctx := context.Background()
		queries := func() float64 {
			return metrics.Sum("clustergraph_db_operation_duration_seconds", map[string]string{"operation": "query", "table": "alerts"})
		}
		errs := func() float64 {
			return metrics.Sum("clustergraph_db_errors_total", map[string]string{"operation": "query", "table": "alerts"})
		}
		creates := metrics.Sum("clustergraph_db_operation_duration_seconds", map[string]string{"operation": "create", "table": "alerts"})
		if _, err := s.RecordAlerts(ctx, []db.Alert{{Fingerprint: "metrics-1", Status: db.Firing, Cluster: "c", AlertName: "A"}}); err != nil {
			t.Fatal(err)
		}
		if got := metrics.Sum("clustergraph_db_operation_duration_seconds", map[string]string{"operation": "create", "table": "alerts"}) - creates; got < 1 {
			t.Errorf("alert inserts timed: %v, want at least 1", got)
		}
		q, e := queries(), errs()
		if _, err := s.LatestAlert(ctx, "no-such-fingerprint"); err == nil {
			t.Fatal("a missing alert was found")
		}
		if got := queries() - q; got != 1 {
			t.Errorf("queries timed: %v, want 1", got)
		}
		if got := errs() - e; got != 0 {
			t.Errorf("a record not found counted as %v errors", got)
		}
		s.Close()
		if _, err := s.LatestAlert(ctx, "metrics-1"); err == nil {
			t.Fatal("a closed database answered")
		}
		if got := errs() - e; got != 1 {
			t.Errorf("a failed query counted as %v errors, want 1", got)
		}
	})
}
