package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/clustergraph/clustergraph/internal/testenv"
	"github.com/clustergraph/clustergraph/k8s"
)

// TestObjectByID fetches one object of each kind back by the id a list
// gave, and checks raw carries the whole object with its kind.
func TestObjectByID(t *testing.T) {
	s, cs := seeded(t)
	var out struct {
		Pods       struct{ Nodes []struct{ ID string } }
		Nodes      struct{ Nodes []struct{ ID string } }
		Namespaces struct{ Nodes []struct{ ID string } }
		Services   struct{ Nodes []struct{ ID string } }
		Ingresses  struct{ Nodes []struct{ ID string } }
		Workloads  struct{ Nodes []struct{ ID string } }
		Events     struct{ Nodes []struct{ ID string } }
	}
	s.query(t, `query($c: [String!]) { pods(clusters: $c, first: 1) { nodes { id } } nodes(clusters: $c, first: 1) { nodes { id } }
		namespaces(clusters: $c, first: 1) { nodes { id } } services(clusters: $c, first: 1) { nodes { id } }
		ingresses(clusters: $c, first: 1) { nodes { id } } workloads(clusters: $c, first: 6) { nodes { id } }
		events(clusters: $c, first: 1) { nodes { id } } }`, map[string]any{"c": []string{cs[1].Context}}, &out)
	var ids []string
	for _, l := range [][]struct{ ID string }{out.Pods.Nodes, out.Nodes.Nodes, out.Namespaces.Nodes, out.Services.Nodes, out.Ingresses.Nodes, out.Workloads.Nodes, out.Events.Nodes} {
		if len(l) == 0 {
			t.Fatalf("a list is empty: %+v", out)
		}
		for _, n := range l {
			ids = append(ids, n.ID)
		}
	}
	for _, id := range ids {
		var got struct {
			Object *struct {
				Typename string `json:"__typename"`
				ID       string
				Cluster  struct{ Name string }
				Metadata struct{ Name, UID string }
				Raw      struct {
					APIVersion, Kind string
					Metadata         struct {
						Name          string
						UID           string
						ManagedFields []any
					}
				}
			}
		}
		s.query(t, `query($id: ID!) { object(id: $id) { __typename id cluster { name } metadata { name uid } raw } }`, map[string]any{"id": id}, &got)
		o := got.Object
		switch {
		case o == nil:
			t.Errorf("object(%s) = null", id)
		case o.ID != id, o.Cluster.Name != cs[1].Context, o.Raw.Kind == "", o.Raw.APIVersion == "", o.Raw.Metadata.UID != o.Metadata.UID, o.Raw.Metadata.Name != o.Metadata.Name:
			t.Errorf("object(%s) = %+v", id, o)
		case o.Raw.Metadata.ManagedFields != nil:
			t.Errorf("object(%s).raw still has managedFields", id)
		}
		// Relay's node(id) answers the same object.
		var node struct {
			Node *struct {
				Typename string `json:"__typename"`
				ID       string
				Metadata struct{ UID string }
			}
		}
		s.query(t, `query($id: ID!) { node(id: $id) { __typename id ... on KubeObject { metadata { uid } } } }`, map[string]any{"id": id}, &node)
		if n := node.Node; o != nil && (n == nil || n.ID != id || n.Typename != o.Typename || n.Metadata.UID != o.Metadata.UID) {
			t.Errorf("node(%s) = %+v, want the object's %s", id, n, o.Typename)
		}
	}
}

// TestSecretsAreMetadataOnly: Secret values never reach the cache or the API.
func TestSecretsAreMetadataOnly(t *testing.T) {
	s, cs := seeded(t)
	var out struct {
		Cluster struct {
			Namespace struct {
				Secrets struct {
					TotalCount int
					Nodes      []struct {
						Kind string
						Raw  map[string]any
					}
				}
			}
		}
	}
	s.query(t, `query($c: String!) { cluster(name: $c) { namespace(name: "shop") { secrets { totalCount nodes { kind raw } } } } }`, map[string]any{"c": cs[0].Context}, &out)
	secrets, err := cs[0].Client.CoreV1().Secrets("shop").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if out.Cluster.Namespace.Secrets.TotalCount != len(secrets.Items) || len(secrets.Items) == 0 {
		t.Fatalf("got %d secrets, want %d (and more than 0)", out.Cluster.Namespace.Secrets.TotalCount, len(secrets.Items))
	}
	for _, s := range out.Cluster.Namespace.Secrets.Nodes {
		// The metadata API sends no kind; the cache knows it.
		if s.Kind != "Secret" || s.Raw["kind"] != "Secret" || s.Raw["apiVersion"] != "v1" {
			t.Errorf("secret kind %q, raw kind %v apiVersion %v; want Secret, v1", s.Kind, s.Raw["kind"], s.Raw["apiVersion"])
		}
		if _, ok := s.Raw["data"]; ok {
			t.Errorf("secret raw holds data: %v", s.Raw)
		}
		if _, ok := s.Raw["stringData"]; ok {
			t.Errorf("secret raw holds stringData: %v", s.Raw)
		}
	}
}

