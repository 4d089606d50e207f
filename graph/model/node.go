package model

import (
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/clustergraph/clustergraph/k8s"
)

// Namespace is a view over a cached Namespace.
type Namespace struct {
	Object
	N *corev1.Namespace
}

// NewNamespace wraps a cached namespace.
func NewNamespace(c *k8s.Cluster, n *corev1.Namespace) *Namespace {
	return &Namespace{Object{c, n}, n}
}

// Name is the namespace's name.
func (n *Namespace) Name() string { return n.N.Name }

// Phase is Active or Terminating.
func (n *Namespace) Phase() string { return string(n.N.Status.Phase) }

// TrialExpiresAt is when the namespace's trial ends.
func (n *Namespace) TrialExpiresAt() *time.Time { return k8s.TrialExpiry(n.N) }

// KubeNode is a view over a cached Node (the GraphQL type KubeNode: Node is
// Relay's interface).
type KubeNode struct {
	Object
	N *corev1.Node
}

// NewNode wraps a cached node.
func NewNode(c *k8s.Cluster, n *corev1.Node) *KubeNode { return &KubeNode{Object{c, n}, n} }

// Name is the node's name.
func (n *KubeNode) Name() string { return n.N.Name }

// Status is Ready, NotReady or Unknown.
func (n *KubeNode) Status() string { return k8s.NodeStatus(n.N) }

// Unschedulable reports a cordoned node.
func (n *KubeNode) Unschedulable() bool { return n.N.Spec.Unschedulable }

// Roles come from node-role.kubernetes.io/<role> labels (and the older
// kubernetes.io/role label).
func (n *KubeNode) Roles() []string {
	var roles []string
	for k := range n.N.Labels {
		if r, ok := strings.CutPrefix(k, "node-role.kubernetes.io/"); ok && r != "" {
			roles = append(roles, r)
		}
	}
	if r := n.N.Labels["kubernetes.io/role"]; r != "" && !slices.Contains(roles, r) {
		roles = append(roles, r)
	}
	slices.Sort(roles)
	if roles == nil {
		roles = []string{}
	}
	return roles
}

// IP is the InternalIP, else the first address.
func (n *KubeNode) IP() *string {
	for _, a := range n.N.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			return &a.Address
		}
	}
	if len(n.N.Status.Addresses) > 0 {
		return &n.N.Status.Addresses[0].Address
	}
	return nil
}

// Addresses lists every address.
func (n *KubeNode) Addresses() []*NodeAddress {
	out := make([]*NodeAddress, len(n.N.Status.Addresses))
	for i, a := range n.N.Status.Addresses {
		out[i] = &NodeAddress{Type: string(a.Type), Address: a.Address}
	}
	return out
}

// Conditions are the kubelet's conditions.
func (n *KubeNode) Conditions() []*NodeCondition {
	out := make([]*NodeCondition, len(n.N.Status.Conditions))
	for i, c := range n.N.Status.Conditions {
		out[i] = &NodeCondition{Type: string(c.Type), Status: string(c.Status), Reason: optional(c.Reason), Message: optional(c.Message), LastTransitionTime: timeOf(c.LastTransitionTime)}
	}
	return out
}

// NodeInfo is what the kubelet reports of its machine.
func (n *KubeNode) NodeInfo() *NodeInfo {
	i := n.N.Status.NodeInfo
	return &NodeInfo{
		KubeletVersion: i.KubeletVersion, KubeProxyVersion: i.KubeProxyVersion, //nolint:staticcheck // still reported by many kubelets
		ContainerRuntimeVersion: i.ContainerRuntimeVersion, KernelVersion: i.KernelVersion, OsImage: i.OSImage,
		OperatingSystem: i.OperatingSystem, Architecture: i.Architecture, MachineID: i.MachineID,
	}
}

// Capacity is the node's total resources.
func (n *KubeNode) Capacity() *NodeResources { return nodeResources(n.N.Status.Capacity) }

// Allocatable is what pods may use.
func (n *KubeNode) Allocatable() *NodeResources { return nodeResources(n.N.Status.Allocatable) }

// Taints are the node's taints.
func (n *KubeNode) Taints() []*Taint {
	out := make([]*Taint, len(n.N.Spec.Taints))
	for i, t := range n.N.Spec.Taints {
		out[i] = &Taint{Key: t.Key, Value: optional(t.Value), Effect: string(t.Effect)}
	}
	return out
}

// NodePool is a view over a node pool.
type NodePool struct {
	C *k8s.Cluster
	P *k8s.NodePool
}

// ID is the pool's global id.
func (p *NodePool) ID() string { return p.C.IDOf(p.P).Encode() }

// IsNode marks the Node interface.
func (*NodePool) IsNode() {}

// Cluster is the pool's cluster.
func (p *NodePool) Cluster() *Cluster { return &Cluster{C: p.C} }

// Name is the pool's name.
func (p *NodePool) Name() string { return p.P.Name }

// Source says where the pool is defined.
func (p *NodePool) Source() NodePoolSource {
	if p.P.Object != nil {
		return NodePoolSourceOpenyurt
	}
	return NodePoolSourceLabel
}

// Type is the openyurt pool type.
func (p *NodePool) Type() *string { return optional(p.P.Type) }

// Label is the node label grouping the pool.
func (p *NodePool) Label() string { return p.P.Label }

// NodeCount is the number of nodes.
func (p *NodePool) NodeCount() int { return len(p.P.Nodes) }

// ReadyNodeCount is the number of Ready nodes.
func (p *NodePool) ReadyNodeCount() int {
	ready := 0
	for _, n := range p.P.Nodes {
		if k8s.NodeStatus(n) == "Ready" {
			ready++
		}
	}
	return ready
}

// Status is Healthy, Degraded or Empty.
func (p *NodePool) Status() string {
	switch {
	case len(p.P.Nodes) == 0:
		return "Empty"
	case p.ReadyNodeCount() == len(p.P.Nodes):
		return "Healthy"
	}
	return "Degraded"
}

// OperatingSystems are the distinct OSes of the pool's nodes.
func (p *NodePool) OperatingSystems() []string {
	out := []string{}
	for _, n := range p.P.Nodes {
		if os := n.Status.NodeInfo.OperatingSystem; os != "" && !slices.Contains(out, os) {
			out = append(out, os)
		}
	}
	slices.Sort(out)
	return out
}
