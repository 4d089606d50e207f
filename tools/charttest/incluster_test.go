package charttest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/clustergraph/clustergraph/internal/testenv"
	"github.com/clustergraph/clustergraph/k8s"
)

// The in-cluster least-privilege proof. kwok runs no containers, so the
// server runs here the way the pod would: the real binary, with the
// environment the chart's Deployment gives it, the service account's token,
// ca.crt and namespace files at the path rest.InClusterConfig reads (in a
// private mount namespace, `unshare -m`, so nothing of the host changes),
// and KUBERNETES_SERVICE_HOST/PORT pointing at a private testbed cluster.
// Its rights are exactly the chart's RBAC objects, applied to that cluster.
//
// First everything must work with them: every cached kind READY, reads,
// writes impersonating a user (with groups and UID) and a service account
// (with UID and extras), a watch, metrics, the Lease, metering samples
// stored and read back, an alert through the webhook, and a terminal
// session; with the
// optional values also the SubjectAccessReview fallback, kubelet traffic
// and a cluster shell. Then each verb of each rule is taken away in turn,
// and the server started again must break something named: the roles
// carry no spare right. (This found two: delete on the shell's Secret,
// which the garbage collector removes with its pod, and get on pods/exec.)

// lpRelease is the release the proof installs (its service account is the
// server's identity).
const lpRelease = "clustergraph"

// lpServer is one run of the server binary in the in-cluster environment.
type lpServer struct {
	base string // http://127.0.0.1:PORT
	cmd  *exec.Cmd
	mu   sync.Mutex
	log  bytes.Buffer
	done chan struct{}
}

// Log is what the server wrote so far.
func (s *lpServer) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

func (s *lpServer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.Write(p)
}

// stop ends the server with SIGTERM (as the kubelet would) and waits.
func (s *lpServer) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// lpEnv is the proof's fixture: the cluster, the rendered RBAC, the
// server binary and its in-cluster files.
type lpEnv struct {
	c         testenv.Cluster
	ns, work  string // the release namespace; the namespace callers write in
	bin       string
	saDir     string   // token, ca.crt, namespace
	env       []string // the chart's environment for the server, and the in-cluster variables
	role      *unstructured.Unstructured
	leaseRole *unstructured.Unstructured
	admin     string // token of a service account bound to cluster-admin
}

// gql posts a GraphQL query as token and returns data and the errors'
// messages (an HTTP error status is one error).
func (s *lpServer) gql(token, query string, vars map[string]any) (map[string]any, []string) {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, s.base+"/query", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, []string{err.Error()}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out struct {
		Data   map[string]any
		Errors []struct{ Message string }
	}
	_ = json.Unmarshal(raw, &out)
	var errs []string
	if resp.StatusCode != http.StatusOK {
		errs = append(errs, fmt.Sprintf("HTTP %d: %s", resp.StatusCode, raw))
	}
	for _, e := range out.Errors {
		errs = append(errs, e.Message)
	}
	return out.Data, errs
}

// kinds is the state of each cached kind of the in-cluster cluster, by
// resource, as the admin sees it.
func (e *lpEnv) kinds(s *lpServer) (map[string]string, error) {
	data, errs := s.gql(e.admin, `{ cluster(name: "in-cluster") { status { state kinds { resource state error } } } }`, nil)
	if len(errs) > 0 {
		return nil, fmt.Errorf("%v", errs)
	}
	c, _ := data["cluster"].(map[string]any)
	if c == nil {
		return nil, fmt.Errorf("no in-cluster cluster in %v", data)
	}
	out := map[string]string{}
	for _, k := range c["status"].(map[string]any)["kinds"].([]any) {
		k := k.(map[string]any)
		out[k["resource"].(string)] = k["state"].(string)
	}
	return out, nil
}

