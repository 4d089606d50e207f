// Package k8s is clustergraph's knowledge of its clusters, read as
// clustergraph: the registry of clusters built from kubeconfig contexts (and
// in-cluster config), one informer factory and cancelable context per
// cluster, the caches and their indexes, and the read path over them
// (filter, sort, page, relations, overviews, topology, node pools, usage,
// the watch hub). It decides who sees what (access sets, the authorizer
// fallback) and keeps Secret values out of everything it hands on (redact).
//
// Acting on an apiserver as the caller lives beside it: package k8s/write
// (apply, patch, delete, scale, rollouts, drain, namespace operations),
// k8s/stream (exec, logs, the cluster shell) and k8s/lease (leader
// election). They build on what this package exports for the purpose:
// ConfigFor, ClientFor and DynamicFor (the caller impersonated, with the
// foreign-service-account guard and, for writes, the answering transport),
// Mapping and APIError. The direct reads a caller makes past the caches
// (ListResources, GetResource, Versions) use the same clients.
//
// Nothing in this package knows about GraphQL. Callers (loaders, resolvers)
// receive cached objects that they must treat as read-only: they are shared
// by every request.
//
// # Who sees what
//
// The caches hold every object; each read keeps what the context's subject
// may see, by one rule, the apiserver's, implemented once (Access.CanSee,
// and Cluster.visibleGR with the authorizer fallback):
//
// An object appears in a list, a connection's totalCount, a to-many
// relation (a Service's pods, a Node's pods), a watch or any aggregate
// (counts, overviews, topology, pools, usage and metering by namespace) only
// if the caller may list its kind in its namespace or cluster-wide, or holds
// a list or get rule whose resourceNames names that object. A get rule
// without resourceNames lets the caller fetch objects by name or id (Get,
// GetResource: object(id), direct lookups, a to-one relation that follows a
// name the caller already reads, such as a pod's node) and nothing more.
//
// Why: the apiserver refuses a list to a caller who may only get (kubectl
// get pods -n vault is forbidden to a get-only Role), because listing
// enumerates names the caller was never given; a list narrowed to one name
// is authorized against resourceNames, so a list rule naming objects lists
// exactly those; and a get rule naming an object reveals nothing a get of
// that name would not. A Namespace object is named, in this sense, by a
// get rule bound in that namespace (the apiserver asks a get of namespace X
// in X). A watch delivers what the rule shows and the caller may also
// watch (the apiserver's verb for a watch).
package k8s
