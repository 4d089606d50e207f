package k8s

import (
	"context"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"

	"github.com/clustergraph/clustergraph/errkind"
)

func plantedMeta() metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name: "s", Namespace: "ns",
		Annotations:   map[string]string{LastAppliedAnnotation: `{"stringData":{"pw":"hunter2"}}`, "keep": "me"},
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
	}
}

// TestRedact: every shape a Secret arrives in loses its values and its
// last-applied annotation; every object loses managedFields; other kinds
// keep their annotations.
func TestRedact(t *testing.T) {
	typed := &corev1.Secret{ObjectMeta: plantedMeta(), Data: map[string][]byte{"pw": []byte("hunter2")}, StringData: map[string]string{"pw": "hunter2"}}
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Secret", "data": map[string]any{"pw": "aHVudGVyMg=="}, "stringData": map[string]any{"pw": "hunter2"}}}
	m := plantedMeta()
	u.SetAnnotations(m.Annotations)
	u.SetManagedFields(m.ManagedFields)
	partial := &metav1.PartialObjectMetadata{ObjectMeta: plantedMeta()} // no kind: the cache says
	cm := &corev1.ConfigMap{ObjectMeta: plantedMeta()}

	redact(typed, false)
	redact(u, false)
	redact(partial, true)
	redact(cm, false)
	for name, obj := range map[string]metav1.Object{"typed": typed, "unstructured": u, "metadata": partial} {
		if _, ok := obj.GetAnnotations()[LastAppliedAnnotation]; ok || obj.GetAnnotations()["keep"] != "me" {
			t.Errorf("%s: annotations %v", name, obj.GetAnnotations())
		}
		if obj.GetManagedFields() != nil {
			t.Errorf("%s keeps managedFields", name)
		}
	}
	if typed.Data != nil || typed.StringData != nil || u.Object["data"] != nil || u.Object["stringData"] != nil {
		t.Errorf("values kept: %v %v %v", typed.Data, typed.StringData, u.Object)
	}
	if _, ok := cm.Annotations[LastAppliedAnnotation]; !ok || cm.ManagedFields != nil {
		t.Errorf("a ConfigMap keeps its last-applied annotation and loses managedFields: %v %v", cm.Annotations, cm.ManagedFields)
	}
}

// TestRedactingDynamic: objects, lists and watch events of the dynamic
// client come back redacted.
func TestRedactingDynamic(t *testing.T) {
	s := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": "s", "namespace": "ns"}, "data": map[string]any{"pw": "aHVudGVyMg=="}}}
	gvr := schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
	fake := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{gvr: "SecretList"}, s)
	d := redactingDynamic{fake}
	ctx := context.Background()
	got, err := d.Resource(gvr).Namespace("ns").Get(ctx, "s", metav1.GetOptions{})
	if err != nil || got.Object["data"] != nil {
		t.Errorf("get: %v %v", got, err)
	}
	l, err := d.Resource(gvr).List(ctx, metav1.ListOptions{})
	if err != nil || len(l.Items) != 1 || l.Items[0].Object["data"] != nil {
		t.Errorf("list: %v %v", l, err)
	}
	// The fake's watch events share maps with its store (a real client's
	// are decoded afresh), so the watch starts after the reads.
	w, err := d.Resource(gvr).Namespace("ns").Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	upd := s.DeepCopy()
	upd.SetLabels(map[string]string{"a": "b"})
	if _, err := fake.Resource(gvr).Namespace("ns").Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	ev := <-w.ResultChan()
	if ev.Object.(*unstructured.Unstructured).Object["data"] != nil {
		t.Errorf("watch event keeps data: %v", ev.Object)
	}
}

// TestRedactError: values are cut out of a message, longest first; the
// sentinel and the cluster stay.
func TestRedactError(t *testing.T) {
	err := &ClusterError{Cluster: "c1", Err: errkind.Newf(errkind.BadInput, "refused: hunter2hunter2 and aHVudGVy")}
	got := redactError(err, []string{"hunter2", "hunter2hunter2", "aHVudGVy"})
	var ce *ClusterError
	if !errors.Is(got, errkind.BadInput) || !errors.As(got, &ce) || ce.Cluster != "c1" {
		t.Fatalf("lost the sentinel or cluster: %#v", got)
	}
	if strings.Contains(got.Error(), "hunter2") || strings.Contains(got.Error(), "aHVudGVy") || strings.Count(got.Error(), "[redacted]") != 2 {
		t.Errorf("message %q", got.Error())
	}
	if redactError(err, []string{"absent"}) != err || redactError(nil, []string{"x"}) != nil {
		t.Error("an error without values changed")
	}
	plain := redactError(errors.New("boom hunter2"), []string{"hunter2"})
	if errors.Is(plain, errkind.Unavailable) || plain.Error() != "boom [redacted]" {
		t.Errorf("an uncoded error became %#v", plain)
	}
}

// TestSecretValues: data values count as sent and decoded, stringData as
// sent and encoded; short ones are left alone.
func TestSecretValues(t *testing.T) {
	u := &unstructured.Unstructured{Object: map[string]any{"data": map[string]any{"a": "aHVudGVyMg==", "b": "eA=="}, "stringData": map[string]any{"c": "swordfish"}}}
	got := strings.Join(secretValues(u), ",")
	for _, want := range []string{"aHVudGVyMg==", "hunter2", "swordfish", "c3dvcmRmaXNo"} {
		if !strings.Contains(got, want) {
			t.Errorf("values %q lack %q", got, want)
		}
	}
	if strings.Contains(got, ",x,") || strings.HasSuffix(got, ",x") {
		t.Errorf("a one-byte value is cut out of messages: %q", got)
	}
}
