package resolvers

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"maps"
	"sync"

	"github.com/clustergraph/clustergraph/errkind"
	"github.com/clustergraph/clustergraph/graph/model"
	"github.com/clustergraph/clustergraph/k8s"
)

// position is where a cluster's stream stands.
type position struct {
	Epoch string `json:"e"`
	Seq   uint64 `json:"s"`
}

// A watch cursor holds every cluster's position, so one cursor resumes a
// stream over several clusters.
func encodeCursor(p map[string]position) string {
	b, _ := json.Marshal(p)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s *string) (map[string]position, error) {
	p := map[string]position{}
	if s == nil || *s == "" {
		return p, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(*s)
	if err == nil {
		err = json.Unmarshal(b, &p)
	}
	if err != nil {
		return nil, errkind.BadInputf("malformed watch cursor %q", *s)
	}
	return p, nil
}

// subscribe merges the streams of several clusters into one channel, which
// it closes when ctx ends or when any stream ends for a reason (the caller
// lost their grant, the cluster was removed): that stream's last change is
// then an Ended one carrying the reason. Clusters that cannot be watched when it starts (unreachable,
// or not serving the kind) are skipped when the caller did not name them,
// and are an error when they did or when no cluster is left.
func subscribe(ctx context.Context, cs []*k8s.Cluster, named bool, kind string, f *k8s.Filter, after map[string]position, liveOnly bool) (<-chan k8s.Change, error) {
	ctx, cancel := context.WithCancel(ctx)
	merged := make(chan k8s.Change)
	var wg sync.WaitGroup
	var firstErr error
	started := 0
	for _, c := range cs {
		p, resume := after[c.Name]
		changes, errc, err := c.Subscribe(ctx, kind, f, k8s.SubscribeOptions{Epoch: p.Epoch, Seq: p.Seq, Resume: resume, LiveOnly: liveOnly})
		if err != nil {
			if named {
				cancel()
				wg.Wait()
				return nil, err
			}
			slog.WarnContext(ctx, "watch skips a cluster", "cluster", c.Name, "err", err)
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		started++
		wg.Go(func() {
			for ch := range changes {
				select {
				case merged <- ch:
				case <-ctx.Done():
				}
			}
			select {
			case err := <-errc:
				slog.InfoContext(ctx, "watch ended", "cluster", c.Name, "reason", err)
				select {
				case merged <- k8s.Change{Type: k8s.Ended, Cluster: c, Err: err}:
				case <-ctx.Done():
				}
				cancel()
			default:
			}
		})
	}
	if started == 0 && firstErr != nil {
		cancel()
		return nil, firstErr
	}
	go func() {
		wg.Wait()
		cancel()
		close(merged)
	}()
	return merged, nil
}

// resourceEvents turns merged changes into watch events with cursors.
func resourceEvents(ctx context.Context, merged <-chan k8s.Change, after map[string]position) <-chan *model.ResourceEvent {
	out := make(chan *model.ResourceEvent)
	go func() {
		defer close(out)
		pos := maps.Clone(after)
		for ch := range merged {
			if ch.Type != k8s.Ended { // an end has no position: resume from the last change
				pos[ch.Cluster.Name] = position{Epoch: ch.Epoch, Seq: ch.Seq}
			}
			ev := &model.ResourceEvent{Type: model.ResourceEventType(ch.Type), C: ch.Cluster, Cursor: encodeCursor(pos)}
			if ch.Err != nil {
				ev.Error = model.FromError(ch.Err)
			}
			if ch.Obj != nil {
				ev.Object = wrap(ch.Cluster, ch.Obj)
			}
			select {
			case out <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}
