package api_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clustergraph/clustergraph/internal/testenv"
)

// Objects in the test clusters: those the seed put there, and those a test
// makes for itself.

// seedNamespaces are the namespaces tools/testbed/seed.sh fills.
var seedNamespaces = map[string]bool{"shop": true, "data": true, "ops": true}

// makeNamespace creates a namespace (one already there will do) and deletes
// it when the test ends.
func makeNamespace(t testing.TB, c testenv.Cluster, name string) {
	t.Helper()
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Client.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{}) })
}

// makePod creates a pod of one container, labelled app=watch.
func makePod(t testing.TB, c testenv.Cluster, ns, name string) {
	t.Helper()
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": "watch"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example/app:1"}}}}
	if _, err := c.Client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// deletePod deletes a pod at once (grace period 0).
func deletePod(t *testing.T, c testenv.Cluster, ns, name string) {
	t.Helper()
	if err := c.Client.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(0))}); err != nil {
		t.Fatal(err)
	}
}
