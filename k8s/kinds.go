package k8s

import (
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/clustergraph/clustergraph/errkind"
)

// Group/version/kinds of the cached kinds. Objects in informer caches carry
// no TypeMeta, so the kind is known from the Go type.
var (
	GVKNamespace      = corev1.SchemeGroupVersion.WithKind("Namespace")
	GVKNode           = corev1.SchemeGroupVersion.WithKind("Node")
	GVKPod            = corev1.SchemeGroupVersion.WithKind("Pod")
	GVKService        = corev1.SchemeGroupVersion.WithKind("Service")
	GVKEvent          = corev1.SchemeGroupVersion.WithKind("Event")
	GVKPVC            = corev1.SchemeGroupVersion.WithKind("PersistentVolumeClaim")
	GVKConfigMap      = corev1.SchemeGroupVersion.WithKind("ConfigMap")
	GVKSecret         = corev1.SchemeGroupVersion.WithKind("Secret")
	GVKDeployment     = appsv1.SchemeGroupVersion.WithKind("Deployment")
	GVKReplicaSet     = appsv1.SchemeGroupVersion.WithKind("ReplicaSet")
	GVKStatefulSet    = appsv1.SchemeGroupVersion.WithKind("StatefulSet")
	GVKDaemonSet      = appsv1.SchemeGroupVersion.WithKind("DaemonSet")
	GVKJob            = batchv1.SchemeGroupVersion.WithKind("Job")
	GVKCronJob        = batchv1.SchemeGroupVersion.WithKind("CronJob")
	GVKIngress        = networkingv1.SchemeGroupVersion.WithKind("Ingress")
	GVKEndpointSlice  = discoveryv1.SchemeGroupVersion.WithKind("EndpointSlice")
	GVKNodePoolObject = schema.GroupVersionKind{Group: "apps.openyurt.io", Version: "v1beta1", Kind: "NodePool"}
	// GVKNodePoolLabel is the pseudo-kind of node pools, the kind of every
	// pool's global id: pools derived from node labels and openyurt's
	// alike (whose NodePool object, read as a Resource, keeps its own id).
	GVKNodePoolLabel = schema.GroupVersionKind{Group: "clustergraph.io", Version: "v1", Kind: "NodePool"}
	// GVKCluster is the pseudo-kind of a cluster's own global id.
	GVKCluster = schema.GroupVersionKind{Group: "clustergraph.io", Version: "v1", Kind: "Cluster"}
)

// resourceOfGVK maps a cached kind to its informer.
var resourceOfGVK = map[schema.GroupVersionKind]resource{
	GVKNamespace: resNamespaces, GVKNode: resNodes, GVKPod: resPods, GVKService: resServices,
	GVKEvent: resEvents, GVKPVC: resPVCs, GVKConfigMap: resConfigMaps, GVKSecret: resSecrets,
	GVKDeployment: resDeployments, GVKReplicaSet: resReplicaSets, GVKStatefulSet: resStatefulSets,
	GVKDaemonSet: resDaemonSets, GVKJob: resJobs, GVKCronJob: resCronJobs, GVKIngress: resIngresses,
	GVKEndpointSlice: resEndpointSlices,
}

// GVKOf returns the group/version/kind of a cached object.
func GVKOf(obj any) schema.GroupVersionKind {
	switch o := obj.(type) {
	case *corev1.Namespace:
		return GVKNamespace
	case *corev1.Node:
		return GVKNode
	case *corev1.Pod:
		return GVKPod
	case *corev1.Service:
		return GVKService
	case *corev1.Event:
		return GVKEvent
	case *corev1.PersistentVolumeClaim:
		return GVKPVC
	case *appsv1.Deployment:
		return GVKDeployment
	case *appsv1.ReplicaSet:
		return GVKReplicaSet
	case *appsv1.StatefulSet:
		return GVKStatefulSet
	case *appsv1.DaemonSet:
		return GVKDaemonSet
	case *batchv1.Job:
		return GVKJob
	case *batchv1.CronJob:
		return GVKCronJob
	case *networkingv1.Ingress:
		return GVKIngress
	case *discoveryv1.EndpointSlice:
		return GVKEndpointSlice
	case *metav1.PartialObjectMetadata:
		return o.GroupVersionKind()
	case *unstructured.Unstructured:
		return o.GroupVersionKind()
	}
	return schema.GroupVersionKind{}
}

