package model

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clustergraph/clustergraph/k8s"
)

// KubeObject is implemented by every Kubernetes object type.
type KubeObject interface {
	IsKubeObject()
	IsNode()
}

// Node is Relay's Object Identification interface: an object with a
// global id that Query.node fetches again. Every type with an id is one:
// every KubeObject, clusters, node pools, alerts and metering records.
type Node interface {
	IsNode()
}

// Object is what every object type shares: its cluster and the cached
// object. It is embedded in each type, which adds the kind's own fields.
type Object struct {
	C   *k8s.Cluster
	Obj any
}

// IsKubeObject marks the KubeObject interface.
func (Object) IsKubeObject() {}

// IsNode marks the Node interface.
func (Object) IsNode() {}

func (o Object) meta() metav1.Object {
	m, _ := o.Obj.(metav1.Object)
	if m == nil {
		if a, ok := o.Obj.(metav1.ObjectMetaAccessor); ok {
			return a.GetObjectMeta()
		}
	}
	return m
}

// ID is the object's global id.
func (o Object) ID() string { return o.C.IDOf(o.Obj).Encode() }

// Cluster is the object's cluster.
func (o Object) Cluster() *Cluster { return &Cluster{C: o.C} }

// Metadata is the object's metadata.
func (o Object) Metadata() *ObjectMeta { return &ObjectMeta{m: o.meta()} }

// Raw is the whole object as JSON.
func (o Object) Raw() JSON { return JSON{V: rawObject{gvk: k8s.GVKOf(o.Obj), obj: o.Obj}} }

// ObjectMeta is a view over an object's metadata.
type ObjectMeta struct{ m metav1.Object }

// Name is the object's name.
func (m *ObjectMeta) Name() string { return m.m.GetName() }

// Namespace is nil for cluster-scoped objects.
func (m *ObjectMeta) Namespace() *string { return optional(m.m.GetNamespace()) }

// UID is the object's uid.
func (m *ObjectMeta) UID() string { return string(m.m.GetUID()) }

// ResourceVersion is the object's resource version.
func (m *ObjectMeta) ResourceVersion() string { return m.m.GetResourceVersion() }

// Generation is the object's generation.
func (m *ObjectMeta) Generation() int64 { return m.m.GetGeneration() }

// CreationTimestamp is when the object was created.
func (m *ObjectMeta) CreationTimestamp() time.Time { return m.m.GetCreationTimestamp().Time }

// DeletionTimestamp is set on terminating objects.
func (m *ObjectMeta) DeletionTimestamp() *time.Time { return timePtr(m.m.GetDeletionTimestamp()) }

// Labels is the label map.
func (m *ObjectMeta) Labels() JSON { return stringMap(m.m.GetLabels()) }

// Annotations is the annotation map.
func (m *ObjectMeta) Annotations() JSON { return stringMap(m.m.GetAnnotations()) }

// OwnerReferences lists the object's owners.
func (m *ObjectMeta) OwnerReferences() []*OwnerReference {
	refs := m.m.GetOwnerReferences()
	out := make([]*OwnerReference, len(refs))
	for i, r := range refs {
		out[i] = &OwnerReference{APIVersion: r.APIVersion, Kind: r.Kind, Name: r.Name, UID: string(r.UID), Controller: r.Controller != nil && *r.Controller}
	}
	return out
}

func stringMap(m map[string]string) JSON {
	if m == nil {
		m = map[string]string{}
	}
	return JSON{V: m}
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func timePtr(t *metav1.Time) *time.Time {
	if t == nil || t.IsZero() {
		return nil
	}
	return &t.Time
}

func timeOf(t metav1.Time) *time.Time { return timePtr(&t) }

func int32Ptr(p *int32) *int {
	if p == nil {
		return nil
	}
	v := int(*p)
	return &v
}

func intPtr(v int32) *int {
	i := int(v)
	return &i
}
