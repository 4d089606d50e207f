package k8s

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"

	"github.com/clustergraph/clustergraph/errkind"
	"github.com/clustergraph/clustergraph/tracing"
)

// State is how readable a cluster is.
type State string

// The states of a cluster. A cluster starts SYNCING (or UNREACHABLE when its
// apiserver never answered), becomes READY once every cache has synced, or
// PARTIAL when some kinds cannot be (forbidden to clustergraph, not served,
// or not synced by the first-sync deadline) while the rest is served, and
// goes STALE when the apiserver stops answering after that.
const (
	StateSyncing     State = "SYNCING"
	StateReady       State = "READY"
	StatePartial     State = "PARTIAL"
	StateStale       State = "STALE"
	StateUnreachable State = "UNREACHABLE"
)

// Status is a snapshot of a cluster's connection state.
type Status struct {
	State         State
	LastError     string
	LastSyncTime  time.Time
	ServerVersion string
}

// Serving reports whether the cluster's caches are being served (READY,
// PARTIAL or STALE): its first sync is over.
func (s Status) Serving() bool {
	return s.State == StateReady || s.State == StatePartial || s.State == StateStale
}

// Cluster is one apiserver with its own clients, informer caches and
// lifetime. Its caches are shared by every request; callers must not modify
// the objects they read.
type Cluster struct {
	// Name is the kubeconfig context name, or "in-cluster".
	Name string
	// Server is the apiserver URL.
	Server string

	hash   string
	config *rest.Config
	log    *slog.Logger

	// Typed is the protobuf clientset for built-in kinds.
	Typed kubernetes.Interface
	// Dynamic reads any resource as unstructured JSON.
	Dynamic dynamic.Interface
	// Discovery answers what the apiserver serves.
	Discovery discovery.DiscoveryInterface
	metrics   metricsclient.Interface

	caches *caches
	access accessCache
	// review and reviews answer what RBAC refuses (see review.go).
	review  ReviewFunc
	reviews reviewCache
	// maxList bounds the objects one dynamic list reads (see ListResources).
	maxList int
	hub     *hub
	dyn     dynWatches
	// mapper maps kinds to resources for writes and dynamic reads, built
	// on first use (see RESTMapper); it goes with the cluster.
	mapperOnce sync.Once
	mapper     meta.RESTMapper

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	// gone says why the cluster was stopped (see retire).
	gone atomic.Pointer[string]

	mu     sync.RWMutex
	status Status
}

// clusterOptions are a cluster's timings and what it caches.
type clusterOptions struct {
	probe  time.Duration // one health probe
	period time.Duration // between health probes
	// syncDeadline bounds the first sync: past it the cluster is served
	// partially (0: no bound).
	syncDeadline time.Duration
	// off are the kinds not cached, with why.
	off map[resource]string
}

func newCluster(parent context.Context, name string, cfg *rest.Config, hash string, t clusterOptions, log *slog.Logger) (*Cluster, error) {
	cfg = rest.CopyConfig(cfg)
	// Informers list and watch every kind at start; the defaults (5 QPS)
	// would make start-up of a large cluster crawl.
	cfg.QPS, cfg.Burst = 50, 100
	cfg.UserAgent = "clustergraph"
	// A request made within a traced operation is a span of it (see
	// tracing.Transport); the clients made from this config for callers
	// (ConfigFor) inherit the wrapper.
	cfg.Wrap(tracing.Transport)

	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("dynamic client: %w", err)
	}
	meta, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("metadata client: %w", err)
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("discovery client: %w", err)
	}
	mc, err := metricsclient.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("metrics client: %w", err)
	}
	// Built-in kinds travel as protobuf: smaller and several times cheaper
	// to decode than JSON on a large LIST.
	pcfg := rest.CopyConfig(cfg)
	pcfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	pcfg.ContentType = "application/vnd.kubernetes.protobuf"
	typed, err := kubernetes.NewForConfig(pcfg)
	if err != nil {
		return nil, fmt.Errorf("clientset: %w", err)
	}

	ctx, cancel := context.WithCancel(parent)
	c := &Cluster{
		Name:      name,
		Server:    cfg.Host,
		hash:      hash,
		config:    cfg,
		log:       log.With("cluster", name),
		Typed:     typed,
		Dynamic:   redactingDynamic{dyn},
		Discovery: disc,
		metrics:   mc,
		ctx:       ctx,
		cancel:    cancel,
		done:      make(chan struct{}),
		status:    Status{State: StateSyncing},
	}
	c.caches = newCaches(ctx, typed, meta, dyn, t.off)
	c.hub = newHub()
	for r, inf := range c.caches.informers {
		if _, err := inf.AddEventHandler(c.hub.handler(c, r)); err != nil {
			cancel()
			return nil, fmt.Errorf("informer handler: %w", err)
		}
	}
	go c.run(t)
	return c, nil
}

