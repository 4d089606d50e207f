package k8s

import (
	"errors"
	"fmt"
)

// Sentinel errors. The GraphQL edge maps them to extensions.code; everything
// else is INTERNAL.
var (
	// ErrNotFound means a cluster, object or resource does not exist.
	ErrNotFound = errors.New("not found")
	// ErrBadInput means the caller sent something malformed.
	ErrBadInput = errors.New("bad input")
	// ErrUnavailable means a cluster cannot be read right now.
	ErrUnavailable = errors.New("unavailable")
)

// ClusterError ties an error to the cluster it happened in, so the edge can
// name the cluster in the error's extensions.
type ClusterError struct {
	Cluster string
	Err     error
}

func (e *ClusterError) Error() string { return fmt.Sprintf("cluster %q: %v", e.Cluster, e.Err) }

// Unwrap lets errors.Is see the sentinel inside.
func (e *ClusterError) Unwrap() error { return e.Err }

// badInput wraps a message as ErrBadInput.
func badInput(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadInput, fmt.Sprintf(format, args...))
}
