package k8s

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/clustergraph/clustergraph/caller"
	"github.com/clustergraph/clustergraph/errkind"
)

// The clients that act as the caller, for the rooms beside this one
// (write, stream) and for the direct reads past the caches: each
// impersonates the context's subject (ConfigFor).

// DynamicFor is a dynamic client acting as the context's subject, for
// writes: refused at once while the apiserver is not answering, and its
// requests abandoned when it stops (see answeringTransport).
func (c *Cluster) DynamicFor(ctx context.Context) (dynamic.Interface, error) {
	if err := c.answering(); err != nil {
		return nil, err
	}
	cfg, err := c.ConfigFor(ctx)
	if err != nil {
		return nil, err
	}
	cfg.Wrap(c.whileAnswering)
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return redactingDynamic{dyn}, nil
}

// Writes fail fast when the apiserver stops answering. Left to client-go,
// a request to a hung or blackholed apiserver waits for HTTP/2's health
// check to drop the connection (30 s without a frame, then a 15 s ping) or
// for a new connection's TLS handshake timeout, or for ever; a caller
// cannot tell that from a slow write. The cluster's health probe already
// knows (within its period and timeout, 8 s by default): a write is refused
// up front while the cluster is STALE or UNREACHABLE, and one under way is
// abandoned as soon as the probe finds it so. A write abandoned midway may
// or may not have been applied; its error says so.

// answering returns nil unless the health probe finds the apiserver not
// answering (STALE or UNREACHABLE), and then the UNAVAILABLE error a
// request gets instead of being sent.
func (c *Cluster) answering() error {
	switch s := c.Status(); s.State {
	case StateStale, StateUnreachable:
		return &ClusterError{Cluster: c.Name, Err: errkind.Newf(errkind.Unavailable, "the apiserver is not answering (%s), nothing was sent: %s", s.State, s.LastError)}
	}
	return nil
}

// abandonPoll is how often a request under way looks at the cluster's
// state.
const abandonPoll = 200 * time.Millisecond

// whileAnswering wraps a transport so that each request is refused while
// the cluster is not answering and abandoned once it stops.
func (c *Cluster) whileAnswering(next http.RoundTripper) http.RoundTripper {
	return &answeringTransport{next: next, c: c}
}

type answeringTransport struct {
	next http.RoundTripper
	c    *Cluster
}

func (a *answeringTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if err := a.c.answering(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancelCause(r.Context())
	go func() {
		t := time.NewTicker(abandonPoll)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if s := a.c.Status(); s.State == StateStale || s.State == StateUnreachable {
					msg := "the apiserver stopped answering during the request"
					if r.Method != http.MethodGet && r.Method != http.MethodHead {
						msg = fmt.Sprintf("the apiserver stopped answering during a %s request, which may or may not have taken effect", r.Method)
					}
					cancel(&ClusterError{Cluster: a.c.Name, Err: errkind.Newf(errkind.Unavailable, "%s: %s", msg, s.LastError)})
					return
				}
			}
		}
	}()
	resp, err := a.next.RoundTrip(r.WithContext(ctx))
	if err != nil {
		err = abandoned(ctx, err)
		cancel(nil)
		return nil, err
	}
	resp.Body = &answeringBody{ReadCloser: resp.Body, ctx: ctx, cancel: cancel}
	return resp, nil
}

// abandoned returns why a request was abandoned in place of the context
// error it ended with, and other errors as they are.
func abandoned(ctx context.Context, err error) error {
	var ce *ClusterError
	if cause := context.Cause(ctx); ctx.Err() != nil && errors.As(cause, &ce) {
		return cause
	}
	return err
}

// answeringBody ends the request's watch when the body is closed.
type answeringBody struct {
	io.ReadCloser
	ctx    context.Context
	cancel context.CancelCauseFunc
}

func (b *answeringBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = abandoned(b.ctx, err)
	}
	return n, err
}

func (b *answeringBody) Close() error {
	b.cancel(nil)
	return b.ReadCloser.Close()
}

// Mapping maps an object's kind to its resource and scope.
func (c *Cluster) Mapping(gvk schema.GroupVersionKind) (*meta.RESTMapping, error) {
	m, err := c.restMapper().RESTMapping(gvk.GroupKind(), gvk.Version)
	switch {
	case meta.IsNoMatchError(err):
		return nil, &ClusterError{Cluster: c.Name, Err: errkind.Newf(errkind.BadInput, "the cluster serves no kind %s", gvk.String())}
	case err != nil:
		// Discovery failed: the kind may well exist.
		return nil, c.APIError(err, "discovering kind "+gvk.String())
	}
	return m, nil
}

// ClientFor returns a clientset that acts as the context's subject (see
// ConfigFor).
func (c *Cluster) ClientFor(ctx context.Context) (kubernetes.Interface, error) {
	s := caller.From(ctx)
	if s != nil && s.Unrestricted {
		return c.Typed, nil
	}
	cfg, err := c.ConfigFor(ctx)
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}
