package api_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/clustergraph/clustergraph/api"
	"github.com/clustergraph/clustergraph/audit"
	"github.com/clustergraph/clustergraph/internal/testenv"
	"github.com/clustergraph/clustergraph/k8s"
	"github.com/clustergraph/clustergraph/k8s/write"
)

const manifest = `apiVersion: v1
kind: ConfigMap
metadata:
  name: applied-config
data:
  color: blue
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: applied
spec:
  replicas: 1
  selector: {matchLabels: {app: applied}}
  template:
    metadata: {labels: {app: applied}}
    spec:
      containers:
      - {name: web, image: example/web:1}
      - {name: side, image: example/side:1}
`

type applyOut struct {
	Apply struct {
		Succeeded, Failed int
		Results           []struct {
			Index  int
			Action *string
			Object *struct {
				ID       string
				Metadata struct{ Name, Namespace string }
			}
			Error *struct{ Message, Code string }
		}
	}
}

const applyMutation = `mutation($c: String!, $m: String!, $ns: String, $dry: Boolean) { apply(cluster: $c, manifest: $m, namespace: $ns, dryRun: $dry) {
	succeeded failed results { index action object { id metadata { name namespace } } error { message code } } } }`

// TestWrites applies, patches, scales, restarts, sets images, cordons and
// deletes against the real apiserver as the caller, checking each result
// with client-go and that the audit log and the apiserver name the caller.
func TestWrites(t *testing.T) {
	cs := testenv.Clusters(t)
	for i, c := range cs {
		t.Run(c.Context, func(t *testing.T) {
			// Callers come from the identity cluster (cs[0]) in both runs.
			clusters := []testenv.Cluster{cs[0]}
			if i > 0 {
				clusters = append(clusters, c)
			}
			testWrites(t, clusters, c, fmt.Sprint(i))
		})
	}
}