// eventually polls cond every 200ms until it returns nil or timeout
// passes, and returns its last error.
func eventually(timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// start runs the server binary in the in-cluster environment (plus
// extra variables) and waits until it answers /healthz.
func (e *lpEnv) start(t *testing.T, extra ...string) *lpServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	// The pod's files where rest.InClusterConfig reads them, in a mount
	// namespace of the server's own: a tmpfs on /run (/var/run is a link
	// to it) hides the host's /run from the server only.
	script := `set -e
mount -t tmpfs tmpfs /run
mkdir -p /run/secrets/kubernetes.io/serviceaccount
cp "$1"/token "$1"/ca.crt "$1"/namespace /run/secrets/kubernetes.io/serviceaccount/
[ "$(readlink -f /var/run/secrets/kubernetes.io/serviceaccount/token)" = /run/secrets/kubernetes.io/serviceaccount/token ]
exec "$2"`
	s := &lpServer{base: "http://" + addr, done: make(chan struct{})}
	s.cmd = exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", e.saDir, e.bin)
	data := t.TempDir()
	env := slices.Clone(e.env)
	// The shell proxy's URL is this run's address (the chart's value names
	// the Service, which does not exist here).
	for i, v := range env {
		if strings.HasPrefix(v, "CLUSTERGRAPH_SHELL_PROXY_URL=") {
			env[i] = "CLUSTERGRAPH_SHELL_PROXY_URL=" + s.base
		}
	}
	// Later entries win over the chart's (os/exec keeps the last value of
	// a duplicate).
	env = append(env,
		// Loopback instead of the pod's every-address listener: this runs
		// on a shared machine. Everything else is the chart's.
		"CLUSTERGRAPH_LISTEN="+addr,
		"CLUSTERGRAPH_DATA_DIR="+data,
		"CLUSTERGRAPH_SHUTDOWN_DELAY=0",
		"HOME="+data)
	env = append(env, extra...)
	s.cmd.Env = env
	s.cmd.Stdout, s.cmd.Stderr = s, s
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(s.stop)
	if err := eventually(30*time.Second, func() error {
		select {
		case <-s.done:
			return fmt.Errorf("the server exited")
		default:
		}
		resp, err := http.Get(s.base + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}); err != nil {
		t.Fatalf("the server did not come up: %v\n%s", err, s.Log())
	}
	return s
}

// applyObjects applies objects to the cluster as its admin.
func (e *lpEnv) applyObjects(t *testing.T, objs ...*unstructured.Unstructured) {
	t.Helper()
	var docs []string
	for _, o := range objs {
		b, err := json.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, string(b))
	}
	cmd := testenv.KubectlCommand(t, e.c, "apply", "-f", "-")
	cmd.Stdin = strings.NewReader(strings.Join(docs, "\n---\n"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
}

func (e *lpEnv) kubectl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := testenv.Kubectl(t, e.c, args...)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return out
}

// right is one resource of one rule of a Role or ClusterRole: the unit
// the proof takes away.
type right struct {
	rule            int // index in the role's rules
	group, resource string
	verbs, names    []string
	// verb, when set, narrows the right to one of verbs (see perVerb).
	verb string
}

func (r right) String() string {
	if r.verb != "" {
		return fmt.Sprintf("%s/%s %s (rule %d)", r.group, r.resource, r.verb, r.rule)
	}
	return fmt.Sprintf("%s/%s %v (rule %d)", r.group, r.resource, r.verbs, r.rule)
}

// perVerb splits each right into one per verb, for roles whose every verb
// must be shown necessary on its own.
func perVerb(rs []right) []right {
	var out []right
	for _, r := range rs {
		for _, v := range r.verbs {
			r := r
			r.verb = v
			out = append(out, r)
		}
	}
	return out
}

// rightsOf lists every right of a role, rule by rule.
func rightsOf(t *testing.T, role *unstructured.Unstructured) []right {
	t.Helper()
	var out []right
	for i, pr := range into[rbacv1.ClusterRole](t, role).Rules { // a Role's rules have the same shape
		for _, g := range pr.APIGroups {
			for _, res := range pr.Resources {
				out = append(out, right{rule: i, group: g, resource: res, verbs: pr.Verbs, names: pr.ResourceNames})
			}
		}
	}
	return out
}

// without returns a copy of role with r's resource taken out of its rule
// (and the rule dropped when that was its only resource); for a right of
// one verb, the resource keeps the rule's other verbs in a rule of its
// own.
func without(t *testing.T, role *unstructured.Unstructured, r right) *unstructured.Unstructured {
	t.Helper()
	out := role.DeepCopy()
	rules, _, _ := unstructured.NestedSlice(out.Object, "rules")
	m := rules[r.rule].(map[string]any)
	resources, _, _ := unstructured.NestedStringSlice(m, "resources")
	resources = slices.DeleteFunc(resources, func(s string) bool { return s == r.resource })
	if len(resources) == 0 {
		rules = slices.Delete(rules, r.rule, r.rule+1)
	} else {
		_ = unstructured.SetNestedStringSlice(m, resources, "resources")
	}
	if r.verb != "" {
		if rest := slices.DeleteFunc(slices.Clone(r.verbs), func(v string) bool { return v == r.verb }); len(rest) > 0 {
			kept := map[string]any{"apiGroups": []any{r.group}, "resources": []any{r.resource}, "verbs": toAny(rest)}
			if len(r.names) > 0 {
				kept["resourceNames"] = toAny(r.names)
			}
			rules = append(rules, kept)
		}
	}
	_ = unstructured.SetNestedSlice(out.Object, rules, "rules")
	return out
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// applyAs applies a ConfigMap through the GraphQL apply mutation as token
// and returns nil when the apiserver took it, else why not. The server's
// own account has no write right at all, so a write that succeeds went to
// the apiserver as the caller.
func (e *lpEnv) applyAs(s *lpServer, token, namespace, name string) error {
	manifest := fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\ndata:\n  by: clustergraph\n", name)
	data, errs := s.gql(token, `mutation($m: String!, $ns: String) { apply(cluster: "in-cluster", manifest: $m, namespace: $ns) { succeeded results { error { message code } } } }`,
		map[string]any{"m": manifest, "ns": namespace})
	if len(errs) > 0 {
		return fmt.Errorf("%v", errs)
	}
	p, _ := data["apply"].(map[string]any)
	if p == nil {
		return fmt.Errorf("no apply payload in %v", data)
	}
	if p["succeeded"] != float64(1) {
		b, _ := json.Marshal(p["results"])
		return fmt.Errorf("not applied: %s", b)
	}
	return nil
}

// subscribe opens a graphql-transport-ws socket as token, waits for the
// connection_ack and starts query; next reads the subscription's next
// result into data, failing on anything but a result without errors.
func (s *lpServer) subscribe(ctx context.Context, token, query string) (next func(data any) error, closeWS func(), err error) {
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.base, "http")+"/query", &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		return nil, nil, err
	}
	send := func(v any) error {
		b, _ := json.Marshal(v)
		return ws.Write(ctx, websocket.MessageText, b)
	}
	type message struct {
		Type    string
		Payload json.RawMessage
	}
	read := func() (message, error) {
		var m message
		_, b, err := ws.Read(ctx)
		if err == nil {
			err = json.Unmarshal(b, &m)
		}
		return m, err
	}
	if err := send(map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + token}}); err != nil {
		ws.CloseNow()
		return nil, nil, err
	}
	if m, err := read(); err != nil || m.Type != "connection_ack" {
		ws.CloseNow()
		return nil, nil, fmt.Errorf("connection_init: %+v %w", m, err)
	}
	if err := send(map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": query}}); err != nil {
		ws.CloseNow()
		return nil, nil, err
	}
	next = func(data any) error {
		m, err := read()
		if err != nil {
			return err
		}
		var p struct {
			Data   json.RawMessage
			Errors []any
		}
		if m.Type != "next" || json.Unmarshal(m.Payload, &p) != nil || len(p.Errors) > 0 {
			return fmt.Errorf("%s %s", m.Type, m.Payload)
		}
		return json.Unmarshal(p.Data, data)
	}
	return next, func() { ws.CloseNow() }, nil
}

