package api

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/clustergraph/clustergraph/errkind"
	"github.com/clustergraph/clustergraph/k8s"
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
			ext["code"], ext["reason"] = errkind.CodeBadUserInput, code
		case code != "":
			// Already coded (e.g. by gqlgen for a bad variable).
		case errkind.Code(err) == errkind.CodeUnavailable:
			ext["code"], ext["retryable"] = errkind.CodeUnavailable, true
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				gqlErr.Message = "request timed out or was canceled"
			}
		case errkind.Code(err) != errkind.CodeInternal:
			ext["code"] = errkind.Code(err)
		default:
			log.ErrorContext(ctx, "internal error", "err", withoutVariables(ctx, err.Error(), anyName), "path", gqlErr.Path.String())
			ext["code"] = errkind.CodeInternal
			gqlErr.Message = "internal error"
		}
		// A message that quotes a credential the caller sent (a variable
		// named like one) does not send it back.
		gqlErr.Message = withoutVariables(ctx, gqlErr.Message, credentialName)
		return gqlErr
	}
}

// withoutVariables cuts out of msg the string values of the operation's
// variables whose names pick selects: an error message may quote what the
// caller sent, which must not reach the log (any variable: a password, an
// apply manifest holding a Secret) nor come back (a credential).
func withoutVariables(ctx context.Context, msg string, pick func(name string) bool) string {
	vars, _ := ctx.Value(rawVariablesKey{}).(map[string]any)
	if graphql.HasOperationContext(ctx) && graphql.GetOperationContext(ctx).Variables != nil {
		vars = graphql.GetOperationContext(ctx).Variables
	}
	var vals []string
	for name, v := range vars {
		if pick(name) {
			vals = k8s.StringLeaves(v, vals)
		}
	}
	return k8s.RedactedText(msg, vals)
}

func anyName(string) bool { return true }

// credentialName reports whether a variable's name says it holds a
// credential.
func credentialName(name string) bool {
	n := strings.ToLower(name)
	for _, w := range []string{"token", "password", "passwd", "secret", "credential", "auth", "apikey", "api_key", "privatekey", "private_key"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}
