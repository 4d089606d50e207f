package model

import (
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/clustergraph/clustergraph/k8s"
)

// Pod is a view over a cached Pod.
type Pod struct {
	Object
	P *corev1.Pod
}

// NewPod wraps a cached pod.
func NewPod(c *k8s.Cluster, p *corev1.Pod) *Pod { return &Pod{Object{c, p}, p} }

// Name is the pod's name.
func (p *Pod) Name() string { return p.P.Name }

// Namespace is the pod's namespace.
func (p *Pod) Namespace() string { return p.P.Namespace }

// Phase is the pod phase.
func (p *Pod) Phase() string { return string(p.P.Status.Phase) }

// Status is kubectl's STATUS column.
func (p *Pod) Status() string { return k8s.PodStatus(p.P) }

// Ready reports the Ready condition.
func (p *Pod) Ready() bool { return k8s.PodReady(p.P) }

// Restarts sums container restarts.
func (p *Pod) Restarts() int {
	n := 0
	for _, cs := range p.P.Status.ContainerStatuses {
		n += int(cs.RestartCount)
	}
	return n
}

// PodIP is the pod's IP.
func (p *Pod) PodIP() *string { return optional(p.P.Status.PodIP) }

// HostIP is its node's IP.
func (p *Pod) HostIP() *string { return optional(p.P.Status.HostIP) }

// NodeName is the node it is scheduled on.
func (p *Pod) NodeName() *string { return optional(p.P.Spec.NodeName) }

// StartTime is when the pod started.
func (p *Pod) StartTime() *time.Time { return timePtr(p.P.Status.StartTime) }

// Containers lists init containers, then containers, with their status.
func (p *Pod) Containers() []*Container {
	out := make([]*Container, 0, len(p.P.Spec.InitContainers)+len(p.P.Spec.Containers))
	add := func(specs []corev1.Container, statuses []corev1.ContainerStatus, init bool) {
		for _, s := range specs {
			c := &Container{
				Name: s.Name, Image: s.Image, Init: init,
				CPURequestMillis:   s.Resources.Requests.Cpu().MilliValue(),
				CPULimitMillis:     s.Resources.Limits.Cpu().MilliValue(),
				MemoryRequestBytes: s.Resources.Requests.Memory().Value(),
				MemoryLimitBytes:   s.Resources.Limits.Memory().Value(),
			}
			for _, st := range statuses {
				if st.Name != s.Name {
					continue
				}
				c.Ready, c.RestartCount = st.Ready, int(st.RestartCount)
				switch {
				case st.State.Running != nil:
					c.State = optional("Running")
				case st.State.Waiting != nil:
					c.State, c.Reason = optional("Waiting"), optional(st.State.Waiting.Reason)
				case st.State.Terminated != nil:
					c.State, c.Reason = optional("Terminated"), optional(st.State.Terminated.Reason)
				}
			}
			out = append(out, c)
		}
	}
	add(p.P.Spec.InitContainers, p.P.Status.InitContainerStatuses, true)
	add(p.P.Spec.Containers, p.P.Status.ContainerStatuses, false)
	return out
}
