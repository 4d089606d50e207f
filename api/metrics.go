package api

import (
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"

	"github.com/clustergraph/clustergraph/auth"
	"github.com/clustergraph/clustergraph/errkind"
	"github.com/clustergraph/clustergraph/metrics"
)

// maxOperationNames is how many distinct operation names the operation
// series keep when no persisted-query allowlist names them; later names
// count as metrics.Other. Consoles send a few dozen.
const maxOperationNames = 100

// operationMetrics is the gqlgen extension that records every operation
// (metrics.Operation), every error sent (metrics.GraphQLError) and the
// subscriptions running (metrics.SubscriptionStarted). An operation is
// recorded at its first response: a query's or mutation's answer, a
// subscription's first event (or the error it failed to start with).
// Requests refused before they became an operation (unparsable, invalid,
// not on the allowlist, over the limits) reach only the response
// interceptor, which records them; dispatched operations it leaves to the
// operation interceptor, which sees every response they give.
type operationMetrics struct {
	names *metrics.Names
}

var (
	_ graphql.HandlerExtension     = operationMetrics{}
	_ graphql.OperationInterceptor = operationMetrics{}
	_ graphql.ResponseInterceptor  = operationMetrics{}
)

// newOperationMetrics keeps the names of the persisted queries' operations,
// or, without an allowlist, the first maxOperationNames names seen.
func newOperationMetrics(persisted map[string]string) operationMetrics {
	if persisted == nil {
		return operationMetrics{names: metrics.NewNames(maxOperationNames)}
	}
	var names []string
	for _, q := range persisted {
		doc, err := parser.ParseQuery(&ast.Source{Input: q})
		if err != nil {
			continue // refused when it is run, by the executor's own parse
		}
		for _, op := range doc.Operations {
			names = append(names, op.Name)
		}
	}
	return operationMetrics{names: metrics.NewNames(0, names...)}
}

// dispatchedKey marks the context of an operation the operation
// interceptor records.
type dispatchedKey struct{}

// ExtensionName names the extension to gqlgen.
func (operationMetrics) ExtensionName() string { return "OperationMetrics" }

// Validate accepts every schema.
func (operationMetrics) Validate(graphql.ExecutableSchema) error { return nil }

// InterceptOperation records a dispatched operation at its first
// response, the errors of each response, and a subscription as running
// until its stream ends (the last, nil, response) or its context does.
func (m operationMetrics) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	oc := graphql.GetOperationContext(ctx)
	name, typ := m.labels(oc)
	h := next(context.WithValue(ctx, dispatchedKey{}, true))
	ended := func() {}
	if oc.Operation.Operation == ast.Subscription {
		ended = metrics.SubscriptionStarted(rootField(oc))
		context.AfterFunc(ctx, ended)
	}
	first := true
	return func(ctx context.Context) *graphql.Response {
		resp := h(ctx)
		if resp == nil {
			ended()
			return nil
		}
		if first {
			first = false
			metrics.Operation(name, typ, resultCode(resp.Errors), time.Since(oc.Stats.OperationStart))
		}
		countErrors(resp.Errors)
		return resp
	}
}

// InterceptResponse records a request refused before it was dispatched;
// the responses of dispatched operations pass through.
func (m operationMetrics) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	resp := next(ctx)
	if resp == nil || ctx.Value(dispatchedKey{}) != nil || !graphql.HasOperationContext(ctx) {
		return resp
	}
	oc := graphql.GetOperationContext(ctx)
	name, typ := m.labels(oc)
	metrics.Operation(name, typ, resultCode(resp.Errors), time.Since(oc.Stats.OperationStart))
	countErrors(resp.Errors)
	return resp
}

// labels are an operation's name (bounded) and type. A request that
// failed before its operation was known (it did not parse or validate)
// has no type, and the operationName it sent, if any, for a name.
func (m operationMetrics) labels(oc *graphql.OperationContext) (name, typ string) {
	switch {
	case oc == nil:
		return "", ""
	case oc.Operation == nil:
		return m.names.Label(oc.OperationName), ""
	}
	return m.names.Label(oc.Operation.Name), string(oc.Operation.Operation)
}

// rootField is the field a subscription subscribes to (validation lets
// a subscription select exactly one), by its name in the schema.
func rootField(oc *graphql.OperationContext) string {
	if fs := graphql.CollectFields(oc, oc.Operation.SelectionSet, []string{"Subscription"}); len(fs) > 0 {
		return fs[0].Name
	}
	return ""
}

// knownCodes are the extensions.code values the error series keep: the
// error kinds' codes and the persisted-query one. Any other (none is sent
// today) counts as OTHER, so the series stay bounded whatever an error
// carries.
var knownCodes = []string{
	errkind.CodeUnauthenticated, errkind.CodeForbidden, errkind.CodeNotFound, errkind.CodeBadUserInput,
	errkind.CodeConflict, errkind.CodeUnavailable, errkind.CodeInternal, CodePersistedQueryNotFound,
}

// codeLabel is an error code as the series label it.
func codeLabel(code string) string {
	if slices.Contains(knownCodes, code) {
		return code
	}
	return "OTHER"
}

// resultCode is an operation's result: OK, or the code of its first error.
func resultCode(errs gqlerror.List) string {
	if len(errs) == 0 {
		return "OK"
	}
	code, _ := errs[0].Extensions["code"].(string)
	return codeLabel(code)
}

// countErrors records each error of a response by its code.
func countErrors(errs gqlerror.List) {
	for _, e := range errs {
		code, _ := e.Extensions["code"].(string)
		metrics.GraphQLError(codeLabel(code))
	}
}

// metricsHandler serves the Prometheus exposition at /metrics on the API's
// address, as the contract lists it, to the callers that may read the
// cluster names it carries (as /readyz's detail): this host, or a caller
// with an accepted token (Prometheus' authorization.credentials_file can
// be its service-account token). Anyone else gets 401 saying so. The same
// series are served without a token on --metrics-listen, an address of
// their own for the scraper alone.
func metricsHandler(authn *auth.Authenticator) http.Handler {
	served := metrics.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !mayReadDetail(r, authn) {
			writeError(w, http.StatusUnauthorized, errkind.CodeUnauthenticated, "the metrics name the clusters: send Authorization: Bearer <token> (Prometheus: authorization.credentials_file), or scrape --metrics-listen")
			return
		}
		served.ServeHTTP(w, r)
	})
}
