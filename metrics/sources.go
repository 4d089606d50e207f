package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Cluster is one cluster's state as a scrape reads it from its source.
type Cluster struct {
	// Name is the cluster's name, Host its apiserver's host:port (the
	// host label of the apiserver request series), Version what the
	// apiserver says it runs ("" before it answered).
	Name, Host, Version string
	// State is one of the source's ClusterStates.
	State string
	// LastSync is when the cluster was last known current (its caches
	// synced, or a later health probe answered); zero before.
	LastSync time.Time
	// Kinds are the cached kinds (a fixed set) with their counts.
	Kinds []Kind
	// HubDeliveries counts changes handed to subscribers' buffers,
	// HubOverflows subscribers found with a full buffer (each then
	// starts over from the current state), HubResyncs RESYNC markers
	// sent (after an overflow, or a resume the change ring no longer
	// covers).
	HubDeliveries, HubOverflows, HubResyncs uint64
	// ReviewsAllowed, ReviewsDenied and ReviewsFailed count the
	// SubjectAccessReviews the authorizer fallback sent, by their answer.
	ReviewsAllowed, ReviewsDenied, ReviewsFailed uint64
}

// Kind is one cached kind of a cluster.
type Kind struct {
	// Resource is the plural resource name, e.g. "pods".
	Resource string
	// Objects is how many objects the cache holds.
	Objects int
	// WatchErrors counts the informer's failed lists and watches, each
	// followed by a restart of its list and watch.
	WatchErrors uint64
}

// ClusterSource gives the clusters' state at scrape time.
type ClusterSource interface {
	// ClusterStates lists every value Cluster.State may take: the state
	// series has one series a state, 1 for the current one.
	ClusterStates() []string
	// MetricClusters returns the clusters as they are now.
	MetricClusters() []Cluster
}

// SpoolSource is the metering outbox (db.Spool): how many samples wait,
// and how many it dropped past its bound or removed as undecodable since
// it was opened.
type SpoolSource interface {
	Len() int
	Dropped() int64
	Corrupt() int64
}

// watched is the collector of the sources the server wires in; it is
// always registered and reads whatever sources are watched at the scrape.
var watched = &sourceCollector{clusters: map[*ClusterSource]bool{}, spools: map[*SpoolSource]bool{}}

// WatchClusters reports the clusters of src at every scrape until the
// returned func is called.
func WatchClusters(src ClusterSource) (stop func()) {
	key := &src
	watched.mu.Lock()
	watched.clusters[key] = true
	watched.mu.Unlock()
	return func() {
		watched.mu.Lock()
		delete(watched.clusters, key)
		watched.mu.Unlock()
	}
}

// WatchSpool reports the metering outbox at every scrape until the
// returned func is called.
func WatchSpool(src SpoolSource) (stop func()) {
	key := &src
	watched.mu.Lock()
	watched.spools[key] = true
	watched.mu.Unlock()
	return func() {
		watched.mu.Lock()
		delete(watched.spools, key)
		watched.mu.Unlock()
	}
}

