package api_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/clustergraph/clustergraph/api"
	"github.com/clustergraph/clustergraph/audit"
	"github.com/clustergraph/clustergraph/internal/testenv"
	"github.com/clustergraph/clustergraph/k8s"
)

// b64 is a Secret data value.
func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// secretFree fails the test when an answer holds a planted secret value
// (in clear or base64), managedFields, or the last-applied annotation of
// a Secret.
func secretFree(t *testing.T, what string, b []byte) {
	t.Helper()
	if leaks.check(what, b) {
		t.Errorf("%s carries a secret value: %s", what, b)
	}
	for _, never := range []string{"managedFields", k8s.LastAppliedAnnotation} {
		if bytes.Contains(b, []byte(never)) {
			t.Errorf("%s carries %s: %s", what, never, b)
		}
	}
}

// secretManifest is a Secret with values in data and stringData.
func secretManifest(name, ns, label, value string) string {
	labels := ""
	if label != "" {
		labels = "\n  labels: {" + label + ": \"yes\"}"
	}
	return fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata:
  name: %s
  namespace: %s%s
data:
  password: %s
stringData:
  token: %s
`, name, ns, labels, b64(leakMarker+value+"-data"), leakMarker+value+"-string")
}

// quotingPolicy installs a ValidatingAdmissionPolicy that refuses Secrets
// labelled refuse-me in ns and quotes their password in the refusal, as
// admission webhooks often quote what they refuse. It returns once the
// apiserver enforces it.
func quotingPolicy(t *testing.T, c testenv.Cluster, ns string) {
	t.Helper()
	denyingPolicy(t, c, "cg-quote-"+ns, ns, "secrets", admissionregistrationv1.Validation{
		Expression:        `!has(object.metadata.labels) || !('refuse-me' in object.metadata.labels)`,
		MessageExpression: `'the password ' + string(object.data['password']) + ' is refused'`,
	})
	// The policy is loaded asynchronously; the apiserver's own refusal
	// quotes the value (which is what makes this a test of redaction).
	probe := secretManifest("probe", ns, "refuse-me", "probe")
	eventually(t, time.Minute, "the quoting policy enforced", func() bool {
		cmd := testenv.KubectlCommand(t, c, "apply", "--dry-run=server", "-f", "-")
		cmd.Stdin = strings.NewReader(probe)
		out, _ := cmd.CombinedOutput()
		return bytes.Contains(out, []byte(b64(leakMarker+"probe-data")))
	})
}

// denyingPolicy installs a ValidatingAdmissionPolicy (and its binding, both
// named name) that applies validation to creates and updates of core
// resource in namespace ns, denying what fails it; both are deleted when
// the test ends. The apiserver loads policies asynchronously: callers
// wait until it enforces it.
func denyingPolicy(t *testing.T, c testenv.Cluster, name, ns, resource string, validation admissionregistrationv1.Validation) {
	t.Helper()
	fail := admissionregistrationv1.Fail
	p := &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: &fail,
			MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionregistrationv1.RuleWithOperations{
					Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
					Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{resource}},
				},
			}}},
			Validations: []admissionregistrationv1.Validation{validation},
		},
	}
	if _, err := c.Client.AdmissionregistrationV1().ValidatingAdmissionPolicies().Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Client.AdmissionregistrationV1().ValidatingAdmissionPolicies().Delete(ctx, name, metav1.DeleteOptions{})
	})
	b := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        name,
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
			MatchResources: &admissionregistrationv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns},
			}},
		},
	}
	if _, err := c.Client.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Create(ctx, b, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Client.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Delete(ctx, name, metav1.DeleteOptions{})
	})
}

// TestSecretValuesNeverLeave plants Secrets holding marker values (one by
// kubectl apply, so its values are also in the last-applied annotation,
// one by clustergraph's apply) and reads them back by every path: lists,
// resources(), object(id), watches (cached and on-demand), mutation
// answers, and refusals that quote the Secret. No answer, no audit record
// and no log line may hold a value, in clear or base64, nor managedFields.
func TestSecretValuesNeverLeave(t *testing.T) {
	cs := testenv.Clusters(t)
	c := cs[0]
	const ns = "cg-secret-paths"
	makeNamespace(t, c, ns)
	auditLog, serverLog := &syncBuffer{}, &syncBuffer{}
	s := startServerWith(t, serverOpts{kubeconfigs: []string{c.Kubeconfig}, waitReady: true}, func(cfg *api.Config) {
		cfg.Audit = audit.New(auditLog)
		cfg.Logger = slog.New(slog.NewTextHandler(io.MultiWriter(serverLog, logFile), &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	cmd := testenv.KubectlCommand(t, c, "apply", "-f", "-")
	cmd.Stdin = strings.NewReader(secretManifest("by-kubectl", ns, "", "kubectl"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kubectl apply: %v: %s", err, out)
	}
	// The planted Secret really holds its values where they may leak from.
	live, err := c.Client.CoreV1().Secrets(ns).Get(ctx, "by-kubectl", metav1.GetOptions{})
	if err != nil || !strings.Contains(live.Annotations[k8s.LastAppliedAnnotation], leakMarker) || len(live.ManagedFields) == 0 {
		t.Fatalf("kubectl's Secret lacks the last-applied values or managedFields: %v", err)
	}

	mutate := func(what, query string, vars map[string]any) json.RawMessage {
		t.Helper()
		r := s.do(t, query, vars)
		raw, _ := json.Marshal(r)
		secretFree(t, what, raw)
		if len(r.Errors) > 0 {
			t.Fatalf("%s: %+v", what, r.Errors)
		}
		return r.Data
	}
	rawQ := `object { id metadata { name annotations } raw }`
	applyQ := `mutation($c: String!, $m: String!, $dry: Boolean) { apply(cluster: $c, manifest: $m, dryRun: $dry) { failed results { ` + rawQ + ` error { message code } } } }`
	mutate("apply answer", applyQ, map[string]any{"c": c.Context, "m": secretManifest("by-clustergraph", ns, "", "clustergraph")})
	mutate("dry-run apply answer", applyQ, map[string]any{"c": c.Context, "m": secretManifest("by-clustergraph", ns, "", "dryrun"), "dry": true})
	id := k8s.ObjectID{Cluster: c.Context, GVK: k8s.GVKSecret, Namespace: ns, Name: "by-clustergraph"}.Encode()
	mutate("patch answer", `mutation($id: ID!, $p: JSON!) { patch(id: $id, type: MERGE, patch: $p) { `+rawQ+` } }`,
		map[string]any{"id": id, "p": map[string]any{"stringData": map[string]any{"extra": leakMarker + "patched"}}})

	// Reads: the cache (lists, relations), the dynamic client (resources,
	// object), both Secrets.
	eventually(t, 30*time.Second, "both Secrets cached", func() bool {
		var out struct {
			Cluster struct {
				Namespace struct{ Secrets struct{ TotalCount int } }
			}
		}
		s.query(t, `query($c: String!, $ns: String!) { cluster(name: $c) { namespace(name: $ns) { secrets { totalCount } } } }`, map[string]any{"c": c.Context, "ns": ns}, &out)
		return out.Cluster.Namespace.Secrets.TotalCount == 2
	})
	reads := map[string]string{
		"Namespace.secrets": `query($c: String!, $ns: String!) { cluster(name: $c) { namespace(name: $ns) { secrets { nodes { metadata { name annotations } raw } } } } }`,
		"resources(secrets)": `query($ns: String!) { resources(group: "", version: "v1", resource: "secrets", filter: {namespace: $ns}) {
			totalCount nodes { metadata { name annotations } raw } } }`,
	}
	for what, q := range reads {
		r := s.do(t, q, map[string]any{"c": c.Context, "ns": ns})
		raw, _ := json.Marshal(r)
		secretFree(t, what, raw)
		if len(r.Errors) > 0 || !bytes.Contains(raw, []byte("by-kubectl")) || !bytes.Contains(raw, []byte("by-clustergraph")) {
			t.Errorf("%s: want both Secrets, got %s", what, raw)
		}
	}
	// By id: the cached view, and the Resource resources() hands out (read
	// from the apiserver), through object(id:) and node(id:).
	for _, name := range []string{"by-kubectl", "by-clustergraph"} {
		for _, asResource := range []bool{false, true} {
			id := k8s.ObjectID{Cluster: c.Context, GVK: k8s.GVKSecret, Namespace: ns, Name: name, AsResource: asResource}.Encode()
			for _, field := range []string{"object", "node"} {
				what := fmt.Sprintf("%s(%s, as a Resource: %v)", field, name, asResource)
				r := s.do(t, `query($id: ID!) { `+field+`(id: $id) { ... on KubeObject { metadata { name annotations } raw } } }`, map[string]any{"id": id})
				raw, _ := json.Marshal(r)
				secretFree(t, what, raw)
				if len(r.Errors) > 0 || !bytes.Contains(raw, []byte(name)) {
					t.Errorf("%s: %s", what, raw)
				}
			}
		}
	}

	// Watches: the Secret cache by kind and by resource name.
	for _, kind := range []string{"Secret", "secrets.v1."} {
		st := subscribeWS(t, s, "", `subscription($k: String!, $ns: String) { watch(kind: $k, namespace: $ns) { type object { metadata { name annotations } raw } } }`,
			map[string]any{"k": kind, "ns": ns})
		for {
			var out struct{ Watch json.RawMessage }
			if !st.next(&out) {
				t.Fatalf("watch %s ended", kind)
			}
			secretFree(t, "watch "+kind, out.Watch)
			if bytes.Contains(out.Watch, []byte(`"SYNCED"`)) {
				break
			}
		}
		st.c.CloseNow()
	}

	// Refusals that quote the Secret: an admission policy quotes the
	// password of a Secret it refuses.
	quotingPolicy(t, c, ns)
	r := s.do(t, applyQ, map[string]any{"c": c.Context, "m": secretManifest("refused", ns, "refuse-me", "refused")})
	raw, _ := json.Marshal(r)
	secretFree(t, "refused apply", raw)
	if !bytes.Contains(raw, []byte("[redacted]")) || !bytes.Contains(raw, []byte(`"failed":1`)) {
		t.Errorf("refused apply: want a failure with the value cut out, got %s", raw)
	}
	r = s.do(t, `mutation($id: ID!, $p: JSON!) { patch(id: $id, type: MERGE, patch: $p) { object { id } } }`, map[string]any{"id": id, "p": map[string]any{
		"metadata":   map[string]any{"labels": map[string]any{"refuse-me": "yes"}},
		"stringData": map[string]any{"password": leakMarker + "patch-refused"},
	}})
	raw, _ = json.Marshal(r)
	secretFree(t, "refused patch", raw)
	if len(r.Errors) == 0 || !bytes.Contains(raw, []byte("[redacted]")) {
		t.Errorf("refused patch: want an error with the value cut out, got %s", raw)
	}
	mutate("delete answer", `mutation($id: ID!) { delete(id: $id) { deletedId gone object { raw } } }`, map[string]any{"id": id})

	// The audit log recorded every write, and no value.
	a := auditLog.String()
	if strings.Count(a, `"action":"apply"`) != 3 || strings.Count(a, `"action":"patch"`) != 2 || !strings.Contains(a, `"action":"delete"`) {
		t.Errorf("audit log lacks writes:\n%s", a)
	}
	secretFree(t, "the audit log", []byte(a))
	if leaks.check("this test's server log", []byte(serverLog.String())) {
		t.Errorf("the server log carries a secret value")
	}
}

// TestDynamicObjectsCarryNoManagedFields: kinds the caches do not hold
// (read by resources(), object(id) and on-demand watches) lose their
// managedFields too.
func TestDynamicObjectsCarryNoManagedFields(t *testing.T) {
	cs := testenv.Clusters(t)
	c := cs[0]
	gvr := schema.GroupVersionResource{Group: "redact.example.com", Version: "v1", Resource: "gadgets"}
	gadgets := testenv.CreateCRD(t, c, gvr, "Gadget", true)
	s := startServer(t, serverOpts{kubeconfigs: []string{c.Kubeconfig}, waitReady: true})
	st := subscribeWS(t, s, "", `subscription { watch(kind: "gadgets.redact.example.com", namespace: "shop") { type object { raw } } }`, nil)
	var first struct{ Watch struct{ Type string } }
	if !st.next(&first) || first.Watch.Type != "SYNCED" {
		t.Fatalf("first event %+v, want SYNCED", first)
	}
	// A field of its own, so the apiserver records a manager of it.
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "redact.example.com/v1", "kind": "Gadget", "metadata": map[string]any{"name": "g1"}, "spec": map[string]any{"size": int64(3)}}}
	created, err := gadgets.Namespace("shop").Create(ctx, u, metav1.CreateOptions{})
	if err != nil || len(created.GetManagedFields()) == 0 {
		t.Fatalf("created gadget has no managedFields to strip: %v", err)
	}
	t.Cleanup(func() { _ = gadgets.Namespace("shop").Delete(ctx, "g1", metav1.DeleteOptions{}) })
	var ev struct{ Watch json.RawMessage }
	if !st.next(&ev) {
		t.Fatal("the watch ended")
	}
	secretFree(t, "on-demand watch", ev.Watch)
	if !bytes.Contains(ev.Watch, []byte(`"g1"`)) {
		t.Errorf("watch event %s lacks g1", ev.Watch)
	}
	id := k8s.ObjectID{Cluster: c.Context, GVK: schema.GroupVersionKind{Group: gvr.Group, Version: gvr.Version, Kind: "Gadget"}, Namespace: "shop", Name: "g1"}.Encode()
	for what, q := range map[string]string{
		"resources(gadgets)": `{ resources(group: "redact.example.com", version: "v1", resource: "gadgets", filter: {namespace: "shop"}) { totalCount nodes { raw } } }`,
		"object(gadget)":     `query($id: ID!) { object(id: $id) { raw } }`,
	} {
		r := s.do(t, q, map[string]any{"id": id})
		raw, _ := json.Marshal(r)
		secretFree(t, what, raw)
		if len(r.Errors) > 0 || !bytes.Contains(raw, []byte(`"g1"`)) {
			t.Errorf("%s: %s", what, raw)
		}
	}
}

// TestBadBodies: a body gqlgen cannot read is the client's error
// (BAD_USER_INPUT, saying what was wrong), never an INTERNAL one, and
// neither the answer nor the log quotes it.
func TestBadBodies(t *testing.T) {
	cs := testenv.Clusters(t)
	serverLog := &syncBuffer{}
	s := startServerWith(t, serverOpts{kubeconfigs: kubeconfigs(cs[:1])}, func(cfg *api.Config) {
		cfg.MaxBodyBytes = 4096
		cfg.Logger = slog.New(slog.NewTextHandler(io.MultiWriter(serverLog, logFile), &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	secretVars := `{"query":"query($p: String) { clusters { name } }","variables":{"password":"` + leakMarker + `password"}`
	big := `{"query":"{ clusters { name } }","variables":{"password":"` + leakMarker + strings.Repeat("x", 8192) + `"}}`
	cases := []struct {
		name, contentType, body string
		chunked                 bool
		status                  int
		message                 string
	}{
		{"truncated", "application/json", secretVars, false, http.StatusBadRequest, "ends early"},
		{"syntax", "application/json", `{"query": ` + leakMarker + `}`, false, http.StatusBadRequest, "syntax error at byte"},
		{"wrong type", "application/json", `{"query":"{ clusters { name } }","variables":"` + leakMarker + `"}`, false, http.StatusBadRequest, `"variables" must be an object`},
		{"trailing data", "application/json", `{"query":"{ clusters { name } }"} ` + leakMarker, false, http.StatusBadRequest, "more than one JSON value"},
		{"empty", "application/json", ``, false, http.StatusBadRequest, "empty"},
		{"content type", "text/plain", secretVars + "}", false, http.StatusUnsupportedMediaType, "must be application/json"},
		{"too large", "application/json", big, false, http.StatusRequestEntityTooLarge, "over the limit"},
		{"too large, chunked", "application/json", big, true, http.StatusRequestEntityTooLarge, "over the limit"},
	}
	for _, tc := range cases {
		var body io.Reader = strings.NewReader(tc.body)
		if tc.chunked {
			body = io.MultiReader(body) // no length: sent chunked
		}
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/query", body)
		req.Header.Set("Content-Type", tc.contentType)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		secretFree(t, tc.name, raw)
		var r response
		_ = json.Unmarshal(raw, &r)
		if resp.StatusCode != tc.status || len(r.Errors) != 1 || r.Errors[0].Extensions["code"] != "BAD_USER_INPUT" || !strings.Contains(r.Errors[0].Message, tc.message) {
			t.Errorf("%s: %d %s, want %d BAD_USER_INPUT saying %q", tc.name, resp.StatusCode, raw, tc.status, tc.message)
		}
	}
	// Valid JSON that names no operation of the document, and a
	// credential-named variable whose value an error would quote.
	for name, c := range map[string]struct {
		query string
		vars  map[string]any
		op    string
	}{
		"unknown operation": {`query A { clusters { name } }`, nil, "B"},
		"quoted variable":   {`query($authToken: [WorkloadKind!]) { workloads(kinds: $authToken) { totalCount } }`, map[string]any{"authToken": []string{leakMarker + "token"}}, ""},
	} {
		b, _ := json.Marshal(map[string]any{"query": c.query, "variables": c.vars, "operationName": c.op})
		resp, err := http.Post(s.URL+"/query", "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		secretFree(t, name, raw)
		var r response
		_ = json.Unmarshal(raw, &r)
		if resp.StatusCode/100 != 4 || len(r.Errors) == 0 || r.Errors[0].Extensions["code"] != "BAD_USER_INPUT" {
			t.Errorf("%s: %d %s, want a 4xx BAD_USER_INPUT", name, resp.StatusCode, raw)
		}
	}
	logged := serverLog.String()
	if strings.Count(logged, "refused request body") != len(cases) {
		t.Errorf("want one log line per refused body, got:\n%s", logged)
	}
	if leaks.check("TestBadBodies' server log", []byte(logged)) || strings.Contains(logged, "INTERNAL") || strings.Contains(logged, "internal error") {
		t.Errorf("the log quotes a body or calls a bad body internal:\n%s", logged)
	}
}
