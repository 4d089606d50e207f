package api_test

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/clustergraph/clustergraph/internal/testenv"
)

// Readiness per kind: a cluster where clustergraph's own account may not
// list one kind is served without it, and an install that does not cache
// Secrets needs no right on them.

// readAllBut returns RBAC rules that let an account get, list and watch
// every resource of every group the cluster serves except the resources
// named in but (group → resources), which are left out. RBAC cannot deny,
// so the groups that hold a left-out resource list their other resources
// one by one.
func readAllBut(t *testing.T, c testenv.Cluster, but map[string][]string) []rbacv1.PolicyRule {
	t.Helper()
	read := []string{"get", "list", "watch"}
	rules := []rbacv1.PolicyRule{{NonResourceURLs: []string{"*"}, Verbs: []string{"get"}}}
	// A group that failed discovery (an aggregated API down) still comes
	// back among the groups, and gets its "*" rule.
	groups, resources, err := c.Client.Discovery().ServerGroupsAndResources()
	if len(groups) == 0 {
		t.Fatal(err)
	}
	for _, g := range groups {
		skip, partial := but[g.Name]
		if !partial {
			rules = append(rules, rbacv1.PolicyRule{APIGroups: []string{g.Name}, Resources: []string{"*"}, Verbs: read})
			continue
		}
		var names []string
		for _, list := range resources {
			if group, _, ok := strings.Cut(list.GroupVersion, "/"); ok && group != g.Name || !ok && g.Name != "" {
				continue
			}
			for _, r := range list.APIResources {
				base, _, _ := strings.Cut(r.Name, "/")
				if !slices.Contains(skip, base) && !slices.Contains(names, r.Name) {
					names = append(names, r.Name)
				}
			}
		}
		rules = append(rules, rbacv1.PolicyRule{APIGroups: []string{g.Name}, Resources: names, Verbs: read})
	}
	return rules
}

// accountKubeconfig makes service account name in c's default namespace,
// gives it rules cluster-wide, and writes a kubeconfig that reaches c as
// that account under c's own context name (the cluster keeps its name).
func accountKubeconfig(t *testing.T, c testenv.Cluster, name string, rules []rbacv1.PolicyRule) string {
	t.Helper()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: accessNS}}
	if _, err := c.Client.CoreV1().ServiceAccounts(accessNS).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Client.CoreV1().ServiceAccounts(accessNS).Delete(ctx, name, metav1.DeleteOptions{}) })
	setClusterRole(t, c, name, rules)
	clusterBinding(t, c, name, name, "system:serviceaccount:"+accessNS+":"+name)

	tr, err := c.Client.CoreV1().ServiceAccounts(accessNS).CreateToken(ctx, name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.LoadFromFile(c.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	kctx := cfg.Contexts[c.Context]
	auth := cfg.AuthInfos[kctx.AuthInfo].DeepCopy()
	auth.ClientCertificate, auth.ClientKey, auth.ClientCertificateData, auth.ClientKeyData = "", "", nil, nil
	auth.Token = tr.Status.Token
	cfg.AuthInfos[kctx.AuthInfo] = auth
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// setClusterRole creates or replaces ClusterRole name with rules until the
// test ends.
func setClusterRole(t *testing.T, c testenv.Cluster, name string, rules []rbacv1.PolicyRule) {
	t.Helper()
	roles := c.Client.RbacV1().ClusterRoles()
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules}
	if old, err := roles.Get(ctx, name, metav1.GetOptions{}); err == nil {
		role.ResourceVersion = old.ResourceVersion
		if _, err := roles.Update(ctx, role, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		return
	}
	if _, err := roles.Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = roles.Delete(ctx, name, metav1.DeleteOptions{}) })
}

// clusterKinds is a cluster's state and per-kind states, as served.
type clusterKinds struct {
	State string
	Kinds map[string]struct{ State, Error string }
}

func (s *server) clusterKinds(t *testing.T, name string) clusterKinds {
	t.Helper()
	var out struct {
		Cluster struct {
			Status struct {
				State string
				Kinds []struct{ Resource, State, Error string }
			}
		}
	}
	s.query(t, `query($c: String!) { cluster(name: $c) { status { state kinds { resource state error } } } }`, map[string]any{"c": name}, &out)
	ck := clusterKinds{State: out.Cluster.Status.State, Kinds: map[string]struct{ State, Error string }{}}
	for _, k := range out.Cluster.Status.Kinds {
		ck.Kinds[k.Resource] = struct{ State, Error string }{k.State, k.Error}
	}
	return ck
}

