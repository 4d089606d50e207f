package model

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/clustergraph/clustergraph/k8s"
)

// Event is a view over a cached Kubernetes Event.
type Event struct {
	Object
	E *corev1.Event
	// Archived: read from the database, no longer held by the apiserver.
	Archived bool
}

// NewEvent wraps a cached event.
func NewEvent(c *k8s.Cluster, e *corev1.Event) *Event { return &Event{Object: Object{c, e}, E: e} }

// Namespace is the event's namespace.
func (e *Event) Namespace() *string { return optional(e.E.Namespace) }

// Type is Normal or Warning.
func (e *Event) Type() string { return e.E.Type }

// Reason is the event's reason.
func (e *Event) Reason() string { return e.E.Reason }

// Message is the event's message.
func (e *Event) Message() string { return e.E.Message }

// Source is the reporting component.
func (e *Event) Source() string { return k8s.EventSource(e.E) }

// InvolvedKind is the involved object's kind.
func (e *Event) InvolvedKind() string { return e.E.InvolvedObject.Kind }

// InvolvedName is the involved object's name.
func (e *Event) InvolvedName() string { return e.E.InvolvedObject.Name }

// InvolvedNamespace is the involved object's namespace.
func (e *Event) InvolvedNamespace() *string { return optional(e.E.InvolvedObject.Namespace) }

// Count is how often it happened (at least once).
func (e *Event) Count() int { return k8s.EventCount(e.E) }

// FirstTimestamp is when it was first seen.
func (e *Event) FirstTimestamp() *time.Time {
	if !e.E.FirstTimestamp.IsZero() {
		return &e.E.FirstTimestamp.Time
	}
	if !e.E.EventTime.IsZero() {
		return &e.E.EventTime.Time
	}
	return nil
}

// LastTimestamp is when it was last seen.
func (e *Event) LastTimestamp() *time.Time {
	t := k8s.LastSeen(e.E)
	return &t
}

// PersistentVolumeClaim is a view over a cached claim.
type PersistentVolumeClaim struct {
	Object
	P *corev1.PersistentVolumeClaim
}

// NewPersistentVolumeClaim wraps a cached claim.
func NewPersistentVolumeClaim(c *k8s.Cluster, p *corev1.PersistentVolumeClaim) *PersistentVolumeClaim {
	return &PersistentVolumeClaim{Object{c, p}, p}
}

// Name is the claim's name.
func (p *PersistentVolumeClaim) Name() string { return p.P.Name }

// Namespace is the claim's namespace.
func (p *PersistentVolumeClaim) Namespace() string { return p.P.Namespace }

// Phase is Pending, Bound or Lost.
func (p *PersistentVolumeClaim) Phase() string { return string(p.P.Status.Phase) }

// StorageClass is the claim's storage class.
func (p *PersistentVolumeClaim) StorageClass() *string {
	if p.P.Spec.StorageClassName == nil {
		return nil
	}
	return optional(*p.P.Spec.StorageClassName)
}

// RequestBytes is the requested size.
func (p *PersistentVolumeClaim) RequestBytes() int64 {
	return p.P.Spec.Resources.Requests.Storage().Value()
}

// CapacityBytes is the bound size.
func (p *PersistentVolumeClaim) CapacityBytes() *int64 {
	if p.P.Status.Phase != corev1.ClaimBound {
		return nil
	}
	v := p.P.Status.Capacity.Storage().Value()
	return &v
}

// VolumeName is the bound volume.
func (p *PersistentVolumeClaim) VolumeName() *string { return optional(p.P.Spec.VolumeName) }

// MetadataObject is a view over a metadata-only cached object.
type MetadataObject struct {
	Object
	M *metav1.PartialObjectMetadata
}

// NewMetadataObject wraps a metadata-only object.
func NewMetadataObject(c *k8s.Cluster, m *metav1.PartialObjectMetadata) *MetadataObject {
	return &MetadataObject{Object{c, m}, m}
}

// Kind is the object's kind.
func (m *MetadataObject) Kind() string { return m.M.Kind }

// Name is the object's name.
func (m *MetadataObject) Name() string { return m.M.Name }

// Namespace is the object's namespace.
func (m *MetadataObject) Namespace() string { return m.M.Namespace }

// Resource is a view over an object read through the dynamic client.
type Resource struct {
	Object
	U *unstructured.Unstructured
}

// NewResource wraps an unstructured object.
func NewResource(c *k8s.Cluster, u *unstructured.Unstructured) *Resource {
	return &Resource{Object{c, u}, u}
}

// ID is the object's global id as a Resource. An object of a kind
// clustergraph caches has an id of its own read this way: the plain id
// names the cached view (a Pod, a Workload, ...).
func (r *Resource) ID() string {
	id := r.C.IDOf(r.U)
	id.AsResource = k8s.IsCached(id.GVK)
	return id.Encode()
}

// APIVersion is the object's apiVersion.
func (r *Resource) APIVersion() string { return r.U.GetAPIVersion() }

// Kind is the object's kind.
func (r *Resource) Kind() string { return r.U.GetKind() }

// Name is the object's name.
func (r *Resource) Name() string { return r.U.GetName() }

// Namespace is nil when cluster-scoped.
func (r *Resource) Namespace() *string { return optional(r.U.GetNamespace()) }
