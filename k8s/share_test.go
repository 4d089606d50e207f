package k8s

import (
	"reflect"
	"strconv"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiresource "k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func testPod(name string, cpu, mem string, seconds int64) *corev1.Pod {
	req := corev1.ResourceList{corev1.ResourceCPU: apiresource.MustParse(cpu), corev1.ResourceMemory: apiresource.MustParse(mem)}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", Labels: map[string]string{"app": "web", "pod-template-hash": "5f6"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-5f6", UID: "u-1"}}},
		Spec: corev1.PodSpec{NodeName: "node-1", Containers: []corev1.Container{{Name: "web", Image: "example/web:1",
			Resources: corev1.ResourceRequirements{Requests: req, Limits: req}}},
			Tolerations: []corev1.Toleration{{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: &seconds}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, HostIP: "10.0.0.1"},
	}
}

// TestSharePodKeepsValues: sharing changes no value of a pod, shares the
// parts that are equal between two pods, and keeps apart those that
// differ (a quantity's value or format, a toleration's seconds).
func TestSharePodKeepsValues(t *testing.T) {
	a, b := testPod("web-1", "100m", "128Mi", 300), testPod("web-2", "100m", "128Mi", 300)
	want := a.DeepCopy()
	sharePod(a)
	sharePod(b)
	if !reflect.DeepEqual(a, want) {
		t.Fatalf("sharing changed the pod:\n%+v\nwant\n%+v", a, want)
	}
	same := func(what string, x, y any) {
		t.Helper()
		if reflect.ValueOf(x).UnsafePointer() != reflect.ValueOf(y).UnsafePointer() {
			t.Errorf("%s not shared", what)
		}
	}
	same("labels", a.Labels, b.Labels)
	same("requests", a.Spec.Containers[0].Resources.Requests, b.Spec.Containers[0].Resources.Requests)
	same("requests and limits", a.Spec.Containers[0].Resources.Requests, b.Spec.Containers[0].Resources.Limits)
	same("tolerations", a.Spec.Tolerations, b.Spec.Tolerations)

	for _, c := range []*corev1.Pod{
		testPod("web-3", "200m", "128Mi", 300), // another value
		testPod("web-4", "100m", "128Mi", 60),  // other seconds
	} {
		cp := c.DeepCopy()
		sharePod(c)
		if !reflect.DeepEqual(c, cp) {
			t.Errorf("%s changed by sharing", c.Name)
		}
	}
	c := testPod("web-3", "200m", "128Mi", 60)
	sharePod(c)
	if q := c.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU]; q.String() != "200m" {
		t.Errorf("web-3 cpu %s, want its own 200m", q.String())
	}
	if *c.Spec.Tolerations[0].TolerationSeconds != 60 {
		t.Errorf("web-3 toleration seconds %d, want its own 60", *c.Spec.Tolerations[0].TolerationSeconds)
	}
	// Same value, another format: "1Gi" and "1073741824" print differently.
	d, e := testPod("d", "1", "1Gi", 1), testPod("e", "1", "1073741824", 1)
	sharePod(d)
	sharePod(e)
	if qd, qe := d.Spec.Containers[0].Resources.Requests[corev1.ResourceMemory], e.Spec.Containers[0].Resources.Requests[corev1.ResourceMemory]; qd.String() != "1Gi" || qe.String() != "1073741824" {
		t.Errorf("formats mixed: %s, %s", qd.String(), qe.String())
	}
}

// TestSharedTableStartsAfreshWhenFull: a full table is replaced, and what
// it handed out stays valid.
func TestSharedTableStartsAfreshWhenFull(t *testing.T) {
	var tb sharedTable[int]
	for i := range maxShared + 10 {
		if got := tb.get(strconv.Itoa(i), i); got != i {
			t.Fatalf("get %d = %d", i, got)
		}
	}
	if len(tb.vals) > maxShared {
		t.Errorf("table holds %d values, bound %d", len(tb.vals), maxShared)
	}
}

func BenchmarkSharePod(b *testing.B) {
	p := testPod("web-1", "100m", "128Mi", 300)
	b.ReportAllocs()
	for b.Loop() {
		sharePod(p)
	}
}

// TestStripSharesTemplates: a Deployment's pod template and its pods share
// their resource lists once both went through the cache transform.
func TestStripSharesTemplates(t *testing.T) {
	p := testPod("web-9", "300m", "64Mi", 30)
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"},
		Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: *testPod("", "300m", "64Mi", 30).Spec.DeepCopy()}}}
	want := d.DeepCopy()
	if _, err := stripForCache(p); err != nil {
		t.Fatal(err)
	}
	if _, err := stripForCache(d); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("the transform changed the deployment")
	}
	if reflect.ValueOf(p.Spec.Containers[0].Resources.Requests).UnsafePointer() != reflect.ValueOf(d.Spec.Template.Spec.Containers[0].Resources.Requests).UnsafePointer() {
		t.Errorf("pod and template requests not shared")
	}
}
