package api_test

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clustergraph/clustergraph/internal/testenv"
)

// TestResourcesFirstPagesAcrossNamespaces: a first page of resources()
// across namespaces reads only as far as the apiserver's order (by storage
// key, "namespace/name" as bytes) must go to hold the page's objects in
// (namespace, name) order. The two orders differ where one namespace name
// is another's beginning followed by '-': "pfx-a/" lists before "pfx/".
// The apiserver is the oracle: for seeded random ConfigMaps in namespaces
// built to collide, every first page (and with offsets) equals its whole
// LIST sorted by namespace and name; a page that ends in the first
// namespace of both orders costs one LIST of offset+first+1.
func TestResourcesFirstPagesAcrossNamespaces(t *testing.T) {
	cs := testenv.Clusters(t)
	c := cs[0]
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	label := fmt.Sprintf("pfx-test=%d", seed%100000)
	type key struct{ ns, name string }
	var want []key
	// "pfa" sorts first in both orders; the pfx family collides.
	for _, ns := range []string{"pfa", "pfx", "pfx-a", "pfx-a-b", "pfx0", "pfxa", "pfy-1"} {
		makeNamespace(t, c, ns)
		n := 1 + rng.IntN(4)
		if ns == "pfa" {
			n = 3
		}
		for range n {
			name := fmt.Sprintf("cm-%03d", rng.IntN(1000))
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"pfx-test": strings.TrimPrefix(label, "pfx-test=")}}}
			if _, err := c.Client.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err == nil {
				want = append(want, key{ns, name})
			}
		}
	}
	slices.SortFunc(want, func(a, b key) int { return cmp.Or(strings.Compare(a.ns, b.ns), strings.Compare(a.name, b.name)) })
	// The apiserver agrees on what exists.
	l, err := c.Client.CoreV1().ConfigMaps("").List(ctx, metav1.ListOptions{LabelSelector: label})
	if err != nil || len(l.Items) != len(want) {
		t.Fatalf("the apiserver lists %d of the %d ConfigMaps made: %v", len(l.Items), len(want), err)
	}

	admin := makeUser(t, cs[:1], "cg-resources-order", func(c testenv.Cluster, u string) {
		clusterBinding(t, c, "cg-resources-order", "cluster-admin", u)
	})
	s := startServer(t, serverOpts{kubeconfigs: kubeconfigs(cs[:1]), waitReady: true, auth: true, probeInterval: time.Hour})
	as := s.as(admin.token)
	page := func(offset, first int) ([]key, []sentRequest) {
		mark := len(s.sent.since(0))
		var out struct {
			Resources struct {
				Nodes []struct {
					Metadata struct{ Name, Namespace string }
				}
			}
		}
		as.query(t, `query($sel: String, $first: Int, $offset: Int) { resources(group: "", version: "v1", resource: "configmaps", filter: {labelSelector: $sel}, first: $first, offset: $offset) { nodes { metadata { name namespace } } } }`,
			map[string]any{"sel": label, "first": first, "offset": offset}, &out)
		var got []key
		for _, n := range out.Resources.Nodes {
			got = append(got, key{n.Metadata.Namespace, n.Metadata.Name})
		}
		var lists []sentRequest
		for _, r := range s.sent.since(mark) {
			if strings.HasSuffix(r.Path, "/configmaps") && r.Query.Get("watch") != "true" {
				lists = append(lists, r)
			}
		}
		return got, lists
	}
	for offset := range 3 {
		for first := 1; offset+first <= len(want)+1; first++ {
			got, _ := page(offset, first)
			end := min(offset+first, len(want))
			if !slices.Equal(got, want[min(offset, len(want)):end]) {
				t.Errorf("offset %d first %d (seed %d): %v, want %v", offset, first, seed, got, want[min(offset, len(want)):end])
			}
		}
	}
	// Two of pfa's three, and a third to know there is more: one LIST.
	if _, lists := page(0, 2); len(lists) != 1 || lists[0].Query.Get("limit") != "3" {
		t.Errorf("the first two, all in the first namespace: LISTs %+v, want one with limit 3", lists)
	}
}
