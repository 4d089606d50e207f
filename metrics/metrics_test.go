package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestNamesCap: the names given are kept, then the first max others,
// then every further name is Other, also when asked again.
func TestNamesCap(t *testing.T) {
	n := NewNames(2, "Persisted")
	var got []string
	for _, name := range []string{"Persisted", "A", "", "B", "C", "A", "D", "Persisted", "C"} {
		got = append(got, n.Label(name))
	}
	want := []string{"Persisted", "A", "", "B", Other, "A", Other, "Persisted", Other}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
}

type fakeClusters []Cluster

func (fakeClusters) ClusterStates() []string     { return []string{"READY", "STALE"} }
func (f fakeClusters) MetricClusters() []Cluster { return f }

type fakeSpool struct{}

func (fakeSpool) Len() int       { return 7 }
func (fakeSpool) Dropped() int64 { return 2 }
func (fakeSpool) Corrupt() int64 { return 1 }

// TestSources: the watched sources' state is read at the scrape, and
// stops being reported once unwatched.
func TestSources(t *testing.T) {
	stop := WatchClusters(fakeClusters{{
		Name: "east", Host: "10.0.0.1:6443", Version: "v1.37.2", State: "STALE", LastSync: time.Unix(1700000000, 0),
		Kinds:         []Kind{{Resource: "pods", Objects: 12, WatchErrors: 3}},
		HubDeliveries: 40, HubOverflows: 1, HubResyncs: 2, ReviewsAllowed: 5, ReviewsFailed: 1,
	}})
	stopSpool := WatchSpool(fakeSpool{})
	want := `
# HELP clustergraph_cluster_cached_objects Objects a cluster's cache of one resource holds.
# TYPE clustergraph_cluster_cached_objects gauge
clustergraph_cluster_cached_objects{cluster="east",resource="pods"} 12
# HELP clustergraph_cluster_state A cluster's state: 1 for the state it is in, 0 for the others.
# TYPE clustergraph_cluster_state gauge
clustergraph_cluster_state{cluster="east",state="READY"} 0
clustergraph_cluster_state{cluster="east",state="STALE"} 1
# HELP clustergraph_cluster_last_sync_timestamp_seconds When a cluster was last known current (caches synced, or a later health probe answered), in Unix seconds; absent before its first sync.
# TYPE clustergraph_cluster_last_sync_timestamp_seconds gauge
clustergraph_cluster_last_sync_timestamp_seconds{cluster="east"} 1.7e+09
# HELP clustergraph_sar_fallback_reviews_total SubjectAccessReviews the authorizer fallback (--authz-fallback=sar) sent, by cluster and result (allowed, denied, error); answers reused from its cache are not counted.
# TYPE clustergraph_sar_fallback_reviews_total counter
clustergraph_sar_fallback_reviews_total{cluster="east",result="allowed"} 5
clustergraph_sar_fallback_reviews_total{cluster="east",result="denied"} 0
clustergraph_sar_fallback_reviews_total{cluster="east",result="error"} 1
# HELP clustergraph_metering_spool_samples Metering samples waiting in the outbox for the database.
# TYPE clustergraph_metering_spool_samples gauge
clustergraph_metering_spool_samples 7
`
	names := []string{"clustergraph_cluster_cached_objects", "clustergraph_cluster_state", "clustergraph_cluster_last_sync_timestamp_seconds",
		"clustergraph_sar_fallback_reviews_total", "clustergraph_metering_spool_samples"}
	if err := testutil.GatherAndCompare(Registry, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	stop()
	stopSpool()
	if n, err := testutil.GatherAndCount(Registry, names...); err != nil || n != 0 {
		t.Errorf("after the sources are unwatched: %d series (%v), want none", n, err)
	}
}

// TestLint: every series of the registry, with a sample of each vector,
// passes client_golang's linter (naming, units, help).
func TestLint(t *testing.T) {
	defer WatchClusters(fakeClusters{{Name: "east", State: "READY", Kinds: []Kind{{Resource: "pods"}}}})()
	defer WatchSpool(fakeSpool{})()
	Operation("Pods", "query", "OK", time.Millisecond)
	GraphQLError("FORBIDDEN")
	WebsocketOpened()()
	SubscriptionStarted("watch")()
	TokenCacheHit()
	TokenCacheMiss()
	TokenReviewThrottled()
	TokenReview(ReviewAuthenticated, time.Millisecond)
	DBOperation("query", "alerts", time.Millisecond, true)
	MeteringTick(time.Second)
	AlertsReceived(AlertsFromWebhook, 2)
	AlertRejected(AlertsFromWebhook, "unauthorized")
	problems, err := testutil.GatherAndLint(Registry)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}
