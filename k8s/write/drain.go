package write

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	policyv1client "k8s.io/client-go/kubernetes/typed/policy/v1"

	"github.com/clustergraph/clustergraph/k8s"
)

// DrainOutcome is what drain did to one pod.
type DrainOutcome string

// Drain outcomes.
const (
	// Evicted: the eviction was accepted and the pod is gone.
	Evicted DrainOutcome = "EVICTED"
	// Skipped: DaemonSet and mirror pods stay, as kubectl drain leaves them.
	Skipped DrainOutcome = "SKIPPED"
	// Failed: the eviction was refused until the timeout (a
	// PodDisruptionBudget, say) or the pod did not go in time.
	Failed DrainOutcome = "FAILED"
)

// DrainResult is one pod's outcome.
type DrainResult struct {
	Namespace, Pod string
	Outcome        DrainOutcome
	Message        string
}

// Drain cordons a node and evicts its pods as the context's subject,
// honouring PodDisruptionBudgets (a refused eviction is retried until the
// timeout), leaving DaemonSet and mirror pods, and waiting for evicted pods
// to be gone. Pods are evicted concurrently.
// It returns the cordoned node and each pod's outcome.
func Drain(ctx context.Context, c *k8s.Cluster, node string, timeout time.Duration, grace *int64) (*unstructured.Unstructured, []DrainResult, error) {
	cordoned, err := Cordon(ctx, c, node, true)
	if err != nil {
		return nil, nil, err
	}
	client, err := c.ClientFor(ctx)
	if err != nil {
		return nil, nil, err
	}
	pods, err := client.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("spec.nodeName", node).String()})
	if err != nil {
		return nil, nil, c.APIError(err, "pods of node "+node)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	results := make([]DrainResult, len(pods.Items))
	var wg sync.WaitGroup
	for i := range pods.Items {
		p := &pods.Items[i]
		results[i] = DrainResult{Namespace: p.Namespace, Pod: p.Name}
		if why := keep(p); why != "" {
			results[i].Outcome, results[i].Message = Skipped, why
			continue
		}
		wg.Go(func() {
			results[i].Outcome, results[i].Message = evict(ctx, c, client.PolicyV1(), client.CoreV1(), p, grace)
		})
	}
	wg.Wait()
	return cordoned, results, nil
}

// keep says why drain leaves a pod, or "".
func keep(p *corev1.Pod) string {
	if _, mirror := p.Annotations[corev1.MirrorPodAnnotationKey]; mirror {
		return "mirror pod"
	}
	if ref := metav1.GetControllerOf(p); ref != nil && ref.Kind == "DaemonSet" {
		return "DaemonSet pod"
	}
	if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return "already terminated"
	}
	return ""
}

// evict evicts one pod, retrying while a PodDisruptionBudget refuses, and
// waits until it is gone.
func evict(ctx context.Context, c *k8s.Cluster, policy policyv1client.PolicyV1Interface, core corev1client.CoreV1Interface, p *corev1.Pod, grace *int64) (DrainOutcome, string) {
	ev := &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace}}
	if grace != nil {
		ev.DeleteOptions = &metav1.DeleteOptions{GracePeriodSeconds: grace}
	}
	for {
		err := policy.Evictions(p.Namespace).Evict(ctx, ev)
		switch {
		case err == nil, apierrors.IsNotFound(err):
		case apierrors.IsTooManyRequests(err):
			// A disruption budget says not now: try again until the timeout.
			select {
			case <-ctx.Done():
				return Failed, "eviction refused until the timeout: " + err.Error()
			case <-time.After(time.Second):
				continue
			}
		default:
			return Failed, err.Error()
		}
		break
	}
	for {
		cur, err := core.Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) || (err == nil && cur.UID != p.UID) {
			return Evicted, ""
		}
		select {
		case <-ctx.Done():
			return Failed, "evicted, but still there at the timeout"
		case <-time.After(500 * time.Millisecond):
		}
	}
}
