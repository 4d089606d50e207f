// Package charttest tests the Helm chart in charts/clustergraph with the
// Helm that tools/helm.sh builds: `helm lint --strict`, the objects
// `helm template` renders for several value sets (security context, probes,
// storage, and the exact rights of the server's account), the value sets
// that must fail with a message naming the value, and a server-side dry
// run of the rendered manifests against the testbed's apiserver.
//
// Everything here needs Helm, which a cold machine builds in minutes, so
// `go test -short` (make check, make unit) leaves the package out
// explicitly; `make test` runs it all, and a missing testbed fails the dry
// run rather than skipping it.
package charttest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/clustergraph/clustergraph/internal/testenv"
)

// chartDir is the chart under test.
var chartDir = filepath.Join(testenv.Root(), "charts", "clustergraph")

// maxValues turns every option on at once.
var maxValues = filepath.Join(chartDir, "ci", "max-values.yaml")

var helmPath struct {
	sync.Once
	path string
	err  error
}

// helm is the path of the Helm binary: $CLUSTERGRAPH_HELM (tools/test.sh
// builds Helm before the tests and sets it), else tools/helm.sh --path,
// which builds it when it is not cached.
func helm(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("the chart's tests need Helm (built by tools/helm.sh, minutes on a cold machine): make test runs them")
	}
	helmPath.Do(func() {
		if p := os.Getenv("CLUSTERGRAPH_HELM"); p != "" {
			helmPath.path = p
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
		defer cancel()
		var stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, filepath.Join(testenv.Root(), "tools", "helm.sh"), "--path")
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			helmPath.err = fmt.Errorf("tools/helm.sh --path: %w\n%s", err, stderr.String())
			return
		}
		helmPath.path = strings.TrimSpace(string(out))
	})
	if helmPath.err != nil {
		t.Fatal(helmPath.err)
	}
	return helmPath.path
}

// runHelm runs helm with args, with its state directories in the test's
// temporary directory, and returns its standard output; err carries
// standard error.
func runHelm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	bin := helm(t)
	home := t.TempDir()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home+"/cache", "HELM_CONFIG_HOME="+home+"/config", "HELM_DATA_HOME="+home+"/data")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// release is the release name and namespace the tests render with.
const release, namespace = "clustergraph", "clustergraph"

// manifests is what helm template rendered, by kind and name.
type manifests struct {
	raw  string
	objs []*unstructured.Unstructured
}

// template renders the chart with the given extra helm arguments (value
// files, --set), failing the test when helm fails.
func template(t *testing.T, args ...string) manifests {
	t.Helper()
	out, err := templateErr(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func templateErr(t *testing.T, args ...string) (manifests, error) {
	t.Helper()
	out, err := runHelm(t, append([]string{"template", release, chartDir, "--namespace", namespace}, args...)...)
	if err != nil {
		return manifests{}, err
	}
	return parse(t, out), nil
}

// parse reads the documents helm template printed.
func parse(t *testing.T, out string) manifests {
	t.Helper()
	m := manifests{raw: out}
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(out), 4096)
	for {
		var obj map[string]any
		if err := dec.Decode(&obj); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("the rendered manifests do not parse: %v\n%s", err, out)
		}
		if obj == nil {
			continue // an empty document (a template that rendered nothing)
		}
		m.objs = append(m.objs, &unstructured.Unstructured{Object: obj})
	}
	return m
}

