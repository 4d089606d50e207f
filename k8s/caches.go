package k8s

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"
)

// Index names registered on the informers.
const (
	// IndexNamespace is client-go's namespace index.
	IndexNamespace = cache.NamespaceIndex
	// IndexNode indexes pods by spec.nodeName.
	IndexNode = "node"
	// IndexOwner indexes objects by the uid of each owner.
	IndexOwner = "owner"
	// IndexService indexes EndpointSlices by "namespace/service", from
	// the kubernetes.io/service-name label.
	IndexService = "service"
	// IndexLabel indexes objects by each "key=value" label pair.
	IndexLabel = "label"
)

// resource names the informers of a cluster.
type resource string

const (
	resNamespaces     resource = "namespaces"
	resNodes          resource = "nodes"
	resPods           resource = "pods"
	resDeployments    resource = "deployments"
	resReplicaSets    resource = "replicasets"
	resStatefulSets   resource = "statefulsets"
	resDaemonSets     resource = "daemonsets"
	resJobs           resource = "jobs"
	resCronJobs       resource = "cronjobs"
	resServices       resource = "services"
	resEndpointSlices resource = "endpointslices"
	resIngresses      resource = "ingresses"
	resPVCs           resource = "persistentvolumeclaims"
	resConfigMaps     resource = "configmaps"
	resSecrets        resource = "secrets"
	resEvents         resource = "events"
	resNodePools      resource = "nodepools"

	resRoles               resource = "roles"
	resRoleBindings        resource = "rolebindings"
	resClusterRoles        resource = "clusterroles"
	resClusterRoleBindings resource = "clusterrolebindings"
)

// caches holds one cluster's informers.
type caches struct {
	typed     informers.SharedInformerFactory
	meta      metadatainformer.SharedInformerFactory
	dyn       dynamicinformer.DynamicSharedInformerFactory
	informers map[resource]cache.SharedIndexInformer
	// nodePools is set before start when the cluster serves openyurt's NodePool.
	nodePools *schema.GroupVersionResource
	// rbacGen counts RBAC changes; access sets of an older generation are
	// recomputed.
	rbacGen atomic.Uint64
	// sorted keeps the sorted matches of frequent list queries.
	sorted *sortedLists
	// listErr holds each informer's last list or watch error, so a kind
	// that cannot sync says why (see kindState); it is fixed after
	// newCaches, its values change.
	listErr map[resource]*atomic.Pointer[error]
	// watchErrs counts each informer's failed lists and watches (for the
	// metrics); fixed after newCaches like listErr.
	watchErrs map[resource]*atomic.Uint64
	// off are the kinds this install does not cache, with why.
	off map[resource]string
	// static caches are filled by hand, never by their informers, and
	// count as synced (see NewStaticRegistry).
	static bool
}

// stripForCache drops what clustergraph never serves before an object is
// stored (the redaction rule: managedFields, often the largest part of an
// object, and a Secret's values; see redact.go) and shares
// what objects repeat (see share.go).
func stripForCache(obj any) (any, error) {
	if a, ok := obj.(metav1.ObjectMetaAccessor); ok {
		redact(obj, false)
		m := a.GetObjectMeta()
		if p, ok := obj.(*corev1.Pod); ok {
			sharePod(p)
		} else if om, ok := m.(*metav1.ObjectMeta); ok {
			shareMeta(om)
			if t, _ := PodTemplate(obj); t != nil {
				shareTemplate(t)
			}
		}
	}
	return obj, nil
}

