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
	NamespaceConnection             = Connection[*Namespace]
	NamespaceEdge                   = Edge[*Namespace]
	NodeConnection                  = Connection[*Node]
	NodeEdge                        = Edge[*Node]
	NodePoolConnection              = Connection[*NodePool]
	NodePoolEdge                    = Edge[*NodePool]
	WorkloadConnection              = Connection[*Workload]
	WorkloadEdge                    = Edge[*Workload]
	PodConnection                   = Connection[*Pod]
	PodEdge                         = Edge[*Pod]
	ServiceConnection               = Connection[*Service]
	ServiceEdge                     = Edge[*Service]
	IngressConnection               = Connection[*Ingress]
	IngressEdge                     = Edge[*Ingress]
	EventConnection                 = Connection[*Event]
	EventEdge                       = Edge[*Event]
	PersistentVolumeClaimConnection = Connection[*PersistentVolumeClaim]
	PersistentVolumeClaimEdge       = Edge[*PersistentVolumeClaim]
	MetadataObjectConnection        = Connection[*MetadataObject]
	MetadataObjectEdge              = Edge[*MetadataObject]
	ResourceConnection              = Connection[*Resource]
	ResourceEdge                    = Edge[*Resource]
)
