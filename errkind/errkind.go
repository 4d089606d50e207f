// Package errkind is the one set of error kinds clustergraph's rooms wrap
// (k8s, db, auth, the stream and write packages) and the one table that
// maps them to the codes clients see in extensions.code and in
// MutationError.code. It imports nothing of the project.
//
// A room returns an error that wraps a kind (fmt.Errorf("...: %w", kind),
// or Newf for a message without the kind's own text); the GraphQL edge
// asks Code. An error of no kind is INTERNAL, and its text stays out of
// the response.
package errkind

import (
	"context"
	"errors"
	"fmt"
)

// The kinds.
var (
	// Unauthenticated: no credentials, or credentials nobody vouches for.
	Unauthenticated = errors.New("unauthenticated")
	// Forbidden: the caller may not see or do what it asked for.
	Forbidden = errors.New("forbidden")
	// NotFound: a cluster, object, resource or record does not exist.
	NotFound = errors.New("not found")
	// BadInput: the caller sent something malformed or out of range.
	BadInput = errors.New("bad input")
	// Conflict: the object changed since the version the caller expected,
	// or another manager owns the fields.
	Conflict = errors.New("conflict")
	// Unavailable: a cluster or the database cannot answer right now.
	Unavailable = errors.New("unavailable")
)

// The codes clients see.
const (
	CodeUnauthenticated = "UNAUTHENTICATED"
	CodeForbidden       = "FORBIDDEN"
	CodeNotFound        = "NOT_FOUND"
	CodeBadUserInput    = "BAD_USER_INPUT"
	CodeConflict        = "CONFLICT"
	CodeUnavailable     = "UNAVAILABLE"
	CodeInternal        = "INTERNAL"
)

// codes is the mapping, first match wins. A context that ended (the
// caller's deadline, a stopped server) is UNAVAILABLE: the request may
// succeed when tried again.
var codes = []struct {
	kind error
	code string
}{
	{Unauthenticated, CodeUnauthenticated},
	{Forbidden, CodeForbidden},
	{NotFound, CodeNotFound},
	{BadInput, CodeBadUserInput},
	{Conflict, CodeConflict},
	{Unavailable, CodeUnavailable},
	{context.DeadlineExceeded, CodeUnavailable},
	{context.Canceled, CodeUnavailable},
}

// Code is the code of err: that of the first kind it wraps, else INTERNAL.
func Code(err error) string {
	for _, c := range codes {
		if errors.Is(err, c.kind) {
			return c.code
		}
	}
	return CodeInternal
}

// Of is the first kind err wraps (a context's end counts as Unavailable),
// or nil: an error of no kind, shown as INTERNAL.
func Of(err error) error {
	for _, c := range codes {
		if errors.Is(err, c.kind) {
			if c.code == CodeUnavailable {
				return Unavailable
			}
			return c.kind
		}
	}
	return nil
}

// kinded is a message that errors.Is matches against a kind, without the
// kind's own text in the message clients see.
type kinded struct {
	kind error
	msg  string
}

func (e *kinded) Error() string { return e.msg }
func (e *kinded) Unwrap() error { return e.kind }

// Newf formats a message that matches kind.
func Newf(kind error, format string, args ...any) error {
	return &kinded{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// BadInputf formats a message that matches BadInput: the most common kind.
func BadInputf(format string, args ...any) error { return Newf(BadInput, format, args...) }