// TestPartialCluster: clustergraph's account may read everything but
// CronJobs. The cluster is served as PARTIAL with cronjobs FORBIDDEN,
// /readyz is 200, a workloads list answers the other five kinds with one
// error for the cluster that names cronjobs, and granting the right later
// makes the cluster READY without a restart.
func TestPartialCluster(t *testing.T) {
	c := testenv.Clusters(t)[0]
	kc := accountKubeconfig(t, c, "cg-partial", readAllBut(t, c, map[string][]string{"batch": {"cronjobs"}}))
	account := clientAs(t, kc)
	if _, err := account.BatchV1().CronJobs("").List(ctx, metav1.ListOptions{Limit: 1}); !apierrors.IsForbidden(err) {
		t.Fatalf("the account can list cronjobs (err %v): the test would prove nothing", err)
	}
	s := startServer(t, serverOpts{kubeconfigs: []string{kc}})

	eventually(t, time.Minute, "the cluster to be PARTIAL", func() bool { return s.clusterKinds(t, c.Context).State == "PARTIAL" })
	ck := s.clusterKinds(t, c.Context)
	if k := ck.Kinds["cronjobs"]; k.State != "FORBIDDEN" || !strings.Contains(k.Error, "forbidden") {
		t.Errorf("cronjobs: %+v, want FORBIDDEN with the apiserver's refusal", k)
	}
	for _, r := range []string{"pods", "deployments", "jobs", "secrets", "configmaps", "nodes", "namespaces"} {
		if k := ck.Kinds[r]; k.State != "READY" || k.Error != "" {
			t.Errorf("%s: %+v, want READY", r, k)
		}
	}

	resp, err := http.Get(s.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz: %d, want 200 with one kind forbidden", resp.StatusCode)
	}

	r := s.do(t, `{ workloads(first: 100) { totalCount nodes { kind } } }`, nil)
	var got struct {
		Workloads struct {
			TotalCount int
			Nodes      []struct{ Kind string }
		}
	}
	if err := jsonInto(r, &got); err != nil {
		t.Fatal(err)
	}
	if got.Workloads.TotalCount == 0 {
		t.Error("no workloads served from the partial cluster")
	}
	for _, n := range got.Workloads.Nodes {
		if n.Kind == "CRON_JOB" {
			t.Errorf("a CronJob served although none can be cached")
		}
	}
	if len(r.Errors) != 1 || !hasClusterError(r.Errors, c.Context, "UNAVAILABLE") || !strings.Contains(r.Errors[0].Message, "cronjobs") || !strings.Contains(r.Errors[0].Message, "grant it") {
		t.Errorf("errors %+v, want exactly one UNAVAILABLE for %s naming cronjobs and the missing grant", r.Errors, c.Context)
	}

	// The first list keeps being retried: once the right is granted the
	// kind syncs and the cluster is READY.
	setClusterRole(t, c, "cg-partial", readAllBut(t, c, nil))
	eventually(t, 90*time.Second, "the cluster to be READY once cronjobs may be read", func() bool {
		ck := s.clusterKinds(t, c.Context)
		return ck.State == "READY" && ck.Kinds["cronjobs"].State == "READY"
	})
	if r := s.do(t, `{ workloads(kinds: [CRON_JOB]) { totalCount } }`, nil); len(r.Errors) != 0 {
		t.Errorf("cronjobs after the grant: %+v", r.Errors)
	}
}

// TestUncachedSecrets: with Secrets not cached the server needs no right
// on them: the cluster is READY, secrets show OFF, and a Secret list
// answers UNAVAILABLE saying which setting turned them off.
func TestUncachedSecrets(t *testing.T) {
	c := testenv.Clusters(t)[0]
	kc := accountKubeconfig(t, c, "cg-nosecrets", readAllBut(t, c, map[string][]string{"": {"secrets"}}))
	if _, err := clientAs(t, kc).CoreV1().Secrets("").List(ctx, metav1.ListOptions{Limit: 1}); !apierrors.IsForbidden(err) {
		t.Fatalf("the account can list secrets (err %v): the test would prove nothing", err)
	}
	s := startServer(t, serverOpts{kubeconfigs: []string{kc}, waitReady: true,
		uncached: map[string]string{"secrets": "the server runs with --cache-secrets=false"}})

	ck := s.clusterKinds(t, c.Context)
	if k := ck.Kinds["secrets"]; k.State != "OFF" || !strings.Contains(k.Error, "--cache-secrets=false") {
		t.Errorf("secrets: %+v, want OFF naming the flag", k)
	}
	r := s.do(t, `{ namespaces(first: 1) { nodes { name secrets { totalCount } configMaps { totalCount } } } }`, nil)
	if len(r.Errors) != 1 || r.Errors[0].Extensions["code"] != "UNAVAILABLE" || !strings.Contains(r.Errors[0].Message, "--cache-secrets=false") {
		t.Errorf("errors %+v, want one UNAVAILABLE naming --cache-secrets=false", r.Errors)
	}
	var got struct {
		Namespaces struct {
			Nodes []struct {
				ConfigMaps *struct{ TotalCount int }
			}
		}
	}
	if err := json.Unmarshal(r.Data, &got); err != nil || len(got.Namespaces.Nodes) != 1 || got.Namespaces.Nodes[0].ConfigMaps == nil {
		t.Errorf("the namespace's other fields are not served: %s (%v)", r.Data, err)
	}
}

// clientAs is a clientset that reaches the kubeconfig's current context.
func clientAs(t *testing.T, kubeconfig string) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	return kubernetes.NewForConfigOrDie(rest.CopyConfig(cfg))
}
