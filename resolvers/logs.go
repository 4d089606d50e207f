package resolvers

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/clustergraph/clustergraph/graph/model"
	"github.com/clustergraph/clustergraph/k8s"
	"github.com/clustergraph/clustergraph/k8s/stream"
)

// logChunks serves the logs req selects (see stream.FollowLogs) as the
// API's chunks.
func logChunks(ctx context.Context, c *k8s.Cluster, req stream.Logs) (<-chan *model.LogChunk, error) {
	lines, err := stream.FollowLogs(ctx, c, req)
	if err != nil {
		return nil, err
	}
	out := make(chan *model.LogChunk)
	go func() {
		defer close(out)
		for l := range lines {
			chunk := &model.LogChunk{Pod: l.Pod, Container: l.Container, Line: l.Line, Truncated: l.Truncated}
			if !l.Time.IsZero() {
				chunk.Timestamp = &l.Time
			}
			select {
			case out <- chunk:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// logOptions converts the shared arguments.
func logOptions(sinceSeconds *int, sinceTime *time.Time, tailLines *int, timestamps, previous, follow *bool) corev1.PodLogOptions {
	o := corev1.PodLogOptions{Timestamps: timestamps != nil && *timestamps, Previous: previous != nil && *previous, Follow: follow == nil || *follow}
	if sinceSeconds != nil {
		s := int64(*sinceSeconds)
		o.SinceSeconds = &s
	}
	if sinceTime != nil {
		t := metav1.NewTime(*sinceTime)
		o.SinceTime = &t
	}
	if tailLines != nil {
		n := int64(*tailLines)
		o.TailLines = &n
	}
	return o
}

// onePod selects one pod by name.
func onePod(namespace, name string) *k8s.Filter {
	return &k8s.Filter{Namespace: namespace, Fields: fields.OneTermEqualSelector("metadata.name", name)}
}
