package resolvers

import (
	"context"
	"slices"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/clustergraph/clustergraph/errkind"
	"github.com/clustergraph/clustergraph/graph/model"
	"github.com/clustergraph/clustergraph/k8s"
	"github.com/clustergraph/clustergraph/k8s/write"
)

// targetOf parses an object id and finds its cluster.
func (r *Resolver) targetOf(id string) (*k8s.Cluster, k8s.ObjectID, error) {
	oid, err := k8s.ParseID(id)
	if err != nil {
		return nil, oid, err
	}
	c, err := r.Registry.Cluster(oid.Cluster)
	return c, oid, err
}

// objectOf serves an object the apiserver returned as its GraphQL type:
// ConfigMaps and Secrets as metadata only (as the caches hold them, so a
// Secret's values never leave), kinds without a type of their own as
// Resource.
func objectOf(c *k8s.Cluster, u *unstructured.Unstructured) model.KubeObject {
	switch u.GroupVersionKind() {
	case k8s.GVKSecret, k8s.GVKConfigMap:
		m := meta.AsPartialObjectMetadata(u)
		m.TypeMeta = metav1.TypeMeta{APIVersion: u.GetAPIVersion(), Kind: u.GetKind()}
		m.ManagedFields = nil // as the caches hold objects
		return model.NewMetadataObject(c, m)
	}
	if o := wrap(c, k8s.Typed(u)); o != nil {
		return o
	}
	return model.NewResource(c, u)
}

// patchKeys names the top-level keys of a patch for the audit log: never
// its values, which may hold Secret data or last-applied-configuration.
func patchKeys(p any) []string {
	var keys []string
	switch v := p.(type) {
	case map[string]any:
		for k := range v {
			keys = append(keys, k)
		}
	case []any:
		for _, op := range v {
			if m, ok := op.(map[string]any); ok {
				if path, ok := m["path"].(string); ok {
					keys = append(keys, path)
				}
			}
		}
	}
	slices.Sort(keys)
	return keys
}

// applyPayload converts apply's results (AuditMutations records each).
func applyPayload(c *k8s.Cluster, results []write.ApplyResult) *model.ApplyPayload {
	p := &model.ApplyPayload{Results: make([]*model.ApplyResult, len(results))}
	for i, res := range results {
		out := &model.ApplyResult{Index: res.Index}
		if res.Err != nil {
			out.Error = model.FromError(res.Err)
			p.Failed++
		} else {
			a := model.ApplyAction(strings.ToUpper(res.Action))
			out.Action, out.Object = &a, objectOf(c, res.Obj)
			p.Succeeded++
		}
		p.Results[i] = out
	}
	return p
}

// deletionPropagation maps the deletion propagation argument.
func deletionPropagation(p *model.DeletionPropagation) *metav1.DeletionPropagation {
	if p == nil {
		return nil
	}
	v := map[model.DeletionPropagation]metav1.DeletionPropagation{
		model.DeletionPropagationOrphan:     metav1.DeletePropagationOrphan,
		model.DeletionPropagationBackground: metav1.DeletePropagationBackground,
		model.DeletionPropagationForeground: metav1.DeletePropagationForeground,
	}[*p]
	return &v
}

// objectName names an id's object for the audit log.
func objectName(id k8s.ObjectID) string {
	return id.GVK.Kind + " " + id.Namespace + "/" + id.Name
}

// cordon marks a node (un)schedulable.
func (r *Resolver) cordon(ctx context.Context, id string, unschedulable bool) (*model.NodePayload, error) {
	c, oid, err := r.targetOf(id)
	if err != nil {
		return nil, err
	}
	if oid.GVK != k8s.GVKNode {
		return nil, errkind.BadInputf("%s is not a node", oid.GVK.Kind)
	}
	u, err := write.Cordon(ctx, c, oid.Name, unschedulable)
	if err != nil {
		return nil, err
	}
	n, ok := objectOf(c, u).(*model.KubeNode)
	if !ok {
		return nil, errkind.BadInputf("%s is not a node", oid.Name)
	}
	return &model.NodePayload{Node: n}, nil
}

// drainPayload reports a drain with the node as cordoning left it.
func drainPayload(c *k8s.Cluster, node *unstructured.Unstructured, results []write.DrainResult) (*model.DrainPayload, error) {
	n, ok := objectOf(c, node).(*model.KubeNode)
	if !ok {
		return nil, errkind.BadInputf("%s is not a node", node.GetName())
	}
	p := &model.DrainPayload{Node: n, Complete: true, Pods: make([]*model.DrainPodResult, len(results))}
	for i, res := range results {
		out := &model.DrainPodResult{Namespace: res.Namespace, Pod: res.Pod, Outcome: model.DrainOutcome(res.Outcome)}
		if res.Message != "" {
			out.Message = &res.Message
		}
		if res.Outcome == write.Failed {
			p.Complete = false
		}
		p.Pods[i] = out
	}
	return p, nil
}

// write runs one change on the object an id names and returns the object
// as the apiserver left it, as its GraphQL type.
func (r *Resolver) write(id string, op func(*k8s.Cluster, k8s.ObjectID) (*unstructured.Unstructured, error)) (model.KubeObject, error) {
	c, oid, err := r.targetOf(id)
	if err != nil {
		return nil, err
	}
	u, err := op(c, oid)
	if err != nil {
		return nil, err
	}
	return objectOf(c, u), nil
}

// versions lists each cluster's apiserver version and the components of
// the versions ConfigMap; a cluster whose ConfigMap cannot be read adds an
// error naming it and the rest is still served.
func (r *Resolver) versions(ctx context.Context, cs []*k8s.Cluster) []*model.ComponentVersion {
	out := []*model.ComponentVersion{}
	ns, name, _ := strings.Cut(r.VersionsConfigMap, "/")
	for _, c := range cs {
		st := c.Status()
		out = append(out, &model.ComponentVersion{Name: "kube-apiserver", Cluster: c.Name, Status: string(st.State), Version: st.ServerVersion})
		if r.VersionsConfigMap == "" {
			continue
		}
		vs, err := c.Versions(ctx, ns, name)
		if err != nil {
			graphql.AddError(ctx, err)
			continue
		}
		for _, v := range vs {
			out = append(out, &model.ComponentVersion{Name: v.Name, Cluster: c.Name, Status: v.Status, Version: v.Version})
		}
	}
	return out
}
