package model

import (
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/clustergraph/clustergraph/k8s"
)

// Workload is a view over a cached Deployment, StatefulSet, DaemonSet,
// ReplicaSet, Job or CronJob.
type Workload struct{ Object }

// NewWorkload wraps a cached workload object.
func NewWorkload(c *k8s.Cluster, obj any) *Workload { return &Workload{Object{c, obj}} }

// WorkloadGVKs maps each workload kind to its group/version/kind.
var WorkloadGVKs = map[WorkloadKind]schema.GroupVersionKind{
	WorkloadKindDeployment:  k8s.GVKDeployment,
	WorkloadKindStatefulSet: k8s.GVKStatefulSet,
	WorkloadKindDaemonSet:   k8s.GVKDaemonSet,
	WorkloadKindReplicaSet:  k8s.GVKReplicaSet,
	WorkloadKindJob:         k8s.GVKJob,
	WorkloadKindCronJob:     k8s.GVKCronJob,
}

// IsWorkload reports whether a cached object is of a workload kind.
func IsWorkload(obj any) bool {
	switch obj.(type) {
	case *appsv1.Deployment, *appsv1.StatefulSet, *appsv1.DaemonSet, *appsv1.ReplicaSet, *batchv1.Job, *batchv1.CronJob:
		return true
	}
	return false
}

// Kind is the workload's kind.
func (w *Workload) Kind() WorkloadKind {
	switch w.Obj.(type) {
	case *appsv1.Deployment:
		return WorkloadKindDeployment
	case *appsv1.StatefulSet:
		return WorkloadKindStatefulSet
	case *appsv1.DaemonSet:
		return WorkloadKindDaemonSet
	case *appsv1.ReplicaSet:
		return WorkloadKindReplicaSet
	case *batchv1.Job:
		return WorkloadKindJob
	}
	return WorkloadKindCronJob
}

// Name is the workload's name.
func (w *Workload) Name() string { return w.meta().GetName() }

// Namespace is the workload's namespace.
func (w *Workload) Namespace() string { return w.meta().GetNamespace() }

// Labels is the workload's label map.
func (w *Workload) Labels() JSON { return stringMap(w.meta().GetLabels()) }

// template returns the pod template and selector of the workload.
func (w *Workload) template() (*corev1.PodTemplateSpec, *metav1.LabelSelector) {
	if t, sel := k8s.PodTemplate(w.Obj); t != nil {
		return t, sel
	}
	return &corev1.PodTemplateSpec{}, nil
}

// Images are the template's container images.
func (w *Workload) Images() []string {
	t, _ := w.template()
	out := make([]string, len(t.Spec.Containers))
	for i, c := range t.Spec.Containers {
		out[i] = c.Image
	}
	return out
}

// Selector is the pod selector as a string.
func (w *Workload) Selector() *string {
	_, sel := w.template()
	if sel == nil {
		return nil
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return nil
	}
	return optional(s.String())
}

// Replicas is the desired pod count.
func (w *Workload) Replicas() *int {
	switch o := w.Obj.(type) {
	case *appsv1.Deployment:
		return int32Ptr(o.Spec.Replicas)
	case *appsv1.StatefulSet:
		return int32Ptr(o.Spec.Replicas)
	case *appsv1.ReplicaSet:
		return int32Ptr(o.Spec.Replicas)
	case *appsv1.DaemonSet:
		return intPtr(o.Status.DesiredNumberScheduled)
	case *batchv1.Job:
		return int32Ptr(o.Spec.Parallelism)
	}
	return nil
}

// ReadyReplicas is the count of ready pods.
func (w *Workload) ReadyReplicas() *int {
	switch o := w.Obj.(type) {
	case *appsv1.Deployment:
		return intPtr(o.Status.ReadyReplicas)
	case *appsv1.StatefulSet:
		return intPtr(o.Status.ReadyReplicas)
	case *appsv1.ReplicaSet:
		return intPtr(o.Status.ReadyReplicas)
	case *appsv1.DaemonSet:
		return intPtr(o.Status.NumberReady)
	case *batchv1.Job:
		return int32Ptr(o.Status.Ready)
	}
	return nil
}

