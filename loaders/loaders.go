package loaders

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/clustergraph/clustergraph/db"
	"github.com/clustergraph/clustergraph/k8s"
)

// Ref names an object of a cluster by namespace and name.
type Ref struct {
	C         *k8s.Cluster
	Namespace string
	Name      string
}

// ObjRef names a cached object by identity.
type ObjRef struct {
	C   *k8s.Cluster
	Obj any
}

// Loaders are one request's loaders.
type Loaders struct {
	// Service loads a service by namespace and name.
	Service *Loader[Ref, *corev1.Service]
	// PodsOfNode loads the pods scheduled on a node.
	PodsOfNode *Loader[Ref, []*corev1.Pod]
	// PodsOf loads the pods of a workload (by owner chain) or of a service
	// (by selector).
	PodsOf *Loader[ObjRef, []*corev1.Pod]
	// Owner loads the workload that controls an object.
	Owner *Loader[ObjRef, any]
	// EndpointSlices loads a service's EndpointSlices.
	EndpointSlices *Loader[Ref, []*discoveryv1.EndpointSlice]
	// NodePools loads a cluster's pools once per request.
	NodePools *Loader[*k8s.Cluster, []*k8s.NodePool]
	// NodeUsage loads a node's usage: one metrics call per cluster a batch.
	NodeUsage *Loader[Ref, *k8s.Usage]
	// PodUsage loads a pod's usage: one metrics call per cluster a batch.
	PodUsage *Loader[Ref, *k8s.Usage]

	storedLoaders
	// Access answers authorization questions the access set refused, for
	// the authorizer fallback (see Review): each question is asked once per
	// operation, and a batch's questions go out together.
	Access *Loader[Question, bool]
}

// Question is an authorization question in a cluster.
type Question struct {
	C *k8s.Cluster
	Q k8s.Question
}

// Review implements k8s.Reviewer through the Access loader.
func (l *Loaders) Review(ctx context.Context, c *k8s.Cluster, qs []k8s.Question) []bool {
	keys := make([]Question, len(qs))
	for i, q := range qs {
		keys[i] = Question{C: c, Q: q}
	}
	answers, _ := l.Access.LoadMany(ctx, keys)
	return answers
}

// Config tunes batching.
type Config struct {
	// Wait is how long a batch collects keys after its first one.
	Wait time.Duration
	// MaxBatch dispatches a batch early when it holds this many keys.
	MaxBatch int
	// Store is the database of the stored loaders (nil: none).
	Store *db.Handle
	// Registry finds the clusters whose access sets decide which stored
	// records the caller may read (nil: none may be read).
	Registry *k8s.Registry
}

// DefaultConfig suits in-memory lookups: a short wait, large batches.
var DefaultConfig = Config{Wait: 500 * time.Microsecond, MaxBatch: 1000}

// New returns fresh loaders for one request.
func New(cfg Config) *Loaders {
	return &Loaders{
		Service: NewLoader(cfg.Wait, cfg.MaxBatch, each(func(ctx context.Context, r Ref) (*corev1.Service, error) {
			o, err := r.C.Get(ctx, k8s.GVKService, r.Namespace, r.Name)
			if err != nil {
				return nil, nil
			}
			return o.(*corev1.Service), nil
		})),
		PodsOfNode: NewLoader(cfg.Wait, cfg.MaxBatch, each(func(ctx context.Context, r Ref) ([]*corev1.Pod, error) {
			return r.C.PodsOfNode(ctx, r.Name), nil
		})),
		PodsOf: NewLoader(cfg.Wait, cfg.MaxBatch, each(func(ctx context.Context, r ObjRef) ([]*corev1.Pod, error) {
			if s, ok := r.Obj.(*corev1.Service); ok {
				return r.C.PodsSelectedBy(ctx, s.Namespace, s.Spec.Selector), nil
			}
			return r.C.PodsOwnedBy(ctx, r.Obj), nil
		})),
		Owner: NewLoader(cfg.Wait, cfg.MaxBatch, each(func(ctx context.Context, r ObjRef) (any, error) {
			return r.C.OwnerWorkload(ctx, r.Obj), nil
		})),
		EndpointSlices: NewLoader(cfg.Wait, cfg.MaxBatch, each(func(ctx context.Context, r Ref) ([]*discoveryv1.EndpointSlice, error) {
			return r.C.EndpointSlicesOf(ctx, r.Namespace, r.Name), nil
		})),
		NodePools: NewLoader(cfg.Wait, cfg.MaxBatch, each(func(ctx context.Context, c *k8s.Cluster) ([]*k8s.NodePool, error) {
			return c.NodePools(ctx), nil
		})),
		NodeUsage: NewLoader(cfg.Wait, cfg.MaxBatch, usage(func(ctx context.Context, c *k8s.Cluster, _ string) (map[string]k8s.Usage, error) {
			return c.NodeUsage(ctx)
		}, func(r Ref) string { return r.Name })),
		PodUsage: NewLoader(cfg.Wait, cfg.MaxBatch, usage(func(ctx context.Context, c *k8s.Cluster, ns string) (map[string]k8s.Usage, error) {
			return c.PodUsage(ctx, ns)
		}, func(r Ref) string { return r.Namespace + "/" + r.Name })),
		storedLoaders: newStored(cfg),
		Access:        NewLoader(cfg.Wait, cfg.MaxBatch, review),
	}
}

