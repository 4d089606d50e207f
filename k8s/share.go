package k8s

import (
	"slices"
	"strconv"
	"strings"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Pods of one workload are alike: the same labels, owner, images, resource
// requirements and tolerations, each decoded into memory of its own. A
// cached pod is never written to (client-go's contract, and ours: writes
// work on copies), so equal parts may be one shared copy. sharePod makes
// them so as a pod enters the cache, through bounded tables keyed by each
// value whole. What the cache serves is unchanged, value for value; at
// 10,000 pods the resource requirements alone were a third of the heap.
// (Strings go through a table too: unique.Make saved no more memory and
// cost three times the CPU, in the informer's path to synced.)

// maxShared bounds each table: when one is full it starts afresh (values
// already shared stay shared; new ones share from then on).
const maxShared = 1 << 16

// sharedTable keeps one copy of each value by a key that renders it whole.
type sharedTable[V any] struct {
	mu   sync.Mutex
	vals map[string]V
}

func (t *sharedTable[V]) get(key string, v V) V {
	t.mu.Lock()
	defer t.mu.Unlock()
	if have, ok := t.vals[key]; ok {
		return have
	}
	if t.vals == nil || len(t.vals) >= maxShared {
		t.vals = make(map[string]V)
	}
	t.vals[key] = v
	return v
}

var (
	sharedLists       sharedTable[corev1.ResourceList]
	sharedLabels      sharedTable[map[string]string]
	sharedTolerations sharedTable[[]corev1.Toleration]
	sharedStrings     sharedTable[string]
)

// str returns the canonical copy of s.
func str(s string) string {
	if s == "" {
		return s
	}
	return sharedStrings.get(s, s)
}

// sharePod makes p's repeated parts shared copies.
func sharePod(p *corev1.Pod) {
	shareMeta(&p.ObjectMeta)
	sharePodSpec(&p.Spec)
	st := &p.Status
	st.Phase = corev1.PodPhase(str(string(st.Phase)))
	st.QOSClass = corev1.PodQOSClass(str(string(st.QOSClass)))
	st.HostIP = str(st.HostIP)
	for i := range st.HostIPs {
		st.HostIPs[i].IP = str(st.HostIPs[i].IP)
	}
	for _, cs := range [][]corev1.ContainerStatus{st.InitContainerStatuses, st.ContainerStatuses} {
		for i := range cs {
			c := &cs[i]
			c.Name, c.Image, c.ImageID = str(c.Name), str(c.Image), str(c.ImageID)
		}
	}
}

// PodTemplate returns the pod template and selector of a workload object
// (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob); nil for
// other objects.
func PodTemplate(obj any) (*corev1.PodTemplateSpec, *metav1.LabelSelector) {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		return &o.Spec.Template, o.Spec.Selector
	case *appsv1.StatefulSet:
		return &o.Spec.Template, o.Spec.Selector
	case *appsv1.DaemonSet:
		return &o.Spec.Template, o.Spec.Selector
	case *appsv1.ReplicaSet:
		return &o.Spec.Template, o.Spec.Selector
	case *batchv1.Job:
		return &o.Spec.Template, o.Spec.Selector
	case *batchv1.CronJob:
		return &o.Spec.JobTemplate.Spec.Template, o.Spec.JobTemplate.Spec.Selector
	}
	return nil, nil
}

// shareTemplate shares a workload's pod template: Deployments, their
// ReplicaSets and StatefulSets each hold one.
func shareTemplate(t *corev1.PodTemplateSpec) {
	shareMeta(&t.ObjectMeta)
	sharePodSpec(&t.Spec)
}

func sharePodSpec(s *corev1.PodSpec) {
	s.NodeName = str(s.NodeName)
	s.ServiceAccountName = str(s.ServiceAccountName)
	s.DeprecatedServiceAccount = str(s.DeprecatedServiceAccount)
	s.SchedulerName = str(s.SchedulerName)
	s.PriorityClassName = str(s.PriorityClassName)
	s.NodeSelector = shareLabels(s.NodeSelector)
	s.Tolerations = shareTolerations(s.Tolerations)
	for _, cs := range [][]corev1.Container{s.InitContainers, s.Containers} {
		for i := range cs {
			c := &cs[i]
			c.Name, c.Image = str(c.Name), str(c.Image)
			c.ImagePullPolicy = corev1.PullPolicy(str(string(c.ImagePullPolicy)))
			c.TerminationMessagePath = str(c.TerminationMessagePath)
			c.TerminationMessagePolicy = corev1.TerminationMessagePolicy(str(string(c.TerminationMessagePolicy)))
			c.Resources.Requests = shareList(c.Resources.Requests)
			c.Resources.Limits = shareList(c.Resources.Limits)
			for j := range c.VolumeMounts {
				m := &c.VolumeMounts[j]
				m.Name, m.MountPath = str(m.Name), str(m.MountPath)
			}
		}
	}
}

// shareMeta shares what objects of one owner repeat in their metadata.
func shareMeta(m *metav1.ObjectMeta) {
	m.Namespace = str(m.Namespace)
	m.GenerateName = str(m.GenerateName)
	m.Labels = shareLabels(m.Labels)
	for i := range m.OwnerReferences {
		o := &m.OwnerReferences[i]
		o.APIVersion, o.Kind, o.Name = str(o.APIVersion), str(o.Kind), str(o.Name)
		o.UID = types.UID(str(string(o.UID)))
	}
}

func shareLabels(m map[string]string) map[string]string {
	if len(m) == 0 {
		return m
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte(0)
		b.WriteString(m[k])
		b.WriteByte(0)
	}
	return sharedLabels.get(b.String(), m)
}

func shareList(l corev1.ResourceList) corev1.ResourceList {
	if len(l) == 0 {
		return l
	}
	names := make([]string, 0, len(l))
	for n := range l {
		names = append(names, string(n))
	}
	slices.Sort(names)
	var b strings.Builder
	for _, n := range names {
		q := l[corev1.ResourceName(n)]
		b.WriteString(n)
		b.WriteByte('=')
		// Format as well as value: the shared list is served (raw) as
		// each pod's own would be.
		b.WriteString(q.String())
		b.WriteByte('/')
		b.WriteString(string(q.Format))
		b.WriteByte(0)
	}
	return sharedLists.get(b.String(), l)
}

func shareTolerations(ts []corev1.Toleration) []corev1.Toleration {
	if len(ts) == 0 {
		return ts
	}
	var b strings.Builder
	for _, t := range ts {
		b.WriteString(t.Key)
		b.WriteByte(0)
		b.WriteString(string(t.Operator))
		b.WriteByte(0)
		b.WriteString(t.Value)
		b.WriteByte(0)
		b.WriteString(string(t.Effect))
		b.WriteByte(0)
		if t.TolerationSeconds != nil {
			b.WriteString(strconv.FormatInt(*t.TolerationSeconds, 10))
		} else {
			b.WriteByte('-')
		}
		b.WriteByte(1)
	}
	return sharedTolerations.get(b.String(), ts)
}
