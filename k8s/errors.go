package k8s

import (
	"fmt"
)

// ClusterError ties an error to the cluster it happened in, so the edge can
// name the cluster in the error's extensions.
type ClusterError struct {
	Cluster string
	Err     error
}

func (e *ClusterError) Error() string { return fmt.Sprintf("cluster %s: %v", e.Cluster, e.Err) }

// Unwrap lets errors.Is see the sentinel inside.
func (e *ClusterError) Unwrap() error { return e.Err }
