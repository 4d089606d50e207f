package api_test

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/clustergraph/clustergraph/api"
	"github.com/clustergraph/clustergraph/graph"
	"github.com/clustergraph/clustergraph/internal/testenv"
)

// TestSchemaDownload: GET /schema.graphql is the served schema as SDL that
// parses back into the same types and fields (descriptions included); it
// needs a caller as /query does, only GET and HEAD are answered, and
// --disable-introspection takes it away with introspection.
func TestSchemaDownload(t *testing.T) {
	cs := testenv.Clusters(t)
	s := startServer(t, serverOpts{kubeconfigs: kubeconfigs(cs[:1]), waitReady: true})
	get := func(s *server, method, token string) (int, string, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, s.URL+"/schema.graphql", nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
	}
	status, ctype, body := get(s, http.MethodGet, "")
	if status != http.StatusOK || !strings.HasPrefix(ctype, "text/plain") {
		t.Fatalf("GET /schema.graphql: %d %s", status, ctype)
	}
	got, err := gqlparser.LoadSchema(&ast.Source{Name: "schema.graphql", Input: body})
	if err != nil {
		t.Fatalf("the downloaded SDL does not parse: %v", err)
	}
	want := graph.NewExecutableSchema(graph.Config{}).Schema()
	for name, def := range want.Types {
		if def.BuiltIn {
			continue
		}
		g := got.Types[name]
		if g == nil || g.Kind != def.Kind || g.Description != def.Description {
			t.Errorf("type %s: downloaded %+v", name, g)
			continue
		}
		var wantFields, gotFields []string
		for _, f := range def.Fields {
			wantFields = append(wantFields, f.Name+": "+f.Type.String()+" "+f.Description)
		}
		for _, f := range g.Fields {
			gotFields = append(gotFields, f.Name+": "+f.Type.String()+" "+f.Description)
		}
		if !slices.Equal(gotFields, wantFields) {
			t.Errorf("type %s: fields\n%v\nwant\n%v", name, gotFields, wantFields)
		}
	}
	if status, _, _ := get(s, http.MethodPost, ""); status != http.StatusMethodNotAllowed {
		t.Errorf("POST /schema.graphql: %d, want 405", status)
	}

	authed := startServer(t, serverOpts{kubeconfigs: kubeconfigs(cs[:1]), waitReady: true, auth: true})
	if status, _, _ := get(authed, http.MethodGet, ""); status != http.StatusUnauthorized {
		t.Errorf("GET without a token: %d, want 401", status)
	}
	closed := startServerWith(t, serverOpts{kubeconfigs: kubeconfigs(cs[:1]), waitReady: true}, func(cfg *api.Config) { cfg.NoIntrospection = true })
	if status, _, _ := get(closed, http.MethodGet, ""); status != http.StatusNotFound {
		t.Errorf("GET with introspection off: %d, want 404", status)
	}
}
