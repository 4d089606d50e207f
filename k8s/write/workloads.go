package write

import (
	"context"
	"fmt"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/clustergraph/clustergraph/errkind"
	"github.com/clustergraph/clustergraph/k8s"
)

// revisionAnnotation is where the deployment controller numbers a
// Deployment's ReplicaSets.
const revisionAnnotation = "deployment.kubernetes.io/revision"

// Rollback returns a Deployment to the pod template of one of its earlier
// revisions (0: the one before the current), as kubectl rollout undo does.
func Rollback(ctx context.Context, c *k8s.Cluster, id k8s.ObjectID, revision int64) (*unstructured.Unstructured, error) {
	if id.GVK != k8s.GVKDeployment {
		return nil, errkind.BadInputf("only Deployments roll back; this is a %s", id.GVK.Kind)
	}
	client, err := c.ClientFor(ctx)
	if err != nil {
		return nil, err
	}
	d, err := client.AppsV1().Deployments(id.Namespace).Get(ctx, id.Name, metav1.GetOptions{})
	if err != nil {
		return nil, c.APIError(err, "Deployment "+id.Name)
	}
	rss, err := client.AppsV1().ReplicaSets(id.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, c.APIError(err, "ReplicaSets of "+id.Name)
	}
	current, _ := strconv.ParseInt(d.Annotations[revisionAnnotation], 10, 64)
	var target *appsv1.ReplicaSet
	var best int64
	for i := range rss.Items {
		rs := &rss.Items[i]
		if ref := metav1.GetControllerOf(rs); ref == nil || ref.UID != d.UID {
			continue
		}
		rev, _ := strconv.ParseInt(rs.Annotations[revisionAnnotation], 10, 64)
		switch {
		case revision > 0 && rev == revision:
			target = rs
		case revision == 0 && rev < current && rev > best:
			target, best = rs, rev
		}
	}
	if target == nil {
		return nil, errkind.BadInputf("Deployment %s has no revision %d to roll back to", id.Name, revision)
	}
	tmpl := target.Spec.Template.DeepCopy()
	delete(tmpl.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	raw, err := runtime.DefaultUnstructuredConverter.ToUnstructured(tmpl)
	if err != nil {
		return nil, err
	}
	// Replace the whole template, as kubectl's undo does: a merge would keep
	// containers the old revision did not have. No version precondition:
	// the controller bumps the version with every status update.
	return Patch(ctx, c, id, PatchJSON, []any{map[string]any{"op": "replace", "path": "/spec/template", "value": raw}}, "")
}

// SuspendCronJob suspends or resumes a CronJob.
func SuspendCronJob(ctx context.Context, c *k8s.Cluster, id k8s.ObjectID, suspend bool) (*unstructured.Unstructured, error) {
	if id.GVK != k8s.GVKCronJob {
		return nil, errkind.BadInputf("only CronJobs suspend; this is a %s", id.GVK.Kind)
	}
	return Patch(ctx, c, id, PatchMerge, map[string]any{"spec": map[string]any{"suspend": suspend}}, "")
}

// TriggerCronJob starts a Job from a CronJob now, as kubectl create job
// --from=cronjob/NAME does (owned by the CronJob, marked manual).
func TriggerCronJob(ctx context.Context, c *k8s.Cluster, id k8s.ObjectID) (*unstructured.Unstructured, error) {
	if id.GVK != k8s.GVKCronJob {
		return nil, errkind.BadInputf("only CronJobs trigger; this is a %s", id.GVK.Kind)
	}
	client, err := c.ClientFor(ctx)
	if err != nil {
		return nil, err
	}
	cj, err := client.BatchV1().CronJobs(id.Namespace).Get(ctx, id.Name, metav1.GetOptions{})
	if err != nil {
		return nil, c.APIError(err, "CronJob "+id.Name)
	}
	name := fmt.Sprintf("%s-manual-%d", cj.Name, time.Now().Unix())
	if len(name) > 63 {
		name = name[len(name)-63:]
	}
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: cj.Namespace,
			Labels:          cj.Spec.JobTemplate.Labels,
			Annotations:     map[string]string{"cronjob.kubernetes.io/instantiate": "manual"},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(cj, k8s.GVKCronJob)},
		},
		Spec: cj.Spec.JobTemplate.Spec,
	}
	created, err := client.BatchV1().Jobs(cj.Namespace).Create(ctx, job, metav1.CreateOptions{FieldManager: FieldManager})
	if err != nil {
		return nil, c.APIError(err, "Job from CronJob "+id.Name)
	}
	return toUnstructured(created, k8s.GVKJob)
}
