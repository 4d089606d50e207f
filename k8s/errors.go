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
	// ErrForbidden means the caller may not see what it asked for.
	ErrForbidden = errors.New("forbidden")
	// ErrConflict means the object changed since the version the caller
	// expected, or another manager owns the fields.
	ErrConflict = errors.New("conflict")
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

// codedError is a message that errors.Is matches against one of the
// sentinels, without the sentinel's text in the message clients see.
type codedError struct {
	kind error
	msg  string
}

func (e *codedError) Error() string { return e.msg }
func (e *codedError) Unwrap() error { return e.kind }

// coded formats a message that matches the sentinel kind.
func coded(kind error, format string, args ...any) error {
	return &codedError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// BadInput formats a message that matches ErrBadInput.
func BadInput(format string, args ...any) error { return coded(ErrBadInput, format, args...) }