// watchFor subscribes (graphql-transport-ws) as token to ConfigMaps of
// namespace, creates one named name with kubectl once the stream is
// synced, and returns nil when its ADDED event arrives.
func (e *lpEnv) watchFor(t *testing.T, s *lpServer, token, namespace, name string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q := fmt.Sprintf(`subscription { watch(kind: "ConfigMap", namespace: %q) { type object { metadata { name } } } }`, namespace)
	next, closeWS, err := s.subscribe(ctx, token, q)
	if err != nil {
		return err
	}
	defer closeWS()
	created := false
	for {
		var d struct {
			Watch struct {
				Type   string
				Object struct{ Metadata struct{ Name string } }
			}
		}
		if err := next(&d); err != nil {
			return fmt.Errorf("watch: %w", err)
		}
		switch w := d.Watch; {
		case w.Type == "SYNCED" && !created:
			created = true
			if out, err := testenv.Kubectl(t, e.c, "-n", namespace, "create", "configmap", name); err != nil {
				return fmt.Errorf("%w: %s", err, out)
			}
		case w.Type == "ADDED" && w.Object.Metadata.Name == name:
			return nil
		}
	}
}

// terminalAs runs `echo` in pod through the terminal subscription as
// token: nil when its output and exit code 0 come back. Exec is the
// caller's (impersonated): the server's own account has no exec right.
func (e *lpEnv) terminalAs(s *lpServer, token, namespace, pod string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q := fmt.Sprintf(`subscription { terminal(cluster: "in-cluster", namespace: %q, pod: %q, command: ["sh", "-c", "echo lp-terminal-ok"], tty: false) { type data exitCode error } }`, namespace, pod)
	next, closeWS, err := s.subscribe(ctx, token, q)
	if err != nil {
		return err
	}
	defer closeWS()
	var out strings.Builder
	for {
		var d struct {
			Terminal struct {
				Type, Data, Error string
				ExitCode          *int
			}
		}
		if err := next(&d); err != nil {
			return fmt.Errorf("terminal: %w (output so far %q)", err, out.String())
		}
		if f := d.Terminal; f.Type == "EXIT" {
			if f.ExitCode == nil || *f.ExitCode != 0 || !strings.Contains(out.String(), "lp-terminal-ok") {
				return fmt.Errorf("terminal ended with %+v, output %q", f, out.String())
			}
			return nil
		}
		out.WriteString(d.Terminal.Data)
	}
}

// alertAndRead posts an alert to /alert with the webhook token and reads
// it back as token: nil when it is stored and visible.
func (e *lpEnv) alertAndRead(s *lpServer, token string) error {
	body := fmt.Sprintf(`[{"name": "web", "alert": "LPAlert", "namespace": %q, "message": "least privilege"}]`, e.work)
	req, err := http.NewRequest(http.MethodPost, s.base+"/alert", strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+lpAlertToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST /alert: %d", resp.StatusCode)
	}
	data, errs := s.gql(token, fmt.Sprintf(`{ alerts(filter: {namespaces: [%q]}) { totalCount } }`, e.work), nil)
	if len(errs) > 0 {
		return fmt.Errorf("%v", errs)
	}
	if n := data["alerts"].(map[string]any)["totalCount"]; n != float64(1) {
		return fmt.Errorf("%v alerts in %s, want the one posted", n, e.work)
	}
	return nil
}

// meteredAs reads the usage samples the collector stored for the work
// namespace's pods, as token: nil when there are some.
func (e *lpEnv) meteredAs(s *lpServer, token string) error {
	data, errs := s.gql(token, fmt.Sprintf(`{ pods(filter: {namespace: %q}) { nodes { usageHistory { cpuMillis } } } }`, e.work), nil)
	if len(errs) > 0 {
		return fmt.Errorf("%v", errs)
	}
	for _, n := range data["pods"].(map[string]any)["nodes"].([]any) {
		if h, _ := n.(map[string]any)["usageHistory"].([]any); len(h) > 0 {
			return nil
		}
	}
	return fmt.Errorf("no usage samples stored yet")
}

// usage reads the in-cluster cluster's node usage and the work namespace's
// pod usage as the admin: nil when both are there.
func (e *lpEnv) usage(s *lpServer, what string) error {
	query := map[string]string{
		"nodes": `{ cluster(name: "in-cluster") { usage { cpuMillis } } }`,
		"pods":  fmt.Sprintf(`{ pods(filter: {namespace: %q}) { nodes { usage { cpuMillis } } } }`, e.work),
	}[what]
	data, errs := s.gql(e.admin, query, nil)
	if len(errs) > 0 {
		return fmt.Errorf("%v", errs)
	}
	b, _ := json.Marshal(data)
	if !strings.Contains(string(b), `"cpuMillis"`) {
		return fmt.Errorf("no %s usage yet: %s", what, b)
	}
	return nil
}

// leaseHolder is the leader Lease's holder, empty when there is none.
func (e *lpEnv) leaseHolder(t *testing.T) string {
	out, _ := testenv.Kubectl(t, e.c, "-n", e.ns, "get", "lease", "clustergraph-collector", "-o", "jsonpath={.spec.holderIdentity}", "--ignore-not-found")
	return strings.TrimSpace(out)
}

// cacheKinds are the resources the ClusterRole grants list and watch on
// for the informer caches (every rule with watch).
func cacheKinds(t *testing.T, role *unstructured.Unstructured) []string {
	var out []string
	for _, r := range rightsOf(t, role) {
		if slices.Contains(r.verbs, "watch") {
			out = append(out, r.resource)
		}
	}
	slices.Sort(out)
	return out
}

