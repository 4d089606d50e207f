package api_test

import (
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/clustergraph/clustergraph/internal/testenv"
	"github.com/clustergraph/clustergraph/k8s"
)

func deployment(name string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example/app:1"}}}},
		},
	}
}

// TestDrain drains a node: free pods are evicted, a pod whose budget allows
// no disruption is reported FAILED after the timeout, DaemonSet pods stay.
func TestDrain(t *testing.T) {
	c := testenv.StartCluster(t, "cg-drain", 1)
	nodes, err := c.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	node := nodes.Items[0].Name
	for _, d := range []*appsv1.Deployment{deployment("free", 2), deployment("guarded", 1)} {
		if _, err := c.Client.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	zero := intstr.FromInt32(0)
	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "guarded"},
		Spec: policyv1.PodDisruptionBudgetSpec{MaxUnavailable: &zero, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "guarded"}}}}
	if _, err := c.Client.PolicyV1().PodDisruptionBudgets("default").Create(ctx, pdb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "agent"}, Spec: appsv1.DaemonSetSpec{
		Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "agent"}},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "agent"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "agent", Image: "example/agent:1"}}}},
	}}
	if _, err := c.Client.AppsV1().DaemonSets("default").Create(ctx, ds, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, serverOpts{kubeconfigs: []string{c.Kubeconfig}, waitReady: true})
	eventually(t, time.Minute, "4 running pods and a settled budget", func() bool {
		var out struct{ Pods struct{ TotalCount int } }
		s.query(t, `{ pods(filter: {status: "Running"}) { totalCount } }`, nil, &out)
		p, err := c.Client.PolicyV1().PodDisruptionBudgets("default").Get(ctx, "guarded", metav1.GetOptions{})
		return out.Pods.TotalCount == 4 && err == nil && p.Status.ObservedGeneration == p.Generation && p.Status.ExpectedPods == 1
	})
	var out struct {
		Drain struct {
			Node     struct{ Unschedulable bool }
			Complete bool
			Pods     []struct{ Pod, Outcome string }
		}
	}
	s.query(t, `mutation($id: ID!) { drain(id: $id, timeoutSeconds: 5) { node { unschedulable } complete pods { pod outcome } } }`,
		map[string]any{"id": k8s.ObjectID{Cluster: c.Context, GVK: k8s.GVKNode, Name: node}.Encode()}, &out)
	outcomes := map[string]int{}
	for _, p := range out.Drain.Pods {
		outcomes[p.Outcome]++
	}
	if !out.Drain.Node.Unschedulable || out.Drain.Complete || outcomes["EVICTED"] != 2 || outcomes["FAILED"] != 1 || outcomes["SKIPPED"] != 1 {
		t.Errorf("drain = %+v, want the node cordoned, 2 evicted, 1 failed (budget), 1 skipped (DaemonSet)", out.Drain)
	}
}
