package api_test

import (
	"bytes"
	"flag"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/formatter"

	"github.com/clustergraph/clustergraph/graph"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestSchemaGolden catches accidental API changes: the served schema must
// equal testdata/schema.golden.graphqls. After a deliberate change, run
// `go test ./api -run TestSchemaGolden -update` and commit the golden file.
func TestSchemaGolden(t *testing.T) {
	var buf bytes.Buffer
	formatter.NewFormatter(&buf, formatter.WithComments()).FormatSchema(graph.NewExecutableSchema(graph.Config{}).Schema())
	golden := "testdata/schema.golden.graphqls"
	if *update {
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), buf.String()); diff != "" {
		t.Errorf("schema changed (-golden +served); if intended, rerun with -update:\n%s", diff)
	}
}

// TestSchemaDescriptions: the schema's descriptions are the API
// documentation, so every type, field, argument and enum value has one.
func TestSchemaDescriptions(t *testing.T) {
	s := graph.NewExecutableSchema(graph.Config{}).Schema()
	var missing []string
	for name, def := range s.Types {
		if def.BuiltIn || strings.HasPrefix(name, "__") {
			continue
		}
		if def.Description == "" && name != "Query" {
			missing = append(missing, name)
		}
		for _, f := range def.Fields {
			if strings.HasPrefix(f.Name, "__") {
				continue
			}
			if f.Description == "" {
				missing = append(missing, name+"."+f.Name)
			}
			for _, a := range f.Arguments {
				if a.Description == "" {
					missing = append(missing, name+"."+f.Name+"("+a.Name+")")
				}
			}
		}
		if def.Kind == ast.Enum {
			for _, v := range def.EnumValues {
				if v.Description == "" {
					missing = append(missing, name+"."+v.Name)
				}
			}
		}
	}
	if len(missing) > 0 {
		t.Errorf("schema elements without a description: %v", missing)
	}
}

// TestEveryIDIsANode: a type with an `id` field implements Node, so its id
// is global and node(id:) answers it (TestNodeEveryType checks that it
// does). Relay's store keys records by `id` alone: a view or payload that
// carried its object's id as `id` would collide with the object.
func TestEveryIDIsANode(t *testing.T) {
	s := graph.NewExecutableSchema(graph.Config{}).Schema()
	for name, def := range s.Types {
		if def.BuiltIn || def.Kind != ast.Object || def.Fields.ForName("id") == nil {
			continue
		}
		if !slices.ContainsFunc(s.GetImplements(def), func(i *ast.Definition) bool { return i.Name == "Node" }) {
			t.Errorf("%s has an id but does not implement Node", name)
		}
	}
}
