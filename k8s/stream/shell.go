package stream

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/clustergraph/clustergraph/caller"
	"github.com/clustergraph/clustergraph/errkind"
	"github.com/clustergraph/clustergraph/k8s"
)

// ShellLabel marks the pods and Secrets of cluster shells.
const ShellLabel = "clustergraph.io/shell"

// ShellPod describes the pod of a cluster shell: kubectl in an image the
// operator chose, configured by a kubeconfig that reaches the apiserver
// only through clustergraph's shell proxy, as the caller.
type ShellPod struct {
	Namespace, Image string
	// Session names the shell; User is recorded on the pod for operators.
	Session, User string
	// Kubeconfig is mounted at /etc/clustergraph/kubeconfig.
	Kubeconfig []byte
	// MaxLength bounds the pod's life (activeDeadlineSeconds).
	MaxLength time.Duration
}

// StartShellPod creates the shell's pod and its kubeconfig Secret with
// clustergraph's own rights (the caller may have none in the shell
// namespace), waits until the pod runs, and returns its name and a function
// that deletes both. The pod carries no service-account token: the only
// credential in it is the kubeconfig, whose token acts as the caller and
// dies with the session.
func StartShellPod(ctx context.Context, c *k8s.Cluster, p ShellPod, timeout time.Duration) (string, func(), error) {
	name := "cg-shell-" + p.Session[:12]
	no := false
	deadline := int64(p.MaxLength.Seconds())
	labels := map[string]string{ShellLabel: p.Session}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: p.Namespace, Labels: labels,
			Annotations: map[string]string{"clustergraph.io/shell-user": p.User}},
		Spec: corev1.PodSpec{
			AutomountServiceAccountToken: &no,
			EnableServiceLinks:           &no,
			RestartPolicy:                corev1.RestartPolicyNever,
			ActiveDeadlineSeconds:        &deadline,
			Containers: []corev1.Container{{
				Name: "shell", Image: p.Image,
				Command:      []string{"/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 3600 & wait $!; done"},
				Env:          []corev1.EnvVar{{Name: "KUBECONFIG", Value: "/etc/clustergraph/kubeconfig"}},
				VolumeMounts: []corev1.VolumeMount{{Name: "kubeconfig", MountPath: "/etc/clustergraph", ReadOnly: true}},
				Stdin:        true, TTY: true,
			}},
			Volumes: []corev1.Volume{{Name: "kubeconfig", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: name}}}},
		},
	}
	pods := c.Typed.CoreV1().Pods(p.Namespace)
	created, err := pods.Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		return "", nil, c.APIError(err, "the shell pod")
	}
	cleanup := func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// The Secret is owned by the pod: the garbage collector removes it
		// too, and deleting it here as well does not wait for that.
		_ = pods.Delete(dctx, name, metav1.DeleteOptions{})
		_ = c.Typed.CoreV1().Secrets(p.Namespace).Delete(dctx, name, metav1.DeleteOptions{})
	}
	owner := metav1.OwnerReference{APIVersion: "v1", Kind: "Pod", Name: name, UID: created.UID}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: p.Namespace, Labels: labels, OwnerReferences: []metav1.OwnerReference{owner}},
		Data:       map[string][]byte{"kubeconfig": p.Kubeconfig},
	}
	if _, err := c.Typed.CoreV1().Secrets(p.Namespace).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		cleanup()
		return "", nil, c.APIError(err, "the shell pod")
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		got, err := pods.Get(wctx, name, metav1.GetOptions{})
		if err == nil && got.Status.Phase == corev1.PodRunning {
			return name, cleanup, nil
		}
		if err == nil && (got.Status.Phase == corev1.PodFailed || got.Status.Phase == corev1.PodSucceeded) {
			cleanup()
			return "", nil, &k8s.ClusterError{Cluster: c.Name, Err: errkind.Newf(errkind.Unavailable, "the shell pod %s/%s ended before it ran: %s", p.Namespace, name, got.Status.Message)}
		}
		if err != nil && !apierrors.IsNotFound(err) && wctx.Err() == nil {
			cleanup()
			return "", nil, c.APIError(err, "the shell pod")
		}
		select {
		case <-wctx.Done():
			cleanup()
			return "", nil, &k8s.ClusterError{Cluster: c.Name, Err: errkind.Newf(errkind.Unavailable, "the shell pod %s/%s did not start within %s", p.Namespace, name, timeout)}
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// ProxyTransport returns a transport that sends requests to the apiserver
// as s (impersonated, with the same guards as every other impersonated
// request), and the apiserver's base URL.
func ProxyTransport(c *k8s.Cluster, s *caller.Subject) (http.RoundTripper, *url.URL, error) {
	cfg, err := c.ConfigFor(caller.With(context.Background(), s))
	if err != nil {
		return nil, nil, err
	}
	rt, err := rest.TransportFor(cfg)
	if err != nil {
		return nil, nil, err
	}
	base, _, err := rest.DefaultServerUrlFor(cfg)
	if err != nil {
		return nil, nil, err
	}
	return rt, base, nil
}

// ShellKubeconfig is a kubeconfig for kubectl in a shell pod: the proxy at
// server, which the session's token (in server's path) authenticates.
func ShellKubeconfig(server, cluster string) []byte {
	return fmt.Appendf(nil, `apiVersion: v1
kind: Config
clusters:
- name: %[2]q
  cluster:
    server: %[1]q
contexts:
- name: %[2]q
  context:
    cluster: %[2]q
    user: shell
current-context: %[2]q
users:
- name: shell
  user: {}
`, server, cluster)
}