// get returns the one object of kind and name, or nil.
func (m manifests) get(kind, name string) *unstructured.Unstructured {
	for _, o := range m.objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

// kinds lists "Kind/name" of every rendered object, sorted.
func (m manifests) kinds() []string {
	var out []string
	for _, o := range m.objs {
		out = append(out, o.GetKind()+"/"+o.GetName())
	}
	sort.Strings(out)
	return out
}

// into converts a rendered object into its typed form.
func into[T any](t *testing.T, o *unstructured.Unstructured) *T {
	t.Helper()
	if o == nil {
		t.Fatalf("object missing")
	}
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(o.Object, out, true); err != nil {
		t.Fatalf("%s %s: %v", o.GetKind(), o.GetName(), err)
	}
	return out
}

func (m manifests) deployment(t *testing.T) *appsv1.Deployment {
	t.Helper()
	return into[appsv1.Deployment](t, m.get("Deployment", release))
}

// env is the server container's environment, by name (values only; a
// variable from a Secret maps to "secret:NAME/KEY").
func env(t *testing.T, d *appsv1.Deployment) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		v := e.Value
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			v = "secret:" + e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
		}
		if _, dup := out[e.Name]; dup {
			t.Errorf("environment variable %s is set twice", e.Name)
		}
		out[e.Name] = v
	}
	return out
}