// The series the sources give.
var (
	clusterInfo = prometheus.NewDesc(namespace+"_cluster_info",
		"A cluster clustergraph serves (always 1), with its apiserver's host (the host label of the apiserver series) and version.",
		[]string{"cluster", "host", "version"}, nil)
	clusterState = prometheus.NewDesc(namespace+"_cluster_state",
		"A cluster's state: 1 for the state it is in, 0 for the others.",
		[]string{"cluster", "state"}, nil)
	clusterLastSync = prometheus.NewDesc(namespace+"_cluster_last_sync_timestamp_seconds",
		"When a cluster was last known current (caches synced, or a later health probe answered), in Unix seconds; absent before its first sync.",
		[]string{"cluster"}, nil)
	cachedObjects = prometheus.NewDesc(namespace+"_cluster_cached_objects",
		"Objects a cluster's cache of one resource holds.",
		[]string{"cluster", "resource"}, nil)
	watchErrors = prometheus.NewDesc(namespace+"_cluster_watch_errors_total",
		"Failed lists and watches of a cluster's informer of one resource, each followed by a restart of its list and watch.",
		[]string{"cluster", "resource"}, nil)
	hubDeliveries = prometheus.NewDesc(namespace+"_hub_deliveries_total",
		"Cache changes handed to watch subscribers' buffers, by cluster.",
		[]string{"cluster"}, nil)
	hubOverflows = prometheus.NewDesc(namespace+"_hub_overflows_total",
		"Watch subscribers found with a full buffer (each then starts over from the current state), by cluster.",
		[]string{"cluster"}, nil)
	hubResyncs = prometheus.NewDesc(namespace+"_hub_resyncs_total",
		"RESYNC markers sent to watches (after an overflow, or a resume the change ring no longer covers), by cluster.",
		[]string{"cluster"}, nil)
	sarReviews = prometheus.NewDesc(namespace+"_sar_fallback_reviews_total",
		"SubjectAccessReviews the authorizer fallback (--authz-fallback=sar) sent, by cluster and result (allowed, denied, error); answers reused from its cache are not counted.",
		[]string{"cluster", "result"}, nil)
	spoolSamples = prometheus.NewDesc(namespace+"_metering_spool_samples",
		"Metering samples waiting in the outbox for the database.",
		nil, nil)
	spoolDropped = prometheus.NewDesc(namespace+"_metering_spool_dropped_samples_total",
		"Metering samples the outbox dropped, oldest first, past its bound.",
		nil, nil)
	spoolCorrupt = prometheus.NewDesc(namespace+"_metering_spool_corrupt_samples_total",
		"Metering samples removed from the outbox because they did not decode.",
		nil, nil)
)

// sourceCollector reads the watched sources at each scrape.
type sourceCollector struct {
	mu       sync.Mutex
	clusters map[*ClusterSource]bool
	spools   map[*SpoolSource]bool
}

// Describe sends every series the sources can give.
func (s *sourceCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{clusterInfo, clusterState, clusterLastSync, cachedObjects, watchErrors,
		hubDeliveries, hubOverflows, hubResyncs, sarReviews, spoolSamples, spoolDropped, spoolCorrupt} {
		ch <- d
	}
}

// Collect reads every watched source.
func (s *sourceCollector) Collect(ch chan<- prometheus.Metric) {
	s.mu.Lock()
	clusters := make([]ClusterSource, 0, len(s.clusters))
	for src := range s.clusters {
		clusters = append(clusters, *src)
	}
	spools := make([]SpoolSource, 0, len(s.spools))
	for src := range s.spools {
		spools = append(spools, *src)
	}
	s.mu.Unlock()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	for _, src := range clusters {
		states := src.ClusterStates()
		for _, c := range src.MetricClusters() {
			gauge(clusterInfo, 1, c.Name, c.Host, c.Version)
			for _, st := range states {
				v := 0.0
				if st == c.State {
					v = 1
				}
				gauge(clusterState, v, c.Name, st)
			}
			if !c.LastSync.IsZero() {
				gauge(clusterLastSync, float64(c.LastSync.UnixNano())/1e9, c.Name)
			}
			for _, k := range c.Kinds {
				gauge(cachedObjects, float64(k.Objects), c.Name, k.Resource)
				counter(watchErrors, float64(k.WatchErrors), c.Name, k.Resource)
			}
			counter(hubDeliveries, float64(c.HubDeliveries), c.Name)
			counter(hubOverflows, float64(c.HubOverflows), c.Name)
			counter(hubResyncs, float64(c.HubResyncs), c.Name)
			counter(sarReviews, float64(c.ReviewsAllowed), c.Name, "allowed")
			counter(sarReviews, float64(c.ReviewsDenied), c.Name, "denied")
			counter(sarReviews, float64(c.ReviewsFailed), c.Name, "error")
		}
	}
	for _, sp := range spools {
		gauge(spoolSamples, float64(sp.Len()))
		counter(spoolDropped, float64(sp.Dropped()))
		counter(spoolCorrupt, float64(sp.Corrupt()))
	}
}
