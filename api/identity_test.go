package api_test

import (
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clustergraph/clustergraph/internal/testenv"
)

// TestImpersonationCarriesIdentity: a write through clustergraph reaches
// the apiserver as the caller exactly as the identity cluster's
// TokenReview names them: user, UID and every extra attribute (a
// pod-bound service-account token carries its credential ID and its pod's
// name and UID), in the identity cluster and in another one. The
// apiserver itself says what it saw: a ValidatingAdmissionPolicy refuses
// the write with a message printing request.userInfo.uid and .extra.
// Before, impersonation dropped UID and Extra, and a scoped token acted
// with its scopes removed.
func TestImpersonationCarriesIdentity(t *testing.T) {
	cs := testenv.Clusters(t)
	a := cs[0]
	const ns, name = "cg-identity", "cg-identity"
	user := "system:serviceaccount:" + ns + ":" + name
	for _, c := range cs {
		// A namespace of an earlier run may still be terminating.
		eventually(t, 2*time.Minute, "namespace "+ns+" of an earlier run gone from "+c.Context, func() bool {
			n, err := c.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
			return apierrors.IsNotFound(err) || err == nil && n.DeletionTimestamp == nil
		})
		makeNamespace(t, c, ns)
		roleBinding(t, c, ns, name, "ClusterRole", "edit", user)
		echoPolicy(t, c, ns)
	}

	// A token bound to a pod of the service account, in the identity
	// cluster.
	if _, err := a.Client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	pod, err := a.Client.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{ServiceAccountName: name, Containers: []corev1.Container{{Name: "app", Image: "example/app:1"}}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = a.Client.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)})
	})
	tr, err := a.Client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	token := tr.Status.Token
	watchFor(token)

	// What the identity cluster says of the token is the oracle.
	review, err := a.Client.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token}}, metav1.CreateOptions{})
	if err != nil || !review.Status.Authenticated {
		t.Fatalf("token review: %+v %v", review.Status, err)
	}
	who := review.Status.User
	if who.Username != user || who.UID == "" || len(who.Extra["authentication.kubernetes.io/credential-id"]) == 0 ||
		!slices.Equal(who.Extra["authentication.kubernetes.io/pod-uid"], []string{string(pod.UID)}) {
		t.Fatalf("the apiserver gives the token no UID, credential ID or pod (%+v): the test proves nothing", who)
	}
	var want []string
	for k, v := range who.Extra {
		want = append(want, k+"="+strings.Join(v, ","))
	}
	sort.Strings(want)

	s := startServer(t, serverOpts{kubeconfigs: kubeconfigs(cs), waitReady: true, auth: true})
	as := s.as(token)
	manifest := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: probe\n  namespace: " + ns + "\ndata:\n  k: v\n"
	for _, c := range cs {
		var out applyOut
		as.query(t, applyMutation, map[string]any{"c": c.Context, "m": manifest}, &out)
		if out.Apply.Failed != 1 || out.Apply.Results[0].Error == nil {
			t.Fatalf("%s: apply %+v, want the policy's refusal", c.Context, out.Apply)
		}
		msg := out.Apply.Results[0].Error.Message
		_, seen, ok := strings.Cut(msg, "echo<")
		seen, _, closed := strings.Cut(seen, ">")
		if !ok || !closed {
			t.Fatalf("%s: the refusal is not the policy's: %s", c.Context, msg)
		}
		var gotExtra []string
		uid, extra, _ := strings.Cut(seen, " extra=")
		if extra != "" {
			gotExtra = strings.Split(extra, " ")
		}
		sort.Strings(gotExtra)
		if uid != "uid="+who.UID || !slices.Equal(gotExtra, want) {
			t.Errorf("%s: the apiserver saw %q; want uid=%s and extra %v", c.Context, seen, who.UID, want)
		}
	}
}

// echoPolicy installs a ValidatingAdmissionPolicy that refuses every
// ConfigMap named probe in ns, saying whom the apiserver saw ask: the UID
// and the extra attributes of request.userInfo. It returns once the
// apiserver enforces it.
func echoPolicy(t *testing.T, c testenv.Cluster, ns string) {
	t.Helper()
	denyingPolicy(t, c, "cg-echo-"+ns, ns, "configmaps", admissionregistrationv1.Validation{
		Expression: `object.metadata.name != 'probe'`,
		MessageExpression: `'echo<uid=' + (has(request.userInfo.uid) ? request.userInfo.uid : '') + ' extra=' +
			(has(request.userInfo.extra) ? request.userInfo.extra.map(k, k + '=' + request.userInfo.extra[k].join(',')).join(' ') : '') + '>'`,
	})
	probe := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: ns}}
	eventually(t, time.Minute, "the echo policy enforced in "+c.Context, func() bool {
		_, err := c.Client.CoreV1().ConfigMaps(ns).Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err != nil && strings.Contains(err.Error(), "echo<")
	})
}