// grants flattens the rules of every ClusterRole and Role into one string
// per right: "SCOPE group/resource[names] verb", where SCOPE is
// "cluster" or the Role's namespace. Comparing these sets says exactly
// which rights a value set grants.
func (m manifests) grants(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, o := range m.objs {
		var scope string
		var rules []rbacv1.PolicyRule
		switch o.GetKind() {
		case "ClusterRole":
			scope, rules = "cluster", into[rbacv1.ClusterRole](t, o).Rules
		case "Role":
			scope, rules = o.GetNamespace(), into[rbacv1.Role](t, o).Rules
		default:
			continue
		}
		for _, r := range rules {
			names := ""
			if len(r.ResourceNames) > 0 {
				names = "[" + strings.Join(r.ResourceNames, ",") + "]"
			}
			for _, g := range r.APIGroups {
				for _, res := range r.Resources {
					for _, v := range r.Verbs {
						out = append(out, fmt.Sprintf("%s %s/%s%s %s", scope, g, res, names, v))
					}
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

// listWatch is list and watch on each resource of group, cluster-wide.
func listWatch(group string, resources ...string) []string {
	var out []string
	for _, r := range resources {
		out = append(out, "cluster "+group+"/"+r+" list", "cluster "+group+"/"+r+" watch")
	}
	return out
}

// defaultGrants are the rights of a default install: the caches, metrics,
// impersonation, TokenReviews, and the Lease in the release namespace.
func defaultGrants() []string {
	g := slices.Concat(
		listWatch("", "namespaces", "nodes", "pods", "services", "persistentvolumeclaims", "events", "configmaps", "secrets"),
		listWatch("apps", "deployments", "replicasets", "statefulsets", "daemonsets"),
		listWatch("batch", "jobs", "cronjobs"),
		listWatch("discovery.k8s.io", "endpointslices"),
		listWatch("networking.k8s.io", "ingresses"),
		listWatch("rbac.authorization.k8s.io", "roles", "rolebindings", "clusterroles", "clusterrolebindings"),
		listWatch("apps.openyurt.io", "nodepools"),
		[]string{
			"cluster metrics.k8s.io/pods list", "cluster metrics.k8s.io/nodes list",
			"cluster /users impersonate", "cluster /groups impersonate", "cluster /serviceaccounts impersonate",
			"cluster authentication.k8s.io/* impersonate",
			"cluster authentication.k8s.io/tokenreviews create",
			namespace + " coordination.k8s.io/leases create",
			namespace + " coordination.k8s.io/leases[clustergraph-collector] get",
			namespace + " coordination.k8s.io/leases[clustergraph-collector] update",
		})
	sort.Strings(g)
	return g
}

// with returns base plus add, minus remove, sorted.
func with(base []string, add []string, remove ...string) []string {
	out := slices.DeleteFunc(slices.Clone(base), func(s string) bool { return slices.Contains(remove, s) })
	out = append(out, add...)
	sort.Strings(out)
	return out
}

func TestLint(t *testing.T) {
	for _, values := range [][]string{nil, {"--values", maxValues}} {
		out, err := runHelm(t, append([]string{"lint", "--strict", chartDir}, values...)...)
		if err != nil {
			t.Errorf("helm lint --strict %v: %v\n%s", values, err, out)
		}
	}
}

// TestPodHardened: the restricted Pod Security profile and more, probes at
// the HTTP port, and the listener on every address.
func TestPodHardened(t *testing.T) {
	d := template(t).deployment(t)
	pod := d.Spec.Template.Spec
	if psc := pod.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot ||
		psc.RunAsUser == nil || *psc.RunAsUser != 65532 || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext = %+v, want runAsNonRoot, runAsUser 65532, seccomp RuntimeDefault", psc)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("containers = %d, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	switch {
	case sc == nil:
		t.Fatal("the container has no securityContext")
	case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot, sc.RunAsUser == nil || *sc.RunAsUser != 65532:
		t.Errorf("container runs as %v (nonroot %v), want 65532 and runAsNonRoot", sc.RunAsUser, sc.RunAsNonRoot)
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Error("the root filesystem is not read-only")
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Error("allowPrivilegeEscalation is not false")
	case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0:
		t.Errorf("capabilities = %+v, want drop ALL and nothing added", sc.Capabilities)
	case sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
		t.Errorf("container seccomp = %+v, want RuntimeDefault", sc.SeccompProfile)
	}
	if len(c.Ports) != 1 || c.Ports[0].Name != "http" || c.Ports[0].ContainerPort != 8080 {
		t.Errorf("ports = %+v, want http 8080", c.Ports)
	}
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"startup", c.StartupProbe, "/healthz"}, {"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil || p.probe.HTTPGet.Path != p.path || p.probe.HTTPGet.Port.String() != "http" {
			t.Errorf("%s probe = %+v, want GET %s at port http", p.name, p.probe, p.path)
		}
	}
	e := env(t, d)
	// Probes and the Service reach the pod IP: never loopback.
	if e["CLUSTERGRAPH_LISTEN"] != ":8080" {
		t.Errorf("CLUSTERGRAPH_LISTEN = %q, want :8080 (every address)", e["CLUSTERGRAPH_LISTEN"])
	}
	// With a read-only root filesystem, the data dir and /tmp must be
	// volumes.
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = m.Name
	}
	if mounts[e["CLUSTERGRAPH_DATA_DIR"]] != "data" || mounts["/tmp"] != "tmp" {
		t.Errorf("mounts = %v, want data at the data dir (%s) and tmp at /tmp", mounts, e["CLUSTERGRAPH_DATA_DIR"])
	}
	if !*pod.AutomountServiceAccountToken {
		t.Error("the in-cluster mode needs the service account token mounted")
	}
}

// TestRBAC checks the exact rights for value sets that change them.
func TestRBAC(t *testing.T) {
	shellNS := "cg-shells"
	shell := func(verbs ...string) []string {
		var out []string
		for _, v := range verbs {
			out = append(out, shellNS+" "+v)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"defaults", nil, defaultGrants()},
		{"no secrets", []string{"--set", "cacheSecrets=false"},
			with(defaultGrants(), nil, "cluster /secrets list", "cluster /secrets watch")},
		{"no configmaps", []string{"--set", "cacheConfigMaps=false"},
			with(defaultGrants(), nil, "cluster /configmaps list", "cluster /configmaps watch")},
		{"neither", []string{"--set", "cacheSecrets=false,cacheConfigMaps=false"},
			with(defaultGrants(), nil, "cluster /secrets list", "cluster /secrets watch", "cluster /configmaps list", "cluster /configmaps watch")},
		{"sar fallback", []string{"--set", "authzFallback=sar"},
			with(defaultGrants(), []string{"cluster authorization.k8s.io/subjectaccessreviews create"})},
		{"kubelet traffic", []string{"--set", "metering.trafficSource=kubelet"},
			with(defaultGrants(), []string{"cluster /nodes/proxy get"})},
		{"shell", []string{"--set", "shell.namespace=" + shellNS + ",shell.proxyURL=http://clustergraph.clustergraph.svc:8080"},
			with(defaultGrants(), shell("/pods create", "/pods get", "/pods delete", "/secrets create", "/pods/exec create"))},
		{"no leader election", []string{"--set", "leaderElection.enabled=false"},
			with(defaultGrants(), nil, namespace+" coordination.k8s.io/leases create",
				namespace+" coordination.k8s.io/leases[clustergraph-collector] get", namespace+" coordination.k8s.io/leases[clustergraph-collector] update")},
		{"lease elsewhere", []string{"--set", "leaderElection.leaseNamespace=leases,leaderElection.leaseName=cg"},
			with(defaultGrants(), []string{"leases coordination.k8s.io/leases create", "leases coordination.k8s.io/leases[cg] get", "leases coordination.k8s.io/leases[cg] update"},
				namespace+" coordination.k8s.io/leases create",
				namespace+" coordination.k8s.io/leases[clustergraph-collector] get", namespace+" coordination.k8s.io/leases[clustergraph-collector] update")},
		// The identity cluster is a member: TokenReviews and the Lease
		// happen there, with the kubeconfig's credentials.
		{"identity elsewhere", []string{"--set", "identityCluster=hub,kubeconfig.secretName=members"},
			with(defaultGrants(), nil, "cluster authentication.k8s.io/tokenreviews create", namespace+" coordination.k8s.io/leases create",
				namespace+" coordination.k8s.io/leases[clustergraph-collector] get", namespace+" coordination.k8s.io/leases[clustergraph-collector] update")},
		// The server never talks to this cluster: no rights here at all.
		{"not in cluster", []string{"--set", "inCluster=false,kubeconfig.secretName=members"}, nil},
		{"extra kinds", []string{"--set-json", `rbac.extraReadRules=[{"apiGroups":["example.com"],"resources":["widgets"]}]`},
			with(defaultGrants(), []string{"cluster example.com/widgets get", "cluster example.com/widgets list", "cluster example.com/widgets watch"})},
		{"cluster secrets", []string{"--set", "clusterSecrets.enabled=true"},
			with(defaultGrants(), []string{namespace + " /secrets get", namespace + " /secrets list", namespace + " /secrets watch"})},
		{"cluster secrets, identity elsewhere", []string{"--set", "clusterSecrets.enabled=true,identityCluster=hub,kubeconfig.secretName=members"},
			with(defaultGrants(), nil, "cluster authentication.k8s.io/tokenreviews create", namespace+" coordination.k8s.io/leases create",
				namespace+" coordination.k8s.io/leases[clustergraph-collector] get", namespace+" coordination.k8s.io/leases[clustergraph-collector] update")},
		{"no rbac", []string{"--set", "rbac.create=false"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := template(t, tc.args...)
			got := m.grants(t)
			if !slices.Equal(got, tc.want) {
				t.Errorf("rights:\n got  %q\n want %q\n extra   %q\n missing %q", got, tc.want, minus(got, tc.want), minus(tc.want, got))
			}
			// Each Role and ClusterRole is bound to the chart's service
			// account, and only to it.
			for _, o := range m.objs {
				if k := o.GetKind(); k != "RoleBinding" && k != "ClusterRoleBinding" {
					continue
				}
				b := into[rbacv1.RoleBinding](t, o) // the same shape for both kinds
				if len(b.Subjects) != 1 || b.Subjects[0].Kind != "ServiceAccount" || b.Subjects[0].Name != release || b.Subjects[0].Namespace != namespace {
					t.Errorf("%s %s binds %+v, want only the service account %s/%s", o.GetKind(), o.GetName(), b.Subjects, namespace, release)
				}
				if m.get(b.RoleRef.Kind, b.RoleRef.Name) == nil {
					t.Errorf("%s %s binds %s %s, which the chart does not render", o.GetKind(), o.GetName(), b.RoleRef.Kind, b.RoleRef.Name)
				}
			}
		})
	}
}

// minus is a without b's elements.
func minus(a, b []string) []string {
	return slices.DeleteFunc(slices.Clone(a), func(s string) bool { return slices.Contains(b, s) })
}

// TestClusterSecretsFlag: off by default the server is told so ("-"), on
// it follows the release namespace with the selector.
func TestClusterSecretsFlag(t *testing.T) {
	if e := env(t, template(t).deployment(t)); e["CLUSTERGRAPH_CLUSTER_SECRETS_NAMESPACE"] != "-" {
		t.Errorf("default: %q, want - (off)", e["CLUSTERGRAPH_CLUSTER_SECRETS_NAMESPACE"])
	}
	e := env(t, template(t, "--set", "clusterSecrets.enabled=true,clusterSecrets.selector=a=b").deployment(t))
	if e["CLUSTERGRAPH_CLUSTER_SECRETS_NAMESPACE"] != namespace || e["CLUSTERGRAPH_CLUSTER_SECRETS_SELECTOR"] != "a=b" {
		t.Errorf("on: %q %q", e["CLUSTERGRAPH_CLUSTER_SECRETS_NAMESPACE"], e["CLUSTERGRAPH_CLUSTER_SECRETS_SELECTOR"])
	}
}

// TestCacheFlags: cacheSecrets/cacheConfigMaps reach the server as its
// flags' environment variables.
func TestCacheFlags(t *testing.T) {
	e := env(t, template(t).deployment(t))
	if e["CLUSTERGRAPH_CACHE_SECRETS"] != "true" || e["CLUSTERGRAPH_CACHE_CONFIGMAPS"] != "true" {
		t.Errorf("defaults: CACHE_SECRETS=%q CACHE_CONFIGMAPS=%q, want true and true", e["CLUSTERGRAPH_CACHE_SECRETS"], e["CLUSTERGRAPH_CACHE_CONFIGMAPS"])
	}
	e = env(t, template(t, "--set", "cacheSecrets=false,cacheConfigMaps=false").deployment(t))
	// The server reads exactly "false"/"true" (server.go: == "true").
	if e["CLUSTERGRAPH_CACHE_SECRETS"] != "false" || e["CLUSTERGRAPH_CACHE_CONFIGMAPS"] != "false" {
		t.Errorf("off: CACHE_SECRETS=%q CACHE_CONFIGMAPS=%q, want false and false", e["CLUSTERGRAPH_CACHE_SECRETS"], e["CLUSTERGRAPH_CACHE_CONFIGMAPS"])
	}
}

// TestStorage: SQLite on an emptyDir by default, on a claim with
// persistence, a DSN from a Secret for MySQL, and none.
func TestStorage(t *testing.T) {
	dataVolume := func(d *appsv1.Deployment) corev1.Volume {
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Name == "data" {
				return v
			}
		}
		t.Fatal("no data volume")
		return corev1.Volume{}
	}

	m := template(t)
	d := m.deployment(t)
	if v := dataVolume(d); v.EmptyDir == nil {
		t.Errorf("default data volume = %+v, want an emptyDir", v.VolumeSource)
	}
	if _, set := env(t, d)["CLUSTERGRAPH_DATABASE"]; set {
		t.Error("default: CLUSTERGRAPH_DATABASE is set, want the server's default (SQLite in the data dir)")
	}
	if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("SQLite: strategy %q, want Recreate (one writer)", d.Spec.Strategy.Type)
	}
	if m.get("PersistentVolumeClaim", release+"-data") != nil {
		t.Error("default: a PersistentVolumeClaim was rendered")
	}

	m = template(t, "--set", "persistence.enabled=true,persistence.size=5Gi")
	pvc := into[corev1.PersistentVolumeClaim](t, m.get("PersistentVolumeClaim", release+"-data"))
	if q := pvc.Spec.Resources.Requests[corev1.ResourceStorage]; q.String() != "5Gi" {
		t.Errorf("claim size %s, want 5Gi", q.String())
	}
	if v := dataVolume(m.deployment(t)); v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != release+"-data" {
		t.Errorf("persistence: data volume = %+v, want the claim", v.VolumeSource)
	}
	m = template(t, "--set", "persistence.enabled=true,persistence.existingClaim=mine")
	if m.get("PersistentVolumeClaim", release+"-data") != nil {
		t.Error("existingClaim: the chart rendered a claim of its own too")
	}
	if v := dataVolume(m.deployment(t)); v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != "mine" {
		t.Errorf("existingClaim: data volume = %+v, want claim mine", v.VolumeSource)
	}

	m = template(t, "--set", "database.existingSecret=db,replicas=3")
	d = m.deployment(t)
	if got := env(t, d)["CLUSTERGRAPH_DATABASE"]; got != "secret:db/dsn" {
		t.Errorf("external: CLUSTERGRAPH_DATABASE = %q, want from Secret db key dsn", got)
	}
	if strings.Contains(m.raw, "mysql://") {
		t.Error("the DSN appears in the manifests")
	}
	if d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		t.Error("external database: strategy Recreate, want rolling updates")
	}
	if m.get("PodDisruptionBudget", release) == nil {
		t.Error("replicas=3: no PodDisruptionBudget")
	}
	if template(t).get("PodDisruptionBudget", release) != nil {
		t.Error("replicas=1: a PodDisruptionBudget would block every drain")
	}

	if got := env(t, template(t, "--set", "database.enabled=false,replicas=2").deployment(t))["CLUSTERGRAPH_DATABASE"]; got != "none" {
		t.Errorf("database off: CLUSTERGRAPH_DATABASE = %q, want none", got)
	}

	// Alertmanager's token comes from a Secret too.
	e := env(t, template(t, "--set", "alerts.token.existingSecret=am,alerts.basicAuth.existingSecret=am").deployment(t))
	if e["CLUSTERGRAPH_ALERT_TOKEN"] != "secret:am/token" || e["CLUSTERGRAPH_ALERT_BASIC_AUTH"] != "secret:am/basic-auth" {
		t.Errorf("alert credentials: token %q, basic auth %q, want from Secret am", e["CLUSTERGRAPH_ALERT_TOKEN"], e["CLUSTERGRAPH_ALERT_BASIC_AUTH"])
	}
}

