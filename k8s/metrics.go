package k8s

import (
	"net/url"
	"slices"
	"strings"

	"github.com/clustergraph/clustergraph/metrics"
)

// The registry is the metrics' source of per-cluster state
// (metrics.WatchClusters): a scrape reads it as it is, so nothing here
// runs on the informers' paths but the counters of the hub, the watch
// error handler and the authorizer fallback.
var _ metrics.ClusterSource = (*Registry)(nil)

// ClusterStates lists the states a cluster may be in.
func (r *Registry) ClusterStates() []string {
	return []string{string(StateSyncing), string(StateReady), string(StatePartial), string(StateStale), string(StateUnreachable)}
}

// MetricClusters returns every cluster's state for a scrape. The cached
// kinds are reported once the cluster's caches serve (their informers are
// fixed from then on); counting a kind's objects lists the keys of its
// cache, once a scrape.
func (r *Registry) MetricClusters() []metrics.Cluster {
	cs := r.Clusters()
	out := make([]metrics.Cluster, 0, len(cs))
	for _, c := range cs {
		st := c.Status()
		m := metrics.Cluster{
			Name: c.Name, Host: apiserverHost(c.Server), Version: st.ServerVersion, State: string(st.State), LastSync: st.LastSyncTime,
			ReviewsAllowed: c.reviews.allowed.Load(), ReviewsDenied: c.reviews.denied.Load(), ReviewsFailed: c.reviews.failed.Load(),
		}
		if c.hub != nil {
			m.HubDeliveries, m.HubOverflows, m.HubResyncs = c.hub.deliveries.Load(), c.hub.overflows.Load(), c.hub.resyncs.Load()
		}
		if st.Serving() && c.caches != nil {
			for res, inf := range c.caches.informers {
				k := metrics.Kind{Resource: string(res), Objects: len(inf.GetStore().ListKeys())}
				if n := c.caches.watchErrs[res]; n != nil {
					k.WatchErrors = n.Load()
				}
				m.Kinds = append(m.Kinds, k)
			}
			slices.SortFunc(m.Kinds, func(a, b metrics.Kind) int { return strings.Compare(a.Resource, b.Resource) })
		}
		out = append(out, m)
	}
	return out
}

// apiserverHost is the host:port of an apiserver URL, as client-go's
// request hooks name it; "" for a cluster without one (a broken cluster
// Secret's Server names the Secret).
func apiserverHost(server string) string {
	u, err := url.Parse(server)
	if err != nil {
		return ""
	}
	return u.Host
}