func metaOf(obj any) (metav1.Object, error) { return meta.Accessor(obj) }

func nodeIndex(obj any) ([]string, error) {
	if p, ok := obj.(*corev1.Pod); ok && p.Spec.NodeName != "" {
		return []string{p.Spec.NodeName}, nil
	}
	return nil, nil
}

// serviceNameIndex indexes EndpointSlices by "namespace/service".
func serviceNameIndex(obj any) ([]string, error) {
	if s, ok := obj.(*discoveryv1.EndpointSlice); ok {
		if svc := s.Labels[discoveryv1.LabelServiceName]; svc != "" {
			return []string{s.Namespace + "/" + svc}, nil
		}
	}
	return nil, nil
}

// NodeStatus is Ready, NotReady or Unknown from a node's Ready condition.
func NodeStatus(n *corev1.Node) string {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			switch c.Status {
			case corev1.ConditionTrue:
				return "Ready"
			case corev1.ConditionFalse:
				return "NotReady"
			}
		}
	}
	return "Unknown"
}

// PodStatus is what kubectl prints in its STATUS column: the phase, unless
// a container or the pod itself has a more telling reason.
func PodStatus(p *corev1.Pod) string {
	if p.DeletionTimestamp != nil {
		return "Terminating"
	}
	status := string(p.Status.Phase)
	if p.Status.Reason != "" {
		status = p.Status.Reason
	}
	for i := len(p.Status.InitContainerStatuses) - 1; i >= 0; i-- {
		cs := p.Status.InitContainerStatuses[i]
		if w := cs.State.Waiting; w != nil && w.Reason != "" && w.Reason != "PodInitializing" {
			return "Init:" + w.Reason
		}
		if t := cs.State.Terminated; t != nil && t.ExitCode != 0 {
			return "Init:Error"
		}
	}
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil && w.Reason != "" {
			status = w.Reason
		} else if t := cs.State.Terminated; t != nil && t.Reason != "" {
			status = t.Reason
		}
	}
	return status
}

// PodReady reports whether the pod's Ready condition is true.
func PodReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// JobState is Complete, Failed, Suspended or Running.
func JobState(j *batchv1.Job) string {
	for _, c := range j.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete:
			return "Complete"
		case batchv1.JobFailed:
			return "Failed"
		case batchv1.JobSuspended:
			return "Suspended"
		}
	}
	return "Running"
}

func replicas(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}

// Healthy reports whether an object is as its spec asks, the measure the
// overview counts: ready nodes, running or succeeded pods, available
// deployments, jobs that did not fail, and so on. Kinds without a health
// notion are healthy.
func Healthy(obj any) bool {
	switch o := obj.(type) {
	case *corev1.Node:
		return NodeStatus(o) == "Ready"
	case *corev1.Pod:
		return o.Status.Phase == corev1.PodSucceeded || (o.Status.Phase == corev1.PodRunning && PodReady(o))
	case *corev1.Namespace:
		return o.Status.Phase != corev1.NamespaceTerminating
	case *corev1.PersistentVolumeClaim:
		return o.Status.Phase == corev1.ClaimBound
	case *appsv1.Deployment:
		return o.Status.AvailableReplicas >= replicas(o.Spec.Replicas) && o.Status.UpdatedReplicas >= replicas(o.Spec.Replicas)
	case *appsv1.ReplicaSet:
		return o.Status.AvailableReplicas >= replicas(o.Spec.Replicas)
	case *appsv1.StatefulSet:
		return o.Status.ReadyReplicas >= replicas(o.Spec.Replicas)
	case *appsv1.DaemonSet:
		return o.Status.NumberReady >= o.Status.DesiredNumberScheduled
	case *batchv1.Job:
		return JobState(o) != "Failed"
	case *corev1.Event:
		return o.Type != corev1.EventTypeWarning
	}
	return true
}

