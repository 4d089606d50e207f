package resolvers_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"

	"github.com/99designs/gqlgen/client"
	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/google/go-cmp/cmp"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/clustergraph/clustergraph/audit"
	"github.com/clustergraph/clustergraph/caller"
	"github.com/clustergraph/clustergraph/errkind"
	"github.com/clustergraph/clustergraph/graph"
	"github.com/clustergraph/clustergraph/k8s"
	"github.com/clustergraph/clustergraph/loaders"
	"github.com/clustergraph/clustergraph/resolvers"
	"github.com/clustergraph/clustergraph/terminal"
)

// The tests of this package run the real executable schema over the real
// resolvers in process, through gqlgen's client: no HTTP server, no
// token (the caller is put in the context, as api's authentication
// does), no apiserver. What they judge is what the resolvers answer for
// the caller's arguments; the HTTP edge is api's to test, and what
// clusters hold and allow is proven against real apiservers there.

// maxPage is the servers' page limit, small so that going over it is
// cheap to ask.
const maxPage = 10

// newClient serves the schema over reg as api.NewHandler does, minus the
// HTTP edge: fresh loaders per operation, and errors given the code of
// their kind (see present). It has no database.
func newClient(reg *k8s.Registry) *client.Client { return newClientWith(reg, nil) }

// newClientWith is newClient with the stored records of rs.
func newClientWith(reg *k8s.Registry, rs *loaders.Records) *client.Client {
	srv := handler.New(graph.NewExecutableSchema(graph.Config{Resolvers: &resolvers.Resolver{
		Registry:  reg,
		MaxPage:   maxPage,
		Terminals: terminal.NewRegistry(terminal.Limits{}),
		Audit:     audit.Discard,
		Records:   rs,
	}}))
	srv.AddTransport(transport.POST{})
	srv.Use(extension.Introspection{})
	srv.SetErrorPresenter(present)
	srv.AroundOperations(func(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
		return next(loaders.With(ctx, loaders.New(loaders.DefaultConfig)))
	})
	return client.New(srv)
}

// present sets extensions.code (and the cluster an error names) from the
// error's kind, as api's presenter does for every error of a kind; the
// presenter's other duties (hiding internal errors, coding GraphQL
// validation errors) are api's tests.
func present(ctx context.Context, err error) *gqlerror.Error {
	e := graphql.DefaultErrorPresenter(ctx, err)
	if e.Extensions == nil {
		e.Extensions = map[string]any{}
	}
	if _, coded := e.Extensions["code"]; !coded {
		e.Extensions["code"] = errkind.Code(err)
	}
	var ce *k8s.ClusterError
	if errors.As(err, &ce) {
		e.Extensions["cluster"] = ce.Cluster
	}
	return e
}

// as runs a request as s; without it a request has no caller, as one
// that no token authenticated.
func as(s *caller.Subject) client.Option {
	return func(r *client.Request) {
		r.HTTP = r.HTTP.WithContext(caller.With(r.HTTP.Context(), s))
	}
}

// admin may do everything, as clustergraph itself does when
// authentication is off.
var admin = &caller.Subject{User: "admin", Unrestricted: true}

// gqlError is an error of a response, as the tests read it.
type gqlError struct {
	Message    string
	Path       []any
	Extensions map[string]any
}

// code is the error's extensions.code.
func (e gqlError) code() string { s, _ := e.Extensions["code"].(string); return s }

// run posts a query with its variables, decodes the data into out (when
// not nil) and returns the errors.
func run(t *testing.T, c *client.Client, query string, vars map[string]any, out any, opts ...client.Option) []gqlError {
	t.Helper()
	for k, v := range vars {
		opts = append(opts, client.Var(k, v))
	}
	r, err := c.RawPost(query, opts...)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	var errs []gqlError
	if len(r.Errors) > 0 {
		if err := json.Unmarshal(r.Errors, &errs); err != nil {
			t.Fatalf("errors %s: %v", r.Errors, err)
		}
	}
	if out != nil {
		b, err := json.Marshal(r.Data)
		if err == nil {
			err = json.Unmarshal(b, out)
		}
		if err != nil {
			t.Fatalf("data %v: %v", r.Data, err)
		}
	}
	return errs
}

// refusal is what a test expects of a refused request: one error, with
// this code, naming this cluster when set.
type refusal struct {
	Code, Cluster string
}

