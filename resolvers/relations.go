package resolvers

import (
	"context"
	"errors"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/clustergraph/clustergraph/errkind"
	"github.com/clustergraph/clustergraph/graph/model"
	"github.com/clustergraph/clustergraph/k8s"
	"github.com/clustergraph/clustergraph/loaders"
)

func gvks(g ...schema.GroupVersionKind) []schema.GroupVersionKind { return g }

// workloadGVKs maps the kinds argument; none means all six.
func workloadGVKs(kinds []model.WorkloadKind) []schema.GroupVersionKind {
	if len(kinds) == 0 {
		kinds = model.AllWorkloadKind
	}
	out := make([]schema.GroupVersionKind, 0, len(kinds))
	for _, k := range kinds {
		out = append(out, model.WorkloadGVKs[k])
	}
	return out
}

// ownerOf resolves the workload controlling obj through the Owner loader.
func ownerOf(ctx context.Context, c *k8s.Cluster, obj any) (*model.Workload, error) {
	o, err := loaders.For(ctx).Owner.Load(ctx, loaders.ObjRef{C: c, Obj: obj})
	if err != nil || o == nil {
		return nil, err
	}
	return model.NewWorkload(c, o), nil
}

// allocation sums the requests and limits of a node's running pods.
func allocation(pods []*corev1.Pod) *model.NodeAllocation {
	a := &model.NodeAllocation{}
	for _, p := range pods {
		if k8s.Terminated(p) {
			continue
		}
		req, lim := k8s.Requests(p)
		a.CPURequestsMillis += req.CPUMillis
		a.MemoryRequestsBytes += req.MemoryBytes
		a.CPULimitsMillis += lim.CPUMillis
		a.MemoryLimitsBytes += lim.MemoryBytes
		a.Pods++
	}
	return a
}

// object is what object(id:) answers: the Kubernetes object an id names,
// from the cache for cached kinds, from the apiserver for others; null when
// it does not exist.
func (r *Resolver) object(ctx context.Context, raw string) (model.KubeObject, error) {
	id, err := model.ParseNodeID(raw)
	if err != nil || id.Stored != nil {
		return nil, err // a stored record is not a Kubernetes object
	}
	return r.objectByID(ctx, *id.Object)
}

func (r *Resolver) objectByID(ctx context.Context, id k8s.ObjectID) (model.KubeObject, error) {
	if id.GVK == k8s.GVKCluster || id.GVK == k8s.GVKNodePoolLabel {
		return nil, nil // clustergraph's own kinds: node(id:) answers them
	}
	c, obj, err := r.lookup(ctx, id)
	if obj == nil || err != nil {
		return nil, err
	}
	if p, ok := obj.(*k8s.NodePool); ok {
		// The id of an openyurt NodePool object, served as a Resource.
		if p.Object == nil {
			return nil, nil
		}
		return model.NewResource(c, p.Object), nil
	}
	// nil for a kind cached for relations only (EndpointSlices): no id of
	// one is handed out but as a Resource (AsResource), read above.
	return wrap(c, obj), nil
}

// lookup finds what id names, from the cache for cached kinds (and node
// pools), from the apiserver for others and for an object of a cached
// kind read as a Resource: nil and no error when it does not exist, an
// error for an unknown cluster or a refusal.
func (r *Resolver) lookup(ctx context.Context, id k8s.ObjectID) (c *k8s.Cluster, obj any, err error) {
	if id.AsResource {
		if c, err = r.Registry.Cluster(id.Cluster); err != nil {
			return nil, nil, err
		}
		obj, err = c.GetResource(ctx, id)
	} else {
		c, obj, err = r.Registry.Lookup(ctx, id)
		if c != nil && errors.Is(err, errkind.NotFound) && !k8s.IsCached(id.GVK) {
			obj, err = c.GetResource(ctx, id)
		}
	}
	if c != nil && errors.Is(err, errkind.NotFound) {
		return c, nil, nil
	}
	return c, obj, err
}

// node is what node(id:) answers: anything with a global id. Ids name
// where their object lives, so a refused caller is told so (FORBIDDEN)
// before any cache or the database is read, as the apiserver does; an id
// of nothing answers null.
func (r *Resolver) node(ctx context.Context, raw string) (model.Node, error) {
	id, err := model.ParseNodeID(raw)
	if err != nil {
		return nil, err
	}
	if id.Stored != nil {
		return r.storedNode(ctx, *id.Stored)
	}
	switch oid := *id.Object; oid.GVK {
	case k8s.GVKCluster:
		c, err := r.Registry.Cluster(oid.Cluster)
		if err != nil || oid.Name != c.Name {
			return nil, nil // as cluster(name:) answers
		}
		return &model.Cluster{C: c}, nil
	case k8s.GVKNodePoolLabel:
		c, obj, err := r.lookup(ctx, oid)
		if obj == nil || err != nil {
			return nil, err
		}
		return &model.NodePool{C: c, P: obj.(*k8s.NodePool)}, nil
	}
	o, err := r.objectByID(ctx, *id.Object)
	if o == nil {
		return nil, err // a nil KubeObject must not become a non-nil Node
	}
	return o, err
}

// storedNode reads a stored record by id through the loaders, which decide
// from the id whether the caller may read it.
func (r *Resolver) storedNode(ctx context.Context, id model.StoredID) (model.Node, error) {
	key := loaders.RecordKey{Cluster: id.Cluster, Namespace: id.Namespace, Unit: id.Unit, Key: id.Key}
	switch id.Kind {
	case model.StoredAlert:
		a, err := loaders.For(ctx).Alert.Load(ctx, key)
		if a == nil {
			return nil, err
		}
		return model.NewAlert(*a), nil
	default: // model.StoredMetering; ParseNodeID knows no other kind
		m, err := loaders.For(ctx).MeteringRecord.Load(ctx, key)
		if m == nil {
			return nil, err
		}
		return &model.MeteringRecord{R: *m}, nil
	}
}

// ownedBy reports whether a pod belongs to a workload, through the owner
// chain the Pod.owner field follows (or a CronJob's Jobs).
func ownedBy(ctx context.Context, c *k8s.Cluster, pod, workload any) bool {
	owner := c.OwnerWorkload(ctx, pod)
	for range 2 {
		if owner == nil {
			return false
		}
		if owner == workload {
			return true
		}
		owner = c.OwnerWorkload(ctx, owner)
	}
	return false
}

// viewerNamespaces serves the namespaces a caller may use: the whole object
// where they may get it, else only its name (holding a rule in a namespace
// does not grant reading the Namespace object itself).
func viewerNamespaces(v *model.ViewerCluster, nss []*corev1.Namespace) []*model.Namespace {
	out := make([]*model.Namespace, len(nss))
	for i, ns := range nss {
		if !v.A.Allows("get", schema.GroupResource{Resource: "namespaces"}, "", ns.Name) {
			ns = &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns.Name}}
		}
		out[i] = model.NewNamespace(v.C, ns)
	}
	return out
}

// nodeOf reads a node straight from the cache: a map lookup costs less than
// a loader's batch window and memo (a page of pods names a few nodes, each
// many times). A node the cache lacks, or the caller may not read, is null.
func (r *Resolver) nodeOf(ctx context.Context, c *k8s.Cluster, name string) (*corev1.Node, error) {
	o, err := c.Get(ctx, k8s.GVKNode, "", name)
	if err != nil {
		return nil, nil
	}
	return o.(*corev1.Node), nil
}
