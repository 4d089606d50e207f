package k8s

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// NewStaticRegistry returns a registry of clusters that never connect to
// an apiserver, for unit tests of the layers above k8s (resolvers,
// loaders, graph/model) that need no testbed. Each cluster is READY from
// the start, and its caches hold the objects given for it (by cluster
// name) as the informers would: the same stores and indexes, each object
// redacted and shared by the informers' transform. The caches never
// change. RBAC objects among them decide what each caller sees, as in a
// real cluster.
//
// A static cluster has no clients: what asks an apiserver (writes,
// resources(), exec, logs, metrics, SubjectAccessReviews, versions)
// cannot work on it and belongs in the integration tests against real
// clusters.
func NewStaticRegistry(objects map[string][]runtime.Object) (*Registry, error) {
	r := NewRegistry(RegistryConfig{Logger: slog.New(slog.DiscardHandler)})
	for name, objs := range objects {
		c, err := newStaticCluster(name, objs, r.log)
		if err != nil {
			return nil, err
		}
		r.clusters[name] = c
	}
	return r, nil
}

func newStaticCluster(name string, objs []runtime.Object, log *slog.Logger) (*Cluster, error) {
	ctx, cancel := context.WithCancel(context.Background())
	c := &Cluster{
		Name:   name,
		Server: "static://" + name,
		log:    log.With("cluster", name),
		ctx:    ctx,
		cancel: cancel,
		done:   make(chan struct{}),
		status: Status{State: StateReady, LastSyncTime: time.Now()},
		hub:    newHub(),
	}
	close(c.done) // no goroutine runs the cluster: stop returns at once
	// The informers are built, as newCluster builds them, but never run:
	// their stores are filled here.
	c.caches = newCaches(ctx, nil, nil, nil, nil)
	c.caches.static = true
	c.caches.rbacGen.Store(1)
	for _, o := range objs {
		r, obj, err := staticEntry(o)
		if err != nil {
			return nil, fmt.Errorf("static cluster %s: %w", name, err)
		}
		if err := c.caches.store(r).Add(obj); err != nil {
			return nil, fmt.Errorf("static cluster %s: %w", name, err)
		}
	}
	return c, nil
}

// newBrokenCluster is a cluster whose Secret cannot be used: it shows
// among the clusters as UNREACHABLE with why, and every read of it fails
// with that error. It never connects; a changed Secret replaces it.
func newBrokenCluster(name string, w wanted, log *slog.Logger) *Cluster {
	c, _ := newStaticCluster(name, nil, log) // no objects: it cannot fail
	c.Server, c.hash = w.source, w.hash
	c.caches.static = false
	c.status = Status{State: StateUnreachable, LastError: w.broken.Error()}
	return c
}

// staticEntry is the cache an object goes to and the object as that
// cache holds it.
func staticEntry(o runtime.Object) (resource, any, error) {
	var r resource
	switch v := o.(type) {
	// ConfigMaps and Secrets are cached as metadata only (see newCaches).
	case *corev1.ConfigMap:
		obj, err := stripForCache(metadataOnly(v.ObjectMeta, GVKConfigMap))
		return resConfigMaps, obj, err
	case *corev1.Secret:
		obj, err := redactSecret(metadataOnly(v.ObjectMeta, GVKSecret))
		return resSecrets, obj, err
	case *rbacv1.Role:
		r = resRoles
	case *rbacv1.RoleBinding:
		r = resRoleBindings
	case *rbacv1.ClusterRole:
		r = resClusterRoles
	case *rbacv1.ClusterRoleBinding:
		r = resClusterRoleBindings
	default:
		var ok bool
		if r, ok = resourceOfGVK[GVKOf(o)]; !ok {
			return "", nil, fmt.Errorf("%T is not a cached kind", o)
		}
	}
	obj, err := stripForCache(o.DeepCopyObject())
	return r, obj, err
}

func metadataOnly(m metav1.ObjectMeta, gvk schema.GroupVersionKind) *metav1.PartialObjectMetadata {
	apiVersion, kind := gvk.ToAPIVersionAndKind()
	return &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: apiVersion, Kind: kind}, ObjectMeta: *m.DeepCopy()}
}