// StatusOf is the status a list filters and sorts by for an object's kind.
func StatusOf(obj any) string {
	switch o := obj.(type) {
	case *corev1.Node:
		return NodeStatus(o)
	case *corev1.Pod:
		return string(o.Status.Phase)
	case *corev1.Namespace:
		return string(o.Status.Phase)
	case *corev1.Service:
		return string(o.Spec.Type)
	case *corev1.Event:
		return o.Type
	case *corev1.PersistentVolumeClaim:
		return string(o.Status.Phase)
	case *appsv1.Deployment, *appsv1.ReplicaSet, *appsv1.StatefulSet, *appsv1.DaemonSet, *batchv1.Job, *batchv1.CronJob:
		if Healthy(o) {
			return "HEALTHY"
		}
		return "UNHEALTHY"
	}
	return ""
}

// statusMatches reports whether want names the object's status. Pods also
// match their kubectl status (e.g. CrashLoopBackOff).
func statusMatches(obj any, want string) bool {
	if strings.EqualFold(StatusOf(obj), want) {
		return true
	}
	if p, ok := obj.(*corev1.Pod); ok {
		return strings.EqualFold(PodStatus(p), want)
	}
	return false
}

// fieldsOf is the field set a field selector is matched against: the
// fields the apiserver itself supports for the kind.
func fieldsOf(obj any) fields.Set {
	m, err := metaOf(obj)
	if err != nil {
		return fields.Set{}
	}
	set := fields.Set{"metadata.name": m.GetName(), "metadata.namespace": m.GetNamespace()}
	switch o := obj.(type) {
	case *corev1.Pod:
		set["spec.nodeName"] = o.Spec.NodeName
		set["spec.restartPolicy"] = string(o.Spec.RestartPolicy)
		set["spec.schedulerName"] = o.Spec.SchedulerName
		set["spec.serviceAccountName"] = o.Spec.ServiceAccountName
		set["spec.hostNetwork"] = strconv.FormatBool(o.Spec.HostNetwork)
		set["status.phase"] = string(o.Status.Phase)
		set["status.podIP"] = o.Status.PodIP
		set["status.hostIP"] = o.Status.HostIP
	case *corev1.Node:
		set["spec.unschedulable"] = strconv.FormatBool(o.Spec.Unschedulable)
	case *corev1.Namespace:
		set["status.phase"] = string(o.Status.Phase)
	case *corev1.Service:
		set["spec.clusterIP"] = o.Spec.ClusterIP
		set["spec.type"] = string(o.Spec.Type)
	case *corev1.Event:
		set["involvedObject.kind"] = o.InvolvedObject.Kind
		set["involvedObject.namespace"] = o.InvolvedObject.Namespace
		set["involvedObject.name"] = o.InvolvedObject.Name
		set["involvedObject.uid"] = string(o.InvolvedObject.UID)
		set["reason"] = o.Reason
		set["reportingComponent"] = o.ReportingController
		set["source"] = o.Source.Component
		set["type"] = o.Type
	case *appsv1.ReplicaSet:
		set["status.replicas"] = strconv.Itoa(int(o.Status.Replicas))
	case *batchv1.Job:
		set["status.successful"] = strconv.Itoa(int(o.Status.Succeeded))
	}
	return set
}

// KindByName finds a cached kind by its kind ("Pod") or plural resource
// ("pods") name, case-insensitively.
func KindByName(name string) (schema.GroupVersionKind, error) {
	for gvk, r := range resourceOfGVK {
		if strings.EqualFold(gvk.Kind, name) || strings.EqualFold(string(r), name) {
			return gvk, nil
		}
	}
	return schema.GroupVersionKind{}, errkind.BadInputf("%q is not a cached kind (e.g. Pod, Deployment, Node, Event)", name)
}

// IsCached reports whether a kind is held in the informer caches.
func IsCached(gvk schema.GroupVersionKind) bool {
	_, ok := resourceOfGVK[gvk]
	return ok || gvk == GVKNodePoolLabel || gvk == GVKNodePoolObject
}
