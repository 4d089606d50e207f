package api_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/clustergraph/clustergraph/api"
	"github.com/clustergraph/clustergraph/internal/testenv"
	"github.com/clustergraph/clustergraph/k8s"
)

// TestQueryCostCannotBeDodged: the ways around the query limits that the
// security review found (issue 15) are refused through the real handler
// with BAD_USER_INPUT. A request that hangs fails the test at its deadline.
func TestQueryCostCannotBeDodged(t *testing.T) {
	cs := testenv.Clusters(t)
	// No health probes: the refusals must make no apiserver request, and
	// a probe landing during one would count.
	s := startServer(t, serverOpts{kubeconfigs: kubeconfigs(cs), waitReady: true, probeInterval: time.Hour})
	cluster := cs[0].Context
	const maxComplexity = 250000 // api.Limits' default

	t.Run("estimate", func(t *testing.T) {
		for name, q := range map[string]string{
			// ~1.3 KB; 2^32 copies of its first fragment.
			"nested-fragment bomb, 32 levels": api.FragmentBomb(32),
			"1,400 aliased topologies":        api.AliasedTopology(cluster, 1400),
		} {
			t.Run(name, func(t *testing.T) {
				before := s.requests.Load()
				r := postWithin(t, s, q, nil)
				if len(r.Errors) != 1 || r.Errors[0].Extensions["code"] != "BAD_USER_INPUT" {
					t.Fatalf("errors %+v, want one BAD_USER_INPUT", r.Errors)
				}
				ext := r.Errors[0].Extensions
				if c, _ := ext["complexity"].(float64); c <= maxComplexity || ext["maxComplexity"] != float64(maxComplexity) {
					t.Errorf("extensions %v, want the estimate (over %d) and maxComplexity %d", ext, maxComplexity, maxComplexity)
				}
				if string(r.Data) != "" && string(r.Data) != "null" {
					t.Errorf("data %s, want none: no resolver may run", r.Data)
				}
				if n := s.requests.Load() - before; n != 0 {
					t.Errorf("%d apiserver requests", n)
				}
			})
		}
	})

	t.Run("selectors", func(t *testing.T) {
		// The review's selector was 1 MiB; this one is just under the
		// body limit, so the body is read and the selector reaches the
		// parser: 500,000 requirements.
		huge := strings.Repeat("a,", 500_000)[:999_999]
		for _, tc := range []struct {
			name, filter, selector, says string
		}{
			{"a huge label selector", "labelSelector", huge, fmt.Sprintf("the label selector is 999999 bytes long; the limit is %d bytes", k8s.MaxSelectorBytes)},
			{"a huge field selector", "fieldSelector", strings.Repeat("spec.nodeName=x,", 1000), fmt.Sprintf("the field selector is 16000 bytes long; the limit is %d bytes", k8s.MaxSelectorBytes)},
			{"a label selector of 101 requirements", "labelSelector", strings.Repeat("a,", 100) + "a", fmt.Sprintf("the label selector has 101 requirements (each value of an in or notin set counts as one); the limit is %d", k8s.MaxSelectorTerms)},
		} {
			t.Run(tc.name, func(t *testing.T) {
				// Aliased twice: each alias is refused on its own.
				q := fmt.Sprintf(`query($s: String) { a: pods(filter: {%[1]s: $s}) { totalCount } b: pods(filter: {%[1]s: $s}) { totalCount } }`, tc.filter)
				r := postWithin(t, s, q, map[string]any{"s": tc.selector})
				if len(r.Errors) != 2 {
					t.Fatalf("errors %+v, want one per alias", r.Errors)
				}
				for _, e := range r.Errors {
					if e.Extensions["code"] != "BAD_USER_INPUT" || !strings.Contains(e.Message, tc.says) {
						t.Errorf("error %+v, want BAD_USER_INPUT saying %q", e, tc.says)
					}
					if len(e.Message) > 1000 {
						t.Errorf("the message quotes the selector (%d bytes)", len(e.Message))
					}
				}
			})
		}
	})
}

// postWithin posts a query within a deadline (see doWithin).
func postWithin(t *testing.T, s *server, query string, vars map[string]any) response {
	t.Helper()
	return s.doWithin(t, 2*time.Minute, query, vars)
}
