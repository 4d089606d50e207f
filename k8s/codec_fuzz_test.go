package k8s

import (
	"errors"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/clustergraph/clustergraph/errkind"
)

// FuzzParseID: any string parses to an id or to errkind.BadInput, never a
// panic, and an id that parses encodes back to the same string.
func FuzzParseID(f *testing.F) {
	for _, id := range []ObjectID{
		{Cluster: "c", GVK: GVKPod, Namespace: "shop", Name: "web-0"},
		{Cluster: "kwok-cg-a", GVK: schema.GroupVersionKind{Group: "apps.tkestack.io", Version: "v1", Kind: "TApp"}, Name: "x"},
		{Cluster: "c", GVK: GVKNode, Name: "n1"},
		{Cluster: "c", GVK: GVKPod, Namespace: "shop", Name: "web-0", AsResource: true},
	} {
		f.Add(id.Encode())
	}
	f.Add("")
	f.Add("!!!")
	f.Add("bzEAYwA") // "o1\x00c\x00": too few parts
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseID(s)
		if err != nil {
			if !errors.Is(err, errkind.BadInput) {
				t.Fatalf("ParseID(%q): %v is not errkind.BadInput", s, err)
			}
			return
		}
		if again, err := ParseID(id.Encode()); err != nil || again != id {
			t.Fatalf("ParseID(%q) = %+v, which encodes to %q and parses to %+v, %v", s, id, id.Encode(), again, err)
		}
	})
}

// FuzzIDRoundTrip: every id made of parts an id can hold survives
// encoding.
func FuzzIDRoundTrip(f *testing.F) {
	f.Add("c", "apps", "v1", "Deployment", "shop", "web")
	f.Add("c", "", "v1", "Node", "", "n")
	f.Fuzz(func(t *testing.T, cluster, group, version, kind, ns, name string) {
		parts := []string{cluster, group, version, kind, ns, name}
		for _, p := range parts {
			if strings.Contains(p, "\x00") {
				return // never in a cluster, kind or object name
			}
		}
		if cluster == "" || version == "" || kind == "" || name == "" {
			return
		}
		id := ObjectID{Cluster: cluster, GVK: schema.GroupVersionKind{Group: group, Version: version, Kind: kind}, Namespace: ns, Name: name}
		for _, id := range []ObjectID{id, {Cluster: id.Cluster, GVK: id.GVK, Namespace: id.Namespace, Name: id.Name, AsResource: true}} {
			if got, err := ParseID(id.Encode()); err != nil || got != id {
				t.Fatalf("%+v came back as %+v, %v", id, got, err)
			}
		}
	})
}

// FuzzCursor: any string is a cursor or errkind.BadInput, and a cursor that
// parses renders back to one that parses to the same key.
func FuzzCursor(f *testing.F) {
	f.Add(sortKey{s: [4]string{"c", "ns", "name", ""}}.cursor(), false)
	f.Add(sortKey{timed: true, t: 1700000000000000000, s: [4]string{"", "c", "ns", "n"}}.cursor(), true)
	f.Add("WyIxIl0", true)
	f.Add("", false)
	f.Fuzz(func(t *testing.T, c string, timed bool) {
		field := OrderName
		if timed {
			field = OrderCreated
		}
		k, err := parseCursor(c, field)
		if err != nil {
			if !errors.Is(err, errkind.BadInput) {
				t.Fatalf("parseCursor(%q): %v is not errkind.BadInput", c, err)
			}
			return
		}
		again, err := parseCursor(k.cursor(), field)
		if err != nil || again.compare(k) != 0 {
			t.Fatalf("cursor %q = %+v renders to %q = %+v, %v", c, k, k.cursor(), again, err)
		}
	})
}
