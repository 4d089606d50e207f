package api_test

import (
	"os"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clustergraph/clustergraph/internal/testenv"
	"github.com/clustergraph/clustergraph/k8s"
)

// memberCredential makes a service account in c that may read everything
// and returns a token of it with c's server and CA: what a platform team
// puts in a cluster Secret.
func memberCredential(t *testing.T, c testenv.Cluster, name string) (server string, ca []byte, token func() string) {
	t.Helper()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: accessNS}}
	if _, err := c.Client.CoreV1().ServiceAccounts(accessNS).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Client.CoreV1().ServiceAccounts(accessNS).Delete(ctx, name, metav1.DeleteOptions{}) })
	clusterBinding(t, c, name, "cluster-admin", "system:serviceaccount:"+accessNS+":"+name)
	ca = c.Config.CAData
	if len(ca) == 0 && c.Config.CAFile != "" {
		b, err := os.ReadFile(c.Config.CAFile)
		if err != nil {
			t.Fatal(err)
		}
		ca = b
	}
	token = func() string {
		tr, err := c.Client.CoreV1().ServiceAccounts(accessNS).CreateToken(ctx, name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return tr.Status.Token
	}
	return c.Config.Host, ca, token
}

// TestClusterSecrets: clusters registered as Secrets in the identity
// cluster are added, replaced when their token rotates, and removed with
// the Secret, without a restart; a malformed Secret and one whose name is
// taken show among the clusters with their error and stop nothing else.
func TestClusterSecrets(t *testing.T) {
	cs := testenv.Clusters(t)
	id, member := cs[0], cs[1]
	ns := "cg-cluster-secrets"
	makeNamespace(t, id, ns)
	secrets := id.Client.CoreV1().Secrets(ns)
	server, ca, token := memberCredential(t, member, "cg-member")
	put := func(name string, labels map[string]string, data map[string][]byte) {
		t.Helper()
		labels[k8s.ClusterSecretLabel] = "true"
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels}, Data: data}
		if old, err := secrets.Get(ctx, name, metav1.GetOptions{}); err == nil {
			s.ResourceVersion = old.ResourceVersion
			if _, err := secrets.Update(ctx, s, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			return
		}
		if _, err := secrets.Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	put("member-b", map[string]string{k8s.ClusterNameLabel: "member"}, map[string][]byte{"server": []byte(server), "ca.crt": ca, "token": []byte(token())})

	s := startServer(t, serverOpts{kubeconfigs: []string{id.Kubeconfig}, waitReady: true,
		clusterSecrets: &k8s.ClusterSecrets{Namespace: ns}})
	type clusterState struct{ State, LastError, Server string }
	clusters := func() map[string]clusterState {
		var out struct {
			Clusters []struct {
				Name, Server string
				Status       struct {
					State     string
					LastError *string
				}
			}
		}
		s.query(t, `{ clusters { name server status { state lastError } } }`, nil, &out)
		got := map[string]clusterState{}
		for _, c := range out.Clusters {
			got[c.Name] = clusterState{c.Status.State, deref(c.Status.LastError), c.Server}
		}
		return got
	}
	eventually(t, time.Minute, "the Secret's cluster READY", func() bool { return clusters()["member"].State == "READY" })
	var pods struct{ Pods struct{ TotalCount int } }
	s.query(t, `{ pods(clusters: ["member"]) { totalCount } }`, nil, &pods)
	want, err := member.Client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil || pods.Pods.TotalCount != len(want.Items) || len(want.Items) == 0 {
		t.Errorf("member's pods: %d, want the apiserver's %d (%v)", pods.Pods.TotalCount, len(want.Items), err)
	}

	// A malformed Secret and a taken name: shown with their errors, the
	// member stays served.
	put("broken", map[string]string{}, map[string][]byte{"kubeconfig": []byte("not: [a kubeconfig")})
	put("dup", map[string]string{k8s.ClusterNameLabel: id.Context}, map[string][]byte{"server": []byte(server), "ca.crt": ca, "token": []byte("x")})
	put("exec", map[string]string{}, map[string][]byte{"kubeconfig": []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1, command: /bin/sh}}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`)})
	eventually(t, 30*time.Second, "the bad Secrets to show", func() bool {
		got := clusters()
		return got["broken"].State == "UNREACHABLE" && got["secret:"+ns+"/dup"].State == "UNREACHABLE" && got["exec"].State == "UNREACHABLE"
	})
	got := clusters()
	for name, wantErr := range map[string]string{"broken": "kubeconfig", "secret:" + ns + "/dup": "already taken", "exec": "exec and auth-provider credentials are not supported"} {
		if !strings.Contains(got[name].LastError, wantErr) || !strings.Contains(got[name].LastError, "secret "+ns+"/") {
			t.Errorf("%s: %+v, want an error naming the Secret and %q", name, got[name], wantErr)
		}
	}
	if got[id.Context].State != "READY" || got["member"].State != "READY" {
		t.Errorf("the bad Secrets disturbed the others: %+v", got)
	}
	r := s.do(t, `{ pods(clusters: ["broken"]) { totalCount } }`, nil)
	if !hasClusterError(r.Errors, "broken", "UNAVAILABLE") {
		t.Errorf("a read of the broken cluster: %+v, want UNAVAILABLE naming it", r.Errors)
	}

	// A rotated token replaces the cluster; it is READY again.
	before, err := s.Registry.Cluster("member")
	if err != nil {
		t.Fatal(err)
	}
	put("member-b", map[string]string{k8s.ClusterNameLabel: "member"}, map[string][]byte{"server": []byte(server), "ca.crt": ca, "token": []byte(token())})
	eventually(t, time.Minute, "the rotated cluster READY", func() bool {
		c, err := s.Registry.Cluster("member")
		return err == nil && c != before && c.Status().State == k8s.StateReady
	})

	// Deleting the Secret removes the cluster.
	if err := secrets.Delete(ctx, "member-b", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the deleted Secret's cluster gone", func() bool { _, ok := clusters()["member"]; return !ok })
}
