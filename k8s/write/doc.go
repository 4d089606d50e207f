// Package write changes clusters as the caller: server-side apply of
// manifests, patches, deletes, scale, restart and image updates, rollbacks,
// CronJob suspend and trigger, cordon and drain, and the namespace
// operations (trial extension, a user's initial role).
//
// Every function takes the cluster and a context carrying the caller
// (package caller) and sends its requests impersonating them
// (k8s.Cluster.DynamicFor, ClientFor), so the apiserver checks RBAC and
// admission for the real caller and its audit log names them. Writes are
// refused at once while the cluster's apiserver is not answering, and a
// Secret's values never come back in an error (k8s.RedactWriteError,
// RedactPatchError). Nothing here reads the shared caches for the caller;
// reads are package k8s's.
package write
