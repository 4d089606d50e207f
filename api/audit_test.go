package api_test

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2/ast"

	"github.com/clustergraph/clustergraph/api"
	"github.com/clustergraph/clustergraph/audit"
	"github.com/clustergraph/clustergraph/graph"
	"github.com/clustergraph/clustergraph/internal/testenv"
)

// notAudited are the Mutation fields that carry a terminal session's
// keystrokes and sizes: the session is audited at its start and end.
var notAudited = map[string]bool{"terminalInput": true, "terminalResize": true}

// TestEveryMutationIsAudited: each Mutation field of the schema, called
// with arguments that name nothing (so nothing changes), leaves an audit
// record naming it: refusals are audited as well as changes, and a new
// mutation is audited without a line of its own. The fields come from the
// schema itself, so one added later is held to it too.
func TestEveryMutationIsAudited(t *testing.T) {
	cs := testenv.Clusters(t)
	var auditLog syncBuffer
	s := startServerWith(t, serverOpts{kubeconfigs: kubeconfigs(cs[:1]), waitReady: true}, func(cfg *api.Config) {
		cfg.Audit = audit.New(&auditLog)
	})
	schema := graph.NewExecutableSchema(graph.Config{}).Schema()
	var names []string
	for _, f := range schema.Mutation.Fields {
		if strings.HasPrefix(f.Name, "__") || notAudited[f.Name] {
			continue
		}
		names = append(names, f.Name)
		var args []string
		for _, a := range f.Arguments {
			if a.Type.NonNull && a.DefaultValue == nil {
				args = append(args, a.Name+": "+placeholder(schema, a.Type))
			}
		}
		call := f.Name
		if len(args) > 0 {
			call += "(" + strings.Join(args, ", ") + ")"
		}
		if def := schema.Types[f.Type.Name()]; def != nil && def.Kind == ast.Object {
			call += " { __typename }"
		}
		r := s.do(t, "mutation { "+call+" }", nil)
		if len(r.Errors) == 0 {
			t.Errorf("%s with arguments that name nothing succeeded; the test means to send refusals", call)
		} else if code := r.Errors[0].Extensions["code"]; code == "INTERNAL" {
			t.Errorf("%s: %s (%v), want a refusal naming what was wrong", call, r.Errors[0].Message, code)
		}
	}
	if len(names) < 15 {
		t.Fatalf("only %d mutations found in the schema", len(names))
	}
	actions := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(auditLog.String()), "\n") {
		if line == "" {
			continue
		}
		var rec struct{ Action, Result string }
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		if rec.Result == "ok" {
			t.Errorf("%s was recorded as ok", rec.Action)
		}
		actions[rec.Action] = true
	}
	sort.Strings(names)
	for _, n := range names {
		if !actions[n] {
			t.Errorf("mutation %s left no audit record", n)
		}
	}
}

// placeholder is a literal of type t that names nothing real.
func placeholder(schema *ast.Schema, t *ast.Type) string {
	if t.Elem != nil {
		return "[]"
	}
	def := schema.Types[t.NamedType]
	switch {
	case t.NamedType == "Int":
		return "1"
	case t.NamedType == "Boolean":
		return "false"
	case t.NamedType == "JSON":
		return "{}"
	case def != nil && def.Kind == ast.Enum:
		return def.EnumValues[0].Name
	case def != nil && def.Kind == ast.InputObject:
		var fields []string
		for _, f := range def.Fields {
			if f.Type.NonNull && f.DefaultValue == nil {
				fields = append(fields, f.Name+": "+placeholder(schema, f.Type))
			}
		}
		return "{" + strings.Join(fields, ", ") + "}"
	}
	return fmt.Sprintf("%q", "no-such-"+strings.ToLower(t.NamedType))
}