// checkAllWorks is the proof's first half: with the chart's rights,
// everything the server does with its own account works.
func checkAllWorks(t *testing.T, e *lpEnv, s *lpServer, alice string) {
	if err := eventually(60*time.Second, func() error {
		resp, err := http.Get(s.base + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz %d", resp.StatusCode)
		}
		return nil
	}); err != nil {
		t.Fatalf("not ready: %v\n%s", err, s.Log())
	}
	// Every kind the server caches is READY, and those are exactly the
	// kinds the ClusterRole grants list and watch on: a kind cached without
	// a rule would be FORBIDDEN here, a rule for a kind not cached would
	// break nothing in the second half.
	var kinds map[string]string
	if err := eventually(30*time.Second, func() error {
		var err error
		if kinds, err = e.kinds(s); err != nil {
			return err
		}
		for k, st := range kinds {
			if st != "READY" {
				return fmt.Errorf("%s is %s", k, st)
			}
		}
		return nil
	}); err != nil {
		t.Errorf("kinds: %v (%v)", err, kinds)
	}
	var cached []string
	for k := range kinds {
		cached = append(cached, k)
	}
	slices.Sort(cached)
	if want := cacheKinds(t, e.role); !slices.Equal(cached, want) {
		t.Errorf("the server caches %v; the ClusterRole grants list/watch on %v", cached, want)
	}
	// Reads, as a restricted user: the pods of the Deployment in the one
	// namespace alice may read.
	if err := eventually(60*time.Second, func() error {
		data, errs := s.gql(alice, fmt.Sprintf(`{ pods(filter: {namespace: %q}) { totalCount } }`, e.work), nil)
		if len(errs) > 0 {
			return fmt.Errorf("%v", errs)
		}
		if n := data["pods"].(map[string]any)["totalCount"]; n != float64(2) {
			return fmt.Errorf("alice sees %v pods, want 2", n)
		}
		return nil
	}); err != nil {
		t.Errorf("read: %v", err)
	}
	// Writes impersonating alice (user, group devs, UID) and a service
	// account (its UID and the bound token's extras).
	if err := e.applyAs(s, alice, e.work, "by-alice"); err != nil {
		t.Errorf("write as alice: %v", err)
	}
	if err := e.applyAs(s, alice, e.ns, "alice-may-not"); err == nil || !strings.Contains(err.Error(), "FORBIDDEN") {
		t.Errorf("write as alice where she may not: %v, want FORBIDDEN (the apiserver decides for her, not the server)", err)
	}
	if err := e.applyAs(s, e.admin, e.work, "by-admin"); err != nil {
		t.Errorf("write as a service account: %v", err)
	}
	// A watch, as alice.
	if err := e.watchFor(t, s, alice, e.work, "watched"); err != nil {
		t.Errorf("watch: %v", err)
	}
	// Metrics of nodes and pods (metrics-server needs a while after the
	// cluster starts).
	for _, what := range []string{"nodes", "pods"} {
		if err := eventually(3*time.Minute, func() error { return e.usage(s, what) }); err != nil {
			t.Errorf("%s usage: %v", what, err)
		}
	}
	// The Lease: the collector and the event archive run.
	if err := eventually(30*time.Second, func() error {
		if e.leaseHolder(t) == "" {
			return fmt.Errorf("no holder")
		}
		return nil
	}); err != nil {
		t.Errorf("leader election: %v\n%s", err, s.Log())
	}
	// Metering: the collector (the leader) stores samples in the database
	// each tick (2 s here) and the graph reads them back.
	if err := eventually(60*time.Second, func() error { return e.meteredAs(s, e.admin) }); err != nil {
		t.Errorf("metering: %v", err)
	}
	// Alertmanager's webhook stores an alert; a caller reads it.
	if err := e.alertAndRead(s, e.admin); err != nil {
		t.Errorf("alert: %v", err)
	}
	// A terminal session in one of the Deployment's pods, as alice.
	pod := strings.TrimSpace(e.kubectl(t, "-n", e.work, "get", "pods", "-l", "app=web", "-o", "jsonpath={.items[0].metadata.name}"))
	if err := e.terminalAs(s, alice, e.work, pod); err != nil {
		t.Errorf("terminal: %v", err)
	}
}

// lpAlertToken is the webhook token of the proof's "all rights" runs.
const lpAlertToken = "lp-alert-token"

// breakage is what the proof expects to break without one right: check
// returns what it saw break (the error a caller got, say), or an error
// when it did not break.
type breakage struct {
	what  string
	check func(t *testing.T, e *lpEnv, s *lpServer, alice string) (string, error)
	// env is added to the server's environment for this run.
	env []string
}