// Status returns a snapshot of the cluster's state.
func (c *Cluster) Status() Status {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.status
}

func (c *Cluster) setStatus(f func(*Status)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(&c.status)
}

// retire stops a cluster the configuration no longer holds as it is;
// why says what happened to it, for the watches it ends.
func (c *Cluster) retire(why string) {
	c.gone.Store(&why)
	c.stop()
}

// goneError is why a stopped cluster's watches ended.
func (c *Cluster) goneError() error {
	why := "stopped: the server is shutting down"
	if w := c.gone.Load(); w != nil {
		why = *w
	}
	return &ClusterError{Cluster: c.Name, Err: errkind.Newf(errkind.Unavailable, "the watch ended: the cluster was %s", why)}
}

// stop tears the cluster down: its informers stop and its context is
// canceled. It waits for the cluster's goroutine to end.
func (c *Cluster) stop() {
	c.cancel()
	<-c.done
}

// reconnectBackoff is the schedule of connection attempts to a cluster
// that does not answer: from 1 s, doubling, up to 20 s, each wait drawn
// up to half again as long, so after an outage the replicas (and the
// clusters of one replica) do not all retry at the same instants.
func reconnectBackoff() wait.Backoff {
	return wait.Backoff{Duration: time.Second, Factor: 2, Jitter: 0.5, Cap: 20 * time.Second, Steps: math.MaxInt32}
}

// run connects, fills the caches and then probes the apiserver until the
// cluster is stopped. It never blocks start-up or other clusters: each
// cluster has its own goroutine.
func (c *Cluster) run(t clusterOptions) {
	defer close(c.done)
	backoff := reconnectBackoff()
	for {
		version, err := c.probe(t.probe)
		if err == nil {
			c.setStatus(func(s *Status) { s.ServerVersion = version })
			break
		}
		retryIn := backoff.Step()
		c.log.Warn("cluster unreachable, will retry", "err", err, "retryIn", retryIn.Round(time.Millisecond))
		c.setStatus(func(s *Status) { s.State, s.LastError = StateUnreachable, err.Error() })
		select {
		case <-c.ctx.Done():
			return
		case <-time.After(retryIn):
		}
	}
	c.setStatus(func(s *Status) { s.State = StateSyncing })

	start := time.Now()
	c.caches.nodePools = c.servedNodePoolGVR()
	c.caches.start(c.ctx, func(r resource, inf cache.SharedIndexInformer) {
		_, _ = inf.AddEventHandler(c.hub.handler(c, r))
	})
	c.log.Info("syncing caches", "kinds", len(c.caches.informers))
	running, partial := c.caches.waitForSync(c.ctx, t.syncDeadline, c.log)
	if !running {
		return // stopped before the caches synced
	}
	now := time.Now()
	c.setStatus(func(s *Status) { s.State, s.LastError, s.LastSyncTime = c.servingState(), "", now })
	if partial {
		for _, k := range c.caches.kinds() {
			if k.State != KindReady && k.State != KindOff {
				c.log.Warn("kind not served from this cluster", "resource", k.Resource, "state", k.State, "err", k.Error)
			}
		}
	}
	c.log.Info("caches synced", "took", now.Sub(start).Round(time.Millisecond), "partial", partial)

	tick := time.NewTicker(t.period)
	defer tick.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-tick.C:
		}
		_, err := c.probe(t.probe)
		now := time.Now()
		c.setStatus(func(s *Status) {
			switch {
			case err != nil:
				if s.State == StateReady {
					c.log.Warn("cluster stopped answering; serving cached data", "err", err)
				}
				s.State, s.LastError = StateStale, err.Error()
			default:
				if s.State == StateStale {
					c.log.Info("cluster answers again")
				}
				state := c.servingState()
				if s.State == StatePartial && state == StateReady {
					c.log.Info("every kind synced: no longer partial")
				}
				s.State, s.LastError, s.LastSyncTime = state, "", now
			}
		})
	}
}