// refusals reduces errors to what the tests compare.
func refusals(errs []gqlError) []refusal {
	out := make([]refusal, len(errs))
	for i, e := range errs {
		cluster, _ := e.Extensions["cluster"].(string)
		out[i] = refusal{Code: e.code(), Cluster: cluster}
	}
	return out
}

// cursor encodes a list cursor by hand, as a client could forge one: the
// four sort strings, JSON in unpadded base64url.
func cursor(parts ...string) string {
	b, _ := json.Marshal(parts)
	return base64.RawURLEncoding.EncodeToString(b)
}

// podID is the global id of a pod.
func podID(cluster, namespace, name string) string {
	return k8s.ObjectID{Cluster: cluster, GVK: k8s.GVKPod, Namespace: namespace, Name: name}.Encode()
}

// emptyRegistry has no cluster: enough for what is refused before any
// cluster is read, and for names of clusters that do not exist.
func emptyRegistry() *k8s.Registry { return k8s.NewRegistry(k8s.RegistryConfig{}) }

// TestPagingArgumentsAreRefused: every list checks first, limit, offset
// and after before it reads a cluster, and refuses what is out of range
// or malformed with BAD_USER_INPUT; valid arguments read an empty list.
func TestPagingArgumentsAreRefused(t *testing.T) {
	c := newClient(emptyRegistry())
	for _, tc := range []struct {
		name, query string
		vars        map[string]any
	}{
		{"negative first", `{ l: pods(first: -1) { totalCount } }`, nil},
		{"negative limit", `{ l: pods(limit: -1) { totalCount } }`, nil},
		{"first over the page limit", `{ l: pods(first: 11) { totalCount } }`, nil},
		{"limit over the page limit", `{ l: services(limit: 11) { totalCount } }`, nil},
		{"negative offset", `{ l: nodes(offset: -1) { totalCount } }`, nil},
		{"offset past any list", `{ l: pods(offset: 4294967296) { totalCount } }`, nil},
		{"after not base64", `query($a: String) { l: pods(after: $a) { totalCount } }`, map[string]any{"a": "not a cursor!"}},
		{"after not a key", `query($a: String) { l: namespaces(after: $a) { totalCount } }`, map[string]any{"a": base64.RawURLEncoding.EncodeToString([]byte(`{"k":1}`))}},
		{"after of another order", `query($a: String) { l: pods(after: $a, orderBy: {field: CREATED}) { totalCount } }`, map[string]any{"a": cursor("web-1", "shop", "east", "")}},
		// Lists of several kinds page their union another way.
		{"several kinds, negative first", `{ l: workloads(first: -1) { totalCount } }`, nil},
		{"several kinds, after malformed", `query($a: String) { l: workloads(after: $a) { totalCount } }`, map[string]any{"a": "%%%"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out struct{ L *struct{ TotalCount int } }
			errs := run(t, c, tc.query, tc.vars, &out, as(admin))
			if diff := cmp.Diff([]refusal{{Code: errkind.CodeBadUserInput}}, refusals(errs)); diff != "" {
				t.Errorf("errors (-want +got):\n%s\n%+v", diff, errs)
			}
			if out.L != nil {
				t.Errorf("a refused list answered %+v", out.L)
			}
		})
	}
	t.Run("in range", func(t *testing.T) {
		var out struct{ L struct{ TotalCount int } }
		if errs := run(t, c, `{ l: pods(first: 10, offset: 3, after: "`+cursor("a", "b", "c", "")+`") { totalCount } }`, nil, &out, as(admin)); len(errs) > 0 {
			t.Errorf("errors: %+v", errs)
		}
	})
}

