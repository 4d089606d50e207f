// Package k8s owns everything clustergraph knows about Kubernetes clusters:
// the registry of clusters built from kubeconfig contexts (and in-cluster
// config), one informer factory and cancelable context per cluster, the
// caches and their indexes, and the read path over them (filter, sort, page).
//
// Nothing in this package knows about GraphQL. Callers (loaders, resolvers)
// receive cached objects that they must treat as read-only: they are shared
// by every request.
package k8s