func testWrites(t *testing.T, clusters []testenv.Cluster, c testenv.Cluster, suffix string) {
	ns := "writes-test"
	makeNamespace(t, c, ns)
	admin := makeUser(t, clusters, "cg-writer-"+suffix, func(c testenv.Cluster, user string) {
		clusterBinding(t, c, "cg-writer-"+suffix, "cluster-admin", user)
	})
	viewer := makeUser(t, clusters, "cg-reader-"+suffix, func(c testenv.Cluster, user string) {
		if c.Context == clusters[len(clusters)-1].Context {
			roleBinding(t, c, ns, "cg-reader-"+suffix, "ClusterRole", "view", user)
		}
	})
	paths := kubeconfigs(clusters)
	var auditLog syncBuffer
	s := startServerWith(t, serverOpts{kubeconfigs: paths, waitReady: true, auth: true}, func(cfg *api.Config) {
		cfg.Audit = audit.New(&auditLog)
	})
	as := s.as(admin.token)

	// Dry run changes nothing.
	var out applyOut
	as.query(t, applyMutation, map[string]any{"c": c.Context, "m": manifest, "ns": ns, "dry": true}, &out)
	if out.Apply.Succeeded != 2 {
		t.Fatalf("dry run: %+v", out.Apply)
	}
	if _, err := c.Client.AppsV1().Deployments(ns).Get(ctx, "applied", metav1.GetOptions{}); err == nil {
		t.Fatal("the dry run created the deployment")
	}
	as.query(t, applyMutation, map[string]any{"c": c.Context, "m": manifest, "ns": ns}, &out)
	if out.Apply.Succeeded != 2 || *out.Apply.Results[0].Action != "CREATED" || *out.Apply.Results[1].Action != "CREATED" {
		t.Fatalf("apply: %+v", out.Apply)
	}
	d, err := c.Client.AppsV1().Deployments(ns).Get(ctx, "applied", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if mgr := d.ManagedFields[0].Manager; mgr != write.FieldManager {
		t.Errorf("field manager %q, want %q", mgr, write.FieldManager)
	}
	as.query(t, applyMutation, map[string]any{"c": c.Context, "m": manifest, "ns": ns}, &out)
	if *out.Apply.Results[0].Action != "UNCHANGED" {
		t.Errorf("re-apply: %+v, want UNCHANGED", out.Apply.Results[0])
	}
	cmID, deployID := out.Apply.Results[0].Object.ID, out.Apply.Results[1].Object.ID

	// One bad document does not stop the others.
	mixed := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok-one}\n---\nkind: ConfigMap\nmetadata: {name: no-version}\n---\napiVersion: v1\nkind: Nope\nmetadata: {name: x}\n"
	as.query(t, applyMutation, map[string]any{"c": c.Context, "m": mixed, "ns": ns}, &out)
	if out.Apply.Succeeded != 1 || out.Apply.Failed != 2 || out.Apply.Results[1].Error == nil || out.Apply.Results[2].Error == nil || out.Apply.Results[2].Error.Code != "BAD_USER_INPUT" {
		t.Errorf("mixed manifest: %+v", out.Apply)
	}
	for name, m := range map[string]string{"invalid yaml": "kind: [", "namespaced without namespace": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"} {
		r := as.do(t, applyMutation, map[string]any{"c": c.Context, "m": m})
		var o applyOut
		_ = json.Unmarshal(r.Data, &o)
		if (len(r.Errors) == 0 || r.Errors[0].Extensions["code"] != "BAD_USER_INPUT") && (len(o.Apply.Results) == 0 || o.Apply.Results[0].Error == nil || o.Apply.Results[0].Error.Code != "BAD_USER_INPUT") {
			t.Errorf("%s: %+v %s, want BAD_USER_INPUT", name, r.Errors, r.Data)
		}
	}

	// Patch with a stale resourceVersion is a conflict; the current one
	// works. (A ConfigMap: no controller changes it between the reads.)
	cm, err := c.Client.CoreV1().ConfigMaps(ns).Get(ctx, "applied-config", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	patch := `mutation($id: ID!, $p: JSON!, $rv: String) { patch(id: $id, type: MERGE, patch: $p, resourceVersion: $rv) { object { metadata { resourceVersion labels } } } }`
	r := as.do(t, patch, map[string]any{"id": cmID, "p": map[string]any{"metadata": map[string]any{"labels": map[string]any{"x": "1"}}}, "rv": "1"})
	if len(r.Errors) == 0 || r.Errors[0].Extensions["code"] != "CONFLICT" {
		t.Errorf("stale patch: %+v, want CONFLICT", r.Errors)
	}
	var patched struct {
		Patch struct {
			Object struct {
				Metadata struct{ Labels map[string]string }
			}
		}
	}
	as.query(t, patch, map[string]any{"id": cmID, "p": map[string]any{"metadata": map[string]any{"labels": map[string]any{"x": "1"}}}, "rv": cm.ResourceVersion}, &patched)
	if patched.Patch.Object.Metadata.Labels["x"] != "1" {
		t.Errorf("patched labels %v", patched.Patch.Object.Metadata.Labels)
	}
	as.query(t, `mutation($id: ID!) { patch(id: $id, type: JSON, patch: [{op: "add", path: "/metadata/labels", value: {y: "2"}}]) { object { id } } }`, map[string]any{"id": deployID}, &patched)
	as.query(t, `mutation($id: ID!) { patch(id: $id, type: STRATEGIC, patch: {spec: {template: {spec: {containers: [{name: "web", image: "example/web:3"}]}}}}) { object { id } } }`, map[string]any{"id": deployID}, &patched)
	if d, err := c.Client.AppsV1().Deployments(ns).Get(ctx, "applied", metav1.GetOptions{}); err != nil || d.Spec.Template.Spec.Containers[0].Image != "example/web:3" || len(d.Spec.Template.Spec.Containers) != 2 {
		t.Errorf("strategic patch: %v %+v, want web at example/web:3 and side kept", err, d.Spec.Template.Spec.Containers)
	}

	// Server-side apply conflicts: a field another manager owns is a
	// CONFLICT for that document, unless forced.
	other := `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"applied-config","namespace":"` + ns + `"},"data":{"color":"green"}}`
	if _, err := c.Client.CoreV1().ConfigMaps(ns).Patch(ctx, "applied-config", types.ApplyPatchType, []byte(other), metav1.PatchOptions{FieldManager: "someone-else", Force: ptr(true)}); err != nil {
		t.Fatal(err)
	}
	applyForce := `mutation($c: String!, $m: String!, $ns: String, $f: Boolean) { apply(cluster: $c, manifest: $m, namespace: $ns, force: $f) {
		succeeded failed results { index action error { message code } } } }`
	mine := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: applied-config}\ndata: {color: red}\n"
	as.query(t, applyForce, map[string]any{"c": c.Context, "m": mine, "ns": ns, "f": false}, &out)
	if out.Apply.Failed != 1 || out.Apply.Results[0].Error == nil || out.Apply.Results[0].Error.Code != "CONFLICT" {
		t.Errorf("apply over another manager's field: %+v, want CONFLICT", out.Apply)
	}
	as.query(t, applyForce, map[string]any{"c": c.Context, "m": mine, "ns": ns, "f": true}, &out)
	if out.Apply.Succeeded != 1 {
		t.Errorf("forced apply: %+v", out.Apply)
	}
	if cm, _ := c.Client.CoreV1().ConfigMaps(ns).Get(ctx, "applied-config", metav1.GetOptions{}); cm.Data["color"] != "red" {
		t.Errorf("color after the forced apply: %q", cm.Data["color"])
	}

	// Scale, restart and setImage, checked on the apiserver.
	var ignored struct{}
	as.query(t, `mutation($id: ID!) { scale(id: $id, replicas: 3) { object { ... on Workload { replicas } } } }`, map[string]any{"id": deployID}, &ignored)
	as.query(t, `mutation($id: ID!) { restart(id: $id) { object { id } } }`, map[string]any{"id": deployID}, &ignored)
	as.query(t, `mutation($id: ID!) { setImage(id: $id, container: "side", image: "example/side:2") { object { ... on Workload { images } } } }`, map[string]any{"id": deployID}, &ignored)
	d, err = c.Client.AppsV1().Deployments(ns).Get(ctx, "applied", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *d.Spec.Replicas != 3 || d.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"] == "" ||
		d.Spec.Template.Spec.Containers[1].Image != "example/side:2" || d.Spec.Template.Spec.Containers[0].Image != "example/web:3" ||
		d.Labels["y"] != "2" {
		t.Errorf("deployment after writes: replicas %d, annotations %v, containers %+v, labels %v", *d.Spec.Replicas, d.Spec.Template.Annotations, d.Spec.Template.Spec.Containers, d.Labels)
	}
	for name, q := range map[string]string{
		"unknown container":   `mutation($id: ID!) { setImage(id: $id, container: "nope", image: "x") { object { id } } }`,
		"restart a configmap": `mutation($id: ID!) { restart(id: $id) { object { id } } }`,
	} {
		id := deployID
		if strings.Contains(name, "configmap") {
			id = cmID
		}
		if r := as.do(t, q, map[string]any{"id": id}); len(r.Errors) == 0 || r.Errors[0].Extensions["code"] != "BAD_USER_INPUT" {
			t.Errorf("%s: %+v, want BAD_USER_INPUT", name, r.Errors)
		}
	}
	if r := as.do(t, `mutation($id: ID!) { scale(id: $id, replicas: 2) { object { id } } }`, map[string]any{"id": cmID}); len(r.Errors) == 0 || r.Errors[0].Extensions["code"] != "BAD_USER_INPUT" {
		t.Errorf("scale a configmap: %+v, want BAD_USER_INPUT (no scale subresource)", r.Errors)
	}

	// A viewer's write is refused by the apiserver itself, which names the
	// viewer: the request impersonated them.
	if r := s.as(viewer.token).do(t, `mutation($id: ID!) { scale(id: $id, replicas: 0) { object { id } } }`, map[string]any{"id": deployID}); len(r.Errors) == 0 || r.Errors[0].Extensions["code"] != "FORBIDDEN" || !strings.Contains(r.Errors[0].Message, viewer.user) {
		t.Errorf("viewer scale: %+v, want FORBIDDEN naming %s", r.Errors, viewer.user)
	}

	// Cordon and uncordon a node.
	nodes, err := c.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	nodeID := k8s.ObjectID{Cluster: c.Context, GVK: k8s.GVKNode, Name: nodes.Items[len(nodes.Items)-1].Name}.Encode()
	var cordoned struct {
		Cordon struct{ Node struct{ Unschedulable bool } }
	}
	as.query(t, `mutation($id: ID!) { cordon(id: $id) { node { unschedulable } } }`, map[string]any{"id": nodeID}, &cordoned)
	if !cordoned.Cordon.Node.Unschedulable {
		t.Error("cordon did not mark the node unschedulable")
	}
	as.query(t, `mutation($id: ID!) { uncordon(id: $id) { node { unschedulable } } }`, map[string]any{"id": nodeID}, &ignored)
	if n, _ := c.Client.CoreV1().Nodes().Get(ctx, nodes.Items[len(nodes.Items)-1].Name, metav1.GetOptions{}); n.Spec.Unschedulable {
		t.Error("uncordon left the node unschedulable")
	}

	// Delete with each propagation; a namespace reports it is terminating.
	var del struct {
		Delete struct {
			Gone   bool
			Object *struct {
				Metadata struct{ DeletionTimestamp *time.Time }
			}
		}
	}
	deleteQ := `mutation($id: ID!, $p: DeletionPropagation) { delete(id: $id, propagation: $p) { gone object { metadata { deletionTimestamp } } } }`
	as.query(t, deleteQ, map[string]any{"id": deployID, "p": "ORPHAN"}, &del)
	eventually(t, 30*time.Second, "the orphaned ReplicaSet without owner", func() bool {
		rss, err := c.Client.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=applied"})
		return err == nil && len(rss.Items) > 0 && len(rss.Items[0].OwnerReferences) == 0
	})
	rss, _ := c.Client.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=applied"})
	for _, rs := range rss.Items {
		rsID := k8s.ObjectID{Cluster: c.Context, GVK: k8s.GVKReplicaSet, Namespace: ns, Name: rs.Name}.Encode()
		as.query(t, deleteQ, map[string]any{"id": rsID, "p": "BACKGROUND"}, &del)
	}
	as.query(t, deleteQ, map[string]any{"id": cmID, "p": "FOREGROUND"}, &del)
	// Foreground deletion finishes after the garbage collector's pass.
	eventually(t, 30*time.Second, "the configmap gone", func() bool {
		_, err := c.Client.CoreV1().ConfigMaps(ns).Get(ctx, "applied-config", metav1.GetOptions{})
		return err != nil
	})

	makeNamespace(t, c, "doomed-"+suffix)
	as.query(t, deleteQ, map[string]any{"id": k8s.ObjectID{Cluster: c.Context, GVK: k8s.GVKNamespace, Name: "doomed-" + suffix}.Encode()}, &del)
	if del.Delete.Gone || del.Delete.Object == nil || del.Delete.Object.Metadata.DeletionTimestamp == nil {
		t.Errorf("namespace delete = %+v, want it reported terminating", del.Delete)
	}

	// The audit log names the caller for each write, never a value.
	log := auditLog.String()
	for _, action := range []string{`"action":"apply"`, `"action":"patch"`, `"action":"scale"`, `"action":"setImage"`, `"action":"cordon"`, `"action":"delete"`} {
		if !strings.Contains(log, action) {
			t.Errorf("audit log lacks %s", action)
		}
	}
	if !strings.Contains(log, admin.user) || strings.Contains(log, "color") && strings.Contains(log, "blue") {
		t.Errorf("audit log should name %s and hold no values:\n%s", admin.user, log)
	}
}
