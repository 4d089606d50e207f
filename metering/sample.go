package metering

import (
	"context"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/clustergraph/clustergraph/caller"
	"github.com/clustergraph/clustergraph/db"
	"github.com/clustergraph/clustergraph/k8s"
)

// system reads the caches as clustergraph itself: metering covers every
// namespace whoever asks later.
var system = &caller.Subject{User: "clustergraph:metering", Unrestricted: true}

// Sample measures every namespace of c at tick: namespace samples, and the
// node and pod usage behind them. Namespaces are sampled even when idle, so
// a period's sample count says how long the namespace was watched.
func Sample(ctx context.Context, c *k8s.Cluster, tick time.Time) ([]db.Sample, []db.UsageSample, error) {
	ctx = caller.With(ctx, system)
	list := func(gvk schema.GroupVersionKind) ([]k8s.Item, error) { return listAll(ctx, c, gvk) }
	nsItems, err := list(k8s.GVKNamespace)
	if err != nil {
		return nil, nil, err
	}
	pods, err := list(k8s.GVKPod)
	if err != nil {
		return nil, nil, err
	}
	services, err := list(k8s.GVKService)
	if err != nil {
		return nil, nil, err
	}
	pvcs, err := list(k8s.GVKPVC)
	if err != nil {
		return nil, nil, err
	}
	podUsage, err := c.PodUsage(ctx, "")
	if err != nil {
		return nil, nil, err
	}
	nodeUsage, err := c.NodeUsage(ctx)
	if err != nil {
		return nil, nil, err
	}

	by := map[string]*db.Sample{}
	for _, it := range nsItems {
		ns := it.Obj.(*corev1.Namespace).Name
		by[ns] = &db.Sample{Cluster: c.Name, Namespace: ns, Time: tick, FromRequests: podUsage == nil}
	}
	get := func(ns string) *db.Sample {
		if s, ok := by[ns]; ok {
			return s
		}
		// A namespace the cache has not seen yet (or just deleted).
		s := &db.Sample{Cluster: c.Name, Namespace: ns, Time: tick, FromRequests: podUsage == nil}
		by[ns] = s
		return s
	}
	var usage []db.UsageSample
	privateIPs := map[string]map[string]bool{}
	addIP := func(ns, ip string) {
		if ip == "" || ip == corev1.ClusterIPNone {
			return
		}
		if privateIPs[ns] == nil {
			privateIPs[ns] = map[string]bool{}
		}
		privateIPs[ns][ip] = true
	}
	for _, it := range pods {
		p := it.Obj.(*corev1.Pod)
		if k8s.Terminated(p) {
			continue
		}
		s := get(p.Namespace)
		if podUsage != nil {
			if u, ok := podUsage[p.Namespace+"/"+p.Name]; ok {
				s.CPUMillis += u.CPUMillis
				s.MemoryBytes += u.MemoryBytes
				usage = append(usage, db.UsageSample{Cluster: c.Name, Kind: "pod", Namespace: p.Namespace, Name: p.Name, Time: tick, CPUMillis: u.CPUMillis, MemoryBytes: u.MemoryBytes})
			}
		} else if p.Spec.NodeName != "" {
			req, _ := k8s.Requests(p)
			s.CPUMillis += req.CPUMillis
			s.MemoryBytes += req.MemoryBytes
		}
		if p.Spec.NodeName != "" {
			s.GPUMillis += gpuMillis(p)
		}
		if !p.Spec.HostNetwork {
			for _, ip := range p.Status.PodIPs {
				addIP(p.Namespace, ip.IP)
			}
			if len(p.Status.PodIPs) == 0 {
				addIP(p.Namespace, p.Status.PodIP)
			}
		}
	}
	for _, it := range services {
		svc := it.Obj.(*corev1.Service)
		s := get(svc.Namespace)
		for _, ip := range svc.Spec.ClusterIPs {
			addIP(svc.Namespace, ip)
		}
		if len(svc.Spec.ClusterIPs) == 0 {
			addIP(svc.Namespace, svc.Spec.ClusterIP)
		}
		public := map[string]bool{}
		if svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
			for _, in := range svc.Status.LoadBalancer.Ingress {
				public[in.IP+"|"+in.Hostname] = true
			}
		}
		for _, ip := range svc.Spec.ExternalIPs {
			public[ip+"|"] = true
		}
		s.PublicIPs += int64(len(public))
	}
	for ns, ips := range privateIPs {
		get(ns).PrivateIPs = int64(len(ips))
	}
	for _, it := range pvcs {
		pvc := it.Obj.(*corev1.PersistentVolumeClaim)
		if pvc.Status.Phase != corev1.ClaimBound {
			continue
		}
		if q, ok := pvc.Status.Capacity[corev1.ResourceStorage]; ok {
			get(pvc.Namespace).StorageBytes += q.Value()
		}
	}
	for name, u := range nodeUsage {
		usage = append(usage, db.UsageSample{Cluster: c.Name, Kind: "node", Name: name, Time: tick, CPUMillis: u.CPUMillis, MemoryBytes: u.MemoryBytes})
	}
	out := make([]db.Sample, 0, len(by))
	for _, s := range by {
		out = append(out, *s)
	}
	return out, usage, nil
}

// listAll lists every cached object of a kind; a partial list (one of
// several informers of the kind failing) is used as it is.
func listAll(ctx context.Context, c *k8s.Cluster, gvk schema.GroupVersionKind) ([]k8s.Item, error) {
	items, err := c.List(ctx, gvk, &k8s.Filter{})
	if err != nil && len(items) == 0 {
		return nil, err
	}
	return items, nil
}

// gpuMillis sums a scheduled pod's requests of GPU extended resources
// (nvidia.com/gpu, amd.com/gpu, gpu.intel.com/i915, ...), times 1000.
func gpuMillis(p *corev1.Pod) int64 {
	var n int64
	for _, ct := range p.Spec.Containers {
		for name, q := range ct.Resources.Requests {
			if strings.Contains(strings.ToLower(string(name)), "gpu") || strings.HasPrefix(string(name), "gpu.intel.com/") {
				n += q.MilliValue()
			}
		}
	}
	return n
}
