package resolvers

import (
	"context"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/clustergraph/clustergraph/graph/model"
	"github.com/clustergraph/clustergraph/k8s"
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

// objectOf serves an object the apiserver returned as its GraphQL type.
func objectOf(c *k8s.Cluster, u *unstructured.Unstructured) model.KubeObject {
	return wrap(c, k8s.Typed(u))
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

// applyPayload converts apply's results and audits each document.
func (r *Resolver) applyPayload(ctx context.Context, c *k8s.Cluster, results []k8s.ApplyResult, dryRun bool) *model.ApplyPayload {
	p := &model.ApplyPayload{Results: make([]*model.ApplyResult, len(results))}
	for i, res := range results {
		out := &model.ApplyResult{Index: res.Index}
		object := ""
		if res.Err != nil {
			out.Error = model.FromError(res.Err)
			p.Failed++
		} else {
			a := model.ApplyAction(strings.ToUpper(res.Action))
			out.Action, out.Object = &a, objectOf(c, res.Obj)
			object = res.Obj.GetKind() + " " + res.Obj.GetNamespace() + "/" + res.Obj.GetName()
			p.Succeeded++
		}
		r.Audit.Record(ctx, "apply", c.Name, object, res.Err, "document", res.Index, "dryRun", dryRun)
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
		return nil, k8s.BadInput("%s is not a node", oid.GVK.Kind)
	}
	u, err := c.Cordon(ctx, oid.Name, unschedulable)
	action := "uncordon"
	if unschedulable {
		action = "cordon"
	}
	r.Audit.Record(ctx, action, c.Name, objectName(oid), err)
	if err != nil {
		return nil, err
	}
	n, ok := objectOf(c, u).(*model.Node)
	if !ok {
		return nil, k8s.BadInput("%s is not a node", oid.Name)
	}
	return &model.NodePayload{Node: n}, nil
}

// drainPayload reports a drain with the node as cordoning left it.
func drainPayload(c *k8s.Cluster, node *unstructured.Unstructured, results []k8s.DrainResult) (*model.DrainPayload, error) {
	n, ok := objectOf(c, node).(*model.Node)
	if !ok {
		return nil, k8s.BadInput("%s is not a node", node.GetName())
	}
	p := &model.DrainPayload{Node: n, Complete: true, Pods: make([]*model.DrainPodResult, len(results))}
	for i, res := range results {
		out := &model.DrainPodResult{Namespace: res.Namespace, Pod: res.Pod, Outcome: model.DrainOutcome(res.Outcome)}
		if res.Message != "" {
			out.Message = &res.Message
		}
		if res.Outcome == k8s.Failed {
			p.Complete = false
		}
		p.Pods[i] = out
	}
	return p, nil
}
