package k8s

import (
	"context"
	"errors"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/clustergraph/clustergraph/caller"
	"github.com/clustergraph/clustergraph/errkind"
)

// listChunk is the page size of dynamic LISTs: large results arrive in
// pieces rather than as one huge response.
const listChunk = 500

// DefaultMaxListObjects is how many objects one ListResources call reads
// from a cluster at most (RegistryConfig.MaxListObjects).
const DefaultMaxListObjects = 10000

// ListResources lists any resource through the dynamic client: an apiserver
// LIST, not the cache. Label and field selectors are sent to the apiserver,
// which rejects fields it does not support for the kind (errkind.BadInput); the
// rest of the filter runs here. It reads at most the cluster's
// MaxListObjects objects, page by page: past that it returns what it read
// with an errkind.BadInput saying the list was cut, so one request cannot make
// the apiserver stream a whole huge collection.
//
// A caller RBAC lets list the resource in the asked scope (the namespace,
// or cluster-wide) lists as themselves, impersonated, so the apiserver
// authorizes the LIST itself. A caller with narrower grants (some
// namespaces, some names, or what the authorizer fallback may allow) gets
// clustergraph's LIST cut down to what they may see.
func (c *Cluster) ListResources(ctx context.Context, gvr schema.GroupVersionResource, f *Filter) ([]Item, error) {
	s, gr := caller.From(ctx), gvr.GroupResource()
	a := c.AccessFor(s)
	// A caller no grant lets see any of them gets nothing, without a LIST
	// made with clustergraph's credentials on its behalf.
	if c.reviewer(ctx) == nil && !a.MaySeeAny(gr, f.Namespace) {
		return nil, nil
	}
	client := c.Dynamic
	if s != nil && !s.Unrestricted && a.Allows("list", gr, f.Namespace, "") {
		dyn, err := c.DynamicFor(ctx)
		if err != nil {
			return nil, err
		}
		client = dyn
	}
	limit := c.maxList
	if limit <= 0 {
		limit = DefaultMaxListObjects
	}
	opts := metav1.ListOptions{Limit: min(listChunk, int64(limit))}
	if f.Labels != nil {
		opts.LabelSelector = f.Labels.String()
	}
	if f.Fields != nil {
		opts.FieldSelector = f.Fields.String()
	}
	local := *f
	local.Labels, local.Fields = nil, nil
	// What the caller may not see is dropped here (a LIST made as the
	// caller holds none of it).
	var objs []any
	var cut error
	for read := 0; ; {
		list, err := client.Resource(gvr).Namespace(f.Namespace).List(ctx, opts)
		if err != nil {
			return nil, c.APIError(err, gvr.String())
		}
		read += len(list.Items)
		for i := range list.Items {
			if u := &list.Items[i]; local.Matches(u) {
				objs = append(objs, u)
			}
		}
		if list.GetContinue() == "" {
			break
		}
		if read >= limit {
			cut = &ClusterError{Cluster: c.Name, Err: errkind.Newf(errkind.BadInput,
				"%s: only the first %d objects were read (the most one list reads from a cluster); narrow it with a namespace, labelSelector or fieldSelector", gvr.GroupResource(), read)}
			break
		}
		opts.Limit = min(listChunk, int64(limit-read))
		opts.Continue = list.GetContinue()
	}
	objs = c.visibleGR(ctx, gr, objs)
	items := make([]Item, len(objs))
	for i, o := range objs {
		items[i] = Item{Cluster: c, Obj: o}
	}
	return items, cut
}

// GetResource reads one object of any kind from the apiserver.
func (c *Cluster) GetResource(ctx context.Context, id ObjectID) (any, error) {
	m, err := c.restMapper().RESTMapping(id.GVK.GroupKind(), id.GVK.Version)
	if err != nil {
		return nil, &ClusterError{Cluster: c.Name, Err: errkind.Newf(errkind.NotFound, "kind %s is not served", id.GVK)}
	}
	if m.Scope.Name() == meta.RESTScopeNameRoot {
		id.Namespace = "" // a cluster-scoped object: namespace rules do not apply
	}
	if !c.allows(ctx, "get", m.Resource.GroupResource(), id.Namespace, id.Name) {
		return nil, &ClusterError{Cluster: c.Name, Err: errkind.Newf(errkind.Forbidden, "you may not get %s %s/%s", id.GVK.Kind, id.Namespace, id.Name)}
	}
	obj, err := c.Dynamic.Resource(m.Resource).Namespace(id.Namespace).Get(ctx, id.Name, metav1.GetOptions{})
	if err != nil {
		return nil, c.APIError(err, id.GVK.Kind+" "+id.Name)
	}
	_, _ = stripForCache(obj) // strips in place; it fails on no object it is given here
	return obj, nil
}

// APIError translates an apiserver error into the package's sentinels,
// keeping the apiserver's message.
func (c *Cluster) APIError(err error, what string) error {
	// Already one of ours (a request refused or abandoned because the
	// apiserver is not answering, see answering).
	var ce *ClusterError
	if errors.As(err, &ce) {
		return ce
	}
	var kind error
	switch {
	case apierrors.IsNotFound(err):
		kind = errkind.NotFound
	case apierrors.IsBadRequest(err), apierrors.IsInvalid(err):
		kind = errkind.BadInput
	case apierrors.IsForbidden(err), apierrors.IsUnauthorized(err):
		kind = errkind.Forbidden
	case apierrors.IsConflict(err):
		kind = errkind.Conflict
	case apierrors.IsUnsupportedMediaType(err):
		kind = errkind.BadInput
	default:
		kind = errkind.Unavailable
	}
	msg := err.Error()
	// The generic message of a 400 hides the reason in the causes.
	var status apierrors.APIStatus
	if errors.As(err, &status) && status.Status().Details != nil {
		for _, cause := range status.Status().Details.Causes {
			msg += "; " + strings.TrimSpace(cause.Field+" "+cause.Message)
		}
	}
	return &ClusterError{Cluster: c.Name, Err: errkind.Newf(kind, "%s: %s", what, msg)}
}

// restMapper is the cluster's kind-to-resource mapper, with discovery
// cached in memory. It belongs to the cluster (a field, not a table keyed by
// cluster), so a cluster removed or replaced by a kubeconfig edit leaves
// nothing behind.
func (c *Cluster) restMapper() meta.RESTMapper {
	c.mapperOnce.Do(func() {
		// Its discovery requests, like writes, are not left hanging on an
		// apiserver that stopped answering (see answering).
		disc := c.Discovery
		cfg := rest.CopyConfig(c.config)
		cfg.Wrap(c.whileAnswering)
		if d, err := discovery.NewDiscoveryClientForConfig(cfg); err == nil {
			disc = d
		}
		c.mapper = restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc))
	})
	return c.mapper
}
