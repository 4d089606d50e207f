package api

import (
	"context"
	"errors"
	"log/slog"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/clustergraph/clustergraph/auth"
	"github.com/clustergraph/clustergraph/k8s"
)

// Error codes clients see in extensions.code.
const (
	CodeUnauthenticated = "UNAUTHENTICATED"
	CodeForbidden       = "FORBIDDEN"
	CodeNotFound        = "NOT_FOUND"
	CodeBadUserInput    = "BAD_USER_INPUT"
	CodeConflict        = "CONFLICT"
	CodeUnavailable     = "UNAVAILABLE"
	CodeInternal        = "INTERNAL"
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
		case errors.Is(err, auth.ErrUnauthenticated):
			ext["code"] = CodeUnauthenticated
		case errors.Is(err, k8s.ErrForbidden):
			ext["code"] = CodeForbidden
		case errors.Is(err, k8s.ErrBadInput):
			ext["code"] = CodeBadUserInput
		case errors.Is(err, k8s.ErrNotFound):
			ext["code"] = CodeNotFound
		case errors.Is(err, k8s.ErrUnavailable):
			ext["code"], ext["retryable"] = CodeUnavailable, true
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
			ext["code"], ext["retryable"] = CodeUnavailable, true
			gqlErr.Message = "request timed out or was canceled"
		default:
			log.ErrorContext(ctx, "internal error", "err", err, "path", gqlErr.Path.String())
			ext["code"] = CodeInternal
			gqlErr.Message = "internal error"
		}
		return gqlErr
	}
}
