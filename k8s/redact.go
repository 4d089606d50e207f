package k8s

import (
	"context"
	"encoding/base64"
	"errors"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/clustergraph/clustergraph/errkind"
)

// The redaction rule. What never leaves the server, by any path:
//
//   - a Secret's values: data, stringData, and the
//     kubectl.kubernetes.io/last-applied-configuration annotation, which
//     kubectl apply fills with the whole manifest, values in clear;
//   - managedFields, of every object.
//
// It is applied where objects enter clustergraph, in one place per way in:
// the informers' transform (stripForCache: every cache, typed, metadata-only
// and on-demand, so every list, relation and watch) and the dynamic client
// (redactingDynamic: resources(), object(id) and every write's answer, as
// clustergraph and as the caller). Errors of writes that carry Secret
// values have those values cut out of their messages (redactError), so
// neither the answer, the audit log nor the server log quotes them.
//
// Other kinds keep their last-applied annotation (kubectl and Headlamp show
// it): it holds what the object holds, which a caller who may read the
// object reads anyway. Neither it nor any other value is written to the
// audit log, which records kinds, names, keys and results only.

// LastAppliedAnnotation is where kubectl apply keeps the manifest it applied.
const LastAppliedAnnotation = corev1.LastAppliedConfigAnnotation

var secretGR = schema.GroupResource{Resource: "secrets"}

// isSecret reports whether an object is a Secret, by its type or kind.
// Metadata-only objects carry no kind: their cache says what they are.
func isSecret(obj any) bool {
	switch o := obj.(type) {
	case *corev1.Secret:
		return true
	case *unstructured.Unstructured:
		return o.GroupVersionKind().GroupKind() == GVKSecret.GroupKind()
	case *metav1.PartialObjectMetadata:
		return o.GroupVersionKind().GroupKind() == GVKSecret.GroupKind()
	}
	return false
}

// redact strips, in place, what never leaves the server from an object
// that has just arrived from an apiserver (so nothing shares it yet).
// secret marks a Secret whose type cannot say so.
func redact(obj any, secret bool) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return
	}
	m.SetManagedFields(nil)
	if !secret && !isSecret(obj) {
		return
	}
	if a := m.GetAnnotations(); a != nil {
		if _, ok := a[LastAppliedAnnotation]; ok {
			a = maps.Clone(a)
			delete(a, LastAppliedAnnotation)
			m.SetAnnotations(a)
		}
	}
	switch o := obj.(type) {
	case *corev1.Secret:
		o.Data, o.StringData = nil, nil
	case *unstructured.Unstructured:
		delete(o.Object, "data")
		delete(o.Object, "stringData")
	}
}

// redactSecret is the cache transform of the metadata-only Secret cache.
func redactSecret(obj any) (any, error) {
	redact(obj, true)
	return stripForCache(obj)
}

// redactingDynamic is a dynamic client whose every answer (objects, lists,
// watch events) has been through redact: no dynamic path can serve a
// Secret's values or managedFields.
type redactingDynamic struct{ dynamic.Interface }

func (d redactingDynamic) Resource(gvr schema.GroupVersionResource) dynamic.NamespaceableResourceInterface {
	return redactingNamespaceable{redactingResource{d.Interface.Resource(gvr), gvr.GroupResource() == secretGR}}
}

type redactingNamespaceable struct{ redactingResource }

func (r redactingNamespaceable) Namespace(ns string) dynamic.ResourceInterface {
	return redactingResource{r.ri.(dynamic.NamespaceableResourceInterface).Namespace(ns), r.secret}
}

type redactingResource struct {
	ri     dynamic.ResourceInterface
	secret bool
}

func (r redactingResource) one(u *unstructured.Unstructured, err error) (*unstructured.Unstructured, error) {
	if u != nil {
		redact(u, r.secret)
	}
	return u, err
}

func (r redactingResource) Create(ctx context.Context, obj *unstructured.Unstructured, o metav1.CreateOptions, sub ...string) (*unstructured.Unstructured, error) {
	return r.one(r.ri.Create(ctx, obj, o, sub...))
}

func (r redactingResource) Update(ctx context.Context, obj *unstructured.Unstructured, o metav1.UpdateOptions, sub ...string) (*unstructured.Unstructured, error) {
	return r.one(r.ri.Update(ctx, obj, o, sub...))
}

func (r redactingResource) UpdateStatus(ctx context.Context, obj *unstructured.Unstructured, o metav1.UpdateOptions) (*unstructured.Unstructured, error) {
	return r.one(r.ri.UpdateStatus(ctx, obj, o))
}

func (r redactingResource) Delete(ctx context.Context, name string, o metav1.DeleteOptions, sub ...string) error {
	return r.ri.Delete(ctx, name, o, sub...)
}

func (r redactingResource) DeleteCollection(ctx context.Context, o metav1.DeleteOptions, lo metav1.ListOptions) error {
	return r.ri.DeleteCollection(ctx, o, lo)
}

func (r redactingResource) Get(ctx context.Context, name string, o metav1.GetOptions, sub ...string) (*unstructured.Unstructured, error) {
	return r.one(r.ri.Get(ctx, name, o, sub...))
}

