package api_test

import (
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/clustergraph/clustergraph/internal/testenv"
	"github.com/clustergraph/clustergraph/k8s"
)

// TestSystemIdentityIsLocal: a node's identity authenticated by the
// identity cluster (cg-a) reads and does nothing in another cluster
// (cg-b), although cg-b's apiserver grants that name everything (a
// binding here; a Node authorizer grants node names by themselves); in
// cg-a it gets what cg-a grants.
func TestSystemIdentityIsLocal(t *testing.T) {
	cs := testenv.Clusters(t)
	a, b := cs[0], cs[1]
	const user = "system:node:node-000000"
	// cg-a lets it view; cg-b binds the same name to cluster-admin.
	clusterBinding(t, a, "cg-node-identity", "view", user)
	clusterBinding(t, b, "cg-node-identity", "cluster-admin", user)
	// What cg-b's apiserver would let the name do: that is the escalation.
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: user, Groups: []string{"system:nodes", "system:authenticated"},
		ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "patch", Resource: "nodes", Name: "node-000000"},
	}}
	got, err := b.Client.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
	if err != nil || !got.Status.Allowed {
		t.Fatalf("cg-b's apiserver does not let the node patch itself (%v %+v); the test proves nothing", err, got.Status)
	}
	s := startServer(t, serverOpts{kubeconfigs: kubeconfigs(cs), waitReady: true, auth: true}).as(testenv.StaticTokens["node"])
	var viewer struct{ Viewer struct{ Username string } }
	s.query(t, `{ viewer { username } }`, nil, &viewer)
	if viewer.Viewer.Username != user {
		t.Fatalf("viewer %q, want %q", viewer.Viewer.Username, user)
	}
	count := func(cluster string) int {
		var out struct{ Pods, Nodes struct{ TotalCount int } }
		s.query(t, `query($c: [String!]) { pods(clusters: $c) { totalCount } nodes(clusters: $c) { totalCount } }`, map[string]any{"c": []string{cluster}}, &out)
		return out.Pods.TotalCount + out.Nodes.TotalCount
	}
	if n := count(a.Context); n == 0 {
		t.Errorf("in its own cluster the node identity sees nothing, though cg-a grants it view")
	}
	if n := count(b.Context); n != 0 {
		t.Errorf("in cg-b the node identity of cg-a sees %d objects", n)
	}
	// Should the rule fail, the node must not stay cordoned for the tests
	// that follow.
	t.Cleanup(func() {
		_, _ = b.Client.CoreV1().Nodes().Patch(ctx, "node-000000", types.MergePatchType, []byte(`{"spec":{"unschedulable":null}}`), metav1.PatchOptions{})
	})
	id := k8s.ObjectID{Cluster: b.Context, GVK: k8s.GVKNode, Name: "node-000000"}.Encode()
	r := s.do(t, `mutation($id: ID!) { cordon(id: $id) { node { name } } }`, map[string]any{"id": id})
	if len(r.Errors) == 0 || r.Errors[0].Extensions["code"] != "FORBIDDEN" {
		t.Errorf("cordon in cg-b as cg-a's node: %s %+v, want FORBIDDEN", r.Data, r.Errors)
	}
	n, err := b.Client.CoreV1().Nodes().Get(ctx, "node-000000", metav1.GetOptions{})
	if err != nil || n.Spec.Unschedulable {
		t.Errorf("cg-b's node was cordoned: %v", err)
	}
}

// TestFleetWideSystemIdentity: a system identity the install names
// (--fleet-wide-system-users) acts in every cluster, as the member
// clusters' own RBAC allows.
func TestFleetWideSystemIdentity(t *testing.T) {
	cs := testenv.Clusters(t)
	b := cs[1]
	const user = "system:node:node-000000"
	clusterBinding(t, b, "cg-node-fleet", "view", user)
	for _, c := range []struct {
		patterns []string
		sees     bool
	}{{nil, false}, {[]string{"system:node:*"}, true}, {[]string{user}, true}, {[]string{"system:node:other"}, false}} {
		s := startServer(t, serverOpts{kubeconfigs: kubeconfigs(cs), waitReady: true, auth: true, fleetWide: c.patterns}).as(testenv.StaticTokens["node"])
		var out struct{ Pods struct{ TotalCount int } }
		s.query(t, `query($c: [String!]) { pods(clusters: $c) { totalCount } }`, map[string]any{"c": []string{b.Context}}, &out)
		if sees := out.Pods.TotalCount > 0; sees != c.sees {
			t.Errorf("fleet-wide %q: sees %d pods in %s, want seeing: %v", c.patterns, out.Pods.TotalCount, b.Context, c.sees)
		}
	}
}