// TestOptionalObjects: what each optional value adds, and the
// ServiceMonitor only where the cluster serves its CRD.
func TestOptionalObjects(t *testing.T) {
	base := []string{"ClusterRole/" + release, "ClusterRoleBinding/" + release, "Deployment/" + release,
		"Role/" + release + "-lease", "RoleBinding/" + release + "-lease", "Service/" + release, "ServiceAccount/" + release}
	if got := template(t).kinds(); !slices.Equal(got, base) {
		t.Errorf("defaults render %v, want %v", got, base)
	}
	all := template(t, "--values", maxValues, "--api-versions", "monitoring.coreos.com/v1/ServiceMonitor")
	for _, want := range []string{"Ingress/" + release, "NetworkPolicy/" + release, "PodDisruptionBudget/" + release,
		"ServiceMonitor/" + release, "Role/" + release + "-shell", "RoleBinding/" + release + "-shell"} {
		if !slices.Contains(all.kinds(), want) {
			t.Errorf("max values: %s missing from %v", want, all.kinds())
		}
	}
	if noCRD := template(t, "--values", maxValues); noCRD.get("ServiceMonitor", release) != nil {
		t.Error("a ServiceMonitor was rendered for a cluster that serves no monitoring.coreos.com/v1")
	}
	if off := template(t, "--api-versions", "monitoring.coreos.com/v1/ServiceMonitor"); off.get("ServiceMonitor", release) != nil {
		t.Error("a ServiceMonitor was rendered with metrics.enabled=false (the server serves no /metrics yet)")
	}
	// The shell namespace, when the chart is to create it.
	m := template(t, "--set", "shell.namespace=cg-shells,shell.proxyURL=http://x:8080,shell.createNamespace=true")
	if m.get("Namespace", "cg-shells") == nil {
		t.Error("shell.createNamespace: no Namespace")
	}
}

