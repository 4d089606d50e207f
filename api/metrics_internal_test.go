package api

import (
	"testing"

	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/clustergraph/clustergraph/metrics"
)

// TestOperationNamesBounded: with an allowlist, the operation series know
// its operations' names and no other; without, the first names seen.
func TestOperationNamesBounded(t *testing.T) {
	m := newOperationMetrics(map[string]string{
		queryHash("query Pods { clusters { name } }"):                     "query Pods { clusters { name } }",
		queryHash("subscription Watch { watch(kind: \"Pod\") { type } }"): "subscription Watch { watch(kind: \"Pod\") { type } }",
	})
	for name, want := range map[string]string{"Pods": "Pods", "Watch": "Watch", "Stolen-token-abc": metrics.Other, "": ""} {
		if got := m.names.Label(name); got != want {
			t.Errorf("with an allowlist, %q is labelled %q, want %q", name, got, want)
		}
	}
	open := newOperationMetrics(nil)
	for i := range maxOperationNames {
		open.names.Label(string(rune('a'+i%26)) + string(rune('a'+i/26)))
	}
	if got := open.names.Label("OneTooMany"); got != metrics.Other {
		t.Errorf("name %d is labelled %q, want %q", maxOperationNames+1, got, metrics.Other)
	}
}

// TestResultCode: an operation's code is its first error's, bounded to
// the codes clustergraph sends.
func TestResultCode(t *testing.T) {
	coded := func(code any) *gqlerror.Error {
		return &gqlerror.Error{Message: "x", Extensions: map[string]any{"code": code}}
	}
	for _, c := range []struct {
		errs gqlerror.List
		want string
	}{
		{nil, "OK"},
		{gqlerror.List{coded("FORBIDDEN"), coded("NOT_FOUND")}, "FORBIDDEN"},
		{gqlerror.List{coded(CodePersistedQueryNotFound)}, CodePersistedQueryNotFound},
		{gqlerror.List{coded("SOMETHING_A_CLIENT_MADE_UP")}, "OTHER"},
		{gqlerror.List{{Message: "no extensions"}}, "OTHER"},
	} {
		if got := resultCode(c.errs); got != c.want {
			t.Errorf("resultCode(%v) = %s, want %s", c.errs, got, c.want)
		}
	}
}
