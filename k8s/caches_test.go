package k8s

import (
	"context"
	"testing"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// TestIndexNames: each index name means one thing on every informer that
// has it. EndpointSlices are indexed by their Service under IndexService;
// IndexOwner (owner uids) is not theirs.
func TestIndexNames(t *testing.T) {
	c := newCaches(context.Background(), fake.NewClientset(), nil, nil, nil)
	slices := c.informers[resEndpointSlices]
	idx := slices.GetIndexer().GetIndexers()
	if _, ok := idx[IndexOwner]; ok {
		t.Errorf("EndpointSlices have an %q index; their owner is their Service, indexed as %q", IndexOwner, IndexService)
	}
	if _, ok := idx[IndexService]; !ok {
		t.Fatalf("EndpointSlices lack the %q index: %v", IndexService, idx)
	}
	s := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "cart-x1",
		Labels: map[string]string{discoveryv1.LabelServiceName: "cart"}}}
	if err := slices.GetIndexer().Add(s); err != nil {
		t.Fatal(err)
	}
	got, err := slices.GetIndexer().ByIndex(IndexService, "shop/cart")
	if err != nil || len(got) != 1 {
		t.Errorf("ByIndex(%q, shop/cart) = %v, %v; want the slice", IndexService, got, err)
	}
	for r, inf := range c.informers {
		if _, ok := inf.GetIndexer().GetIndexers()[IndexService]; ok && r != resEndpointSlices {
			t.Errorf("%s has an %q index", r, IndexService)
		}
	}
}