// TestEveryFlagHasAValue: each CLUSTERGRAPH_* variable the server reads is
// set by the chart in some value set (the defaults or the maximal one),
// and the chart sets no variable the server does not read. Only the
// demo's --insecure-disable-auth has no value: in a cluster it would serve
// nobody (it answers only requests addressed to localhost); and --config:
// the chart sets every flag by its variable.
func TestEveryFlagHasAValue(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(testenv.Root(), "server.go"))
	if err != nil {
		t.Fatal(err)
	}
	// A flag names its variable in its usage text, "(env CLUSTERGRAPH_X"
	// (server.go reads the environment by that name); a few are read by
	// name in code.
	server := map[string]bool{}
	for _, name := range regexp.MustCompile(`(?:"|\(env )(CLUSTERGRAPH_[A-Z0-9_]+)`).FindAllStringSubmatch(string(src), -1) {
		server[name[1]] = true
	}
	// The retention variables are built from their names (server.go).
	if !server["CLUSTERGRAPH_RETENTION_"] {
		t.Fatal("server.go no longer builds CLUSTERGRAPH_RETENTION_*: update this test")
	}
	delete(server, "CLUSTERGRAPH_RETENTION_")
	for _, r := range []string{"SAMPLES", "HOUR", "DAY", "MONTH", "YEAR", "USAGE", "ALERTS", "EVENTS"} {
		server["CLUSTERGRAPH_RETENTION_"+r] = true
	}
	chart := map[string]bool{}
	for _, args := range [][]string{nil, {"--values", maxValues}} {
		for name := range env(t, template(t, args...).deployment(t)) {
			chart[name] = true
		}
	}
	for name := range server {
		// A config file would repeat what the chart's variables set.
		if !chart[name] && name != "CLUSTERGRAPH_INSECURE_DISABLE_AUTH" && name != "CLUSTERGRAPH_CONFIG" {
			t.Errorf("the server reads %s, but no chart value sets it", name)
		}
	}
	for name := range chart {
		if strings.HasPrefix(name, "CLUSTERGRAPH_") && !server[name] {
			t.Errorf("the chart sets %s, which the server does not read", name)
		}
	}
}

