package model

import (
	"context"
	"errors"

	"github.com/clustergraph/clustergraph/auth"
	"github.com/clustergraph/clustergraph/db"
	"github.com/clustergraph/clustergraph/k8s"
)

// Error codes clients see in extensions.code (and in MutationError.code).
const (
	CodeUnauthenticated = "UNAUTHENTICATED"
	CodeForbidden       = "FORBIDDEN"
	CodeNotFound        = "NOT_FOUND"
	CodeBadUserInput    = "BAD_USER_INPUT"
	CodeConflict        = "CONFLICT"
	CodeUnavailable     = "UNAVAILABLE"
	CodeInternal        = "INTERNAL"
)

// CodeOf maps an error to its code; errors of no known kind are INTERNAL.
func CodeOf(err error) string {
	switch {
	case errors.Is(err, auth.ErrUnauthenticated):
		return CodeUnauthenticated
	case errors.Is(err, db.ErrBadInput):
		return CodeBadUserInput
	case errors.Is(err, db.ErrNotFound):
		return CodeNotFound
	case errors.Is(err, db.ErrUnavailable):
		return CodeUnavailable
	case errors.Is(err, k8s.ErrForbidden):
		return CodeForbidden
	case errors.Is(err, k8s.ErrBadInput):
		return CodeBadUserInput
	case errors.Is(err, k8s.ErrNotFound):
		return CodeNotFound
	case errors.Is(err, k8s.ErrConflict):
		return CodeConflict
	case errors.Is(err, k8s.ErrUnavailable), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return CodeUnavailable
	}
	return CodeInternal
}

// FromError is the API form of one part's failure. Internal errors keep
// their details out, as the error presenter does.
func FromError(err error) *MutationError {
	code := CodeOf(err)
	msg := err.Error()
	if code == CodeInternal {
		msg = "internal error"
	}
	return &MutationError{Message: msg, Code: code}
}
