package api_test

import (
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/clustergraph/clustergraph/internal/testenv"
	"github.com/clustergraph/clustergraph/k8s"
)

func podSpec(image string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "ops"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}}}
}

// TestWorkloadOperations: setImage on every built-in workload kind and a
// custom one (merge patch), scale of a custom kind through its scale
// subresource, rollback of a Deployment, and CronJob suspend, resume and
// trigger, each checked on the apiserver.
func TestWorkloadOperations(t *testing.T) {
	cs := testenv.Clusters(t)
	c := cs[1]
	ns := "workload-ops"
	makeNamespace(t, c, ns)
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "ops"}}
	one := int32(1)
	if _, err := c.Client.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "dep"}, Spec: appsv1.DeploymentSpec{Replicas: &one, Selector: sel, Template: podSpec("example/app:1")}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client.AppsV1().StatefulSets(ns).Create(ctx, &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "sts"}, Spec: appsv1.StatefulSetSpec{Replicas: &one, Selector: sel, Template: podSpec("example/app:1")}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client.AppsV1().DaemonSets(ns).Create(ctx, &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "ds"}, Spec: appsv1.DaemonSetSpec{Selector: sel, Template: podSpec("example/app:1")}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cj := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: "cj"}, Spec: batchv1.CronJobSpec{Schedule: "0 0 1 1 *",
		JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "job", Image: "example/job:1"}}}}}}}}
	if _, err := c.Client.BatchV1().CronJobs(ns).Create(ctx, cj, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	gvr := schema.GroupVersionResource{Group: "apps.tkestack.io", Version: "v1", Resource: "tapps"}
	tapps := testenv.CreateCRD(t, c, gvr, "TApp", true, testenv.WithScale)
	tapp := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "apps.tkestack.io/v1", "kind": "TApp",
		"metadata": map[string]any{"name": "tapp"},
		"spec": map[string]any{"replicas": int64(1), "template": map[string]any{"spec": map[string]any{"containers": []any{
			map[string]any{"name": "app", "image": "example/app:1"}, map[string]any{"name": "side", "image": "example/side:1"}}}}}}}
	if _, err := tapps.Namespace(ns).Create(ctx, tapp, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, serverOpts{kubeconfigs: []string{c.Kubeconfig}, waitReady: true})
	id := func(gvk schema.GroupVersionKind, name string) string {
		return k8s.ObjectID{Cluster: c.Context, GVK: gvk, Namespace: ns, Name: name}.Encode()
	}
	var ignored struct{}
	setImage := `mutation($id: ID!, $c: String!, $i: String!) { setImage(id: $id, container: $c, image: $i) { object { id } } }`
	// Wait for the Deployment's first revision before changing it.
	eventually(t, 30*time.Second, "revision 1", func() bool {
		d, err := c.Client.AppsV1().Deployments(ns).Get(ctx, "dep", metav1.GetOptions{})
		return err == nil && d.Annotations["deployment.kubernetes.io/revision"] == "1"
	})
	for _, w := range []struct {
		gvk  schema.GroupVersionKind
		name string
	}{{k8s.GVKDeployment, "dep"}, {k8s.GVKStatefulSet, "sts"}, {k8s.GVKDaemonSet, "ds"}} {
		s.query(t, setImage, map[string]any{"id": id(w.gvk, w.name), "c": "app", "i": "example/app:2"}, &ignored)
	}
	tappGVK := schema.GroupVersionKind{Group: "apps.tkestack.io", Version: "v1", Kind: "TApp"}
	s.query(t, setImage, map[string]any{"id": id(tappGVK, "tapp"), "c": "side", "i": "example/side:2"}, &ignored)
	s.query(t, `mutation($id: ID!) { scale(id: $id, replicas: 4) { object { id } } }`, map[string]any{"id": id(tappGVK, "tapp")}, &ignored)

	d, _ := c.Client.AppsV1().Deployments(ns).Get(ctx, "dep", metav1.GetOptions{})
	st, _ := c.Client.AppsV1().StatefulSets(ns).Get(ctx, "sts", metav1.GetOptions{})
	ds, _ := c.Client.AppsV1().DaemonSets(ns).Get(ctx, "ds", metav1.GetOptions{})
	for kind, img := range map[string]string{"Deployment": d.Spec.Template.Spec.Containers[0].Image, "StatefulSet": st.Spec.Template.Spec.Containers[0].Image, "DaemonSet": ds.Spec.Template.Spec.Containers[0].Image} {
		if img != "example/app:2" {
			t.Errorf("%s image %s after setImage", kind, img)
		}
	}
	got, err := tapps.Namespace(ns).Get(ctx, "tapp", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	containers, _, _ := unstructured.NestedSlice(got.Object, "spec", "template", "spec", "containers")
	replicas, _, _ := unstructured.NestedInt64(got.Object, "spec", "replicas")
	if len(containers) != 2 || containers[0].(map[string]any)["image"] != "example/app:1" || containers[1].(map[string]any)["image"] != "example/side:2" || replicas != 4 {
		t.Errorf("TApp after setImage and scale: containers %v replicas %d", containers, replicas)
	}

	// Roll the Deployment back to revision 1's template.
	eventually(t, 30*time.Second, "revision 2", func() bool {
		d, err := c.Client.AppsV1().Deployments(ns).Get(ctx, "dep", metav1.GetOptions{})
		return err == nil && d.Annotations["deployment.kubernetes.io/revision"] == "2"
	})
	s.query(t, `mutation($id: ID!) { rollback(id: $id) { object { id } } }`, map[string]any{"id": id(k8s.GVKDeployment, "dep")}, &ignored)
	d, _ = c.Client.AppsV1().Deployments(ns).Get(ctx, "dep", metav1.GetOptions{})
	if img := d.Spec.Template.Spec.Containers[0].Image; img != "example/app:1" {
		t.Errorf("image after rollback %s, want example/app:1", img)
	}
	if r := s.do(t, `mutation($id: ID!) { rollback(id: $id, revision: 99) { object { id } } }`, map[string]any{"id": id(k8s.GVKDeployment, "dep")}); len(r.Errors) == 0 || r.Errors[0].Extensions["code"] != "BAD_USER_INPUT" {
		t.Errorf("rollback to a missing revision: %+v", r.Errors)
	}

	// CronJob: suspend, resume, trigger.
	cjID := id(k8s.GVKCronJob, "cj")
	s.query(t, `mutation($id: ID!) { suspendCronJob(id: $id) { object { id } } }`, map[string]any{"id": cjID}, &ignored)
	if got, _ := c.Client.BatchV1().CronJobs(ns).Get(ctx, "cj", metav1.GetOptions{}); got.Spec.Suspend == nil || !*got.Spec.Suspend {
		t.Error("suspendCronJob did not suspend")
	}
	s.query(t, `mutation($id: ID!) { resumeCronJob(id: $id) { object { id } } }`, map[string]any{"id": cjID}, &ignored)
	if got, _ := c.Client.BatchV1().CronJobs(ns).Get(ctx, "cj", metav1.GetOptions{}); got.Spec.Suspend == nil || *got.Spec.Suspend {
		t.Error("resumeCronJob did not resume")
	}
	var trig struct {
		TriggerCronJob struct {
			Job struct{ Metadata struct{ Name string } }
		}
	}
	s.query(t, `mutation($id: ID!) { triggerCronJob(id: $id) { job { metadata { name } } } }`, map[string]any{"id": cjID}, &trig)
	job, err := c.Client.BatchV1().Jobs(ns).Get(ctx, trig.TriggerCronJob.Job.Metadata.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the triggered job: %v", err)
	}
	if ref := metav1.GetControllerOf(job); ref == nil || ref.Kind != "CronJob" || ref.Name != "cj" {
		t.Errorf("triggered job owner %+v, want the CronJob", ref)
	}
}
