package stream

import (
	"context"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"

	"github.com/clustergraph/clustergraph/k8s"
)

// Logs is what FollowLogs streams.
type Logs struct {
	// Pods selects the pods; Single is set for one pod's logs, whose
	// stream ends when the pod goes away.
	Pods   *k8s.Filter
	Single bool
	// Container limits the stream to one container ("": all of them).
	Container string
	Options   corev1.PodLogOptions
}

// FollowLogs follows the pods the request selects, as the cluster's cache
// sees them come and go, and streams the log of each of their containers
// (one goroutine per container keeps its lines in order). Pods are watched
// and logs read as the context's caller. The channel closes when ctx ends,
// when a single pod goes away, or, without Options.Follow, once every log
// present at the start has been read.
func FollowLogs(ctx context.Context, c *k8s.Cluster, req Logs) (<-chan LogLine, error) {
	ctx, cancel := context.WithCancel(ctx)
	changes, _, err := c.Subscribe(ctx, "Pod", req.Pods, k8s.SubscribeOptions{Readable: true})
	if err != nil {
		cancel()
		return nil, err
	}
	out := make(chan LogLine)
	lines := make(chan LogLine, 256)
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
			for _, ct := range ContainersOf(p, false) {
				key := p.Name + "/" + ct
				if _, ok := streams[key]; ok || (req.Container != "" && ct != req.Container) {
					continue
				}
				sctx, stop := context.WithCancel(ctx)
				streams[key] = stop
				opts := req.Options
				opts.Container = ct
				active++
				running.Go(func() {
					if err := ContainerLog(sctx, c, p.Namespace, p.Name, opts, lines); err != nil {
						lines <- LogLine{Pod: p.Name, Container: ct, Line: "clustergraph: " + err.Error()}
					}
					done <- struct{}{}
				})
			}
		}
		stopPod := func(name string) {
			for key, stop := range streams {
				if strings.HasPrefix(key, name+"/") {
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
					if req.Single {
						return
					}
				}
			case l := <-lines:
				select {
				case out <- l:
				case <-ctx.Done():
					return
				}
			case <-done:
				active--
			}
			if !req.Options.Follow && synced && active == 0 && len(lines) == 0 {
				return
			}
		}
	}()
	return out, nil
}