// AvailableReplicas is the count of available pods.
func (w *Workload) AvailableReplicas() *int {
	switch o := w.Obj.(type) {
	case *appsv1.Deployment:
		return intPtr(o.Status.AvailableReplicas)
	case *appsv1.StatefulSet:
		return intPtr(o.Status.AvailableReplicas)
	case *appsv1.ReplicaSet:
		return intPtr(o.Status.AvailableReplicas)
	case *appsv1.DaemonSet:
		return intPtr(o.Status.NumberAvailable)
	}
	return nil
}

// UpdatedReplicas is the count of pods on the current template.
func (w *Workload) UpdatedReplicas() *int {
	switch o := w.Obj.(type) {
	case *appsv1.Deployment:
		return intPtr(o.Status.UpdatedReplicas)
	case *appsv1.StatefulSet:
		return intPtr(o.Status.UpdatedReplicas)
	case *appsv1.DaemonSet:
		return intPtr(o.Status.UpdatedNumberScheduled)
	}
	return nil
}

// Healthy reports whether the workload is as its spec asks.
func (w *Workload) Healthy() bool { return k8s.Healthy(w.Obj) }

// Conditions are the workload's conditions.
func (w *Workload) Conditions() []*Condition {
	var out []*Condition
	add := func(t, s, reason, msg string, at metav1.Time) {
		out = append(out, &Condition{Type: t, Status: s, Reason: optional(reason), Message: optional(msg), LastTransitionTime: timeOf(at)})
	}
	switch o := w.Obj.(type) {
	case *appsv1.Deployment:
		for _, c := range o.Status.Conditions {
			add(string(c.Type), string(c.Status), c.Reason, c.Message, c.LastTransitionTime)
		}
	case *appsv1.StatefulSet:
		for _, c := range o.Status.Conditions {
			add(string(c.Type), string(c.Status), c.Reason, c.Message, c.LastTransitionTime)
		}
	case *appsv1.DaemonSet:
		for _, c := range o.Status.Conditions {
			add(string(c.Type), string(c.Status), c.Reason, c.Message, c.LastTransitionTime)
		}
	case *appsv1.ReplicaSet:
		for _, c := range o.Status.Conditions {
			add(string(c.Type), string(c.Status), c.Reason, c.Message, c.LastTransitionTime)
		}
	case *batchv1.Job:
		for _, c := range o.Status.Conditions {
			add(string(c.Type), string(c.Status), c.Reason, c.Message, c.LastTransitionTime)
		}
	}
	if out == nil {
		out = []*Condition{}
	}
	return out
}

// Job is the Job status, for Jobs.
func (w *Workload) Job() *JobStatus {
	j, ok := w.Obj.(*batchv1.Job)
	if !ok {
		return nil
	}
	return &JobStatus{
		Active: int(j.Status.Active), Failed: int(j.Status.Failed), Succeeded: int(j.Status.Succeeded),
		Completions: int32Ptr(j.Spec.Completions), StartTime: timePtr(j.Status.StartTime),
		CompletionTime: timePtr(j.Status.CompletionTime), Status: k8s.JobState(j),
	}
}

// CronJob is the CronJob status, for CronJobs.
func (w *Workload) CronJob() *CronJobStatus {
	c, ok := w.Obj.(*batchv1.CronJob)
	if !ok {
		return nil
	}
	return &CronJobStatus{
		Schedule: c.Spec.Schedule, Suspend: c.Spec.Suspend != nil && *c.Spec.Suspend,
		LastScheduleTime: timePtr(c.Status.LastScheduleTime), LastSuccessfulTime: timePtr(c.Status.LastSuccessfulTime),
		Active: len(c.Status.Active),
	}
}
