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

// object fetches any object by id: from the cache for cached kinds, from
// the apiserver for others. An object that does not exist is null.
func (r *Resolver) object(ctx context.Context, raw string) (model.KubeObject, error) {
	id, err := k8s.ParseID(raw)
	if err != nil {
		return nil, err
	}
	c, obj, err := r.Registry.Lookup(ctx, id)
	if c != nil && errors.Is(err, errkind.NotFound) && !k8s.IsCached(id.GVK) {
		obj, err = c.GetResource(ctx, id)
	}
	switch {
	case c == nil:
		return nil, err // unknown cluster
	case errors.Is(err, errkind.NotFound):
		return nil, nil
	case err != nil:
		return nil, err
	}
	if p, ok := obj.(*k8s.NodePool); ok {
		// Node pools are not Kubernetes objects of their own when derived
		// from labels; the openyurt object is served as a Resource.
		if p.Object != nil {
			return model.NewResource(c, p.Object), nil
		}
		return nil, nil
	}
	return wrap(c, obj), nil
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