// review asks each cluster of a batch its questions in one go.
func review(ctx context.Context, keys []Question) ([]bool, []error) {
	byCluster := map[*k8s.Cluster][]int{}
	for i, k := range keys {
		byCluster[k.C] = append(byCluster[k.C], i)
	}
	out := make([]bool, len(keys))
	for c, idx := range byCluster {
		qs := make([]k8s.Question, len(idx))
		for j, i := range idx {
			qs[j] = keys[i].Q
		}
		for j, allowed := range c.Review(ctx, qs) {
			out[idx[j]] = allowed
		}
	}
	return out, nil
}

// each turns a per-key lookup (an index read) into a batch function.
func each[K comparable, V any](f func(context.Context, K) (V, error)) func(context.Context, []K) ([]V, []error) {
	return func(ctx context.Context, keys []K) ([]V, []error) {
		vals := make([]V, len(keys))
		errs := make([]error, len(keys))
		for i, k := range keys {
			vals[i], errs[i] = f(ctx, k)
		}
		return vals, errs
	}
}

// usage makes a batch function that calls metrics.k8s.io once per cluster
// of the batch (scoped to a namespace when every key shares one) and picks
// each key's value. Missing metrics are nil values, not errors.
func usage(list func(ctx context.Context, c *k8s.Cluster, namespace string) (map[string]k8s.Usage, error), key func(Ref) string) func(context.Context, []Ref) ([]*k8s.Usage, []error) {
	return func(ctx context.Context, keys []Ref) ([]*k8s.Usage, []error) {
		namespace := map[*k8s.Cluster]string{}
		for _, k := range keys {
			ns, seen := namespace[k.C]
			switch {
			case !seen:
				namespace[k.C] = k.Namespace
			case ns != k.Namespace:
				namespace[k.C] = ""
			}
		}
		byCluster := map[*k8s.Cluster]map[string]k8s.Usage{}
		failed := map[*k8s.Cluster]error{}
		for c, ns := range namespace {
			byCluster[c], failed[c] = list(ctx, c, ns)
		}
		vals := make([]*k8s.Usage, len(keys))
		errs := make([]error, len(keys))
		for i, k := range keys {
			if err := failed[k.C]; err != nil {
				errs[i] = err
				continue
			}
			if u, ok := byCluster[k.C][key(k)]; ok {
				vals[i] = &u
			}
		}
		return vals, errs
	}
}

type ctxKey struct{}

// With returns a context carrying the loaders.
func With(ctx context.Context, l *Loaders) context.Context {
	return context.WithValue(ctx, ctxKey{}, l)
}

// For returns the request's loaders. Outside a request (tests, tools) it
// returns fresh ones, so callers never need a nil check.
func For(ctx context.Context) *Loaders {
	if l, ok := ctx.Value(ctxKey{}).(*Loaders); ok {
		return l
	}
	return New(DefaultConfig)
}