func newCaches(ctx context.Context, typed kubernetes.Interface, meta metadata.Interface, dyn dynamic.Interface, off map[resource]string) *caches {
	// No periodic resync: the caches are read, never reconciled.
	c := &caches{
		typed:     informers.NewSharedInformerFactoryWithOptions(typed, 0, informers.WithTransform(stripForCache)),
		meta:      metadatainformer.NewFilteredSharedInformerFactory(meta, 0, metav1.NamespaceAll, nil),
		dyn:       dynamicinformer.NewDynamicSharedInformerFactory(dyn, 0),
		informers: map[resource]cache.SharedIndexInformer{},
		sorted:    newSortedLists(),
		listErr:   map[resource]*atomic.Pointer[error]{},
		watchErrs: map[resource]*atomic.Uint64{},
		off:       off,
	}
	f := c.typed
	add := func(r resource, inf cache.SharedIndexInformer, extra cache.Indexers) {
		if _, skip := off[r]; skip {
			return
		}
		c.watchErrors(ctx, r, inf)
		idx := cache.Indexers{IndexLabel: labelIndex}
		for k, v := range extra {
			idx[k] = v
		}
		if err := inf.AddIndexers(idx); err != nil {
			panic(err) // only possible when an index is added twice: a programming error
		}
		c.informers[r] = inf
		c.sorted.track(r, inf)
	}
	owner := cache.Indexers{IndexOwner: ownerIndex}
	add(resNamespaces, f.Core().V1().Namespaces().Informer(), nil)
	add(resNodes, f.Core().V1().Nodes().Informer(), nil)
	add(resPods, f.Core().V1().Pods().Informer(), cache.Indexers{IndexOwner: ownerIndex, IndexNode: nodeIndex})
	add(resDeployments, f.Apps().V1().Deployments().Informer(), nil)
	add(resReplicaSets, f.Apps().V1().ReplicaSets().Informer(), owner)
	add(resStatefulSets, f.Apps().V1().StatefulSets().Informer(), nil)
	add(resDaemonSets, f.Apps().V1().DaemonSets().Informer(), nil)
	add(resJobs, f.Batch().V1().Jobs().Informer(), owner)
	add(resCronJobs, f.Batch().V1().CronJobs().Informer(), nil)
	add(resServices, f.Core().V1().Services().Informer(), nil)
	add(resEndpointSlices, f.Discovery().V1().EndpointSlices().Informer(), cache.Indexers{IndexService: serviceNameIndex})
	add(resIngresses, f.Networking().V1().Ingresses().Informer(), nil)
	add(resPVCs, f.Core().V1().PersistentVolumeClaims().Informer(), nil)
	add(resEvents, f.Core().V1().Events().Informer(), nil)
	// RBAC objects decide what each caller may see (see access.go).
	add(resRoles, f.Rbac().V1().Roles().Informer(), nil)
	add(resRoleBindings, f.Rbac().V1().RoleBindings().Informer(), nil)
	add(resClusterRoles, f.Rbac().V1().ClusterRoles().Informer(), nil)
	add(resClusterRoleBindings, f.Rbac().V1().ClusterRoleBindings().Informer(), nil)

	bump := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { c.rbacGen.Add(1) },
		UpdateFunc: func(any, any) { c.rbacGen.Add(1) },
		DeleteFunc: func(any) { c.rbacGen.Add(1) },
	}
	for _, r := range []resource{resRoles, resRoleBindings, resClusterRoles, resClusterRoleBindings} {
		_, _ = c.informers[r].AddEventHandler(bump)
	}

	// ConfigMaps and Secrets are cached as metadata only: Secret values
	// never enter clustergraph's memory, and ConfigMap bodies can be large.
	// The metadata API's objects carry no kind (nor does a watch event's),
	// so the transform sets it: ids, raw and the redaction rule (see
	// redact.go) read it.
	for r, gvk := range map[resource]schema.GroupVersionKind{resConfigMaps: GVKConfigMap, resSecrets: GVKSecret} {
		if _, skip := off[r]; skip {
			continue // not even created: a metadata informer lists when started
		}
		inf := c.meta.ForResource(gvk.GroupVersion().WithResource(string(r))).Informer()
		_ = inf.SetTransform(func(obj any) (any, error) {
			if m, ok := obj.(*metav1.PartialObjectMetadata); ok {
				m.SetGroupVersionKind(gvk)
			}
			if r == resSecrets {
				return redactSecret(obj)
			}
			return stripForCache(obj)
		})
		add(r, inf, nil)
	}
	return c
}

// start registers the optional informers and starts all of them.
func (c *caches) start(ctx context.Context, onNew func(resource, cache.SharedIndexInformer)) {
	if c.nodePools != nil {
		inf := c.dyn.ForResource(*c.nodePools).Informer()
		_ = inf.SetTransform(stripForCache)
		c.watchErrors(ctx, resNodePools, inf)
		c.informers[resNodePools] = inf
		onNew(resNodePools, inf)
	}
	c.typed.Start(ctx.Done())
	c.meta.Start(ctx.Done())
	c.dyn.Start(ctx.Done())
}

// watchErrors keeps the informer's last list or watch error for
// kindState, counts them for the metrics, and still lets client-go log
// and back off as it does by default. Must be called before the informer
// starts.
func (c *caches) watchErrors(ctx context.Context, r resource, inf cache.SharedIndexInformer) {
	last, count := &atomic.Pointer[error]{}, &atomic.Uint64{}
	c.listErr[r], c.watchErrs[r] = last, count
	_ = inf.SetWatchErrorHandlerWithContext(func(ctx context.Context, refl *cache.Reflector, err error) {
		last.Store(&err)
		count.Add(1)
		cache.DefaultWatchErrorHandler(ctx, refl, err)
	})
}

// KindState is how far one cached kind of a cluster is readable.
type KindState string

