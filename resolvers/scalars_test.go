package resolvers_test

import (
	"testing"

	"github.com/99designs/gqlgen/client"
	"github.com/clustergraph/clustergraph/k8s"
)

// TestScalarsSpecifiedBy: every custom scalar names its specification in
// introspection (specifiedByURL), so client code generators can map it.
func TestScalarsSpecifiedBy(t *testing.T) {
	reg, err := k8s.NewStaticRegistry(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(reg)
	for name, want := range map[string]string{
		"Time":  "https://www.rfc-editor.org/rfc/rfc3339",
		"JSON":  "https://www.rfc-editor.org/rfc/rfc8259",
		"Int64": "https://github.com/clustergraph/clustergraph/blob/main/README.md#scalars",
	} {
		var out struct {
			Type struct{ SpecifiedByURL *string }
		}
		if err := c.Post(`query($n: String!) { type: __type(name: $n) { specifiedByURL } }`, &out, func(bd *client.Request) { bd.Variables = map[string]any{"n": name} }); err != nil {
			t.Fatal(err)
		}
		if out.Type.SpecifiedByURL == nil || *out.Type.SpecifiedByURL != want {
			t.Errorf("%s: specifiedByURL %v, want %s", name, out.Type.SpecifiedByURL, want)
		}
	}
}
