package model

// Connection is a page of a list: the shape every XConnection type shares.
type Connection[T any] struct {
	TotalCount int
	PageInfo   *PageInfo
	Nodes      []T
	// Cursor is the cursor of Nodes[i], computed only when a client asks
	// for edges: most list queries never do.
	Cursor func(i int) string
}

// Edge pairs a node with its cursor.
type Edge[T any] struct {
	Cursor string
	Node   T
}

// Edges pairs each node with its cursor.
func (c *Connection[T]) Edges() []*Edge[T] {
	out := make([]*Edge[T], len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = &Edge[T]{Cursor: c.Cursor(i), Node: n}
	}
	return out
}

// The connection and edge types of the schema.
type (
	// NamespaceConnection is a page of Namespaces.
	NamespaceConnection = Connection[*Namespace]
	// NamespaceEdge is one Namespace of a page, with its cursor.
	NamespaceEdge = Edge[*Namespace]
	// KubeNodeConnection is a page of KubeNodes.
	KubeNodeConnection = Connection[*KubeNode]
	// KubeNodeEdge is one KubeNode of a page, with its cursor.
	KubeNodeEdge = Edge[*KubeNode]
	// NodePoolConnection is a page of NodePools.
	NodePoolConnection = Connection[*NodePool]
	// NodePoolEdge is one NodePool of a page, with its cursor.
	NodePoolEdge = Edge[*NodePool]
	// WorkloadConnection is a page of Workloads.
	WorkloadConnection = Connection[*Workload]
	// WorkloadEdge is one Workload of a page, with its cursor.
	WorkloadEdge = Edge[*Workload]
	// PodConnection is a page of Pods.
	PodConnection = Connection[*Pod]
	// PodEdge is one Pod of a page, with its cursor.
	PodEdge = Edge[*Pod]
	// ServiceConnection is a page of Services.
	ServiceConnection = Connection[*Service]
	// ServiceEdge is one Service of a page, with its cursor.
	ServiceEdge = Edge[*Service]
	// IngressConnection is a page of Ingresss.
	IngressConnection = Connection[*Ingress]
	// IngressEdge is one Ingress of a page, with its cursor.
	IngressEdge = Edge[*Ingress]
	// EventConnection is a page of Events.
	EventConnection = Connection[*Event]
	// EventEdge is one Event of a page, with its cursor.
	EventEdge = Edge[*Event]
	// PersistentVolumeClaimConnection is a page of PersistentVolumeClaims.
	PersistentVolumeClaimConnection = Connection[*PersistentVolumeClaim]
	// PersistentVolumeClaimEdge is one PersistentVolumeClaim of a page, with its cursor.
	PersistentVolumeClaimEdge = Edge[*PersistentVolumeClaim]
	// MetadataObjectConnection is a page of MetadataObjects.
	MetadataObjectConnection = Connection[*MetadataObject]
	// MetadataObjectEdge is one MetadataObject of a page, with its cursor.
	MetadataObjectEdge = Edge[*MetadataObject]
	// ResourceConnection is a page of Resources.
	ResourceConnection = Connection[*Resource]
	// ResourceEdge is one Resource of a page, with its cursor.
	ResourceEdge = Edge[*Resource]
)
