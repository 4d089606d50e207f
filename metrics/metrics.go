package metrics

import (
	"net/http"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// namespace prefixes every clustergraph series.
const namespace = "clustergraph"

// Registry holds every series clustergraph exports: the Go runtime's and
// the process's, the vectors below, and the scrape-time collector of the
// watched sources.
var Registry = prometheus.NewRegistry()

// Buckets of the latency histograms, in seconds.
var (
	// requestBuckets suit requests served from memory or one round trip:
	// 1 ms to 10 s.
	requestBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	// apiserverBuckets reach further: a LIST of a large cluster takes tens
	// of seconds.
	apiserverBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
	// tickBuckets suit a metering tick, which samples every cluster and
	// writes to the database: 10 ms to 5 min.
	tickBuckets = []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}
)

// The vectors the rooms record into, through the functions of this
// package (events.go), which keep their labels consistent.
var (
	graphqlOperations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "graphql_operations_total",
		Help: "GraphQL operations answered, by operation name (persisted or capped, else \"other\"; empty when anonymous), type (query, mutation, subscription; empty when the request did not parse or validate) and code (OK, or the extensions.code of the first error).",
	}, []string{"operation", "type", "code"})
	graphqlDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "graphql_operation_duration_seconds",
		Help:    "Time from a GraphQL operation's arrival to its first response: the whole answer of a query or mutation, a subscription's start.",
		Buckets: requestBuckets,
	}, []string{"operation", "type"})
	graphqlErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "graphql_errors_total",
		Help: "Errors sent to GraphQL clients, by extensions.code: in responses and subscription events, and requests refused before GraphQL ran (401, 413, 429).",
	}, []string{"code"})
	websockets = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "websocket_connections",
		Help: "GraphQL websockets open.",
	})
	subscriptions = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "graphql_subscriptions",
		Help: "GraphQL subscriptions running, by root field.",
	}, []string{"field"})

	apiserverDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "apiserver_request_duration_seconds",
		Help:    "Requests clustergraph made to apiservers (as itself or as a caller; watches not included), client-side throttling included, by apiserver host and HTTP verb.",
		Buckets: apiserverBuckets,
	}, []string{"host", "verb"})
	apiserverResults = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "apiserver_requests_total",
		Help: "Requests clustergraph made to apiservers (watches included), by apiserver host, HTTP method and status code (\"<error>\" when no response came).",
	}, []string{"host", "method", "code"})

	tokenCacheHits = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Name: "token_cache_hits_total",
		Help: "Bearer tokens answered from the TokenReview cache (accepted or refused).",
	})
	tokenCacheMisses = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Name: "token_cache_misses_total",
		Help: "Bearer tokens the TokenReview cache could not answer (a review followed unless the token had expired by its own claim or the review budget was spent).",
	})
	tokenReviewsThrottled = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Name: "token_reviews_throttled_total",
		Help: "New bearer tokens refused as UNAVAILABLE because the TokenReview budget (per client address or server-wide) was spent.",
	})
	tokenReviewDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "token_review_duration_seconds",
		Help:    "TokenReviews sent to the identity cluster, by result (authenticated, unauthenticated, error).",
		Buckets: requestBuckets,
	}, []string{"result"})

	dbDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "db_operation_duration_seconds",
		Help:    "Database statements, by gorm operation (create, query, update, delete, row, raw) and table (empty for raw SQL).",
		Buckets: requestBuckets,
	}, []string{"operation", "table"})
	dbErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "db_errors_total",
		Help: "Database statements that failed (not counting a record not found or a caller who went away), by gorm operation and table.",
	}, []string{"operation", "table"})

	meteringTick = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace, Name: "metering_tick_duration_seconds",
		Help:    "Metering ticks: sampling every cluster, flushing the outbox and writing the samples.",
		Buckets: tickBuckets,
	})

	alertsReceived = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "alerts_received_total",
		Help: "Alerts stored, by source (webhook: POST /alert; mutation: createAlert).",
	}, []string{"source"})
	alertsRejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "alert_deliveries_rejected_total",
		Help: "Alert deliveries refused (one POST /alert, or one createAlert), by source and reason (method, unauthorized, too_large, malformed, forbidden, unavailable).",
	}, []string{"source", "reason"})
)

func init() {
	Registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		graphqlOperations, graphqlDuration, graphqlErrors, websockets, subscriptions,
		apiserverDuration, apiserverResults,
		tokenCacheHits, tokenCacheMisses, tokenReviewsThrottled, tokenReviewDuration,
		dbDuration, dbErrors, meteringTick, alertsReceived, alertsRejected,
		watched,
	)
}

// Handler serves the exposition of Registry, in the format the scraper
// asks for, and counts its own scrapes (promhttp_metric_handler_*).
func Handler() http.Handler {
	return promhttp.InstrumentMetricHandler(Registry, promhttp.HandlerFor(Registry, promhttp.HandlerOpts{
		Registry: Registry,
		// A collector that fails leaves its series out; the rest is served.
		ErrorHandling: promhttp.ContinueOnError,
		Timeout:       30 * time.Second,
	}))
}

// Sum adds up the series of Registry named name whose labels include
// every pair of match (see FamilySum). Tests read how far a series moved
// with it.
func Sum(name string, match map[string]string) float64 {
	families, err := Registry.Gather()
	if err != nil {
		return 0
	}
	total := 0.0
	for _, f := range families {
		if f.GetName() == name {
			total += FamilySum(f, match)
		}
	}
	return total
}

// FamilySum adds up the series of a family whose labels include every
// pair of match: a counter's, gauge's or untyped series' value, a
// histogram's count of observations. A scrape's families (parsed from the
// exposition) are read with it too.
func FamilySum(f *dto.MetricFamily, match map[string]string) float64 {
	total := 0.0
series:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range match {
			if have[k] != v {
				continue series
			}
		}
		switch {
		case m.GetCounter() != nil:
			total += m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			total += m.GetGauge().GetValue()
		case m.GetHistogram() != nil:
			total += float64(m.GetHistogram().GetSampleCount())
		case m.GetUntyped() != nil:
			total += m.GetUntyped().GetValue()
		}
	}
	return total
}
