package api_test

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/clustergraph/clustergraph/db"
	"github.com/clustergraph/clustergraph/graph/model"
	"github.com/clustergraph/clustergraph/internal/testenv"
	"github.com/clustergraph/clustergraph/k8s"
	"github.com/clustergraph/clustergraph/metering"
)

// nodeSamples fetch one global id of each type implementing Node. A type
// that implements Node and has no entry here fails TestNodeEveryType, so
// a new one cannot be left out of node(id:).
var nodeSamples = map[string]string{
	"Namespace":             `query($c: String!) { cluster(name: $c) { namespaces(first: 1) { nodes { id } } } }`,
	"KubeNode":              `query($c: String!) { cluster(name: $c) { nodes(first: 1) { nodes { id } } } }`,
	"Workload":              `query($c: String!) { cluster(name: $c) { workloads(first: 1) { nodes { id } } } }`,
	"Pod":                   `query($c: String!) { cluster(name: $c) { pods(first: 1) { nodes { id } } } }`,
	"Service":               `query($c: String!) { cluster(name: $c) { services(first: 1) { nodes { id } } } }`,
	"Ingress":               `query($c: String!) { cluster(name: $c) { ingresses(first: 1) { nodes { id } } } }`,
	"Event":                 `query($c: String!) { cluster(name: $c) { events(first: 1) { nodes { id } } } }`,
	"PersistentVolumeClaim": `query($c: String!) { cluster(name: $c) { namespace(name: "node-types") { persistentVolumeClaims(first: 1) { nodes { id } } } } }`,
	"MetadataObject":        `query($c: String!) { cluster(name: $c) { namespace(name: "shop") { configMaps(first: 1) { nodes { id } } } } }`,
	"Resource":              `query($c: String!) { resources(group: "", version: "v1", resource: "serviceaccounts", clusters: [$c], filter: {namespace: "default"}, first: 1) { nodes { id } } }`,
	"Cluster":               `query($c: String!) { cluster(name: $c) { id } }`,
	"NodePool":              `query($c: String!) { cluster(name: $c) { nodePools(first: 1) { nodes { id } } } }`,
	"Alert":                 `query($c: [String!]) { alerts(clusters: $c, first: 1) { nodes { id } } }`,
	"MeteringRecord":        `query($c: [String!]) { metering(clusters: $c, timeUnit: HOUR, first: 1) { nodes { id } } }`,
}