// TestUnknownClusterIsNotFound: a cluster name or an id naming a cluster
// clustergraph does not serve is NOT_FOUND, with the cluster named in the
// error, wherever it is given; cluster(name) is null by its contract.
func TestUnknownClusterIsNotFound(t *testing.T) {
	c := newClient(emptyRegistry())
	id := podID("nope", "shop", "web-1")
	for _, tc := range []struct {
		name, query string
		vars        map[string]any
	}{
		{"list", `{ pods(clusters: ["nope"]) { totalCount } }`, nil},
		{"viewer", `{ viewer { clusters(clusters: ["nope"]) { allNamespaces } } }`, nil},
		{"object", `query($id: ID!) { object(id: $id) { __typename } }`, map[string]any{"id": id}},
		{"topology", `{ topology(cluster: "nope") { nodes { objectId } } }`, nil},
		{"mutation by id", `mutation($id: ID!) { scale(id: $id, replicas: 1) { object { __typename } } }`, map[string]any{"id": id}},
		{"mutation by name", `mutation { apply(cluster: "nope", manifest: "kind: ConfigMap") { failed } }`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := run(t, c, tc.query, tc.vars, nil, as(admin))
			if diff := cmp.Diff([]refusal{{Code: errkind.CodeNotFound, Cluster: "nope"}}, refusals(errs)); diff != "" {
				t.Errorf("errors (-want +got):\n%s\n%+v", diff, errs)
			}
		})
	}
	t.Run("cluster(name)", func(t *testing.T) {
		out := map[string]any{"cluster": "unset"}
		if errs := run(t, c, `{ cluster(name: "nope") { name } }`, nil, &out, as(admin)); len(errs) > 0 {
			t.Errorf("errors: %+v", errs)
		}
		if out["cluster"] != nil {
			t.Errorf("cluster(nope) = %v, want null", out["cluster"])
		}
	})
}

// TestViewer: a request no token authenticated has no viewer
// (UNAUTHENTICATED); an authenticated caller is told its name and groups,
// never null, and what it may do in each cluster there is.
func TestViewer(t *testing.T) {
	c := newClient(emptyRegistry())
	type viewer struct {
		Username string
		Groups   []string
		Clusters []struct{ AllNamespaces bool }
	}
	const query = `{ viewer { username groups clusters { allNamespaces } } }`

	var anonymous struct{ Viewer *viewer }
	errs := run(t, c, query, nil, &anonymous)
	if diff := cmp.Diff([]refusal{{Code: errkind.CodeUnauthenticated}}, refusals(errs)); diff != "" {
		t.Errorf("unauthenticated: errors (-want +got):\n%s", diff)
	}
	if anonymous.Viewer != nil {
		t.Errorf("unauthenticated: viewer = %+v", anonymous.Viewer)
	}

	for _, tc := range []struct {
		name string
		s    *caller.Subject
		want viewer
	}{
		{"unrestricted", admin, viewer{Username: "admin", Groups: []string{}, Clusters: []struct{ AllNamespaces bool }{}}},
		{"with groups", &caller.Subject{User: "system:serviceaccount:shop:ci", Groups: []string{"system:serviceaccounts", "system:authenticated"}},
			viewer{Username: "system:serviceaccount:shop:ci", Groups: []string{"system:serviceaccounts", "system:authenticated"}, Clusters: []struct{ AllNamespaces bool }{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out struct{ Viewer viewer }
			if errs := run(t, c, query, nil, &out, as(tc.s)); len(errs) > 0 {
				t.Fatalf("errors: %+v", errs)
			}
			if diff := cmp.Diff(tc.want, out.Viewer); diff != "" {
				t.Errorf("viewer (-want +got):\n%s", diff)
			}
		})
	}
}

// TestMutationsRefuseBadInput: a mutation refuses malformed arguments
// with BAD_USER_INPUT before it looks for its target, and a session that
// is not the caller's is NOT_FOUND.
func TestMutationsRefuseBadInput(t *testing.T) {
	c := newClient(emptyRegistry())
	// The id names a cluster that does not exist: an argument checked
	// first must be refused for itself, not for the cluster.
	id := podID("nope", "shop", "web-1")
	for _, tc := range []struct {
		name, query string
		want        string
	}{
		{"malformed id", `mutation { scale(id: "garbage", replicas: 1) { object { __typename } } }`, errkind.CodeBadUserInput},
		{"empty id", `mutation { delete(id: "") { gone } }`, errkind.CodeBadUserInput},
		{"revision not positive", `mutation($id: ID!) { rollback(id: $id, revision: 0) { object { __typename } } }`, errkind.CodeBadUserInput},
		{"terminal size out of range", `mutation { terminalResize(session: "s", cols: 0, rows: 24) }`, errkind.CodeBadUserInput},
		{"no such terminal", `mutation { terminalInput(session: "s", data: "ls\n") }`, errkind.CodeNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := run(t, c, tc.query, map[string]any{"id": id}, nil, as(admin))
			if diff := cmp.Diff([]refusal{{Code: tc.want}}, refusals(errs)); diff != "" {
				t.Errorf("errors (-want +got):\n%s\n%+v", diff, errs)
			}
		})
	}
}