// TestBadInput: each kind of bad input is a clear error with a code, never
// a panic or a bodiless 500.
func TestBadInput(t *testing.T) {
	s, cs := seeded(t)
	unknownCluster := podID(t, s, cs[0].Context, func(parts []string) { parts[1] = "gone" })
	tests := []struct {
		name, query string
		code        string
		cluster     string
	}{
		{"malformed graphql", `{ pods( { totalCount } }`, "BAD_USER_INPUT", ""},
		{"unknown field", `{ pods { nope } }`, "BAD_USER_INPUT", ""},
		{"unknown cluster", `{ pods(clusters: ["no-such"]) { totalCount } }`, "NOT_FOUND", "no-such"},
		{"unknown cluster in topology", `{ topology(cluster: "no-such") { nodes { objectId } } }`, "NOT_FOUND", "no-such"},
		{"malformed id", `{ object(id: "not-an-id") { id } }`, "BAD_USER_INPUT", ""},
		{"id of unknown cluster", fmt.Sprintf(`{ object(id: %q) { id } }`, unknownCluster), "NOT_FOUND", "gone"},
		{"bad label selector", `{ pods(filter: {labelSelector: "a in ("}) { totalCount } }`, "BAD_USER_INPUT", ""},
		{"bad field selector", `{ pods(filter: {fieldSelector: "a=b=c=="}) { totalCount } }`, "BAD_USER_INPUT", ""},
		{"first over maximum", `{ pods(first: 101) { totalCount } }`, "BAD_USER_INPUT", ""},
		{"negative first", `{ pods(first: -1) { totalCount } }`, "BAD_USER_INPUT", ""},
		{"negative offset", `{ pods(offset: -1) { totalCount } }`, "BAD_USER_INPUT", ""},
		{"malformed cursor", `{ pods(after: "!!") { totalCount } }`, "BAD_USER_INPUT", ""},
		{"resource not served", fmt.Sprintf(`{ resources(clusters: [%q], group: "nope.io", version: "v1", resource: "things") { totalCount } }`, cs[0].Context), "NOT_FOUND", cs[0].Context},
		{"unsupported field selector", fmt.Sprintf(`{ resources(clusters: [%q], group: "apps", version: "v1", resource: "deployments", filter: {fieldSelector: "spec.replicas=1"}) { totalCount } }`, cs[0].Context), "BAD_USER_INPUT", cs[0].Context},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := s.do(t, tc.query, nil)
			if len(r.Errors) == 0 {
				t.Fatalf("no error; data %s", r.Data)
			}
			e := r.Errors[0]
			if e.Extensions["code"] != tc.code || e.Message == "" {
				t.Errorf("error = %+v, want code %s", e, tc.code)
			}
			if tc.cluster != "" && e.Extensions["cluster"] != tc.cluster {
				t.Errorf("error names cluster %v, want %s", e.Extensions["cluster"], tc.cluster)
			}
			if strings.Contains(e.Message, "internal") {
				t.Errorf("message looks internal: %s", e.Message)
			}
		})
	}
	t.Run("refused before any resolver runs", func(t *testing.T) {
		deep := "name"
		for range 16 {
			deep = "owner { pods { nodes { " + deep + " } } }"
		}
		var aliases strings.Builder
		for i := range 10000 {
			fmt.Fprintf(&aliases, "a%d: __typename ", i)
		}
		for name, q := range map[string]string{
			"too deep":       "{ pods { nodes { " + deep + " } } }",
			"too complex":    `{ workloads(first: 100) { nodes { pods(first: 100) { nodes { node { pods(first: 100) { nodes { name namespace } } } } } } } }`,
			"alias flood":    "{ " + aliases.String() + "}",
			"fragment flood": `{ ...A } fragment A on Query { pods(first: 100) { nodes { ...B } } } fragment B on Pod { owner { pods(first: 100) { nodes { owner { pods(first: 100) { nodes { name } } } } } } }`,
		} {
			before := s.requests.Load()
			r := s.do(t, q, nil)
			if len(r.Errors) == 0 || r.Errors[0].Extensions["code"] != "BAD_USER_INPUT" {
				t.Errorf("%s: %+v, want BAD_USER_INPUT", name, r.Errors)
			}
			if string(r.Data) != "" && string(r.Data) != "null" {
				t.Errorf("%s: data %s, want none: no resolver may run", name, r.Data)
			}
			if n := s.requests.Load() - before; n != 0 {
				t.Errorf("%s: %d apiserver requests", name, n)
			}
		}
	})
	t.Run("oversized body", func(t *testing.T) {
		big := `{"query":"{ __typename }","variables":{"x":"` + strings.Repeat("a", 2<<20) + `"}}`
		resp, err := http.Post(s.URL+"/query", "application/json", strings.NewReader(big))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct{ Errors []gqlError }
		_ = json.NewDecoder(resp.Body).Decode(&body)
		if resp.StatusCode != http.StatusRequestEntityTooLarge || len(body.Errors) == 0 || body.Errors[0].Extensions["code"] != "BAD_USER_INPUT" {
			t.Errorf("status %d, body %+v; want 413 with BAD_USER_INPUT", resp.StatusCode, body)
		}
	})
	t.Run("object that does not exist is null", func(t *testing.T) {
		id := podID(t, s, cs[0].Context, func(parts []string) { parts[6] = "no-such-pod" })
		var out struct{ Object *struct{ ID string } }
		s.query(t, `query($id: ID!) { object(id: $id) { id } }`, map[string]any{"id": id}, &out)
		if out.Object != nil {
			t.Errorf("object = %+v, want null", out.Object)
		}
	})
}

