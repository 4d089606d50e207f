package model

import "github.com/clustergraph/clustergraph/k8s"

// ResourceEvent is one change a watch delivers.
type ResourceEvent struct {
	Type   ResourceEventType
	C      *k8s.Cluster
	Object KubeObject
	Cursor string
	// Error says why the stream ended, on ENDED.
	Error *MutationError
}

// Cluster is the cluster of the change.
func (e *ResourceEvent) Cluster() *Cluster { return &Cluster{C: e.C} }
