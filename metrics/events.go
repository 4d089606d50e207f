package metrics

import (
	"context"
	"net/url"
	"strconv"
	"sync"
	"time"

	clientmetrics "k8s.io/client-go/tools/metrics"
)

// Operation records one GraphQL operation's first response: its name
// (already bounded, see Names), type, code (OK or the first error's
// extensions.code, bounded by the caller) and the time since it arrived.
func Operation(name, typ, code string, took time.Duration) {
	graphqlOperations.WithLabelValues(name, typ, code).Inc()
	graphqlDuration.WithLabelValues(name, typ).Observe(took.Seconds())
}

// GraphQLError records one error sent to a client, by its extensions.code
// (bounded by the caller).
func GraphQLError(code string) {
	graphqlErrors.WithLabelValues(code).Inc()
}

// WebsocketOpened counts a websocket open; the returned func counts it
// closed, once however often it is called.
func WebsocketOpened() (closed func()) {
	websockets.Inc()
	return sync.OnceFunc(websockets.Dec)
}

// SubscriptionStarted counts a subscription of root field running; the
// returned func counts it ended, once however often it is called.
func SubscriptionStarted(field string) (ended func()) {
	g := subscriptions.WithLabelValues(field)
	g.Inc()
	return sync.OnceFunc(g.Dec)
}

// TokenCacheHit counts a bearer token the TokenReview cache answered.
func TokenCacheHit() { tokenCacheHits.Inc() }

// TokenCacheMiss counts a bearer token the TokenReview cache could not
// answer.
func TokenCacheMiss() { tokenCacheMisses.Inc() }

// TokenReviewThrottled counts a new token refused for the review budget.
func TokenReviewThrottled() { tokenReviewsThrottled.Inc() }

// The results of a TokenReview.
const (
	ReviewAuthenticated   = "authenticated"
	ReviewUnauthenticated = "unauthenticated"
	ReviewError           = "error"
)

// TokenReview records one TokenReview sent to the identity cluster: its
// result (ReviewAuthenticated, ReviewUnauthenticated or ReviewError) and
// how long it took.
func TokenReview(result string, took time.Duration) {
	tokenReviewDuration.WithLabelValues(result).Observe(took.Seconds())
}

// DBOperation records one database statement: its gorm operation, its
// table ("" for raw SQL), how long it took, and whether it failed.
func DBOperation(op, table string, took time.Duration, failed bool) {
	dbDuration.WithLabelValues(op, table).Observe(took.Seconds())
	if failed {
		dbErrors.WithLabelValues(op, table).Inc()
	}
}

// MeteringTick records how long one metering tick took.
func MeteringTick(took time.Duration) { meteringTick.Observe(took.Seconds()) }

// The sources of alerts.
const (
	AlertsFromWebhook  = "webhook"
	AlertsFromMutation = "mutation"
)

// AlertsReceived counts n alerts stored from source.
func AlertsReceived(source string, n int) { alertsReceived.WithLabelValues(source).Add(float64(n)) }

// AlertRejected counts one alert delivery from source refused for reason
// (a fixed word: method, unauthorized, too_large, malformed, forbidden,
// unavailable).
func AlertRejected(source, reason string) { alertsRejected.WithLabelValues(source, reason).Inc() }

// ObserveClientGo points client-go's request hooks (every REST client's
// latency and results) at this package's apiserver series. client-go takes
// its hooks once per process; later calls do nothing.
var ObserveClientGo = sync.OnceFunc(func() {
	clientmetrics.Register(clientmetrics.RegisterOpts{
		RequestLatency: requestLatency{},
		RequestResult:  requestResult{},
	})
})

// requestLatency is client-go's RequestLatency hook.
type requestLatency struct{}

// Observe records a request's latency by host and verb: the URL's path
// (which names objects) is left out.
func (requestLatency) Observe(_ context.Context, verb string, u url.URL, latency time.Duration) {
	apiserverDuration.WithLabelValues(u.Host, verb).Observe(latency.Seconds())
}

// requestResult is client-go's RequestResult hook.
type requestResult struct{}

// Increment counts a request's result: client-go passes the status code
// (or "<error>"), the method and the host.
func (requestResult) Increment(_ context.Context, code, method, host string) {
	if _, err := strconv.Atoi(code); err != nil {
		code = "<error>"
	}
	apiserverResults.WithLabelValues(host, method, code).Inc()
}