// TestInvalidValues: value sets that cannot work fail helm template with a
// message that names the value.
func TestInvalidValues(t *testing.T) {
	for _, tc := range []struct {
		set, want string
	}{
		{"shell.namespace=shells", "shell.proxyURL is not"},
		{"shell.proxyURL=http://cg:8080", "shell.namespace is not"},
		{"shell.createNamespace=true", "shell.namespace is empty"},
		{"persistence.enabled=true,database.existingSecret=db", "persistence.enabled and database.existingSecret"},
		{"persistence.enabled=true,database.enabled=false", "persistence.enabled is true but database.enabled is false"},
		{"database.enabled=false,database.existingSecret=db", "database.existingSecret is set but database.enabled is false"},
		{"replicas=2", "replicas is 2 but the database is SQLite"},
		{"replicas=2,persistence.enabled=true", "replicas is 2 but the database is SQLite"},
		{"persistence.existingClaim=mine", "persistence.existingClaim is set but persistence.enabled is false"},
		{"inCluster=false", "inCluster is false and kubeconfig.secretName is empty"},
		{"kubeconfig.secretName=members,kubeconfig.keys={}", "/kubeconfig/keys"},
		// The schema, for single values.
		{"authzFallback=webhook", "/authzFallback"},
		{"metering.trafficSource=prometheus", "/metering/trafficSource"},
		{"logLevel=verbose", "/logLevel"},
		{"cacheSyncTimeout=2min", "/cacheSyncTimeout"},
		{"retention.events=3w", "/retention/events"},
		{"limits.maxPage=0", "/limits/maxPage"},
		{"cacheSecrets=maybe", "/cacheSecrets"},
		{"versionsConfigMap=versions", "/versionsConfigMap"},
		{"shell.namespace=shells,shell.proxyURL=cg:8080", "/shell/proxyURL"},
		{"fleetWideSystemUsers[0]=alice", "/fleetWideSystemUsers/0"},
		{"replicaCount=2", "additional properties 'replicaCount' not allowed"},
		{"database.dsn=mysql://x", "additional properties 'dsn' not allowed"},
	} {
		t.Run(tc.set, func(t *testing.T) {
			_, err := templateErr(t, "--set", tc.set)
			if err == nil {
				t.Fatalf("helm template --set %s succeeded, want an error naming %q", tc.set, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("helm template --set %s: %v\nwant a message containing %q", tc.set, err, tc.want)
			}
		})
	}
	// Secrets (or everything) through extraReadRules would hand the
	// server every Secret's values.
	for _, res := range []string{"secrets", "*"} {
		_, err := templateErr(t, "--set-json", fmt.Sprintf(`rbac.extraReadRules=[{"apiGroups":[""],"resources":[%q]}]`, res))
		if err == nil || !strings.Contains(err.Error(), "rbac.extraReadRules[0]") {
			t.Errorf("extraReadRules with %q: %v, want an error naming rbac.extraReadRules[0]", res, err)
		}
	}
}

// TestDryRunAgainstTheTestbed applies the rendered manifests of several
// value sets to a testbed apiserver with a server-side dry run: every
// object passes the apiserver's validation and admission (the RBAC
// objects its escalation check too) without being stored.
func TestDryRunAgainstTheTestbed(t *testing.T) {
	helm(t)
	c := testenv.Clusters(t)[0]
	// Namespaced objects need their namespace to exist, even in a dry run;
	// a name of this run's own, deleted at the end.
	ns := fmt.Sprintf("chart-dryrun-%d", time.Now().UnixNano()%1_000_000)
	shellNS := ns + "-shells"
	for _, n := range []string{ns, shellNS} {
		if out, err := testenv.Kubectl(t, c, "create", "namespace", n); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		t.Cleanup(func() { _, _ = testenv.Kubectl(t, c, "delete", "namespace", n, "--wait=false") })
	}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"defaults", nil},
		{"max values", []string{"--values", maxValues, "--set", "shell.namespace=" + shellNS}},
		{"persistence and no secrets", []string{"--set", "persistence.enabled=true,cacheSecrets=false,cacheConfigMaps=false"}},
		{"shell, sar and kubelet traffic", []string{"--set", "shell.namespace=" + shellNS + ",shell.proxyURL=http://cg:8080,authzFallback=sar,metering.trafficSource=kubelet"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runHelm(t, append([]string{"template", release, chartDir, "--namespace", ns}, tc.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			cmd := testenv.KubectlCommand(t, c, "apply", "--dry-run=server", "-f", "-")
			cmd.Stdin = strings.NewReader(out)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("kubectl apply --dry-run=server: %v\n%s\n%s", err, stderr.String(), stdout.String())
			}
			// One line per object, each "(server dry run)".
			applied := strings.Count(stdout.String(), "(server dry run)")
			if want := strings.Count(out, "\nkind: "); applied != want {
				t.Errorf("the dry run took %d objects, the chart rendered %d:\n%s", applied, want, stdout.String())
			}
		})
	}
}