// breaks names, for each right of the chart's default roles, what stops
// working without it. A right missing here fails the proof: say what it is
// for, or drop it from the chart.
func breaks(r right) (breakage, bool) {
	forbiddenKind := breakage{what: "the " + r.resource + " cache", check: func(t *testing.T, e *lpEnv, s *lpServer, _ string) (string, error) {
		err := eventually(20*time.Second, func() error {
			kinds, err := e.kinds(s)
			if err != nil {
				return err
			}
			if kinds[r.resource] != "FORBIDDEN" {
				return fmt.Errorf("%s is %q, want FORBIDDEN", r.resource, kinds[r.resource])
			}
			return nil
		})
		return "clusters { status { kinds } } has " + r.resource + " FORBIDDEN", err
	}}
	refused := func(what string, do func(e *lpEnv, s *lpServer, alice string) error, want string) breakage {
		return breakage{what: what, check: func(t *testing.T, e *lpEnv, s *lpServer, alice string) (string, error) {
			var seen error
			err := eventually(20*time.Second, func() error {
				seen = do(e, s, alice)
				if seen == nil || !strings.Contains(seen.Error(), want) {
					return fmt.Errorf("got %w, want an error containing %q", seen, want)
				}
				return nil
			})
			return fmt.Sprint(seen), err
		}}
	}
	writeAlice := func(e *lpEnv, s *lpServer, alice string) error { return e.applyAs(s, alice, e.work, "ablation") }
	writeSA := func(e *lpEnv, s *lpServer, _ string) error { return e.applyAs(s, e.admin, e.work, "ablation") }
	noLease := breakage{what: "leader election (no replica holds the Lease: no metering, no event archive)", check: func(t *testing.T, e *lpEnv, s *lpServer, _ string) (string, error) {
		time.Sleep(10 * time.Second) // several retry periods
		if h := e.leaseHolder(t); h != "" {
			return "", fmt.Errorf("the Lease is held by %s", h)
		}
		for _, line := range strings.Split(s.Log(), "\n") {
			if strings.Contains(line, "leases.coordination.k8s.io") && strings.Contains(line, "forbidden") {
				return "no Lease after 10s; the server logs: " + line, nil
			}
		}
		return "", fmt.Errorf("the server log names no refused Lease request")
	}}
	switch {
	// The caches' verbs one by one. Against this apiserver, client-go's
	// informers stream their first list over a watch (WatchListClient), so
	// watch alone fills a cache, and list alone keeps one current by
	// re-listing after every refused watch: each verb shows its own
	// breakage.
	case r.verb == "list" && slices.Contains(r.verbs, "watch"):
		// An apiserver without streaming lists (older, or with the
		// feature off) is asked for a plain LIST: emulated by turning
		// client-go's side of it off.
		forbiddenKind.what += " on an apiserver without streaming lists (client-go's WatchListClient off)"
		forbiddenKind.env = []string{"KUBE_FEATURE_WatchListClient=false"}
		return forbiddenKind, true
	case r.verb == "watch":
		return breakage{what: "the " + r.resource + " cache's watch (changes come only from re-lists, backing off up to 30s, each a full LIST)", check: func(t *testing.T, e *lpEnv, s *lpServer, _ string) (string, error) {
			var line string
			err := eventually(20*time.Second, func() error {
				for _, l := range strings.Split(s.Log(), "\n") {
					if strings.Contains(l, `cannot watch resource \"`+r.resource+`\"`) {
						line = l
						return nil
					}
				}
				return fmt.Errorf("the server log names no refused watch of %s", r.resource)
			})
			return line, err
		}}, true
	case slices.Contains(r.verbs, "watch"):
		return forbiddenKind, true
	case r.group == "metrics.k8s.io":
		return refused("usage of "+r.resource, func(e *lpEnv, s *lpServer, _ string) error { return e.usage(s, r.resource) }, "forbidden"), true
	case r.group == "" && r.resource == "users":
		return refused("writes as a user", writeAlice, "impersonate"), true
	case r.group == "" && r.resource == "groups":
		return refused("writes as a user with groups", writeAlice, "impersonate"), true
	case r.group == "" && r.resource == "serviceaccounts":
		return refused("writes as a service account", writeSA, "impersonate"), true
	case r.group == "authentication.k8s.io" && r.resource == "*":
		return refused("writes with the caller's UID and extras", writeSA, "impersonate"), true
	case r.group == "authentication.k8s.io" && r.resource == "tokenreviews":
		return refused("authentication (every request)", func(e *lpEnv, s *lpServer, _ string) error {
			_, errs := s.gql(e.admin, `{ clusters { name } }`, nil)
			if len(errs) > 0 {
				return fmt.Errorf("%v", errs)
			}
			return nil
		}, "HTTP"), true
	case r.group == "coordination.k8s.io" && r.resource == "leases" && r.verb == "update":
		// The first replica creates the Lease holding it, so without update
		// it leads until its first renewal, which fails.
		return breakage{what: "leader election (the leader cannot renew the Lease and loses it)", check: func(t *testing.T, e *lpEnv, s *lpServer, _ string) (string, error) {
			var line string
			err := eventually(40*time.Second, func() error {
				for _, l := range strings.Split(s.Log(), "\n") {
					if strings.Contains(l, `cannot update resource \"leases\"`) {
						line = l
						return nil
					}
				}
				return fmt.Errorf("the server log names no refused Lease update")
			})
			return line, err
		}}, true
	case r.group == "coordination.k8s.io" && r.resource == "leases":
		return noLease, true
	}
	return breakage{}, false
}

