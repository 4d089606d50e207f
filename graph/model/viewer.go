package model

import (
	"github.com/clustergraph/clustergraph/caller"
	"github.com/clustergraph/clustergraph/k8s"
)

// Viewer is the authenticated caller.
type Viewer struct{ S *caller.Subject }

// Username is the caller's user name.
func (v *Viewer) Username() string { return v.S.User }

// Groups are the caller's groups.
func (v *Viewer) Groups() []string {
	if v.S.Groups == nil {
		return []string{}
	}
	return v.S.Groups
}

// ViewerCluster is what the caller may do in one cluster.
type ViewerCluster struct {
	C *k8s.Cluster
	A *k8s.Access
}

// Cluster is the cluster.
func (v *ViewerCluster) Cluster() *Cluster { return &Cluster{C: v.C} }

// AllNamespaces reports a cluster-wide grant.
func (v *ViewerCluster) AllNamespaces() bool {
	_, all := v.A.Namespaces()
	return all
}

// Permissions are the caller's verbs on the main kinds in a namespace
// (cluster-wide when empty).
func (v *ViewerCluster) Permissions(namespace *string) []*Permission {
	ns := ""
	if namespace != nil {
		ns = *namespace
	}
	out := []*Permission{}
	for _, gr := range k8s.MainResources {
		p := &Permission{Group: gr.Group, Resource: gr.Resource, Verbs: []string{}}
		for _, verb := range k8s.Verbs {
			if v.A.Allows(verb, gr, ns, "") {
				p.Verbs = append(p.Verbs, verb)
			}
		}
		out = append(out, p)
	}
	return out
}
