package k8s

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"

	"github.com/clustergraph/clustergraph/caller"
	"github.com/clustergraph/clustergraph/errkind"
)

// Usage is CPU and memory in plottable units.
type Usage struct {
	CPUMillis   int64
	MemoryBytes int64
}

// Add returns the sum of two usages.
func (u Usage) Add(o Usage) Usage {
	return Usage{CPUMillis: u.CPUMillis + o.CPUMillis, MemoryBytes: u.MemoryBytes + o.MemoryBytes}
}

func usageOf(l corev1.ResourceList) Usage {
	return Usage{CPUMillis: l.Cpu().MilliValue(), MemoryBytes: l.Memory().Value()}
}

// metricsAbsent reports whether an error means the cluster serves no
// metrics.k8s.io (or serves none yet): that is a null, not a failure.
func metricsAbsent(err error) bool {
	return apierrors.IsNotFound(err) || apierrors.IsServiceUnavailable(err) || apierrors.IsMethodNotSupported(err)
}

// The metrics resources. Usage is served only where the caller may read
// them, as well as the object they measure: the apiserver would not give
// the metrics to a caller who may read pods but not pod metrics.
var (
	metricsNodes = schema.GroupResource{Group: "metrics.k8s.io", Resource: "nodes"}
	metricsPods  = schema.GroupResource{Group: "metrics.k8s.io", Resource: "pods"}
)

// mayReadMetrics reports whether the context's subject could see any of a
// metrics resource, so a caller without any grant costs no metrics call.
func (c *Cluster) mayReadMetrics(ctx context.Context, gr schema.GroupResource) bool {
	return c.AccessFor(caller.From(ctx)).AnyOn(gr) || c.reviewer(ctx) != nil
}

// NodeUsage returns the current usage of every node the context's subject
// may see with its metrics, by name, in one call to metrics.k8s.io. It
// returns nil and no error when the cluster serves no metrics or the
// subject may read no node metrics.
func (c *Cluster) NodeUsage(ctx context.Context) (map[string]Usage, error) {
	if !c.mayReadMetrics(ctx, metricsNodes) {
		return nil, nil
	}
	list, err := c.metrics.MetricsV1beta1().NodeMetricses().List(ctx, metav1.ListOptions{})
	if err != nil {
		if metricsAbsent(err) {
			return nil, nil
		}
		return nil, &ClusterError{Cluster: c.Name, Err: errkind.Newf(errkind.Unavailable, "node metrics: %v", err)}
	}
	objs := make([]any, len(list.Items))
	for i := range list.Items {
		objs[i] = &list.Items[i]
	}
	objs = c.visibleGR(ctx, groupResource(resNodes), c.visibleGR(ctx, metricsNodes, objs))
	out := make(map[string]Usage, len(objs))
	for _, o := range objs {
		m := o.(*metricsv1beta1.NodeMetrics)
		out[m.Name] = usageOf(m.Usage)
	}
	return out, nil
}

// PodUsage returns the current usage of every pod of a namespace (all
// namespaces when empty) the context's subject may see with its metrics,
// keyed "namespace/name", in one call. Like NodeUsage, nil when there is
// nothing the subject may read.
func (c *Cluster) PodUsage(ctx context.Context, namespace string) (map[string]Usage, error) {
	if !c.mayReadMetrics(ctx, metricsPods) {
		return nil, nil
	}
	list, err := c.metrics.MetricsV1beta1().PodMetricses(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		if metricsAbsent(err) {
			return nil, nil
		}
		return nil, &ClusterError{Cluster: c.Name, Err: errkind.Newf(errkind.Unavailable, "pod metrics: %v", err)}
	}
	objs := make([]any, len(list.Items))
	for i := range list.Items {
		objs[i] = &list.Items[i]
	}
	objs = c.visibleGR(ctx, groupResource(resPods), c.visibleGR(ctx, metricsPods, objs))
	out := make(map[string]Usage, len(objs))
	for _, o := range objs {
		m := o.(*metricsv1beta1.PodMetrics)
		var u Usage
		for _, ct := range m.Containers {
			u = u.Add(usageOf(ct.Usage))
		}
		out[m.Namespace+"/"+m.Name] = u
	}
	return out, nil
}

// ClusterUsage sums the usage of the cluster's nodes. It is nil (with no
// error) when the cluster serves no metrics or the context's subject may
// not list node metrics: a sum of the few nodes a caller may see by name
// would pass for the cluster's.
func (c *Cluster) ClusterUsage(ctx context.Context) (*Usage, error) {
	if !c.allows(ctx, "list", metricsNodes, "", "") {
		return nil, nil
	}
	return sum(c.NodeUsage(ctx))
}

// NamespaceUsage sums the usage of a namespace's pods. It is nil when the
// cluster serves no metrics or the context's subject may not list pod
// metrics in the namespace.
func (c *Cluster) NamespaceUsage(ctx context.Context, namespace string) (*Usage, error) {
	if !c.allows(ctx, "list", metricsPods, namespace, "") {
		return nil, nil
	}
	return sum(c.PodUsage(ctx, namespace))
}

func sum(usage map[string]Usage, err error) (*Usage, error) {
	if err != nil || usage == nil {
		return nil, err
	}
	var total Usage
	for _, u := range usage {
		total = total.Add(u)
	}
	return &total, nil
}

// Requests sums a pod's container requests and limits the way the scheduler
// does: the larger of the sum of containers and the largest init container.
func Requests(p *corev1.Pod) (requests, limits Usage) {
	for _, ct := range p.Spec.Containers {
		requests = requests.Add(usageOf(ct.Resources.Requests))
		limits = limits.Add(usageOf(ct.Resources.Limits))
	}
	for _, ct := range p.Spec.InitContainers {
		r, l := usageOf(ct.Resources.Requests), usageOf(ct.Resources.Limits)
		requests = Usage{max(requests.CPUMillis, r.CPUMillis), max(requests.MemoryBytes, r.MemoryBytes)}
		limits = Usage{max(limits.CPUMillis, l.CPUMillis), max(limits.MemoryBytes, l.MemoryBytes)}
	}
	return requests, limits
}

// Terminated reports whether a pod no longer holds node resources.
func Terminated(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}
