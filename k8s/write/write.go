package write

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/clustergraph/clustergraph/errkind"
	"github.com/clustergraph/clustergraph/k8s"
)

// Writes go to the apiserver impersonating the context's subject: the
// apiserver enforces RBAC for the real caller and its audit log names them.

// FieldManager is the server-side apply field manager clustergraph uses.
const FieldManager = "clustergraph"

// ApplyOptions tune Apply.
type ApplyOptions struct {
	// Namespace is used for namespaced objects that name none.
	Namespace string
	DryRun    bool
	// Force takes over fields other managers own.
	Force bool
}

// ApplyResult is the outcome of one document.
type ApplyResult struct {
	Index  int
	Obj    *unstructured.Unstructured
	Action string // created, configured or unchanged
	Err    error
}

// Apply server-side applies every document of a YAML or JSON manifest, in
// order, each on its own: one document's error does not stop the others.
func Apply(ctx context.Context, c *k8s.Cluster, manifest string, o ApplyOptions) ([]ApplyResult, error) {
	docs, err := decodeManifest(manifest)
	if err != nil {
		return nil, err
	}
	dyn, err := c.DynamicFor(ctx)
	if err != nil {
		return nil, err
	}
	results := make([]ApplyResult, len(docs))
	for i, u := range docs {
		results[i] = ApplyResult{Index: i}
		results[i].Obj, results[i].Action, results[i].Err = applyOne(ctx, c, dyn, u, o)
	}
	return results, nil
}

// decodeManifest splits a manifest into objects; a List's items count as
// documents.
func decodeManifest(manifest string) ([]*unstructured.Unstructured, error) {
	d := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(manifest), 4096)
	var out []*unstructured.Unstructured
	for n := 1; ; n++ {
		var raw map[string]any
		if err := d.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, errkind.BadInputf("document %d is not valid YAML or JSON: %v", n, err)
		}
		if raw == nil {
			continue // an empty document between ---
		}
		u := &unstructured.Unstructured{Object: raw}
		if u.IsList() {
			l, err := u.ToList()
			if err != nil {
				return nil, errkind.BadInputf("document %d: %v", n, err)
			}
			for i := range l.Items {
				out = append(out, &l.Items[i])
			}
			continue
		}
		out = append(out, u)
	}
	if len(out) == 0 {
		return nil, errkind.BadInputf("the manifest holds no object")
	}
	return out, nil
}

func applyOne(ctx context.Context, c *k8s.Cluster, dyn dynamic.Interface, u *unstructured.Unstructured, o ApplyOptions) (*unstructured.Unstructured, string, error) {
	obj, action, err := applyDoc(ctx, c, dyn, u, o)
	return obj, action, k8s.RedactWriteError(err, u)
}

func applyDoc(ctx context.Context, c *k8s.Cluster, dyn dynamic.Interface, u *unstructured.Unstructured, o ApplyOptions) (*unstructured.Unstructured, string, error) {
	gvk := u.GroupVersionKind()
	switch {
	case u.GetAPIVersion() == "" || gvk.Kind == "":
		return nil, "", errkind.BadInputf("the document has no apiVersion or kind")
	case u.GetName() == "":
		return nil, "", errkind.BadInputf("%s has no metadata.name", gvk.Kind)
	}
	m, err := c.Mapping(gvk)
	if err != nil {
		return nil, "", err
	}
	var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		if u.GetNamespace() == "" {
			if o.Namespace == "" {
				return nil, "", errkind.BadInputf("%s %s is namespaced: give metadata.namespace or the namespace argument", gvk.Kind, u.GetName())
			}
			u.SetNamespace(o.Namespace)
		}
		ri = dyn.Resource(m.Resource).Namespace(u.GetNamespace())
	} else {
		u.SetNamespace("")
	}
	before, err := ri.Get(ctx, u.GetName(), metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, "", c.APIError(err, gvk.Kind+" "+u.GetName())
	}
	data, err := json.Marshal(u.Object)
	if err != nil {
		return nil, "", errkind.BadInputf("%v", err)
	}
	opts := metav1.PatchOptions{FieldManager: FieldManager, Force: &o.Force}
	if o.DryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	after, err := ri.Patch(ctx, u.GetName(), types.ApplyPatchType, data, opts)
	if err != nil {
		return nil, "", c.APIError(err, gvk.Kind+" "+u.GetName())
	}
	action := "configured"
	switch {
	case before == nil:
		action = "created"
	case before.GetResourceVersion() == after.GetResourceVersion():
		action = "unchanged"
	}
	return after, action, nil
}

