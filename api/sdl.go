package api

import (
	"bytes"
	"net/http"

	"github.com/vektah/gqlparser/v2/formatter"

	"github.com/clustergraph/clustergraph/errkind"
	"github.com/clustergraph/clustergraph/graph"
)

// schemaSDL serves the schema as SDL (GET /schema.graphql), for code
// generators and clients that want the file rather than an introspection
// query. It is the introspection answer in another form, so it follows the
// same rules: callers authenticate, and --disable-introspection turns it off.
func schemaSDL() http.Handler {
	var buf bytes.Buffer
	formatter.NewFormatter(&buf).FormatSchema(graph.NewExecutableSchema(graph.Config{}).Schema())
	sdl := buf.Bytes()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, errkind.CodeBadUserInput, "GET the schema")
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Content-Disposition", `inline; filename="schema.graphql"`)
		_, _ = w.Write(sdl)
	})
}
