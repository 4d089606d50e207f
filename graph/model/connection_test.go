package model_test

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/clustergraph/clustergraph/graph/model"
)

// TestConnectionEdges: edges pair each node with its cursor, in order,
// and ask for cursors only then; an empty page has no edges, not null.
func TestConnectionEdges(t *testing.T) {
	asked := 0
	c := &model.Connection[string]{Nodes: []string{"a", "b", "c"}, Cursor: func(i int) string {
		asked++
		return fmt.Sprintf("cursor-%d", i)
	}}
	if asked != 0 {
		t.Fatal("cursors computed before edges were asked for")
	}
	want := []*model.Edge[string]{{Cursor: "cursor-0", Node: "a"}, {Cursor: "cursor-1", Node: "b"}, {Cursor: "cursor-2", Node: "c"}}
	if diff := cmp.Diff(want, c.Edges()); diff != "" {
		t.Errorf("edges (-want +got):\n%s", diff)
	}
	empty := &model.Connection[string]{Nodes: []string{}}
	if got := empty.Edges(); got == nil || len(got) != 0 {
		t.Errorf("edges of an empty page = %#v, want []", got)
	}
}