// target is an object a write names by id.
func target(ctx context.Context, c *k8s.Cluster, id k8s.ObjectID) (dynamic.ResourceInterface, *meta.RESTMapping, error) {
	dyn, err := c.DynamicFor(ctx)
	if err != nil {
		return nil, nil, err
	}
	m, err := c.Mapping(id.GVK)
	if err != nil {
		return nil, nil, err
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		return dyn.Resource(m.Resource).Namespace(id.Namespace), m, nil
	}
	return dyn.Resource(m.Resource), m, nil
}

// PatchType is how a patch document is read.
type PatchType string

// The patch types.
const (
	PatchMerge     PatchType = "MERGE"
	PatchJSON      PatchType = "JSON"
	PatchStrategic PatchType = "STRATEGIC"
)

// Patch patches an object. With expectedVersion set, a newer object is a
// conflict (the version is sent as a precondition inside the patch).
func Patch(ctx context.Context, c *k8s.Cluster, id k8s.ObjectID, t PatchType, patch any, expectedVersion string) (*unstructured.Unstructured, error) {
	out, err := patchObject(ctx, c, id, t, patch, expectedVersion)
	return out, k8s.RedactPatchError(err, id, patch)
}

func patchObject(ctx context.Context, c *k8s.Cluster, id k8s.ObjectID, t PatchType, patch any, expectedVersion string) (*unstructured.Unstructured, error) {
	ri, _, err := target(ctx, c, id)
	if err != nil {
		return nil, err
	}
	var pt types.PatchType
	switch t {
	case PatchMerge:
		pt = types.MergePatchType
	case PatchStrategic:
		pt = types.StrategicMergePatchType
	case PatchJSON:
		pt = types.JSONPatchType
	default:
		return nil, errkind.BadInputf("unknown patch type %q", t)
	}
	if expectedVersion != "" {
		switch p := patch.(type) {
		case map[string]any:
			md, _ := p["metadata"].(map[string]any)
			if md == nil {
				md = map[string]any{}
				p["metadata"] = md
			}
			md["resourceVersion"] = expectedVersion
		case []any:
			patch = append([]any{map[string]any{"op": "test", "path": "/metadata/resourceVersion", "value": expectedVersion}}, p...)
		}
	}
	data, err := json.Marshal(patch)
	if err != nil {
		return nil, errkind.BadInputf("the patch is not JSON: %v", err)
	}
	out, err := ri.Patch(ctx, id.Name, pt, data, metav1.PatchOptions{FieldManager: FieldManager})
	if err != nil {
		// A JSON patch whose version test failed comes back as a bare 400
		// or 422: it is a conflict when the object has moved on.
		if expectedVersion != "" && pt == types.JSONPatchType && (apierrors.IsBadRequest(err) || apierrors.IsInvalid(err)) {
			if cur, gerr := ri.Get(ctx, id.Name, metav1.GetOptions{}); gerr == nil && cur.GetResourceVersion() != expectedVersion {
				return nil, &k8s.ClusterError{Cluster: c.Name, Err: errkind.Newf(errkind.Conflict, "%s %s changed since version %s", id.GVK.Kind, id.Name, expectedVersion)}
			}
		}
		return nil, c.APIError(err, id.GVK.Kind+" "+id.Name)
	}
	return out, nil
}

// Delete deletes an object and returns its state after the request
// (terminating, for objects with finalizers such as namespaces), or nil
// when it is gone.
func Delete(ctx context.Context, c *k8s.Cluster, id k8s.ObjectID, propagation *metav1.DeletionPropagation, grace *int64) (*unstructured.Unstructured, error) {
	ri, _, err := target(ctx, c, id)
	if err != nil {
		return nil, err
	}
	if err := ri.Delete(ctx, id.Name, metav1.DeleteOptions{PropagationPolicy: propagation, GracePeriodSeconds: grace}); err != nil {
		return nil, c.APIError(err, id.GVK.Kind+" "+id.Name)
	}
	after, err := ri.Get(ctx, id.Name, metav1.GetOptions{})
	if err != nil {
		return nil, nil //nolint:nilerr // gone already
	}
	return after, nil
}

