package model_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/clustergraph/clustergraph/errkind"
	"github.com/clustergraph/clustergraph/graph/model"
	"github.com/clustergraph/clustergraph/k8s"
)

// TestFromError: a part's failure keeps its message and gets its kind's
// code, however deep the kind is wrapped; an error of no kind is INTERNAL
// and its text stays out, as the error presenter keeps it out.
func TestFromError(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want model.MutationError
	}{
		{"bad input", errkind.BadInputf("manifest: document 2 has no kind"),
			model.MutationError{Code: errkind.CodeBadUserInput, Message: "manifest: document 2 has no kind"}},
		{"wrapped twice", fmt.Errorf("apply: %w", fmt.Errorf("%w: deployments.apps web", errkind.Forbidden)),
			model.MutationError{Code: errkind.CodeForbidden, Message: "apply: forbidden: deployments.apps web"}},
		{"a cluster's", &k8s.ClusterError{Cluster: "east", Err: errkind.Newf(errkind.Conflict, "the object has been modified")},
			model.MutationError{Code: errkind.CodeConflict, Message: "cluster east: the object has been modified"}},
		{"deadline", fmt.Errorf("apply: %w", context.DeadlineExceeded),
			model.MutationError{Code: errkind.CodeUnavailable, Message: "apply: context deadline exceeded"}},
		{"no kind", errors.New("dial tcp 10.0.0.1:6443: connect: connection refused"),
			model.MutationError{Code: errkind.CodeInternal, Message: "internal error"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(&tc.want, model.FromError(tc.err)); diff != "" {
				t.Errorf("FromError(%v) (-want +got):\n%s", tc.err, diff)
			}
		})
	}
}
