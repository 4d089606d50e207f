package k8s

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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

// NodeUsage returns the current usage of every node, by name, in one call to
// metrics.k8s.io. It returns nil and no error when the cluster serves no
// metrics.
func (c *Cluster) NodeUsage(ctx context.Context) (map[string]Usage, error) {
	list, err := c.metrics.MetricsV1beta1().NodeMetricses().List(ctx, metav1.ListOptions{})
	if err != nil {
		if metricsAbsent(err) {
			return nil, nil
		}
		return nil, &ClusterError{Cluster: c.Name, Err: coded(ErrUnavailable, "node metrics: %v", err)}
	}
	a := c.AccessFor(SubjectFrom(ctx))
	nodes := groupResource(resNodes)
	out := make(map[string]Usage, len(list.Items))
	for _, m := range list.Items {
		if a.CanSee(nodes, "", m.Name) {
			out[m.Name] = usageOf(m.Usage)
		}
	}
	return out, nil
}

// PodUsage returns the current usage of every pod of a namespace (all
// namespaces when empty), keyed "namespace/name", in one call.
func (c *Cluster) PodUsage(ctx context.Context, namespace string) (map[string]Usage, error) {
	list, err := c.metrics.MetricsV1beta1().PodMetricses(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		if metricsAbsent(err) {
			return nil, nil
		}
		return nil, &ClusterError{Cluster: c.Name, Err: coded(ErrUnavailable, "pod metrics: %v", err)}
	}
	a := c.AccessFor(SubjectFrom(ctx))
	pods := groupResource(resPods)
	out := make(map[string]Usage, len(list.Items))
	for _, m := range list.Items {
		if !a.CanSee(pods, m.Namespace, m.Name) {
			continue
		}
		var u Usage
		for _, ct := range m.Containers {
			u = u.Add(usageOf(ct.Usage))
		}
		out[m.Namespace+"/"+m.Name] = u
	}
	return out, nil
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
