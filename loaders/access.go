package loaders

import (
	"context"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/clustergraph/clustergraph/caller"
	"github.com/clustergraph/clustergraph/db"
	"github.com/clustergraph/clustergraph/k8s"
)

// Stored records (metering, alerts, archived events, usage history) are
// authorized here, by the access sets that authorize cache reads, so no
// resolver has to remember it: the stored loaders leave out every key the
// caller may not read before the database is asked, and Records (the
// queries over many records, the alert stream, createAlert) sets each
// query's scope, which allows nothing when left empty, or refuses.

// The resources whose rights open stored records.
var (
	// podsGR opens metering: list on pods in a namespace (cluster-wide for
	// a cluster's metering).
	podsGR = schema.GroupResource{Resource: "pods"}
	// eventsGR opens alerts and archived events: list on events (and
	// createAlert: create on events).
	eventsGR = schema.GroupResource{Resource: "events"}
	// metricsGR opens an object's usage history: get on its metrics.
	metricsGR = map[string]schema.GroupResource{
		"node": {Group: "metrics.k8s.io", Resource: "nodes"},
		"pod":  {Group: "metrics.k8s.io", Resource: "pods"},
	}
)

// scope is what the caller may list of gr in each cluster, as a database
// condition: every namespace when the caller may list gr cluster-wide, else
// the namespaces where a grant allows it (RuleNamespaces: a caller who may
// list some other kind cluster-wide still has only these for gr). Stored records follow the
// visibility rule of package k8s by its namespace part alone: alerts and
// archived events carry generated names no such rule names in practice, so
// a record by name is left out (which fails closed). A get without
// resourceNames never opens a namespace here.
func scope(ctx context.Context, cs []*k8s.Cluster, gr schema.GroupResource) db.Scope {
	sc := db.Scope{}
	subject := caller.From(ctx)
	for _, c := range cs {
		a := c.AccessFor(subject)
		if a.Allows("list", gr, "", "") {
			sc[c.Name] = db.ClusterScope{All: true}
			continue
		}
		var ok []string
		for _, ns := range a.RuleNamespaces() {
			if a.Allows("list", gr, ns, "") {
				ok = append(ok, ns)
			}
		}
		if len(ok) > 0 {
			sc[c.Name] = db.ClusterScope{Namespaces: ok}
		}
	}
	return sc
}

// mayList reports whether the caller may list gr in namespace ("" means
// cluster-wide) of c: the namespace part of the visibility rule, for
// stored records (see scope).
func mayList(ctx context.Context, c *k8s.Cluster, gr schema.GroupResource, namespace string) bool {
	return c.AccessFor(caller.From(ctx)).Allows("list", gr, namespace, "")
}

// The stored loaders ask one of these per key: may the caller read the
// stored records of that key? An unknown cluster, or loaders without a
// registry, read nothing.

// mayListIn: list on gr in namespace of the named cluster.
func mayListIn(ctx context.Context, reg *k8s.Registry, cluster, namespace string, gr schema.GroupResource) bool {
	c := clusterNamed(reg, cluster)
	return c != nil && mayList(ctx, c, gr, namespace)
}

// maySeeMetrics: the object's metrics by the visibility rule.
func maySeeMetrics(ctx context.Context, reg *k8s.Registry, cluster, kind, namespace, name string) bool {
	c := clusterNamed(reg, cluster)
	gr, ok := metricsGR[kind]
	return c != nil && ok && c.AccessFor(caller.From(ctx)).CanSee(gr, namespace, name)
}

func clusterNamed(reg *k8s.Registry, name string) *k8s.Cluster {
	if reg == nil {
		return nil
	}
	c, err := reg.Cluster(name)
	if err != nil {
		return nil
	}
	return c
}

// where names a namespace ("" for cluster-wide) in a refusal.
func where(namespace string) string {
	if namespace == "" {
		return "cluster-wide"
	}
	return "in namespace " + namespace
}
