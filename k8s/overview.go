package k8s

import (
	"context"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// KindCount is how many objects of a kind exist and how many are healthy.
type KindCount struct {
	Kind    string
	Total   int
	Healthy int
}

// overviewKinds are the kinds an overview counts, in display order.
var overviewKinds = []schema.GroupVersionKind{
	GVKNode, GVKNamespace, GVKPod, GVKDeployment, GVKStatefulSet, GVKDaemonSet, GVKReplicaSet,
	GVKJob, GVKCronJob, GVKService, GVKIngress, GVKPVC, GVKConfigMap, GVKSecret,
}

// Overview counts objects per kind in the cluster, or in one namespace
// (cluster-scoped kinds are then left out). See Healthy for what counts.
func (c *Cluster) Overview(ctx context.Context, namespace string) ([]KindCount, error) {
	ok, warn := c.readable()
	if !ok {
		return nil, warn
	}
	out := make([]KindCount, 0, len(overviewKinds))
	var missing []resource
	for _, gvk := range overviewKinds {
		r := resourceOfGVK[gvk]
		if c.kindReadable(r) != nil {
			missing = append(missing, r) // no count rather than a false 0
			continue
		}
		var objs []any
		switch {
		case namespace == "":
			objs = c.all(ctx, r)
		case gvk == GVKNode || gvk == GVKNamespace:
			continue
		default:
			objs = c.byIndex(ctx, r, IndexNamespace, namespace)
		}
		kc := KindCount{Kind: gvk.Kind, Total: len(objs)}
		for _, o := range objs {
			if Healthy(o) {
				kc.Healthy++
			}
		}
		out = append(out, kc)
	}
	if warn == nil {
		warn = c.unreadable(missing)
	}
	return out, warn
}
