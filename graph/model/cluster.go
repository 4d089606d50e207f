package model

import "github.com/clustergraph/clustergraph/k8s"

// Cluster is a view over one registered cluster.
type Cluster struct{ C *k8s.Cluster }

// Name is the cluster's name.
func (c *Cluster) Name() string { return c.C.Name }

// ID is the cluster's global id.
func (c *Cluster) ID() string { return k8s.ClusterID(c.C.Name).Encode() }

// IsNode marks the Node interface.
func (*Cluster) IsNode() {}

// Server is the apiserver URL.
func (c *Cluster) Server() string { return c.C.Server }

// Status is a snapshot of the connection state.
func (c *Cluster) Status() *ClusterStatus {
	s := c.C.Status()
	out := &ClusterStatus{State: ClusterState(s.State), LastError: optional(s.LastError), ServerVersion: optional(s.ServerVersion)}
	if !s.LastSyncTime.IsZero() {
		out.LastSyncTime = &s.LastSyncTime
	}
	for _, k := range c.C.Kinds() {
		out.Kinds = append(out.Kinds, &KindStatus{Resource: k.Resource, State: KindState(k.State), Error: optional(k.Error)})
	}
	return out
}

// FromUsage converts a usage to its API type.
func FromUsage(u k8s.Usage) *ResourceUsage {
	return &ResourceUsage{
		CPUMillis:   u.CPUMillis,
		MemoryBytes: u.MemoryBytes,
		CPU:         milliQuantity(u.CPUMillis),
		Memory:      byteQuantity(u.MemoryBytes),
	}
}

// FromKindCounts converts overview counts to their API type.
func FromKindCounts(in []k8s.KindCount) []*KindCount {
	out := make([]*KindCount, len(in))
	for i, c := range in {
		out[i] = &KindCount{Kind: c.Kind, Total: c.Total, Healthy: c.Healthy}
	}
	return out
}

// FromTopology converts a topology graph to its API type.
func FromTopology(nodes []k8s.TopologyNode, edges []k8s.TopologyEdge) *Topology {
	t := &Topology{Nodes: make([]*TopologyNode, len(nodes)), Edges: make([]*TopologyEdge, len(edges))}
	for i, n := range nodes {
		t.Nodes[i] = &TopologyNode{ObjectID: n.ID.Encode(), Kind: n.Kind, Name: n.Name, Namespace: optional(n.Namespace), Status: n.Status, Healthy: n.Healthy}
	}
	for i, e := range edges {
		t.Edges[i] = &TopologyEdge{From: e.From.Encode(), To: e.To.Encode(), Type: e.Type}
	}
	return t
}
