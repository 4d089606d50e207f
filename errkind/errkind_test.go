package errkind

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

// wrapper stands for a room's own error type around a kind (as
// k8s.ClusterError is).
type wrapper struct{ err error }

func (w wrapper) Error() string { return "in a room: " + w.err.Error() }
func (w wrapper) Unwrap() error { return w.err }

func TestCode(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		code string
		kind error
	}{
		{"unauthenticated", Unauthenticated, CodeUnauthenticated, Unauthenticated},
		{"forbidden", Forbidden, CodeForbidden, Forbidden},
		{"not found", NotFound, CodeNotFound, NotFound},
		{"bad input", BadInput, CodeBadUserInput, BadInput},
		{"conflict", Conflict, CodeConflict, Conflict},
		{"unavailable", Unavailable, CodeUnavailable, Unavailable},
		{"wrapped with %w", fmt.Errorf("pod x: %w", NotFound), CodeNotFound, NotFound},
		{"Newf", Newf(Forbidden, "you may not read %s", "pods"), CodeForbidden, Forbidden},
		{"BadInputf", BadInputf("first must be 0 to %d", 500), CodeBadUserInput, BadInput},
		{"a room's type around a kind", wrapper{Newf(Conflict, "changed")}, CodeConflict, Conflict},
		{"a named error of a kind, wrapped", fmt.Errorf("%w: dial: refused", Newf(Unavailable, "database unavailable")), CodeUnavailable, Unavailable},
		{"deadline", fmt.Errorf("list: %w", context.DeadlineExceeded), CodeUnavailable, Unavailable},
		{"canceled", context.Canceled, CodeUnavailable, Unavailable},
		{"no kind", errors.New("boom"), CodeInternal, nil},
		{"Newf without a kind", Newf(nil, "redacted"), CodeInternal, nil},
		{"nil", nil, CodeInternal, nil},
		// Two kinds: the table's order decides, the same way every time.
		{"two kinds", fmt.Errorf("%w and %w", NotFound, Forbidden), CodeForbidden, Forbidden},
	} {
		if got := Code(tc.err); got != tc.code {
			t.Errorf("%s: Code = %s, want %s", tc.name, got, tc.code)
		}
		if got := Of(tc.err); got != tc.kind {
			t.Errorf("%s: Of = %v, want %v", tc.name, got, tc.kind)
		}
	}
}

// TestNewfKeepsMessage: the client sees the message alone, not the kind's
// text in front of it.
func TestNewfKeepsMessage(t *testing.T) {
	if got := Newf(NotFound, "no cluster %q", "x").Error(); got != `no cluster "x"` {
		t.Errorf("message %q", got)
	}
}

// TestEveryKindHasItsOwnCode: no two kinds share a code, and every kind
// has one other than INTERNAL.
func TestEveryKindHasItsOwnCode(t *testing.T) {
	seen := map[string]error{}
	for _, k := range []error{Unauthenticated, Forbidden, NotFound, BadInput, Conflict, Unavailable} {
		c := Code(k)
		if c == CodeInternal {
			t.Errorf("%v has no code", k)
		}
		if other, ok := seen[c]; ok {
			t.Errorf("%v and %v share %s", k, other, c)
		}
		seen[c] = k
	}
}