// The states of a cached kind.
const (
	// KindReady: synced, served from the cache.
	KindReady KindState = "READY"
	// KindSyncing: the first list has not finished (or keeps failing
	// for a reason that may pass, in LastError).
	KindSyncing KindState = "SYNCING"
	// KindForbidden: clustergraph's own account may not list or watch it.
	KindForbidden KindState = "FORBIDDEN"
	// KindNotServed: the apiserver does not serve it.
	KindNotServed KindState = "NOT_SERVED"
	// KindOff: this install does not cache it (RegistryConfig.Uncached).
	KindOff KindState = "OFF"
)

// KindStatus is one cached kind's state in a cluster.
type KindStatus struct {
	// Resource is the plural resource name, e.g. "cronjobs".
	Resource string
	State    KindState
	// Error says why the kind is not ready, if it is not.
	Error string
}

// kindState returns one kind's state. A synced informer is ready even
// when a later watch failed: it keeps serving what it holds, and the
// cluster's probe tells when the apiserver stopped answering.
func (c *caches) kindState(r resource) KindStatus {
	if why, off := c.off[r]; off {
		return KindStatus{Resource: string(r), State: KindOff, Error: why}
	}
	inf, ok := c.informers[r]
	if !ok {
		return KindStatus{Resource: string(r), State: KindNotServed, Error: "the cluster does not serve it"}
	}
	if c.static || inf.HasSynced() {
		return KindStatus{Resource: string(r), State: KindReady}
	}
	st := KindStatus{Resource: string(r), State: KindSyncing}
	if p := c.listErr[r]; p != nil {
		if err := p.Load(); err != nil {
			st.Error = (*err).Error()
			switch {
			case apierrors.IsForbidden(*err) || apierrors.IsUnauthorized(*err):
				st.State = KindForbidden
			case apierrors.IsNotFound(*err) || apierrors.IsMethodNotSupported(*err):
				st.State = KindNotServed
			}
		}
	}
	return st
}

// kinds returns the state of every kind the cluster caches or chose not
// to, sorted by resource.
func (c *caches) kinds() []KindStatus {
	out := make([]KindStatus, 0, len(c.informers)+len(c.off))
	for r := range c.informers {
		out = append(out, c.kindState(r))
	}
	for r := range c.off {
		out = append(out, c.kindState(r))
	}
	slices.SortFunc(out, func(a, b KindStatus) int { return strings.Compare(a.Resource, b.Resource) })
	return out
}

// settled reports whether the first sync is over: every informer has
// synced or failed for a reason that waiting will not change (a
// forbidden or unserved kind); partial when some have not synced.
func (c *caches) settled() (done, partial bool, pending []string) {
	done = true
	for r := range c.informers {
		switch c.kindState(r).State {
		case KindReady:
		case KindForbidden, KindNotServed:
			partial = true
		default:
			done = false
			pending = append(pending, string(r))
		}
	}
	slices.Sort(pending)
	return done, partial || !done, pending
}

// waitForSync waits until the first sync is over (see settled) or until
// deadline, logging progress every few seconds so a long start-up on a
// large cluster is visible. It reports whether the cluster is still
// running and whether it is served partially: some kind is not synced,
// and stays so until its informer syncs (they keep retrying).
func (c *caches) waitForSync(ctx context.Context, deadline time.Duration, log *slog.Logger) (running, partial bool) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	start, lastLog := time.Now(), time.Now()
	for {
		done, partial, pending := c.settled()
		if done {
			return true, partial
		}
		if deadline > 0 && time.Since(start) >= deadline {
			log.Warn("first sync past its deadline: serving the cluster partially", "deadline", deadline, "pending", pending)
			return true, true
		}
		if time.Since(lastLog) > 5*time.Second {
			log.Info("still syncing", "pending", pending)
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			return false, false
		case <-tick.C:
		}
	}
}

func (c *caches) store(r resource) cache.Indexer {
	inf, ok := c.informers[r]
	if !ok {
		return nil
	}
	return inf.GetIndexer()
}

func labelIndex(obj any) ([]string, error) {
	m, err := metaOf(obj)
	if err != nil {
		return nil, nil
	}
	labels := m.GetLabels()
	keys := make([]string, 0, len(labels))
	for k, v := range labels {
		keys = append(keys, k+"="+v)
	}
	return keys, nil
}

func ownerIndex(obj any) ([]string, error) {
	m, err := metaOf(obj)
	if err != nil {
		return nil, nil
	}
	refs := m.GetOwnerReferences()
	keys := make([]string, 0, len(refs))
	for _, r := range refs {
		keys = append(keys, string(r.UID))
	}
	return keys, nil
}