func (r redactingResource) List(ctx context.Context, o metav1.ListOptions) (*unstructured.UnstructuredList, error) {
	l, err := r.ri.List(ctx, o)
	if l != nil {
		for i := range l.Items {
			redact(&l.Items[i], r.secret)
		}
	}
	return l, err
}

func (r redactingResource) Watch(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
	w, err := r.ri.Watch(ctx, o)
	if err != nil {
		return nil, err
	}
	return watch.Filter(w, func(e watch.Event) (watch.Event, bool) {
		redact(e.Object, r.secret)
		return e, true
	}), nil
}

func (r redactingResource) Patch(ctx context.Context, name string, pt types.PatchType, data []byte, o metav1.PatchOptions, sub ...string) (*unstructured.Unstructured, error) {
	return r.one(r.ri.Patch(ctx, name, pt, data, o, sub...))
}

func (r redactingResource) Apply(ctx context.Context, name string, obj *unstructured.Unstructured, o metav1.ApplyOptions, sub ...string) (*unstructured.Unstructured, error) {
	return r.one(r.ri.Apply(ctx, name, obj, o, sub...))
}

func (r redactingResource) ApplyStatus(ctx context.Context, name string, obj *unstructured.Unstructured, o metav1.ApplyOptions) (*unstructured.Unstructured, error) {
	return r.one(r.ri.ApplyStatus(ctx, name, obj, o))
}

// secretValues collects what a write of a Secret sends that must not come
// back in an error: its data and stringData values in every form (see
// valueForms). An apiserver or admission webhook that quotes the object in
// its refusal quotes one of these.
func secretValues(u *unstructured.Unstructured) []string {
	return valueForms(u.Object["stringData"], valueForms(u.Object["data"], nil))
}

// valueForms collects every string of a JSON value as sent, base64-encoded
// and, where it is base64, decoded: data travels encoded, stringData in
// clear, and admission sees stringData as encoded data. A patch of a
// Secret is read whole, since any of its strings may be a value.
func valueForms(v any, into []string) []string {
	for _, t := range StringLeaves(v, nil) {
		into = append(into, t, base64.StdEncoding.EncodeToString([]byte(t)))
		if b, err := base64.StdEncoding.DecodeString(t); err == nil && len(b) >= minSecretLen {
			into = append(into, string(b))
		}
	}
	return into
}

// StringLeaves collects the strings of a JSON value that are long enough
// to cut out of a message (see minSecretLen).
func StringLeaves(v any, into []string) []string {
	switch t := v.(type) {
	case string:
		if len(t) >= minSecretLen {
			into = append(into, t)
		}
	case map[string]any:
		for _, e := range t {
			into = StringLeaves(e, into)
		}
	case []any:
		for _, e := range t {
			into = StringLeaves(e, into)
		}
	}
	return into
}

// minSecretLen is the shortest value cut out of messages: shorter ones
// ("1", "ok") would cut ordinary words out of every error.
const minSecretLen = 4

// RedactedText replaces every value in msg with "[redacted]", longest
// first (so a value that contains another is cut whole).
func RedactedText(msg string, vals []string) string {
	vals = slices.Clone(vals)
	slices.SortFunc(vals, func(a, b string) int { return len(b) - len(a) })
	for _, v := range vals {
		msg = strings.ReplaceAll(msg, v, "[redacted]")
	}
	return msg
}

// RedactWriteError cuts the values of a Secret that a write sent (u, as
// decoded from the caller's manifest) out of the write's error, which an
// apiserver or admission webhook may have quoted them in. Other kinds'
// errors are returned as they are.
func RedactWriteError(err error, u *unstructured.Unstructured) error {
	if err == nil || !isSecret(u) {
		return err
	}
	return redactError(err, secretValues(u))
}

// RedactPatchError cuts every string of a patch to a Secret out of the
// patch's error (see valueForms). Other kinds' errors are returned as they
// are.
func RedactPatchError(err error, id ObjectID, patch any) error {
	if err == nil || id.GVK.GroupKind() != GVKSecret.GroupKind() {
		return err
	}
	return redactError(err, valueForms(patch, nil))
}

// redactError returns err with vals cut out of its message, keeping the
// sentinel it matches and the cluster it names.
func redactError(err error, vals []string) error {
	if err == nil || len(vals) == 0 {
		return err
	}
	msg := err.Error()
	clean := RedactedText(msg, vals)
	if clean == msg {
		return err
	}
	kind := errkind.Of(err) // nil: an internal error, shown as such
	var ce *ClusterError
	if errors.As(err, &ce) {
		clean = RedactedText(ce.Err.Error(), vals)
		return &ClusterError{Cluster: ce.Cluster, Err: errkind.Newf(kind, "%s", clean)}
	}
	return errkind.Newf(kind, "%s", clean)
}

// Typed converts an object the apiserver returned to its Go type when
// clustergraph knows the kind, so it is served as its GraphQL type.
func Typed(u *unstructured.Unstructured) any {
	obj, err := scheme.Scheme.New(u.GroupVersionKind())
	if err != nil {
		return u
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, obj); err != nil {
		return u
	}
	_, _ = stripForCache(obj) // strips in place; it fails on no object it is given here
	return obj
}