// TestNodeEveryType: every type implementing Node (as the served schema
// says) answers node(id:) with itself for an id it handed out, and
// object(id:) answers only for Kubernetes objects.
func TestNodeEveryType(t *testing.T) {
	s, c, admin := recordsServer(t, "node-admin")
	// The seed has no claims.
	makeNamespace(t, c, "node-types")
	claim := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "data"}, Spec: corev1.PersistentVolumeClaimSpec{
		AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
	}}
	if _, err := c.Client.CoreV1().PersistentVolumeClaims("node-types").Create(ctx, claim, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	var types struct {
		Type struct{ PossibleTypes []struct{ Name, Kind string } } `json:"__type"`
	}
	s.as(admin.token).query(t, `{ __type(name: "Node") { possibleTypes { name kind } } }`, nil, &types)
	if len(types.Type.PossibleTypes) == 0 {
		t.Fatal("Node has no types")
	}
	for _, pt := range types.Type.PossibleTypes {
		if pt.Kind != "OBJECT" {
			continue // gqlgen lists KubeObject too, which the spec does not ask
		}
		q, ok := nodeSamples[pt.Name]
		if !ok {
			t.Errorf("%s implements Node but nodeSamples has no query for one", pt.Name)
			continue
		}
		vars := map[string]any{"c": c.Context}
		if pt.Name == "Alert" || pt.Name == "MeteringRecord" {
			vars["c"] = []string{c.Context}
		}
		var id string
		eventually(t, 10*time.Second, "a "+pt.Name, func() bool { // the claim, once cached
			r := s.as(admin.token).do(t, q, vars)
			ids := idsIn(r.Data)
			if len(r.Errors) > 0 || len(ids) != 1 {
				t.Logf("a %s: %s %+v", pt.Name, r.Data, r.Errors)
				return false
			}
			id = ids[0]
			return true
		})
		var got struct {
			Node *struct {
				Typename string `json:"__typename"`
				ID       string
			}
			Object *struct{ ID string }
		}
		s.as(admin.token).query(t, `query($id: ID!) { node(id: $id) { __typename id } object(id: $id) { id } }`, map[string]any{"id": id}, &got)
		if got.Node == nil || got.Node.Typename != pt.Name || got.Node.ID != id {
			t.Errorf("node(%s) of a %s = %+v", id, pt.Name, got.Node)
		}
		kube := pt.Name != "Cluster" && pt.Name != "NodePool" && pt.Name != "Alert" && pt.Name != "MeteringRecord"
		if kube != (got.Object != nil) {
			t.Errorf("object(%s) of a %s = %+v", id, pt.Name, got.Object)
		}
	}

	// A cluster's own metering totals have an id of their own.
	var totals struct {
		Cluster struct {
			Metering []struct{ ID, Namespace *string }
		}
	}
	s.as(admin.token).query(t, `query($c: String!) { cluster(name: $c) { metering(timeUnit: HOUR, first: 1) { id namespace } } }`, map[string]any{"c": c.Context}, &totals)
	if m := totals.Cluster.Metering; len(m) != 1 || m[0].Namespace != nil {
		t.Fatalf("cluster metering: %+v", m)
	}
	var again struct {
		Node *struct{ ID, Namespace *string }
	}
	s.as(admin.token).query(t, `query($id: ID!) { node(id: $id) { ... on MeteringRecord { id namespace } } }`, map[string]any{"id": *totals.Cluster.Metering[0].ID}, &again)
	if again.Node == nil || *again.Node.ID != *totals.Cluster.Metering[0].ID || again.Node.Namespace != nil {
		t.Errorf("node(cluster totals) = %+v", again.Node)
	}

	// Ids of nothing are null; malformed ones and unknown clusters say so.
	for _, tc := range []struct {
		what, id, code string
	}{
		{"a missing alert", model.StoredID{Kind: model.StoredAlert, Cluster: c.Context, Namespace: "shop", Key: 1 << 40}.Encode(), ""},
		{"a period without records", model.StoredID{Kind: model.StoredMetering, Cluster: c.Context, Namespace: "shop", Unit: db.Hour, Key: 3600}.Encode(), ""},
		{"an unknown cluster's cluster id", k8s.ClusterID("no-such").Encode(), ""},
		{"a missing pool", k8s.ObjectID{Cluster: c.Context, GVK: k8s.GVKNodePoolLabel, Name: "no-such"}.Encode(), ""},
		{"an alert of an unknown cluster", model.StoredID{Kind: model.StoredAlert, Cluster: "no-such", Key: 1}.Encode(), "NOT_FOUND"},
		{"garbage", "s1-not-an-id", "BAD_USER_INPUT"},
		{"a stored id of no kind", base64URL([]byte("s1\x00Secret\x00" + c.Context + "\x00shop\x00\x001")), "BAD_USER_INPUT"},
		{"an alert id with a unit", base64URL([]byte("s1\x00Alert\x00" + c.Context + "\x00shop\x00day\x001")), "BAD_USER_INPUT"},
		{"an alert key past SQL's integers", base64URL([]byte("s1\x00Alert\x00" + c.Context + "\x00shop\x00\x009223372036854775808")), "BAD_USER_INPUT"},
	} {
		r := s.as(admin.token).do(t, `query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": tc.id})
		var out struct{ Node any }
		if err := jsonInto(r, &out); err != nil {
			t.Fatal(err)
		}
		code := ""
		if len(r.Errors) > 0 {
			code, _ = r.Errors[0].Extensions["code"].(string)
		}
		if code != tc.code || out.Node != nil {
			t.Errorf("node(%s): %s %+v, want null and code %q", tc.what, r.Data, r.Errors, tc.code)
		}
	}
}

// recordsServer starts a server on both clusters with an SQLite database
// holding seedRecords' records of the first, and makes a cluster-admin
// account named admin.
func recordsServer(t *testing.T, admin string) (*server, testenv.Cluster, testUser) {
	t.Helper()
	cs := testenv.Clusters(t)
	h := sqlite(t)
	s := startServer(t, serverOpts{kubeconfigs: kubeconfigs(cs), waitReady: true, auth: true, db: h})
	u := makeUser(t, cs, admin, func(cl testenv.Cluster, user string) { clusterBinding(t, cl, admin, "cluster-admin", user) })
	seedRecords(t, s, h, cs[0])
	return s, cs[0], u
}

// seedRecords stores alerts in shop, in ops and about a node, and one hour
// of metering samples of every namespace of c.
func seedRecords(t *testing.T, s *server, h *db.Handle, c testenv.Cluster) {
	t.Helper()
	store, err := h.Store()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().UTC().Truncate(time.Second).Add(-time.Hour)
	var alerts []db.Alert
	for i, where := range []struct{ ns, kind, name string }{{"shop", "Pod", "web-0"}, {"ops", "Namespace", "ops"}, {"", "Node", "n1"}, {"shop", "Deployment", "frontend"}} {
		alerts = append(alerts, db.Alert{
			Fingerprint: fmt.Sprintf("node-test-%d", i), StartsAt: start.Add(time.Duration(i) * time.Minute), Status: db.Firing,
			Cluster: c.Context, Namespace: where.ns, ObjectKind: where.kind, Name: where.name,
			AlertName: "NodeTest", Source: "test", Message: "seeded for node(id:)",
		})
	}
	if _, err := store.RecordAlerts(ctx, alerts); err != nil {
		t.Fatal(err)
	}
	collector := metering.New(metering.Config{Registry: s.Registry, Store: h.Store, Log: testLogger()})
	if res := collector.Tick(ctx, start); len(res.Failed) > 0 || res.Spooled > 0 {
		t.Fatalf("metering tick: %+v", res)
	}
}

// idsIn returns every "id" value in a JSON document, in order.
func idsIn(raw []byte) []string {
	var v any
	if err := jsonInto(response{Data: raw}, &v); err != nil {
		return nil
	}
	var out []string
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			keys := make([]string, 0, len(v))
			for k := range v {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				if id, ok := v[k].(string); ok && k == "id" {
					out = append(out, id)
				} else {
					walk(v[k])
				}
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(v)
	return out
}

// TestNodeAuthorizationMatchesTheAPIServer: node(id:) of a stored record
// is FORBIDDEN exactly when the apiserver refuses the caller the list its
// place needs (events for alerts, pods for metering; cluster-wide for a
// cluster's own records), asked of the apiserver per case, for seeded
// random users and records, on MariaDB; what the caller may read comes
// back whole.
func TestNodeAuthorizationMatchesTheAPIServer(t *testing.T) {
	cs := testenv.Clusters(t)
	c := cs[0]
	// MariaDB here, SQLite in TestNodeEveryType.
	h, err := db.Connect(ctx, testenv.MySQL(t), db.Options{Log: testLogger()}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	s := startServer(t, serverOpts{kubeconfigs: kubeconfigs(cs), waitReady: true, auth: true, db: h})
	seedRecords(t, s, h, c)
	admin := makeUser(t, cs, "node-authz-admin", func(cl testenv.Cluster, u string) {
		clusterBinding(t, cl, "node-authz-admin", "cluster-admin", u)
	})

	// Every record's id, as the admin sees them.
	var all struct {
		Alerts   struct{ Nodes []struct{ ID string } }
		Metering struct{ Nodes []struct{ ID string } }
		Cluster  struct{ Metering []struct{ ID string } }
	}
	s.as(admin.token).query(t, `query($c: String!, $cs: [String!]) {
		alerts(clusters: $cs, filter: {alertNames: ["NodeTest"]}) { nodes { id } }
		metering(clusters: $cs, timeUnit: HOUR) { nodes { id } }
		cluster(name: $c) { metering(timeUnit: HOUR) { id } } }`, map[string]any{"c": c.Context, "cs": []string{c.Context}}, &all)
	var ids []string
	for _, a := range all.Alerts.Nodes {
		ids = append(ids, a.ID)
	}
	for _, m := range all.Metering.Nodes {
		ids = append(ids, m.ID)
	}
	for _, m := range all.Cluster.Metering {
		ids = append(ids, m.ID)
	}
	for _, id := range ids {
		if nid, err := model.ParseNodeID(id); err != nil || nid.Stored == nil {
			t.Fatalf("%s is not a stored record's id: %v", id, err)
		}
	}
	if len(all.Alerts.Nodes) != 4 || len(all.Metering.Nodes) < len(seedNamespaces) || len(all.Cluster.Metering) != 1 {
		t.Fatalf("seeded records: %d alerts, %d namespace and %d cluster metering records", len(all.Alerts.Nodes), len(all.Metering.Nodes), len(all.Cluster.Metering))
	}

	// Users with random grants: view, or only events, or only pods, in
	// random namespaces, or cluster-wide.
	rng := rand.New(rand.NewPCG(7, uint64(len(ids))))
	namespaces := []string{"shop", "ops", "data", "default"}
	grants := []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"list"}},
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"list"}},
		{APIGroups: []string{""}, Resources: []string{"events", "pods"}, Verbs: []string{"get"}},
	}
	// Listing some other kind cluster-wide opens no stored record, but
	// changes how clustergraph finds the caller's namespaces.
	createRole(t, c, "", "node-authz-deployments", rbacv1.PolicyRule{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"list"}})
	for i := range 8 {
		name := fmt.Sprintf("node-authz-%d", i)
		rules := []rbacv1.PolicyRule{grants[rng.IntN(len(grants))], grants[rng.IntN(len(grants))]}
		wide, deployments := rng.IntN(4) == 0, rng.IntN(2) == 0
		var where []string
		for _, ns := range namespaces {
			if rng.IntN(2) == 0 {
				where = append(where, ns)
			}
		}
		u := makeUser(t, cs, name, func(cl testenv.Cluster, user string) {
			if cl.Context != c.Context {
				return
			}
			createRole(t, cl, "", name, rules...)
			if wide {
				clusterBinding(t, cl, name, name, user)
			}
			if deployments {
				clusterBinding(t, cl, name+"-deployments", "node-authz-deployments", user)
			}
			for _, ns := range where {
				roleBinding(t, cl, ns, name, "ClusterRole", name, user)
			}
		})
		what := fmt.Sprintf("%s (rules %+v in %v, cluster-wide %v, deployments cluster-wide %v): node(id:) of each record", name, rules, where, wide, deployments)
		agree(t, what, func() []string {
			var out []string
			for _, id := range ids {
				nid, _ := model.ParseNodeID(id)
				gr := schema.GroupResource{Resource: "events"}
				if nid.Stored.Kind == model.StoredMetering {
					gr.Resource = "pods"
				}
				verdict := "FORBIDDEN"
				if can(t, c, u, "list", gr, nid.Stored.Namespace, "") {
					verdict = "read"
				}
				out = append(out, fmt.Sprintf("%s %q: %s", nid.Stored.Kind, nid.Stored.Namespace, verdict))
			}
			return out
		}, func() []string {
			var out []string
			for _, id := range ids {
				nid, _ := model.ParseNodeID(id)
				r := s.as(u.token).do(t, `query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": id})
				var got struct{ Node *struct{ ID string } }
				if err := jsonInto(r, &got); err != nil {
					t.Fatal(err)
				}
				verdict := fmt.Sprintf("%s %+v", r.Data, r.Errors)
				switch {
				case got.Node != nil && got.Node.ID == id && len(r.Errors) == 0:
					verdict = "read"
				case got.Node == nil && len(r.Errors) == 1 && r.Errors[0].Extensions["code"] == "FORBIDDEN":
					verdict = "FORBIDDEN"
				}
				out = append(out, fmt.Sprintf("%s %q: %s", nid.Stored.Kind, nid.Stored.Namespace, verdict))
			}
			return out
		})
		// node(id:) reads exactly what the lists show the caller.
		var lists struct {
			Alerts   struct{ Nodes []struct{ ID string } }
			Metering struct{ Nodes []struct{ ID string } }
			Cluster  *struct{ Metering []struct{ ID string } }
		}
		lr := s.as(u.token).do(t, `query($c: String!, $cs: [String!]) {
			alerts(clusters: $cs, filter: {alertNames: ["NodeTest"]}) { nodes { id } }
			metering(clusters: $cs, timeUnit: HOUR) { nodes { id } }
			cluster(name: $c) { metering(timeUnit: HOUR) { id } } }`, map[string]any{"c": c.Context, "cs": []string{c.Context}})
		if err := jsonInto(lr, &lists); err != nil {
			t.Fatal(err)
		}
		listed := map[string]bool{}
		for _, n := range lists.Alerts.Nodes {
			listed[n.ID] = true
		}
		for _, n := range lists.Metering.Nodes {
			listed[n.ID] = true
		}
		if lists.Cluster != nil {
			for _, n := range lists.Cluster.Metering {
				listed[n.ID] = true
			}
		}
		for _, id := range ids {
			r := s.as(u.token).do(t, `query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": id})
			var got struct{ Node *struct{ ID string } }
			if err := jsonInto(r, &got); err != nil {
				t.Fatal(err)
			}
			if read := got.Node != nil; read != listed[id] {
				nid, _ := model.ParseNodeID(id)
				t.Errorf("%s: node(%s %q) read %v, but the lists show it: %v (lists' errors %+v)", what, nid.Stored.Kind, nid.Stored.Namespace, read, listed[id], lr.Errors)
			}
		}
	}

	// An id naming another place than its record's reads nothing: the
	// check is on the place, so the record must be there.
	var shopOnly []string
	for _, id := range ids {
		if nid, _ := model.ParseNodeID(id); nid.Stored.Kind == model.StoredAlert && nid.Stored.Namespace == "ops" {
			forged := *nid.Stored
			forged.Namespace = "shop"
			shopOnly = append(shopOnly, forged.Encode())
		}
	}
	viewer := makeUser(t, cs, "node-shop-viewer", func(cl testenv.Cluster, u string) {
		roleBinding(t, cl, "shop", "node-shop-viewer", "ClusterRole", "view", u)
	})
	if len(shopOnly) != 1 {
		t.Fatalf("%d alerts in ops", len(shopOnly))
	}
	r := s.as(viewer.token).do(t, `query($id: ID!) { node(id: $id) { id ... on Alert { namespace } } }`, map[string]any{"id": shopOnly[0]})
	if string(r.Data) != `{"node":null}` || len(r.Errors) > 0 {
		t.Errorf("an ops alert under a shop id: %s %+v, want null", r.Data, r.Errors)
	}
}

// deepIDs is a console's deep query over one cluster: every list and
// relation that hands out ids, each id beside its type, plus the
// topology's vertices and edges.
const deepIDs = `query($c: String!, $cs: [String!]) {
  cluster(name: $c) { __typename id
    nodes(first: 3) { nodes { __typename id pool { __typename id } pods(first: 2) { nodes { __typename id } }
      events(first: 2) { nodes { __typename id involvedObject { __typename id } } } } }
    nodePools { nodes { __typename id nodes(first: 2) { nodes { __typename id } } } }
    namespace(name: "shop") { __typename id
      workloads(first: 8) { nodes { __typename id owner { __typename id } pods(first: 2) { nodes { __typename id owner { __typename id } node { __typename id } } } } }
      services(first: 3) { nodes { __typename id pods(first: 2) { nodes { __typename id } } } }
      ingresses(first: 3) { nodes { __typename id services { __typename id } } }
      events(first: 5) { nodes { __typename id involvedObject { __typename id } } }
      configMaps(first: 3) { nodes { __typename id } }
      secrets(first: 3) { nodes { __typename id } }
      persistentVolumeClaims(first: 3) { nodes { __typename id } }
      alerts { __typename id object { __typename id } workload { __typename id } }
      metering(timeUnit: HOUR) { __typename id } }
    metering(timeUnit: HOUR, first: 2) { __typename id } }
  namespaces(clusters: $cs, first: 5) { nodes { __typename id } }
  resources(group: "rbac.authorization.k8s.io", version: "v1", resource: "clusterroles", clusters: $cs, first: 3) { nodes { __typename id } }
  podsAsResources: resources(group: "", version: "v1", resource: "pods", clusters: $cs, filter: {namespace: "shop"}, first: 3) { nodes { __typename id } }
  secretsAsResources: resources(group: "", version: "v1", resource: "secrets", clusters: $cs, filter: {namespace: "shop"}, first: 2) { nodes { __typename id } }
  deploymentsAsResources: resources(group: "apps", version: "v1", resource: "deployments", clusters: $cs, filter: {namespace: "shop"}, first: 2) { nodes { __typename id } }
  endpointSlices: resources(group: "discovery.k8s.io", version: "v1", resource: "endpointslices", clusters: $cs, filter: {namespace: "shop"}, first: 2) { nodes { __typename id } }
  alerts(clusters: $cs) { nodes { __typename id } }
  metering(clusters: $cs, timeUnit: DAY, first: 3) { nodes { __typename id } }
  topology(cluster: $c, namespace: "shop") { nodes { objectId kind } edges { from to type } }
}`

// TestEveryIDRoundTrips: every id a deep query hands out (in lists, in
// relations, in the topology, from resources() of kinds with types of
// their own and of one cached without) is answered by node(id:) with the
// object it came with, and by object(id:) exactly when it is a Kubernetes
// object; no id comes as two types. The first version found ConfigMaps'
// and Secrets' ids malformed; the second, a Pod read through resources()
// sharing the typed Pod's id, and EndpointSlices' ids answering null.
func TestEveryIDRoundTrips(t *testing.T) {
	s, c, admin := recordsServer(t, "ids-admin")

	r := s.as(admin.token).do(t, deepIDs, map[string]any{"c": c.Context, "cs": []string{c.Context}})
	if len(r.Errors) > 0 {
		t.Fatalf("deep query: %+v", r.Errors)
	}
	var doc any
	if err := jsonInto(r, &doc); err != nil {
		t.Fatal(err)
	}
	typeOf := map[string]string{} // id -> __typename
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if id, ok := v["id"].(string); ok {
				tn, _ := v["__typename"].(string)
				if seen, ok := typeOf[id]; ok && seen != tn {
					t.Errorf("id %s came as a %s and as a %s", id, seen, tn)
				}
				typeOf[id] = tn
			}
			for _, e := range v {
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(doc)
	var topo struct {
		Topology struct {
			Nodes []struct{ ObjectID, Kind string }
			Edges []struct{ From, To string }
		}
	}
	if err := jsonInto(r, &topo); err != nil {
		t.Fatal(err)
	}
	vertices := map[string]bool{}
	for _, n := range topo.Topology.Nodes {
		vertices[n.ObjectID] = true
		if _, ok := typeOf[n.ObjectID]; !ok {
			typeOf[n.ObjectID] = "" // any type, as long as node(id:) answers it
		}
	}
	for _, e := range topo.Topology.Edges {
		if !vertices[e.From] || !vertices[e.To] {
			t.Errorf("edge %s -> %s names a vertex the topology does not hold", e.From, e.To)
		}
	}
	types := map[string]int{}
	for _, tn := range typeOf {
		types[tn]++
	}
	// What the seed and seedRecords hold must all have been reached.
	for _, want := range []string{"Cluster", "KubeNode", "NodePool", "Namespace", "Workload", "Pod", "Service", "Ingress", "Event", "MetadataObject", "Resource", "Alert", "MeteringRecord"} {
		if types[want] == 0 {
			t.Errorf("the deep query reached no %s (types reached: %v)", want, types)
		}
	}

	ids := make([]string, 0, len(typeOf))
	for id := range typeOf {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	notKube := map[string]bool{"Cluster": true, "NodePool": true, "Alert": true, "MeteringRecord": true}
	for _, id := range ids {
		var got struct {
			Node *struct {
				Typename string `json:"__typename"`
				ID       string
			}
			Object *struct{ ID string }
		}
		r := s.as(admin.token).do(t, `query($id: ID!) { node(id: $id) { __typename id } object(id: $id) { id } }`, map[string]any{"id": id})
		if err := jsonInto(r, &got); err != nil || len(r.Errors) > 0 {
			t.Errorf("node(%s) of a %q: %s %+v", id, typeOf[id], r.Data, r.Errors)
			continue
		}
		want := typeOf[id]
		switch {
		case got.Node == nil || got.Node.ID != id || want != "" && got.Node.Typename != want:
			t.Errorf("node(%s) of a %q = %+v", id, want, got.Node)
		case notKube[got.Node.Typename] == (got.Object != nil):
			t.Errorf("object(%s) of a %s = %+v", id, got.Node.Typename, got.Object)
		}
	}
	t.Logf("%d ids of %d types round-tripped: %v", len(ids), len(types), types)
}