// Scale sets replicas through the scale subresource, so it works for any
// kind that has one, custom kinds included.
func Scale(ctx context.Context, c *k8s.Cluster, id k8s.ObjectID, replicas int) (*unstructured.Unstructured, error) {
	if replicas < 0 {
		return nil, errkind.BadInputf("replicas must not be negative")
	}
	ri, _, err := target(ctx, c, id)
	if err != nil {
		return nil, err
	}
	patch := fmt.Sprintf(`{"spec":{"replicas":%d}}`, replicas)
	if _, err := ri.Patch(ctx, id.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: FieldManager}, "scale"); err != nil {
		if apierrors.IsNotFound(err) {
			if _, gerr := ri.Get(ctx, id.Name, metav1.GetOptions{}); gerr == nil {
				return nil, &k8s.ClusterError{Cluster: c.Name, Err: errkind.Newf(errkind.BadInput, "%s has no scale subresource", id.GVK.Kind)}
			}
		}
		return nil, c.APIError(err, id.GVK.Kind+" "+id.Name)
	}
	return ri.Get(ctx, id.Name, metav1.GetOptions{})
}

// Restart restarts a Deployment, StatefulSet or DaemonSet the way kubectl
// rollout restart does: a new template annotation.
func Restart(ctx context.Context, c *k8s.Cluster, id k8s.ObjectID) (*unstructured.Unstructured, error) {
	switch id.GVK {
	case k8s.GVKDeployment, k8s.GVKStatefulSet, k8s.GVKDaemonSet:
	default:
		return nil, errkind.BadInputf("only Deployments, StatefulSets and DaemonSets restart; this is a %s", id.GVK.Kind)
	}
	p := map[string]any{"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{"annotations": map[string]any{
		"kubectl.kubernetes.io/restartedAt": time.Now().Format(time.RFC3339),
	}}}}}
	return Patch(ctx, c, id, PatchStrategic, p, "")
}

// SetImage changes a container's image: by strategic merge for built-in
// kinds, by a merge patch of the whole container list for custom kinds
// (such as TApp), whose servers do not understand strategic merges.
func SetImage(ctx context.Context, c *k8s.Cluster, id k8s.ObjectID, container, image string) (*unstructured.Unstructured, error) {
	if image == "" {
		return nil, errkind.BadInputf("the image must not be empty")
	}
	ri, _, err := target(ctx, c, id)
	if err != nil {
		return nil, err
	}
	cur, err := ri.Get(ctx, id.Name, metav1.GetOptions{})
	if err != nil {
		return nil, c.APIError(err, id.GVK.Kind+" "+id.Name)
	}
	path := []string{"spec", "template", "spec", "containers"}
	if id.GVK == k8s.GVKCronJob {
		path = []string{"spec", "jobTemplate", "spec", "template", "spec", "containers"}
	}
	containers, found, _ := unstructured.NestedSlice(cur.Object, path...)
	if !found {
		return nil, errkind.BadInputf("%s %s has no pod template with containers", id.GVK.Kind, id.Name)
	}
	var names []string
	idx := -1
	for i, ct := range containers {
		m, _ := ct.(map[string]any)
		name, _ := m["name"].(string)
		names = append(names, name)
		if name == container {
			idx = i
		}
	}
	if idx < 0 {
		return nil, errkind.BadInputf("%s %s has no container %q (it has %v)", id.GVK.Kind, id.Name, container, names)
	}
	if scheme.Scheme.Recognizes(id.GVK) {
		p := nest(path, []any{map[string]any{"name": container, "image": image}})
		return Patch(ctx, c, id, PatchStrategic, p, "")
	}
	containers[idx].(map[string]any)["image"] = image
	return Patch(ctx, c, id, PatchMerge, nest(path, containers), "")
}

// nest builds {"a":{"b":...{"z":v}}} from a path.
func nest(path []string, v any) map[string]any {
	out := map[string]any{path[len(path)-1]: v}
	for i := len(path) - 2; i >= 0; i-- {
		out = map[string]any{path[i]: out}
	}
	return out
}

// Cordon marks a node (un)schedulable.
func Cordon(ctx context.Context, c *k8s.Cluster, node string, unschedulable bool) (*unstructured.Unstructured, error) {
	return Patch(ctx, c, k8s.ObjectID{Cluster: c.Name, GVK: k8s.GVKNode, Name: node}, PatchMerge, map[string]any{"spec": map[string]any{"unschedulable": unschedulable}}, "")
}
