package k8s

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// Relationship lookups over the indexes. Each is one or two index reads;
// loaders call them once per distinct key in a request.

// PodsOfNode returns the pods scheduled on a node.
func (c *Cluster) PodsOfNode(ctx context.Context, node string) []*corev1.Pod {
	return pods(c.byIndex(ctx, resPods, IndexNode, node))
}

// PodsOwnedBy returns the pods owned by a workload, through its ReplicaSets
// (Deployment) or Jobs (CronJob) where pods are owned one level down.
func (c *Cluster) PodsOwnedBy(ctx context.Context, workload any) []*corev1.Pod {
	m, err := metaOf(workload)
	if err != nil {
		return nil
	}
	uid := string(m.GetUID())
	switch workload.(type) {
	case *appsv1.Deployment:
		var out []*corev1.Pod
		for _, rs := range c.byIndex(ctx, resReplicaSets, IndexOwner, uid) {
			out = append(out, pods(c.byIndex(ctx, resPods, IndexOwner, string(rs.(*appsv1.ReplicaSet).UID)))...)
		}
		return out
	case *batchv1.CronJob:
		var out []*corev1.Pod
		for _, j := range c.byIndex(ctx, resJobs, IndexOwner, uid) {
			out = append(out, pods(c.byIndex(ctx, resPods, IndexOwner, string(j.(*batchv1.Job).UID)))...)
		}
		return out
	}
	return pods(c.byIndex(ctx, resPods, IndexOwner, uid))
}

// OwnerWorkload returns the workload that controls obj, walking up one
// ReplicaSet to its Deployment for pods, so a Deployment's pod answers with
// the Deployment. It returns nil when there is none in the cache.
func (c *Cluster) OwnerWorkload(ctx context.Context, obj any) any {
	m, err := metaOf(obj)
	if err != nil {
		return nil
	}
	ref := metav1.GetControllerOfNoCopy(m)
	if ref == nil {
		return nil
	}
	gvk := schemaGVK(ref)
	if _, ok := resourceOfGVK[gvk]; !ok {
		return nil
	}
	owner, err := c.Get(ctx, gvk, m.GetNamespace(), ref.Name)
	if err != nil || ownerUID(owner) != ref.UID {
		return nil
	}
	if _, isPod := obj.(*corev1.Pod); isPod {
		if rs, ok := owner.(*appsv1.ReplicaSet); ok {
			if d := c.OwnerWorkload(ctx, rs); d != nil {
				return d
			}
		}
	}
	return owner
}

func ownerUID(obj any) types.UID {
	m, err := metaOf(obj)
	if err != nil {
		return ""
	}
	return m.GetUID()
}

// PodsSelectedBy returns the pods of a namespace matching a selector map
// (a Service's selector). An empty selector selects nothing, as for Services.
func (c *Cluster) PodsSelectedBy(ctx context.Context, namespace string, selector map[string]string) []*corev1.Pod {
	if len(selector) == 0 {
		return nil
	}
	sel := labels.SelectorFromSet(selector)
	var out []*corev1.Pod
	for _, p := range pods(c.byIndex(ctx, resPods, IndexNamespace, namespace)) {
		if sel.Matches(labels.Set(p.Labels)) {
			out = append(out, p)
		}
	}
	return out
}

// EndpointSlicesOf returns the EndpointSlices of a service.
func (c *Cluster) EndpointSlicesOf(ctx context.Context, namespace, service string) []*discoveryv1.EndpointSlice {
	objs := c.byIndex(ctx, resEndpointSlices, IndexService, namespace+"/"+service)
	out := make([]*discoveryv1.EndpointSlice, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.(*discoveryv1.EndpointSlice))
	}
	return out
}

// IngressServiceNames returns the names of the services an ingress routes
// to, in rule order, without duplicates.
func IngressServiceNames(ing *networkingv1.Ingress) []string {
	var out []string
	seen := map[string]bool{}
	add := func(b *networkingv1.IngressBackend) {
		if b != nil && b.Service != nil && !seen[b.Service.Name] {
			seen[b.Service.Name] = true
			out = append(out, b.Service.Name)
		}
	}
	add(ing.Spec.DefaultBackend)
	for _, r := range ing.Spec.Rules {
		if r.HTTP == nil {
			continue
		}
		for i := range r.HTTP.Paths {
			add(&r.HTTP.Paths[i].Backend)
		}
	}
	return out
}

func pods(objs []any) []*corev1.Pod {
	out := make([]*corev1.Pod, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.(*corev1.Pod))
	}
	return out
}

func schemaGVK(ref *metav1.OwnerReference) schema.GroupVersionKind {
	return schema.FromAPIVersionAndKind(ref.APIVersion, ref.Kind)
}
