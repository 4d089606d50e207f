package api

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/clustergraph/clustergraph/caller"
	"github.com/clustergraph/clustergraph/errkind"
)

// Limits bound what one request, one websocket and one user may ask for.
// Query limits are checked on the parsed and validated operation, before
// any resolver runs.
type Limits struct {
	// MaxDepth bounds the nesting of fields (default 15).
	MaxDepth int
	// MaxComplexity bounds the estimated number of fields resolved: each
	// field counts once per object it is resolved for, and every list
	// counts the most it can return: a connection's nodes and edges the
	// page its first/limit asks for (default page: MaxPage), other lists
	// as cost.go tells. Default 250000: a page of 100 workloads with 100
	// pods each and a dozen fields passes.
	MaxComplexity int
	// MaxTokens bounds the tokens the parser reads (default 20000), which
	// stops alias floods and giant documents before validation.
	MaxTokens int
	// PerUserConcurrency bounds the requests one user may have in flight
	// (default 32).
	PerUserConcurrency int
	// MaxSubscriptions bounds the subscriptions one websocket runs at once
	// (default 100); a further one is refused with an error message
	// (BAD_USER_INPUT), the socket and its other subscriptions live on.
	MaxSubscriptions int
	// MaxSubscriptionsPerUser bounds the subscriptions one user runs at
	// once across all their websockets (default 200); a further one is
	// refused as one over MaxSubscriptions is.
	MaxSubscriptionsPerUser int
	// MaxSocketsPerUser bounds the websockets one user holds open (default
	// 16): a further socket is refused at connection_init and closed with
	// 4429, its close reason (and, on the legacy graphql-ws protocol, a
	// connection_error message) naming the limit.
	MaxSocketsPerUser int
	// MaxPendingSockets bounds the websockets that have not yet been
	// authenticated by their connection_init, server-wide (default 256);
	// MaxPendingSocketsPerIP bounds them per client address (default 16).
	// An upgrade over either is refused with 429 (UNAVAILABLE) and
	// Retry-After; a socket that sends no connection_init is closed after
	// 10 s.
	MaxPendingSockets, MaxPendingSocketsPerIP int
	// SocketWriteTimeout bounds one write to a websocket (default 10 s): a
	// client that stops reading is disconnected once the server's writes
	// back up that long, and every subscription and terminal on the socket
	// ends.
	SocketWriteTimeout time.Duration
	// SocketPingInterval is how often a websocket is pinged (default 25 s;
	// a protocol-level ping, which browsers answer by themselves), and
	// SocketPongTimeout how long the pong may take (default 20 s) before
	// the socket is closed as dead. The pings also keep idle sockets from
	// being cut by proxies' idle timeouts (commonly 60 s).
	SocketPingInterval, SocketPongTimeout time.Duration
}

func (l *Limits) defaults() {
	if l.MaxDepth <= 0 {
		l.MaxDepth = 15
	}
	if l.MaxComplexity <= 0 {
		l.MaxComplexity = 250000
	}
	if l.MaxTokens <= 0 {
		l.MaxTokens = 20000
	}
	if l.PerUserConcurrency <= 0 {
		l.PerUserConcurrency = 32
	}
	if l.MaxSubscriptions <= 0 {
		l.MaxSubscriptions = 100
	}
	if l.MaxSubscriptionsPerUser <= 0 {
		l.MaxSubscriptionsPerUser = 200
	}
	if l.MaxSocketsPerUser <= 0 {
		l.MaxSocketsPerUser = 16
	}
	if l.MaxPendingSockets <= 0 {
		l.MaxPendingSockets = 256
	}
	if l.MaxPendingSocketsPerIP <= 0 {
		l.MaxPendingSocketsPerIP = 16
	}
	if l.SocketWriteTimeout <= 0 {
		l.SocketWriteTimeout = 10 * time.Second
	}
	if l.SocketPingInterval <= 0 {
		l.SocketPingInterval = 25 * time.Second
	}
	if l.SocketPongTimeout <= 0 {
		l.SocketPongTimeout = 20 * time.Second
	}
}

// queryLimits is the gqlgen extension enforcing depth and complexity. A
// refusal carries the measure and its limit in extensions (depth and
// maxDepth, or complexity and maxComplexity), so a client can tell how far
// over it is.
type queryLimits struct {
	maxDepth, maxComplexity, defaultPage int
}

var (
	_ graphql.HandlerExtension        = queryLimits{}
	_ graphql.OperationContextMutator = queryLimits{}
)

func (queryLimits) ExtensionName() string                   { return "QueryLimits" }
func (queryLimits) Validate(graphql.ExecutableSchema) error { return nil }
// statComplexity is the Stats extension holding an operation's estimated
// cost, for its trace span.
const statComplexity = "clustergraph.complexity"

func (q queryLimits) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil {
		return nil
	}
	e := newEstimator(q.defaultPage, oc.Variables)
	if d := e.depth(oc.Operation.SelectionSet); d > q.maxDepth {
		err := limitError("the query nests %d levels deep; the limit is %d", d, q.maxDepth)
		err.Extensions["depth"], err.Extensions["maxDepth"] = d, q.maxDepth
		return err
	}
	limit := min(q.maxComplexity, costCeiling-1)
	if c := e.cost(oc.Operation.SelectionSet, outsideConnection); c > limit {
		about := "about"
		if c == costCeiling {
			about = "more than"
		}
		err := limitError("the query could resolve %s %d fields; the limit is %d: ask for smaller pages (first/limit), fewer aliases or fewer nested lists", about, c, limit)
		err.Extensions["complexity"], err.Extensions["maxComplexity"] = c, limit
		return err
	} else {
		oc.Stats.SetExtension(statComplexity, c)
	}
	return nil
}

func limitError(format string, args ...any) *gqlerror.Error {
	return &gqlerror.Error{Message: fmt.Sprintf(format, args...), Extensions: map[string]any{"code": errkind.CodeBadUserInput, "reason": "QUERY_TOO_LARGE"}}
}

// perUser caps the requests each user has in flight, so one caller cannot
// take all of the server.
func perUser(limit int, next http.Handler) http.Handler {
	var mu sync.Mutex
	inFlight := map[string]int{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A websocket is authenticated after the upgrade and lives long;
		// counting it here would put every socket under one empty user.
		// Sockets are bounded by socketCaps instead.
		if isUpgrade(r) {
			next.ServeHTTP(w, r)
			return
		}
		user := ""
		if s := caller.From(r.Context()); s != nil {
			user = s.User
		}
		mu.Lock()
		if inFlight[user] >= limit {
			mu.Unlock()
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusTooManyRequests, errkind.CodeUnavailable, fmt.Sprintf("too many requests in flight for %s (limit %d)", user, limit))
			return
		}
		inFlight[user]++
		mu.Unlock()
		defer func() {
			mu.Lock()
			if inFlight[user]--; inFlight[user] == 0 {
				delete(inFlight, user)
			}
			mu.Unlock()
		}()
		next.ServeHTTP(w, r)
	})
}
