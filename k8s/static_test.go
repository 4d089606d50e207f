package k8s

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// TestStaticRegistry: a static cluster is READY and its caches hold the
// objects as the informers would: ConfigMaps and Secrets as metadata, a
// Secret without its last-applied annotation, nothing with managedFields;
// a kind that is not cached is refused.
func TestStaticRegistry(t *testing.T) {
	managed := []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}
	reg, err := NewStaticRegistry(map[string][]runtime.Object{"c": {
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", ManagedFields: managed}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "s", ManagedFields: managed,
			Annotations: map[string]string{LastAppliedAnnotation: `{"data":{"password":"aHVudGVyMg=="}}`}},
			Data: map[string][]byte{"password": []byte("hunter2")}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "m"}, Data: map[string]string{"k": "v"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := reg.Cluster("c")
	if err != nil || c.Status().State != StateReady {
		t.Fatalf("cluster c: %v %+v", err, c)
	}
	for _, want := range []struct {
		r    resource
		key  string
		kind string
	}{{resPods, "ns/p", ""}, {resSecrets, "ns/s", "Secret"}, {resConfigMaps, "ns/m", "ConfigMap"}} {
		obj, ok, _ := c.caches.store(want.r).GetByKey(want.key)
		if !ok {
			t.Errorf("%s %s not cached", want.r, want.key)
			continue
		}
		m, _ := metaOf(obj)
		if len(m.GetManagedFields()) > 0 || m.GetAnnotations()[LastAppliedAnnotation] != "" {
			t.Errorf("%s %s kept managedFields or last-applied: %+v", want.r, want.key, obj)
		}
		if want.kind != "" {
			if p, ok := obj.(*metav1.PartialObjectMetadata); !ok || p.Kind != want.kind {
				t.Errorf("%s %s cached as %T, want metadata of a %s", want.r, want.key, obj, want.kind)
			}
		}
	}
	if _, err := NewStaticRegistry(map[string][]runtime.Object{"c": {&corev1.ServiceAccount{}}}); err == nil || !strings.Contains(err.Error(), "not a cached kind") {
		t.Errorf("a ServiceAccount: %v, want refused", err)
	}
}
