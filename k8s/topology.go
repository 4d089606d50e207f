package k8s

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TopologyNode is an object in the topology graph.
type TopologyNode struct {
	ID      ObjectID
	Kind    string
	Status  string
	Healthy bool
	Name    string
	// Namespace is empty for cluster-scoped objects.
	Namespace string
}

// TopologyEdge relates two objects of the graph.
type TopologyEdge struct {
	From, To ObjectID
	// Type is OWNS, SELECTS, ROUTES or RUNS_ON.
	Type string
}

var topologyKinds = []resource{resDeployments, resStatefulSets, resDaemonSets, resReplicaSets, resJobs, resCronJobs, resPods, resServices, resIngresses}

// Topology returns the object graph of the cluster, or of one namespace
// together with the nodes its pods run on.
func (c *Cluster) Topology(ctx context.Context, namespace string) ([]TopologyNode, []TopologyEdge, error) {
	ok, warn := c.readable()
	if !ok {
		return nil, nil, warn
	}
	var nodes []TopologyNode
	var edges []TopologyEdge
	present := map[ObjectID]bool{}
	add := func(obj any) ObjectID {
		id := c.IDOf(obj)
		if !present[id] {
			present[id] = true
			m, _ := metaOf(obj)
			status := StatusOf(obj)
			if p, ok := obj.(*corev1.Pod); ok {
				status = PodStatus(p)
			}
			nodes = append(nodes, TopologyNode{ID: id, Kind: id.GVK.Kind, Name: m.GetName(), Namespace: m.GetNamespace(), Status: status, Healthy: Healthy(obj)})
		}
		return id
	}
	if warn == nil {
		warn = c.unreadable(append([]resource{resNodes}, topologyKinds...))
	}
	var objs []any
	for _, r := range topologyKinds {
		if namespace == "" {
			objs = append(objs, c.all(ctx, r)...)
		} else {
			objs = append(objs, c.byIndex(ctx, r, IndexNamespace, namespace)...)
		}
	}
	if namespace == "" {
		for _, n := range c.all(ctx, resNodes) {
			add(n)
		}
	}
	for _, o := range objs {
		add(o)
	}
	for _, o := range objs {
		id := c.IDOf(o)
		m, _ := metaOf(o)
		if ref := metav1.GetControllerOfNoCopy(m); ref != nil {
			owner := ObjectID{Cluster: c.Name, GVK: schemaGVK(ref), Namespace: m.GetNamespace(), Name: ref.Name}
			if present[owner] {
				edges = append(edges, TopologyEdge{From: owner, To: id, Type: "OWNS"})
			}
		}
		switch v := o.(type) {
		case *corev1.Pod:
			if v.Spec.NodeName == "" {
				continue
			}
			if n := c.visibleByKey(ctx, resNodes, v.Spec.NodeName); n != nil {
				edges = append(edges, TopologyEdge{From: id, To: add(n), Type: "RUNS_ON"})
			}
		case *corev1.Service:
			for _, p := range c.PodsSelectedBy(ctx, v.Namespace, v.Spec.Selector) {
				edges = append(edges, TopologyEdge{From: id, To: c.IDOf(p), Type: "SELECTS"})
			}
		case *networkingv1.Ingress:
			for _, name := range IngressServiceNames(v) {
				to := ObjectID{Cluster: c.Name, GVK: GVKService, Namespace: v.Namespace, Name: name}
				if present[to] {
					edges = append(edges, TopologyEdge{From: id, To: to, Type: "ROUTES"})
				}
			}
		}
	}
	return nodes, edges, warn
}

// visibleByKey returns the cached object of a resource under a store key
// when the visibility rule shows it, else nil. Topology is an aggregate:
// a node a pod runs on joins the graph only if the caller could list it,
// not merely get it by name (see the package doc).
func (c *Cluster) visibleByKey(ctx context.Context, r resource, key string) any {
	o, exists, err := c.caches.store(r).GetByKey(key)
	if err != nil || !exists {
		return nil
	}
	if seen := c.visible(ctx, r, []any{o}); len(seen) == 1 {
		return seen[0]
	}
	return nil
}

// IDOf returns the global id of an object of this cluster.
func (c *Cluster) IDOf(obj any) ObjectID {
	m, err := metaOf(obj)
	if err != nil {
		return ObjectID{Cluster: c.Name}
	}
	gvk := GVKOf(obj)
	if _, ok := obj.(*NodePool); ok {
		// One id per pool, whatever defines it: an openyurt pool's object
		// has its own (a Resource), and global ids name one thing each.
		gvk = GVKNodePoolLabel
	}
	return ObjectID{Cluster: c.Name, GVK: gvk, Namespace: m.GetNamespace(), Name: m.GetName()}
}
