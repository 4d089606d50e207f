package api

import (
	"context"
	"sync"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/clustergraph/clustergraph/tracing"
)

// operationSpan starts the span of one GraphQL operation: its type and
// name (never its variables) and its estimated cost. The apiserver calls,
// SQL statements and token reviews it makes are its children.
func operationSpan(ctx context.Context, oc *graphql.OperationContext) (context.Context, trace.Span) {
	op := oc.Operation
	name := "graphql." + string(op.Operation)
	if op.Name != "" {
		name += " " + op.Name
	}
	attrs := []attribute.KeyValue{attribute.String("graphql.operation.type", string(op.Operation))}
	if op.Name != "" {
		attrs = append(attrs, attribute.String("graphql.operation.name", op.Name))
	}
	if c, ok := oc.Stats.GetExtension(statComplexity).(int); ok {
		attrs = append(attrs, attribute.Int("graphql.operation.complexity", c))
	}
	return tracing.Start(ctx, name, trace.WithAttributes(attrs...))
}

// endSpanWith ends span with the operation's result: at its last
// response (a query's only one, or the last of a deferred one), or for a
// subscription at its first (a stream may last for hours; its span is
// its start). Errors mark the span, with their codes.
func endSpanWith(span trace.Span, oc *graphql.OperationContext, respond graphql.ResponseHandler) graphql.ResponseHandler {
	var once sync.Once
	end := func(resp *graphql.Response) {
		once.Do(func() {
			if resp != nil && len(resp.Errors) > 0 {
				codesSeen := make([]string, 0, len(resp.Errors))
				for _, e := range resp.Errors {
					if c, ok := e.Extensions["code"].(string); ok {
						codesSeen = append(codesSeen, c)
					}
				}
				span.SetAttributes(attribute.Int("graphql.errors", len(resp.Errors)), attribute.StringSlice("graphql.error.codes", codesSeen))
				span.SetStatus(codes.Error, resp.Errors[0].Message)
			}
			span.End()
		})
	}
	return func(ctx context.Context) *graphql.Response {
		resp := respond(ctx)
		if resp == nil || oc.Operation.Operation == ast.Subscription || resp.HasNext == nil || !*resp.HasNext {
			end(resp)
		}
		return resp
	}
}
