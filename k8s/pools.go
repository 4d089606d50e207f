package k8s

import (
	"context"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// openyurtPoolLabel is the label openyurt puts on the nodes of a NodePool.
const openyurtPoolLabel = "apps.openyurt.io/nodepool"

// PoolLabels are the well-known node labels that name a node's pool, in the
// order they are tried: openyurt, GKE, EKS (managed and eksctl), AKS, kops,
// Cluster API.
var PoolLabels = []string{
	openyurtPoolLabel,
	"apps.openyurt.io/desired-nodepool",
	"cloud.google.com/gke-nodepool",
	"eks.amazonaws.com/nodegroup",
	"alpha.eksctl.io/nodegroup-name",
	"kubernetes.azure.com/agentpool",
	"agentpool",
	"kops.k8s.io/instancegroup",
	"cluster.x-k8s.io/deployment-name",
}

// NodePool is a group of nodes: an openyurt NodePool object, or the nodes
// sharing a well-known pool label. The embedded ObjectMeta lets pools be
// filtered, sorted and paged like any object.
type NodePool struct {
	metav1.ObjectMeta
	// Label is the node label that groups the pool's nodes.
	Label string
	// Object is the openyurt NodePool, nil for label-derived pools.
	Object *unstructured.Unstructured
	// Type is the openyurt pool type (Edge, Cloud), empty otherwise.
	Type  string
	Nodes []*corev1.Node
}

// PoolOf returns the pool name and label of a node, or empty strings.
func PoolOf(n *corev1.Node) (name, label string) {
	for _, l := range PoolLabels {
		if v := n.Labels[l]; v != "" {
			return v, l
		}
	}
	return "", ""
}

// NodePools returns the cluster's pools, sorted by name: openyurt NodePool
// objects when the cluster serves them, else pools derived from node labels.
// It is computed from the caches on each call (one pass over the nodes).
func (c *Cluster) NodePools(ctx context.Context) []*NodePool {
	byName := map[string]*NodePool{}
	if c.caches.store(resNodePools) != nil {
		for _, o := range c.all(ctx, resNodePools) {
			u := o.(*unstructured.Unstructured)
			t, _, _ := unstructured.NestedString(u.Object, "spec", "type")
			byName[u.GetName()] = &NodePool{
				ObjectMeta: metav1.ObjectMeta{Name: u.GetName(), Labels: u.GetLabels(), CreationTimestamp: u.GetCreationTimestamp(), UID: u.GetUID()},
				Label:      openyurtPoolLabel, Object: u, Type: t,
			}
		}
	}
	openyurt := len(byName) > 0
	for _, o := range c.all(ctx, resNodes) {
		n := o.(*corev1.Node)
		var name, label string
		if openyurt {
			name, label = n.Labels[openyurtPoolLabel], openyurtPoolLabel
		} else {
			name, label = PoolOf(n)
		}
		if name == "" {
			continue
		}
		p := byName[name]
		if p == nil {
			p = &NodePool{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: n.CreationTimestamp}, Label: label}
			byName[name] = p
		}
		// A derived pool is as old as its oldest node.
		if p.Object == nil && n.CreationTimestamp.Before(&p.CreationTimestamp) {
			p.CreationTimestamp = n.CreationTimestamp
		}
		p.Nodes = append(p.Nodes, n)
	}
	out := make([]*NodePool, 0, len(byName))
	for _, p := range byName {
		slices.SortFunc(p.Nodes, func(a, b *corev1.Node) int { return strings.Compare(a.Name, b.Name) })
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *NodePool) int { return strings.Compare(a.Name, b.Name) })
	return out
}