// probe asks the apiserver for its version: cheap, unauthenticated-friendly
// and a true sign the server answers.
func (c *Cluster) probe(timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(c.ctx, timeout)
	defer cancel()
	body, err := c.Discovery.RESTClient().Get().AbsPath("/version").Do(ctx).Raw()
	if err != nil {
		return "", err
	}
	var v struct {
		GitVersion string `json:"gitVersion"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return "", fmt.Errorf("decoding /version: %w", err)
	}
	return v.GitVersion, nil
}

// nodePoolGVR is openyurt's NodePool resource.
var nodePoolGVR = schema.GroupVersionResource{Group: "apps.openyurt.io", Version: "v1beta1", Resource: "nodepools"}

// servedNodePoolGVR returns the NodePool resource when the cluster serves it.
func (c *Cluster) servedNodePoolGVR() *schema.GroupVersionResource {
	list, err := c.Discovery.ServerResourcesForGroupVersion(nodePoolGVR.GroupVersion().String())
	if err != nil || list == nil {
		return nil
	}
	for _, r := range list.APIResources {
		if r.Name == nodePoolGVR.Resource {
			gvr := nodePoolGVR
			return &gvr
		}
	}
	return nil
}

// servingState is READY when every cached kind has synced, else PARTIAL.
// A kind left out by configuration does not make the cluster partial.
func (c *Cluster) servingState() State {
	for r := range c.caches.informers {
		if c.caches.kindState(r).State != KindReady {
			return StatePartial
		}
	}
	return StateReady
}

// Kinds returns the state of each kind the cluster caches (or was told
// not to), sorted by resource.
func (c *Cluster) Kinds() []KindStatus { return c.caches.kinds() }

// readable reports whether the cluster's caches may be read, and the error
// to add for it when they are not current.
func (c *Cluster) readable() (ok bool, err error) {
	s := c.Status()
	switch s.State {
	case StateReady, StatePartial:
		return true, nil
	case StateStale:
		return true, &ClusterError{Cluster: c.Name, Err: errkind.Newf(errkind.Unavailable, "serving data last synced at %s: %s", s.LastSyncTime.UTC().Format(time.RFC3339), s.LastError)}
	case StateSyncing:
		return false, &ClusterError{Cluster: c.Name, Err: errkind.Newf(errkind.Unavailable, "caches are still syncing")}
	default:
		return false, &ClusterError{Cluster: c.Name, Err: errkind.Newf(errkind.Unavailable, "%s", s.LastError)}
	}
}

// kindReadable returns nil when resource r's cache may be read, else the
// cluster's error saying why not: its own account may not list it, the
// cluster does not serve it, the install does not cache it, or it has not
// synced yet. The rest of the cluster is served meanwhile.
func (c *Cluster) kindReadable(r resource) error {
	k := c.caches.kindState(r)
	var err error
	switch k.State {
	case KindReady:
		return nil
	case KindOff:
		err = errkind.Newf(errkind.Unavailable, "%s are not cached: %s", r, k.Error)
	case KindForbidden:
		err = errkind.Newf(errkind.Unavailable, "clustergraph's own account may not list and watch %s in this cluster (grant it list and watch): %s", r, k.Error)
	case KindNotServed:
		err = errkind.Newf(errkind.Unavailable, "the cluster does not serve %s: %s", r, k.Error)
	default:
		why := "the first list has not finished"
		if k.Error != "" {
			why = k.Error
		}
		err = errkind.Newf(errkind.Unavailable, "%s are still syncing: %s", r, why)
	}
	return &ClusterError{Cluster: c.Name, Err: err}
}

// unreadable returns one error naming those of rs whose caches cannot be
// read (see kindReadable), or nil: for answers built from several kinds,
// which leave those out.
func (c *Cluster) unreadable(rs []resource) error {
	var errs []error
	for _, r := range rs {
		if err := c.kindReadable(r); err != nil {
			errs = append(errs, err)
		}
	}
	return joinClusterErrors(c.Name, errs)
}
