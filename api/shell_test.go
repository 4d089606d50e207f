package api_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/clustergraph/clustergraph/api"
	"github.com/clustergraph/clustergraph/caller"
	"github.com/clustergraph/clustergraph/internal/testenv"
	k8sstream "github.com/clustergraph/clustergraph/k8s/stream"
	"github.com/clustergraph/clustergraph/terminal"
)

// TestClusterShell: a cluster shell runs in a pod clustergraph starts in
// the configured namespace; kubectl's kubeconfig there reaches the
// apiserver only as the caller (smuggled impersonation headers included),
// and pod, Secret and token are gone when the session ends.
func TestClusterShell(t *testing.T) {
	cs := testenv.Clusters(t)
	c := cs[0]
	const shellNS = "cg-shell"
	makeNamespace(t, c, shellNS)
	user := makeUser(t, cs[:1], "cg-shell-user", func(cl testenv.Cluster, u string) {
		roleBinding(t, cl, "shop", "cg-shell-user", "ClusterRole", "view", u)
	})
	shell := &terminal.ShellConfig{Namespace: shellNS, Image: "registry.k8s.io/kubectl:v1.37.2"}
	s := startServer(t, serverOpts{kubeconfigs: []string{c.Kubeconfig}, waitReady: true, auth: true,
		configHook: func(cfg *api.Config) { cfg.Shell = shell }})
	shell.ProxyURL = s.URL

	// A shell needs a right of its own (create on clustershells in the
	// shell namespace): view in shop is not enough.
	shellQuery := `subscription { terminal: clusterShell(cluster: "` + c.Context + `", cols: 120, rows: 40) { session type data exitCode error } }`
	if code := subscribeWS(t, s, user.token, shellQuery, nil).errorCode(); code != "FORBIDDEN" {
		t.Errorf("a shell without the shell right: %q, want FORBIDDEN", code)
	}
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "cg-shell-user", Namespace: shellNS}, Rules: []rbacv1.PolicyRule{
		{Verbs: []string{"create"}, APIGroups: []string{terminal.ShellResource.Group}, Resources: []string{terminal.ShellResource.Resource}},
	}}
	if _, err := c.Client.RbacV1().Roles(shellNS).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	roleBinding(t, c, shellNS, "cg-shell-user", "Role", "cg-shell-user", user.user)
	eventually(t, 10*time.Second, "the shell right cached", func() bool {
		cl, _ := s.Registry.Cluster(c.Context)
		return cl.AccessFor(&caller.Subject{User: user.user, Groups: user.groups, Identity: c.Context}).Allows("create", terminal.ShellResource, shellNS, "")
	})
	st := subscribeWS(t, s, user.token, shellQuery, nil)
	started, ok := st.nextFrame()
	if !ok || started.Type != "STARTED" || started.Session == "" {
		t.Fatalf("first frame %+v", started)
	}
	pods, err := c.Client.CoreV1().Pods(shellNS).List(ctx, metav1.ListOptions{LabelSelector: k8sstream.ShellLabel})
	if err != nil || len(pods.Items) != 1 {
		t.Fatalf("shell pods: %v %v", pods, err)
	}
	pod := pods.Items[0]
	if pod.Spec.AutomountServiceAccountToken == nil || *pod.Spec.AutomountServiceAccountToken || pod.Spec.Containers[0].Image != shell.Image {
		t.Errorf("shell pod spec %+v: want no service-account token and the configured image", pod.Spec)
	}
	secret, err := c.Client.CoreV1().Secrets(shellNS).Get(ctx, pod.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := secret.Data["kubeconfig"]
	// Nothing anyone may read of the pod reveals its proxy token.
	_, tail, _ := strings.Cut(string(kubeconfig), "/shell-proxy/")
	token, _, _ := strings.Cut(tail, "\n")
	token = strings.Trim(strings.TrimSpace(token), `"'`)
	if len(token) < 32 {
		t.Fatalf("no proxy token in the shell's kubeconfig: %s", kubeconfig)
	}
	watchFor(token)
	podText := pod.Name + fmt.Sprint(pod.Labels, pod.Annotations)
	for i := 0; i+8 <= len(token); i += 4 {
		if strings.Contains(podText, token[i:i+8]) {
			t.Fatalf("the shell pod's name or labels carry part of its token: %s", podText)
		}
	}

	// What kubectl in the pod can do: exactly what the caller may.
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for name, impersonate := range map[string]rest.ImpersonationConfig{"plain": {}, "smuggling Impersonate-User": {UserName: "system:admin", Groups: []string{"system:masters"}}} {
		cfg := rest.CopyConfig(cfg)
		cfg.Impersonate = impersonate
		cl := kubernetes.NewForConfigOrDie(cfg)
		who, err := cl.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
		if err != nil || who.Status.UserInfo.Username != user.user {
			t.Errorf("%s: the shell's kubeconfig is %+v (%v), want %s", name, who, err, user.user)
		}
		if _, err := cl.CoreV1().Pods("shop").List(ctx, metav1.ListOptions{}); err != nil {
			t.Errorf("%s: listing pods in shop (the caller may): %v", name, err)
		}
		if _, err := cl.CoreV1().Pods("ops").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("%s: listing pods in ops (the caller may not): %v, want Forbidden", name, err)
		}
		if _, err := cl.CoreV1().Secrets(shellNS).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("%s: listing the shell namespace's secrets: %v, want Forbidden (never clustergraph's rights)", name, err)
		}
	}

	// kubectl typed into the shell (kwok runs exec'd commands on this
	// machine, so the testbed's kubectl with the pod's kubeconfig stands in
	// for the image's).
	file := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(file, kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	input := `mutation($s: ID!, $d: String!) { terminalInput(session: $s, data: $d) }`
	// exit goes in once the answer is out: kwok runs the shell under a
	// local pty and may stop reading it when the shell exits, before what
	// the shell wrote last (with "; exit" on the same line, under load, the
	// answer was lost on kwok's side).
	st.send(input, map[string]any{"s": started.Session,
		"d": testenv.KubectlPath(t) + " --kubeconfig " + file + " auth whoami -o jsonpath='{.status.userInfo.username}'; echo\n"})
	var out strings.Builder
	exited := false
	for !strings.Contains(out.String(), user.user) {
		f, ok := st.nextFrame()
		if !ok || f.Type == "EXIT" {
			t.Fatalf("the session ended (%+v, %v) before kubectl auth whoami printed %s; output %q", f, ok, user.user, out.String())
		}
		if f.Data != nil {
			out.WriteString(*f.Data)
		}
	}
	st.send(input, map[string]any{"s": started.Session, "d": "exit\n"})
	for !exited {
		f, ok := st.nextFrame()
		if !ok {
			t.Fatalf("stream ended without EXIT after exit; output %q", out.String())
		}
		exited = f.Type == "EXIT"
	}

	// Gone with the session: the pod, its Secret and the token.
	eventually(t, 30*time.Second, "the shell pod and secret deleted", func() bool {
		_, perr := c.Client.CoreV1().Pods(shellNS).Get(ctx, pod.Name, metav1.GetOptions{})
		_, serr := c.Client.CoreV1().Secrets(shellNS).Get(ctx, pod.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(perr) && apierrors.IsNotFound(serr) || apierrors.IsNotFound(perr) && serr == nil && isTerminating(c, shellNS, pod.Name)
	})
	cl := kubernetes.NewForConfigOrDie(cfg)
	if _, err := cl.CoreV1().Pods("shop").List(ctx, metav1.ListOptions{}); !apierrors.IsUnauthorized(err) {
		t.Errorf("the token after the session: %v, want Unauthorized", err)
	}

	// A server without a shell namespace says so.
	plain := startServer(t, serverOpts{kubeconfigs: []string{c.Kubeconfig}, waitReady: true, auth: true})
	if code := subscribeWS(t, plain, user.token, `subscription { clusterShell(cluster: "`+c.Context+`") { type } }`, nil).errorCode(); code != "UNAVAILABLE" {
		t.Errorf("clusterShell without configuration: %q, want UNAVAILABLE", code)
	}
}

// isTerminating reports whether a Secret waits for the garbage collector.
func isTerminating(c testenv.Cluster, ns, name string) bool {
	s, err := c.Client.CoreV1().Secrets(ns).Get(context.Background(), name, metav1.GetOptions{})
	return err == nil && s.DeletionTimestamp != nil
}