// install renders the chart for the proof's release with args, applies its
// RBAC objects to the cluster, and takes the server's environment from the
// Deployment. It returns the roles by kind/name.
func (e *lpEnv) install(t *testing.T, args ...string) map[string]*unstructured.Unstructured {
	t.Helper()
	out, err := runHelm(t, append([]string{"template", lpRelease, chartDir, "--namespace", e.ns}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	var rbacObjs []*unstructured.Unstructured
	roles := map[string]*unstructured.Unstructured{}
	e.env = nil
	for _, o := range parse(t, out).objs {
		switch o.GetKind() {
		case "ClusterRole", "Role":
			roles[o.GetKind()+"/"+o.GetName()] = o
			rbacObjs = append(rbacObjs, o)
		case "ServiceAccount", "ClusterRoleBinding", "RoleBinding":
			rbacObjs = append(rbacObjs, o)
		case "Deployment":
			// The server's environment is the Deployment's (these value
			// sets take nothing from a Secret).
			for _, ev := range into[appsv1.Deployment](t, o).Spec.Template.Spec.Containers[0].Env {
				if ev.ValueFrom != nil {
					t.Fatalf("%s comes from a Secret: the proof passes only values", ev.Name)
				}
				e.env = append(e.env, ev.Name+"="+ev.Value)
			}
		}
	}
	e.role = roles["ClusterRole/"+lpRelease]
	e.leaseRole = roles["Role/"+lpRelease+"-lease"]
	if e.role == nil || e.leaseRole == nil || e.env == nil {
		t.Fatalf("the chart rendered %v: want a ClusterRole, a lease Role and a Deployment", roles)
	}
	e.applyObjects(t, rbacObjs...)
	api, err := url.Parse(e.c.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	e.env = append(e.env, "PATH=/usr/bin:/bin", "KUBERNETES_SERVICE_HOST="+api.Hostname(), "KUBERNETES_SERVICE_PORT="+api.Port())
	return roles
}

// ablate takes each right of role away in turn (the rest of the chart's
// rights stay), starts the server, and checks that what breaks names
// says breaks.
func (e *lpEnv) ablate(t *testing.T, role *unstructured.Unstructured, rs []right, breaks func(right) (breakage, bool), alice string) {
	sa := "system:serviceaccount:" + e.ns + ":" + lpRelease
	for _, r := range rs {
		t.Run(role.GetKind()+" "+r.String(), func(t *testing.T) {
			b, ok := breaks(r)
			if !ok {
				t.Fatalf("nothing is known to break without %s: name what it is for in breaks, or drop it from the chart", r)
			}
			e.applyObjects(t, without(t, role, r))
			defer e.applyObjects(t, role)
			// The apiserver's authorizer follows RBAC objects through an
			// informer: wait until the right is gone.
			resource, sub, _ := strings.Cut(r.resource, "/")
			what := strings.TrimSuffix(resource+"."+r.group, ".")
			if len(r.names) > 0 {
				what += "/" + r.names[0] // a rule for named objects says no to unnamed questions
			}
			verb := r.verb
			if verb == "" {
				verb = r.verbs[len(r.verbs)-1]
			}
			canI := []string{"auth", "can-i", verb, what, "--as", sa}
			if sub != "" {
				canI = append(canI, "--subresource", sub) // "pods/exec" alone would name a pod called exec
			}
			if role.GetKind() == "Role" {
				canI = append(canI, "-n", role.GetNamespace())
			}
			if err := eventually(10*time.Second, func() error {
				out, _ := testenv.Kubectl(t, e.c, canI...)
				if strings.TrimSpace(out) != "no" {
					return fmt.Errorf("kubectl %v: %q", canI, out)
				}
				return nil
			}); err != nil && r.resource != "*" { // can-i cannot name every resource of a group
				t.Fatalf("the right is still granted: %v", err)
			}
			_, _ = testenv.Kubectl(t, e.c, "-n", e.ns, "delete", "lease", "clustergraph-collector", "--ignore-not-found")
			s := e.start(t, b.env...)
			if seen, err := b.check(t, e, s, alice); err != nil {
				t.Errorf("without %s, %s should break: %v\nserver log:\n%s", r, b.what, err, s.Log())
			} else {
				t.Logf("without %s, %s breaks: %s", r, b.what, seen)
			}
		})
	}
}

func TestInClusterLeastPrivilege(t *testing.T) {
	helm(t)
	testenv.Integration(t)
	if os.Geteuid() != 0 {
		t.Fatal("the in-cluster proof mounts the service account's files in a private mount namespace (unshare -m), which needs root")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Fatal("unshare (util-linux) is missing: the in-cluster proof needs it")
	}
	// A private cluster: the proof installs a CRD and edits RBAC.
	c := testenv.StartCluster(t, "cg-lp", 2)
	e := &lpEnv{c: c, ns: "clustergraph", work: "lp-work"}
	e.kubectl(t, "create", "namespace", e.ns)
	e.kubectl(t, "create", "namespace", e.work)
	e.install(t)

	// The pod's files.
	e.saDir = t.TempDir()
	token := strings.TrimSpace(e.kubectl(t, "-n", e.ns, "create", "token", lpRelease, "--duration", "2h"))
	ca, err := os.ReadFile(filepath.Join(filepath.Dir(c.Kubeconfig), "pki", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{"token": token, "ca.crt": string(ca), "namespace": e.ns} {
		if err := os.WriteFile(filepath.Join(e.saDir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	// The real binary, as the image carries it.
	e.bin = filepath.Join(t.TempDir(), "clustergraph")
	build := exec.Command("go", "build", "-o", e.bin, ".")
	build.Dir = testenv.Root()
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	// Callers: a service account bound to cluster-admin (its bound token
	// carries a UID and extras), and the static user alice (group devs,
	// UID alice-uid), who may edit in the work namespace only.
	e.kubectl(t, "-n", e.work, "create", "serviceaccount", "lp-admin")
	e.kubectl(t, "create", "clusterrolebinding", "lp-admin", "--clusterrole", "cluster-admin", "--serviceaccount", e.work+":lp-admin")
	e.admin = strings.TrimSpace(e.kubectl(t, "-n", e.work, "create", "token", "lp-admin", "--duration", "2h"))
	e.kubectl(t, "-n", e.work, "create", "rolebinding", "alice-edit", "--clusterrole", "edit", "--user", "alice")
	alice := testenv.StaticTokens["alice"]
	// Something to read, and openyurt's NodePool kind, so the node-pool
	// rule has something to do.
	e.kubectl(t, "-n", e.work, "create", "deployment", "web", "--image", "example/web:1", "--replicas", "2")
	testenv.CreateCRD(t, c, schema.GroupVersionResource{Group: "apps.openyurt.io", Version: "v1beta1", Resource: "nodepools"}, "NodePool", false)

	// The defaults: everything works with the chart's rights, and each
	// right taken away breaks something named.
	t.Run("defaults", func(t *testing.T) {
		t.Run("all rights", func(t *testing.T) {
			checkAllWorks(t, e, e.start(t, "CLUSTERGRAPH_METERING_INTERVAL=2s", "CLUSTERGRAPH_ALERT_TOKEN="+lpAlertToken), alice)
		})
		if t.Failed() {
			t.FailNow()
		}
		e.ablate(t, e.role, perVerb(rightsOf(t, e.role)), breaks, alice)
		// The lease Role verb by verb: get, create and update are each
		// needed at a different step of leader election.
		e.ablate(t, e.leaseRole, perVerb(rightsOf(t, e.leaseRole)), breaks, alice)
	})

	// The optional rights: the SubjectAccessReview fallback, kubelet
	// traffic and cluster shells, each with what needs it.
	t.Run("optional", func(t *testing.T) {
		defaults := rightsOf(t, e.role)
		e.kubectl(t, "create", "namespace", lpShells)
		roles := e.install(t, "--set", "authzFallback=sar,metering.trafficSource=kubelet,metering.interval=2s,"+
			"metering.trafficPath=/metrics/nodes/{node}/metrics/cadvisor,"+ // where the testbed's kwok serves cAdvisor (tools/testbed/cluster.sh)
			"shell.namespace="+lpShells+",shell.proxyURL=http://overridden-at-start:8080")
		// Beyond the defaults' ClusterRole rights (which the first half
		// proved), only the new ones are taken away.
		var added []right
		for _, r := range rightsOf(t, e.role) {
			if !slices.ContainsFunc(defaults, func(d right) bool { return d.group == r.group && d.resource == r.resource }) {
				added = append(added, r)
			}
		}
		shellRole := roles["Role/"+lpRelease+"-shell"]
		if len(added) != 2 || shellRole == nil {
			t.Fatalf("optional values added %v and shell Role %v: want subjectaccessreviews, nodes/proxy and the shell Role", added, shellRole != nil)
		}
		e.setUpOptional(t)
		t.Run("all rights", func(t *testing.T) {
			checkOptionalWorks(t, e, e.start(t), alice)
		})
		if t.Failed() {
			t.FailNow()
		}
		e.ablate(t, e.role, added, optionalBreaks, alice)
		// Every verb of the shell Role on its own: a shell needs each of
		// them at a different step.
		e.ablate(t, shellRole, perVerb(rightsOf(t, shellRole)), optionalBreaks, alice)
	})
}

// lpShells is the namespace of the proof's cluster shells.
const lpShells = "lp-shells"

// nodeToken is the testbed's static token of system:node:node-000000
// (group system:nodes): the Node authorizer, not RBAC, lets it get the
// Secrets of pods bound to its node, which only the SubjectAccessReview
// fallback can see.
var nodeToken = testenv.StaticTokens["node"]

// setUpOptional prepares what the optional features act on: a Secret used
// by a pod on node-000000 (for the SAR fallback), and alice's right to
// open cluster shells.
func (e *lpEnv) setUpOptional(t *testing.T) {
	t.Helper()
	e.kubectl(t, "-n", e.work, "create", "secret", "generic", "node-secret", "--from-literal", "k=v")
	pod := fmt.Sprintf(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"on-node-0","namespace":%q},
"spec":{"nodeName":"node-000000","containers":[{"name":"app","image":"example/web:1"}],
"volumes":[{"name":"s","secret":{"secretName":"node-secret"}}]}}`, e.work)
	obj := &unstructured.Unstructured{}
	if err := obj.UnmarshalJSON([]byte(pod)); err != nil {
		t.Fatal(err)
	}
	e.applyObjects(t, obj)
	// A right clustergraph defines (no apiserver serves clustershells, so
	// kubectl create role would refuse to name it).
	role := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
		"metadata": map[string]any{"name": "shell-user", "namespace": lpShells},
		"rules":    []any{map[string]any{"apiGroups": []any{"clustergraph.io"}, "resources": []any{"clustershells"}, "verbs": []any{"create"}}},
	}}
	e.applyObjects(t, role)
	e.kubectl(t, "-n", lpShells, "create", "rolebinding", "shell-user", "--role", "shell-user", "--user", "alice")
}

// nodeSecret looks up node-secret by id as node-000000: nil when the
// server returns it.
func (e *lpEnv) nodeSecret(s *lpServer) error {
	id := k8s.ObjectID{Cluster: "in-cluster", GVK: schema.GroupVersionKind{Version: "v1", Kind: "Secret"}, Namespace: e.work, Name: "node-secret"}.Encode()
	data, errs := s.gql(nodeToken, `query($id: ID!) { object(id: $id) { metadata { name } } }`, map[string]any{"id": id})
	if len(errs) > 0 {
		return fmt.Errorf("%v", errs)
	}
	if data["object"] == nil {
		return fmt.Errorf("the node's lookup of its pod's Secret is null")
	}
	return nil
}

// trafficRead is nil once the collector read every node's cAdvisor
// counters (the baseline of kubelet traffic), else the log's traffic
// complaint.
func trafficRead(s *lpServer) error {
	log := s.Log()
	if strings.Contains(log, "metering: traffic baseline read") {
		return nil
	}
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "metering: traffic") {
			return fmt.Errorf("%s", line)
		}
	}
	return fmt.Errorf("no traffic read yet")
}

// shellRun is what one cluster shell did.
type shellRun struct {
	pod string // the shell pod's name, when one started
	err error  // why it failed to start or ended abnormally
}

// shell opens a cluster shell as token, types exit, and waits for its end.
// Shell pods and Secrets of earlier runs are removed first, so the one
// found is this run's.
func (e *lpEnv) shell(t *testing.T, s *lpServer, token string) shellRun {
	t.Helper()
	e.kubectl(t, "-n", lpShells, "delete", "pods,secrets", "-l", "clustergraph.io/shell", "--grace-period=0", "--force", "--wait=true")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.base, "http")+"/query", &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		return shellRun{err: err}
	}
	defer ws.CloseNow()
	send := func(v any) {
		b, _ := json.Marshal(v)
		_ = ws.Write(ctx, websocket.MessageText, b)
	}
	send(map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + token}})
	if _, _, err := ws.Read(ctx); err != nil {
		return shellRun{err: err}
	}
	send(map[string]any{"id": "sh", "type": "subscribe", "payload": map[string]any{
		"query": `subscription { terminal: clusterShell(cluster: "in-cluster", cols: 80, rows: 24) { session type data exitCode error } }`}})
	var run shellRun
	for {
		_, b, err := ws.Read(ctx)
		if err != nil {
			run.err = fmt.Errorf("socket: %w", err)
			return run
		}
		var m struct {
			ID, Type string
			Payload  struct {
				Data struct {
					Terminal *struct {
						Session, Type string
						Error         *string
					}
				}
				Errors []struct{ Message string }
			}
		}
		_ = json.Unmarshal(b, &m)
		if m.ID != "sh" {
			continue // terminalInput's answer
		}
		if m.Type == "error" || len(m.Payload.Errors) > 0 {
			run.err = fmt.Errorf("%s", b)
			return run
		}
		if m.Type == "complete" {
			return run
		}
		f := m.Payload.Data.Terminal
		if f == nil {
			continue
		}
		switch f.Type {
		case "STARTED":
			out, _ := testenv.Kubectl(t, e.c, "-n", lpShells, "get", "pods", "-l", "clustergraph.io/shell", "-o", "jsonpath={.items[0].metadata.name}")
			run.pod = strings.TrimSpace(out)
			send(map[string]any{"id": "in", "type": "subscribe", "payload": map[string]any{
				"query":     `mutation($s: ID!) { terminalInput(session: $s, data: "exit\n") }`,
				"variables": map[string]any{"s": f.Session}}})
		case "EXIT":
			if f.Error != nil && *f.Error != "" {
				run.err = fmt.Errorf("exit: %s", *f.Error)
			}
			return run
		}
	}
}

// shellGone is nil once the shell's pod and Secret (both named pod) are
// gone; kinds narrows the check.
func (e *lpEnv) shellGone(t *testing.T, pod string, kinds ...string) error {
	if len(kinds) == 0 {
		kinds = []string{"pod", "secret"}
	}
	for _, kind := range kinds {
		out, _ := testenv.Kubectl(t, e.c, "-n", lpShells, "get", kind, pod, "--ignore-not-found", "-o", "name")
		if strings.TrimSpace(out) != "" {
			return fmt.Errorf("%s %s is still there", kind, pod)
		}
	}
	return nil
}

// checkOptionalWorks: with the optional values' rights, the SAR fallback
// shows what the Node authorizer grants, kubelet traffic is read, and a
// cluster shell starts, runs and is cleaned up.
func checkOptionalWorks(t *testing.T, e *lpEnv, s *lpServer, alice string) {
	if err := eventually(60*time.Second, func() error { return e.nodeSecret(s) }); err != nil {
		t.Errorf("SubjectAccessReview fallback: %v", err)
	}
	if err := eventually(30*time.Second, func() error { return trafficRead(s) }); err != nil {
		t.Errorf("kubelet traffic: %v", err)
	}
	run := e.shell(t, s, alice)
	if run.err != nil || run.pod == "" {
		t.Fatalf("cluster shell: %+v\n%s", run, s.Log())
	}
	if err := eventually(10*time.Second, func() error { return e.shellGone(t, run.pod) }); err != nil {
		t.Errorf("cluster shell cleanup: %v", err)
	}
}

// optionalBreaks names what breaks without each optional right.
func optionalBreaks(r right) (breakage, bool) {
	shellFails := breakage{what: "cluster shells", check: func(t *testing.T, e *lpEnv, s *lpServer, alice string) (string, error) {
		run := e.shell(t, s, alice)
		if run.err == nil || !strings.Contains(strings.ToLower(run.err.Error()), "forbidden") {
			return "", fmt.Errorf("the shell ran (%+v), want it refused as forbidden", run)
		}
		return run.err.Error(), nil
	}}
	switch {
	case r.group == "authorization.k8s.io" && r.resource == "subjectaccessreviews":
		return breakage{what: "the SubjectAccessReview fallback", check: func(t *testing.T, e *lpEnv, s *lpServer, _ string) (string, error) {
			// Give the cluster time to be served, then the lookup must fail.
			_ = eventually(20*time.Second, func() error { _, err := e.kinds(s); return err })
			err := e.nodeSecret(s)
			if err == nil {
				return "", fmt.Errorf("the node still gets its pod's Secret")
			}
			return err.Error(), nil
		}}, true
	case r.group == "" && r.resource == "nodes/proxy":
		return breakage{what: "metering's kubelet traffic", check: func(t *testing.T, e *lpEnv, s *lpServer, _ string) (string, error) {
			var seen error
			err := eventually(30*time.Second, func() error {
				seen = trafficRead(s)
				if seen == nil || !strings.Contains(seen.Error(), "forbidden") {
					return fmt.Errorf("got %w, want the traffic refused", seen)
				}
				return nil
			})
			return fmt.Sprint(seen), err
		}}, true
	case r.group == "" && r.verb == "delete" && (r.resource == "pods" || r.resource == "secrets"):
		return breakage{what: "cleanup of a shell's " + r.resource, check: func(t *testing.T, e *lpEnv, s *lpServer, alice string) (string, error) {
			run := e.shell(t, s, alice)
			if run.err != nil || run.pod == "" {
				return "", fmt.Errorf("the shell did not run: %+v", run)
			}
			kind := strings.TrimSuffix(r.resource, "s")
			time.Sleep(5 * time.Second)
			if err := e.shellGone(t, run.pod, kind); err != nil {
				return err.Error() + " 5s after the session ended", nil
			}
			return "", fmt.Errorf("the shell's %s is gone all the same", kind)
		}}, true
	case r.group == "" && (r.resource == "pods" || r.resource == "secrets" || r.resource == "pods/exec"):
		return shellFails, true
	}
	return breakage{}, false
}
