package api

import (
	"context"
	"errors"
	"log/slog"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/clustergraph/clustergraph/graph/model"
	"github.com/clustergraph/clustergraph/k8s"
)

// The error codes, as the API types define them.
const (
	CodeUnauthenticated = model.CodeUnauthenticated
	CodeForbidden       = model.CodeForbidden
	CodeNotFound        = model.CodeNotFound
	CodeBadUserInput    = model.CodeBadUserInput
	CodeConflict        = model.CodeConflict
	CodeUnavailable     = model.CodeUnavailable
	CodeInternal        = model.CodeInternal
)

// presenter maps errors to client errors. Known errors keep their message
// and get a code (and the cluster they concern); anything else is logged and
// shown as a generic INTERNAL error, so internals never leak.
func presenter(log *slog.Logger) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		gqlErr := graphql.DefaultErrorPresenter(ctx, err)
		if gqlErr.Extensions == nil {
			gqlErr.Extensions = map[string]any{}
		}
		ext := gqlErr.Extensions
		var ce *k8s.ClusterError
		if errors.As(err, &ce) {
			ext["cluster"] = ce.Cluster
		}
		switch code, _ := ext["code"].(string); {
		case code == errcode.ParseFailed || code == errcode.ValidationFailed:
			// Malformed or invalid GraphQL: the caller's mistake.
			ext["code"], ext["reason"] = CodeBadUserInput, code
		case code != "":
			// Already coded (e.g. by gqlgen for a bad variable).
		case model.CodeOf(err) == CodeUnavailable:
			ext["code"], ext["retryable"] = CodeUnavailable, true
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				gqlErr.Message = "request timed out or was canceled"
			}
		case model.CodeOf(err) != CodeInternal:
			ext["code"] = model.CodeOf(err)
		default:
			log.ErrorContext(ctx, "internal error", "err", err, "path", gqlErr.Path.String())
			ext["code"] = CodeInternal
			gqlErr.Message = "internal error"
		}
		return gqlErr
	}
}
