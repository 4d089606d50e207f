package resolvers

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/clustergraph/clustergraph/graph/model"
	"github.com/clustergraph/clustergraph/k8s"
)

// logRequest is what to stream.
type logRequest struct {
	c *k8s.Cluster
	// pods selects the pods; single is set for podLogs, whose stream ends
	// when its pod goes away.
	pods      *k8s.Filter
	single    bool
	container string
	opts      corev1.PodLogOptions
}

// streamLogs follows the pods the request selects, as the cluster's cache
// sees them come and go, and streams the log of each of their containers
// (one goroutine per container keeps its lines in order). Pods are watched
// and logs read as the caller.
func streamLogs(ctx context.Context, req logRequest) (<-chan *model.LogChunk, error) {
	ctx, cancel := context.WithCancel(ctx)
	changes, _, err := req.c.Subscribe(ctx, "Pod", req.pods, k8s.SubscribeOptions{Readable: true})
	if err != nil {
		cancel()
		return nil, err
	}
	out := make(chan *model.LogChunk)
	lines := make(chan k8s.LogLine, 256)
	go func() {
		defer close(out)
		defer cancel()
		streams := map[string]context.CancelFunc{} // pod/container -> its stream
		var running sync.WaitGroup
		done := make(chan struct{}, 64)
		synced, active := false, 0
		start := func(p *corev1.Pod) {
			if p.Status.Phase == corev1.PodPending || p.DeletionTimestamp != nil {
				return // no log yet (or any more)
			}
			for _, ct := range k8s.ContainersOf(p, false) {
				key := p.Name + "/" + ct
				if _, ok := streams[key]; ok || (req.container != "" && ct != req.container) {
					continue
				}
				sctx, stop := context.WithCancel(ctx)
				streams[key] = stop
				opts := req.opts
				opts.Container = ct
				active++
				running.Go(func() {
					if err := req.c.StreamLogs(sctx, p.Namespace, p.Name, opts, lines); err != nil {
						lines <- k8s.LogLine{Pod: p.Name, Container: ct, Line: "clustergraph: " + err.Error()}
					}
					done <- struct{}{}
				})
			}
		}
		stopPod := func(name string) {
			for key, stop := range streams {
				if len(key) > len(name) && key[:len(name)+1] == name+"/" {
					stop()
				}
			}
		}
		defer running.Wait()
		for {
			select {
			case <-ctx.Done():
				return
			case ch, ok := <-changes:
				if !ok {
					return
				}
				switch ch.Type {
				case k8s.Synced:
					synced = true
				case k8s.Added, k8s.Modified:
					start(ch.Obj.(*corev1.Pod))
				case k8s.Deleted:
					stopPod(ch.Obj.(*corev1.Pod).Name)
					if req.single {
						return
					}
				}
			case l := <-lines:
				c := &model.LogChunk{Pod: l.Pod, Container: l.Container, Line: l.Line, Truncated: l.Truncated}
				if !l.Time.IsZero() {
					c.Timestamp = &l.Time
				}
				select {
				case out <- c:
				case <-ctx.Done():
					return
				}
			case <-done:
				active--
			}
			// Without follow, the stream ends once every log present at
			// the start has been read.
			if !req.opts.Follow && synced && active == 0 && len(lines) == 0 {
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
