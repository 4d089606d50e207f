package k8s

import (
	"context"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"

	"github.com/clustergraph/clustergraph/errkind"
)

// Watches of kinds the caches do not hold (CRDs and the rest) run on
// dynamic informers started on demand, shared by every subscriber of the
// kind in the cluster, and stopped when the last one leaves.

// dynPrefix marks the resource names of on-demand informers.
const dynPrefix = "dyn/"

type dynInformer struct {
	inf  cache.SharedIndexInformer
	refs int
	stop context.CancelFunc
}

type dynWatches struct {
	mu  sync.Mutex
	byR map[resource]*dynInformer
}

func dynResource(gvr schema.GroupVersionResource) resource {
	return resource(dynPrefix + gvr.Group + "/" + gvr.Version + "/" + gvr.Resource)
}

// dynGroupResource parses the group and resource of an on-demand informer.
func dynGroupResource(r resource) (schema.GroupResource, bool) {
	rest, ok := strings.CutPrefix(string(r), dynPrefix)
	if !ok {
		return schema.GroupResource{}, false
	}
	p := strings.Split(rest, "/")
	return schema.GroupResource{Group: p[0], Resource: p[2]}, true
}

// storeOf returns the store of a cached or on-demand resource.
func (c *Cluster) storeOf(r resource) cache.Indexer {
	if _, ok := dynGroupResource(r); ok {
		c.dyn.mu.Lock()
		defer c.dyn.mu.Unlock()
		if d := c.dyn.byR[r]; d != nil {
			return d.inf.GetIndexer()
		}
		return nil
	}
	if c.kindReadable(r) != nil {
		return nil // not synced: read as absent, the caller reports it
	}
	return c.caches.store(r)
}

// resolveWatch names the resource a watch of kind asks for: a cached kind,
// or any kind the apiserver serves ("TApp", "tapps", "tapps.apps.tkestack.io").
func (c *Cluster) resolveWatch(kind string) (resource, *schema.GroupVersionResource, error) {
	if gvk, err := KindByName(kind); err == nil {
		return resourceOfGVK[gvk], nil, nil
	}
	// As kubectl reads a resource argument: "widgets.v1.example.com" may be
	// resource.version.group, else "widgets.example.com" is resource.group.
	full, gr := schema.ParseResourceArg(strings.ToLower(kind))
	if full != nil {
		if gvr, err := c.restMapper().ResourceFor(*full); err == nil {
			return c.cachedOr(gvr)
		}
	}
	gvr, err := c.restMapper().ResourceFor(gr.WithVersion(""))
	if err != nil {
		return "", nil, &ClusterError{Cluster: c.Name, Err: errkind.Newf(errkind.NotFound, "the cluster serves no kind %q", kind)}
	}
	return c.cachedOr(gvr)
}

// cachedOr returns the cache of a resource the caches hold (so "secrets.v1."
// is the metadata-only Secret cache, never a second informer that would
// hold Secret values), else the resource for an on-demand informer.
func (c *Cluster) cachedOr(gvr schema.GroupVersionResource) (resource, *schema.GroupVersionResource, error) {
	for gvk, r := range resourceOfGVK {
		if gvk.Group == gvr.Group && string(r) == gvr.Resource {
			return r, nil, nil
		}
	}
	return dynResource(gvr), &gvr, nil
}

// acquireDynamic starts (or joins) the on-demand informer of gvr and
// returns a function that leaves it.
func (c *Cluster) acquireDynamic(gvr schema.GroupVersionResource) (func(), error) {
	r := dynResource(gvr)
	c.dyn.mu.Lock()
	if c.dyn.byR == nil {
		c.dyn.byR = map[resource]*dynInformer{}
	}
	d := c.dyn.byR[r]
	if d == nil {
		ctx, stop := context.WithCancel(c.ctx)
		inf := dynamicinformer.NewFilteredDynamicInformer(c.Dynamic, gvr, "", 0,
			cache.Indexers{IndexNamespace: cache.MetaNamespaceIndexFunc, IndexLabel: labelIndex}, nil).Informer()
		_ = inf.SetTransform(stripForCache)
		if _, err := inf.AddEventHandler(c.hub.handler(c, r)); err != nil {
			c.dyn.mu.Unlock()
			stop()
			return nil, err
		}
		d = &dynInformer{inf: inf, stop: stop}
		c.dyn.byR[r] = d
		go inf.Run(ctx.Done())
	}
	d.refs++
	c.dyn.mu.Unlock()

	release := func() {
		c.dyn.mu.Lock()
		defer c.dyn.mu.Unlock()
		if d.refs--; d.refs == 0 {
			d.stop()
			delete(c.dyn.byR, r)
		}
	}
	syncCtx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
	defer cancel()
	if !cache.WaitForCacheSync(syncCtx.Done(), d.inf.HasSynced) {
		release()
		return nil, &ClusterError{Cluster: c.Name, Err: errkind.Newf(errkind.Unavailable, "could not list %s in 30s", gvr.String())}
	}
	return release, nil
}
