package k8s

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestHubOffersChangesByNamespace: a change goes into the buffers of its
// namespace's subscribers and of those watching every namespace, not into
// other namespaces' or other resources' buffers.
func TestHubOffersChangesByNamespace(t *testing.T) {
	h := newHub()
	sub := func(r resource, ns string) *subscriber {
		s := &subscriber{key: subKey{r: r, ns: ns}, ch: make(chan *Change, 4)}
		h.add(s)
		return s
	}
	shop, data, all, nodes := sub(resPods, "shop"), sub(resPods, "data"), sub(resPods, ""), sub(resNodes, "")
	c := &Cluster{Name: "a"}
	h.publish(c, resPods, Added, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"}})
	h.publish(c, resNodes, Added, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}})
	for _, x := range []struct {
		name string
		s    *subscriber
		want int
	}{{"shop", shop, 1}, {"data", data, 0}, {"all namespaces", all, 1}, {"nodes", nodes, 1}} {
		if got := len(x.s.ch); got != x.want {
			t.Errorf("%s: %d changes buffered, want %d", x.name, got, x.want)
		}
	}
	h.remove(shop)
	h.remove(data)
	if _, ok := h.subs[subKey{r: resPods, ns: "shop"}]; ok {
		t.Errorf("an emptied namespace's set stays in the hub")
	}
}
