package api

import (
	"context"
	"fmt"
	"net/http"
	"sync"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/clustergraph/clustergraph/k8s"
)

// Limits bound what one request may ask for. They are checked on the parsed
// and validated operation, before any resolver runs.
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
	// (default 100).
	MaxSubscriptions int
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
	}
	return nil
}

func limitError(format string, args ...any) *gqlerror.Error {
	return &gqlerror.Error{Message: fmt.Sprintf(format, args...), Extensions: map[string]any{"code": CodeBadUserInput, "reason": "QUERY_TOO_LARGE"}}
}

// perUser caps the requests each user has in flight, so one caller cannot
// take all of the server.
func perUser(limit int, next http.Handler) http.Handler {
	var mu sync.Mutex
	inFlight := map[string]int{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A websocket is authenticated after the upgrade and lives long;
		// counting it here would put every socket under one empty user.
		// Sockets are bounded by their subscription cap instead.
		if isUpgrade(r) {
			next.ServeHTTP(w, r)
			return
		}
		user := ""
		if s := k8s.SubjectFrom(r.Context()); s != nil {
			user = s.User
		}
		mu.Lock()
		if inFlight[user] >= limit {
			mu.Unlock()
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusTooManyRequests, CodeUnavailable, fmt.Sprintf("too many requests in flight for %s (limit %d)", user, limit))
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