// podID returns the id of a pod of cluster c with its parts edited, to make
// ids of things that do not exist. The id's layout is k8s.ObjectID.Encode's.
func podID(t *testing.T, s *server, c string, edit func(parts []string)) string {
	t.Helper()
	var out struct {
		Pods struct{ Nodes []struct{ ID string } }
	}
	s.query(t, `query($c: [String!]) { pods(clusters: $c, first: 1) { nodes { id } } }`, map[string]any{"c": []string{c}}, &out)
	id, err := k8s.ParseID(out.Pods.Nodes[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	parts := []string{"", id.Cluster, "", "", "", id.Namespace, id.Name}
	edit(parts)
	id.Cluster, id.Name = parts[1], parts[6]
	return id.Encode()
}

// TestResourcesCRD lists custom resources through the dynamic path.
func TestResourcesCRD(t *testing.T) {
	s, cs := seeded(t)
	c := cs[0]
	gvr := schema.GroupVersionResource{Group: "apps.tkestack.io", Version: "v1", Resource: "tapps"}
	tapps := testenv.CreateCRD(t, c, gvr, "TApp", true)
	for i, app := range []string{"web", "worker", "batch"} {
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "apps.tkestack.io/v1", "kind": "TApp",
			"metadata": map[string]any{"name": fmt.Sprintf("tapp-%d", i), "labels": map[string]any{"app": app}},
			"spec":     map[string]any{"replicas": int64(i + 1)},
		}}
		if _, err := tapps.Namespace("shop").Create(ctx, u, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var out struct {
		Resources struct {
			TotalCount int
			Nodes      []struct {
				ID, APIVersion, Kind, Name string
				Namespace                  *string
				Raw                        struct{ Spec struct{ Replicas int } }
			}
		}
	}
	s.query(t, `query($c: [String!]) { resources(clusters: $c, group: "apps.tkestack.io", version: "v1", resource: "tapps", filter: {labelSelector: "app!=batch"}, orderBy: {field: NAME}) {
		totalCount nodes { id apiVersion kind name namespace raw } } }`, map[string]any{"c": []string{c.Context}}, &out)
	if out.Resources.TotalCount != 2 || out.Resources.Nodes[0].Name != "tapp-0" || out.Resources.Nodes[1].Raw.Spec.Replicas != 2 || out.Resources.Nodes[0].Kind != "TApp" {
		t.Fatalf("resources = %+v", out.Resources)
	}
	var one struct{ Object *struct{ Name string } }
	s.query(t, `query($id: ID!) { object(id: $id) { ... on Resource { name } } }`, map[string]any{"id": out.Resources.Nodes[1].ID}, &one)
	if one.Object == nil || one.Object.Name != "tapp-1" {
		t.Errorf("object(TApp id) = %+v", one.Object)
	}
}

var _ = testenv.EnvKubeconfigs
