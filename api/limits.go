package api

import (
	"context"
	"fmt"
	"net/http"
	"sync"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/clustergraph/clustergraph/k8s"
)

// Limits bound what one request may ask for. They are checked on the parsed
// and validated operation, before any resolver runs.
type Limits struct {
	// MaxDepth bounds the nesting of fields (default 15).
	MaxDepth int
	// MaxComplexity bounds the estimated number of fields resolved: each
	// field counts once per object it is resolved for, and a connection's
	// nodes and edges count once per object of the page its first/limit
	// asks for (default page: MaxPage). Default 250000: a page of 100
	// workloads with 100 pods each and a dozen fields passes.
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

// queryLimits is the gqlgen extension enforcing depth and complexity.
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
	if d := depth(oc.Operation.SelectionSet); d > q.maxDepth {
		return limitError("the query nests %d levels deep; the limit is %d", d, q.maxDepth)
	}
	if c := q.cost(oc.Operation.SelectionSet, 1, oc.Variables); c > q.maxComplexity {
		return limitError("the query could resolve about %d fields; the limit is %d: ask for smaller pages (first/limit) or fewer nested lists", c, q.maxComplexity)
	}
	return nil
}

func limitError(format string, args ...any) *gqlerror.Error {
	return &gqlerror.Error{Message: fmt.Sprintf(format, args...), Extensions: map[string]any{"code": CodeBadUserInput, "reason": "QUERY_TOO_LARGE"}}
}

// fields visits the fields of a selection set, through fragments.
func fields(set ast.SelectionSet, visit func(*ast.Field)) {
	for _, s := range set {
		switch s := s.(type) {
		case *ast.Field:
			visit(s)
		case *ast.InlineFragment:
			fields(s.SelectionSet, visit)
		case *ast.FragmentSpread:
			if s.Definition != nil {
				fields(s.Definition.SelectionSet, visit)
			}
		}
	}
}

func depth(set ast.SelectionSet) int {
	deepest := 0
	fields(set, func(f *ast.Field) { deepest = max(deepest, 1+depth(f.SelectionSet)) })
	return deepest
}

// cost estimates the fields resolved under set when it is resolved mult
// times; it stops counting once past any limit worth checking.
func (q queryLimits) cost(set ast.SelectionSet, mult int, vars map[string]any) int {
	total := 0
	fields(set, func(f *ast.Field) {
		if total > q.maxComplexity {
			return
		}
		total += mult
		page := q.pageOf(f, vars)
		fields(f.SelectionSet, func(child *ast.Field) {
			m := mult
			if page > 0 && (child.Name == "nodes" || child.Name == "edges") {
				m = mult * page
			}
			total += q.cost(ast.SelectionSet{child}, m, vars)
		})
	})
	return total
}

// pageOf is the page size a connection field asks for, or 0 for fields
// that take no paging arguments.
func (q queryLimits) pageOf(f *ast.Field, vars map[string]any) int {
	if f.Definition == nil || f.Definition.Arguments.ForName("first") == nil {
		return 0
	}
	for _, name := range []string{"first", "limit"} {
		if a := f.Arguments.ForName(name); a != nil {
			if v, err := a.Value.Value(vars); err == nil {
				switch n := v.(type) {
				case int64:
					return max(int(n), 1)
				case int:
					return max(n, 1)
				}
			}
		}
	}
	return q.defaultPage
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
