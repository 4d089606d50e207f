package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clustergraph/clustergraph/internal/testenv"
	"github.com/clustergraph/clustergraph/metrics"
)

// TestMetrics runs the server as main wires it, with authentication, the
// authorizer fallback and --metrics-listen, over both test clusters; makes
// real traffic as a service account with a distinctive name (queries, a
// failing one, an unauthenticated one, a websocket subscription, alerts);
// and scrapes /metrics: the series moved, the per-cluster ones name both
// clusters, a cache's object count is what the cache holds, the exposition
// passes client_golang's linter, and no label carries the user's name, its
// token, its namespace or its objects' names.
func TestMetrics(t *testing.T) {
	cs := testenv.Clusters(t)
	if len(cs) < 2 {
		t.Fatalf("want the two seeded clusters, have %d", len(cs))
	}
	id := cs[0]
	ctx := context.Background()
	suffix := randomHex(t)
	ns, saName, podName := "cg-metrics-"+suffix, "metrics-canary-"+suffix, "metrics-pod-"+suffix
	user := "system:serviceaccount:" + ns + ":" + saName

	// The canary: a service account of the identity cluster that may view
	// everything there (not nodes, which view leaves out).
	if _, err := id.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = id.Client.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}) })
	if _, err := id.Client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: saName}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: saName},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: saName}}}
	if _, err := id.Client.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = id.Client.RbacV1().ClusterRoleBindings().Delete(ctx, saName, metav1.DeleteOptions{}) })
	tr, err := id.Client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, saName, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	token := tr.Status.Token

	metricsAddr := freeAddr(t)
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	base, done := startServe(t, sctx, "--insecure-disable-auth=false", "--kubeconfig", cs[0].Kubeconfig+string(os.PathListSeparator)+cs[1].Kubeconfig,
		"--identity-cluster", id.Context, "--authz-fallback", "sar", "--alert-token", "alert-"+suffix, "--metrics-listen", metricsAddr)
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("serve returned %v", err)
		}
	}()
	scrapeURL := "http://" + metricsAddr + "/metrics"

	// The API's own address serves them too, to this host (and to callers
	// with a token: TestReadyzDetail).
	if resp, err := http.Get(base + "/metrics"); err != nil {
		t.Fatal(err)
	} else {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "clustergraph_") {
			t.Errorf("GET /metrics on the API's address from this host: %d %.200s", resp.StatusCode, b)
		}
	}

	// Both clusters READY, as the scrape says.
	eventually(t, 2*time.Minute, "both clusters READY in the scrape", func() bool {
		fams := scrape(t, scrapeURL)
		return value(fams, "clustergraph_cluster_state", map[string]string{"cluster": cs[0].Context, "state": "READY"}) == 1 &&
			value(fams, "clustergraph_cluster_state", map[string]string{"cluster": cs[1].Context, "state": "READY"}) == 1
	})
	before := scrape(t, scrapeURL)

	// post sends a query, and its operation's name as clients send it.
	post := func(token, name, query string) map[string]any {
		t.Helper()
		b, _ := json.Marshal(map[string]any{"query": query, "operationName": name})
		req, _ := http.NewRequest(http.MethodPost, base+"/query", strings.NewReader(string(b)))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return out
	}
	// A query (its first use of the token is a TokenReview, the second a
	// cache hit), a query that fails validation, one RBAC refuses and the
	// fallback asks the apiserver about, an unauthenticated request, and
	// a token the identity cluster refuses.
	if out := post(token, "MetricsProbe", `query MetricsProbe { clusters { name } }`); out["errors"] != nil {
		t.Fatalf("MetricsProbe: %v", out)
	}
	if out := post(token, "MetricsProbe", `query MetricsProbe { clusters { name } }`); out["errors"] != nil {
		t.Fatalf("MetricsProbe again: %v", out)
	}
	if out := post(token, "MetricsBroken", `query MetricsBroken { clusters { noSuchField } }`); out["errors"] == nil {
		t.Fatalf("MetricsBroken answered: %v", out)
	}
	post(token, "MetricsNodes", `query MetricsNodes { nodes(clusters: ["`+id.Context+`"]) { totalCount } }`)
	post("", "", `{ clusters { name } }`)
	post("not-a-token-"+suffix, "", `{ clusters { name } }`)

	// Alerts: one stored, one refused for its credentials.
	for _, tok := range []string{"alert-" + suffix, "wrong"} {
		req, _ := http.NewRequest(http.MethodPost, base+"/alert", strings.NewReader(`[{"alert": "MetricsCanary", "namespace": "`+ns+`", "name": "`+podName+`"}]`))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}

	// A subscription over a websocket, which sees a pod created.
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/query", &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	send := func(v any) {
		b, _ := json.Marshal(v)
		if err := ws.Write(ctx, websocket.MessageText, b); err != nil {
			t.Fatal(err)
		}
	}
	read := func() map[string]any {
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		_, b, err := ws.Read(rctx)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		return m
	}
	send(map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + token}})
	if m := read(); m["type"] != "connection_ack" {
		t.Fatalf("init: %v", m)
	}
	send(map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{
		"query": `subscription MetricsWatch { watch(kind: "Pod", clusters: ["` + id.Context + `"], namespace: "` + ns + `") { type object { metadata { name } } } }`}})
	if m := read(); m["type"] != "next" || !strings.Contains(mustJSON(m), "SYNCED") {
		t.Fatalf("first event: %v", m)
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: podName, Namespace: ns},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example/app:1"}}}}
	if _, err := id.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for m := read(); !strings.Contains(mustJSON(m), podName); m = read() {
	}

	during := scrape(t, scrapeURL)
	delta := func(name string, labels map[string]string) float64 {
		return value(during, name, labels) - value(before, name, labels)
	}
	probe := map[string]string{"operation": "MetricsProbe", "type": "query", "code": "OK"}
	for _, c := range []struct {
		what        string
		name        string
		labels      map[string]string
		least, most float64
	}{
		{"MetricsProbe answered OK", "clustergraph_graphql_operations_total", probe, 2, 2},
		{"MetricsProbe timed", "clustergraph_graphql_operation_duration_seconds", map[string]string{"operation": "MetricsProbe", "type": "query"}, 2, 2},
		{"MetricsBroken refused", "clustergraph_graphql_operations_total", map[string]string{"operation": "MetricsBroken", "type": "", "code": "BAD_USER_INPUT"}, 1, 1},
		{"MetricsWatch started", "clustergraph_graphql_operations_total", map[string]string{"operation": "MetricsWatch", "type": "subscription", "code": "OK"}, 1, 1},
		{"bad input errors", "clustergraph_graphql_errors_total", map[string]string{"code": "BAD_USER_INPUT"}, 1, 1e9},
		{"unauthenticated errors", "clustergraph_graphql_errors_total", map[string]string{"code": "UNAUTHENTICATED"}, 2, 1e9},
		{"token cache hits", "clustergraph_token_cache_hits_total", nil, 1, 1e9},
		{"token cache misses", "clustergraph_token_cache_misses_total", nil, 2, 1e9},
		{"accepted TokenReviews", "clustergraph_token_review_duration_seconds", map[string]string{"result": "authenticated"}, 1, 1e9},
		{"refused TokenReviews", "clustergraph_token_review_duration_seconds", map[string]string{"result": "unauthenticated"}, 1, 1e9},
		{"SubjectAccessReviews of the fallback", "clustergraph_sar_fallback_reviews_total", map[string]string{"cluster": id.Context}, 1, 1e9},
		{"hub deliveries", "clustergraph_hub_deliveries_total", map[string]string{"cluster": id.Context}, 1, 1e9},
		{"apiserver requests", "clustergraph_apiserver_requests_total", map[string]string{"host": hostOf(t, id)}, 1, 1e9},
		{"apiserver request latency", "clustergraph_apiserver_request_duration_seconds", map[string]string{"host": hostOf(t, id)}, 1, 1e9},
		{"database statements", "clustergraph_db_operation_duration_seconds", map[string]string{"table": "alerts"}, 1, 1e9},
		{"alerts received", "clustergraph_alerts_received_total", map[string]string{"source": "webhook"}, 1, 1},
		{"alert deliveries refused", "clustergraph_alert_deliveries_rejected_total", map[string]string{"source": "webhook", "reason": "unauthorized"}, 1, 1},
	} {
		if d := delta(c.name, c.labels); d < c.least || d > c.most {
			t.Errorf("%s: %s%v moved by %v, want %v to %v", c.what, c.name, c.labels, d, c.least, c.most)
		}
	}
	for _, c := range []struct {
		what   string
		name   string
		labels map[string]string
	}{
		{"a websocket open", "clustergraph_websocket_connections", nil},
		{"a watch running", "clustergraph_graphql_subscriptions", map[string]string{"field": "watch"}},
	} {
		if v := value(during, c.name, c.labels); v < 1 {
			t.Errorf("%s: %s%v is %v", c.what, c.name, c.labels, v)
		}
	}
	for _, c := range cs {
		if value(during, "clustergraph_cluster_info", map[string]string{"cluster": c.Context, "host": hostOf(t, c)}) != 1 {
			t.Errorf("no clustergraph_cluster_info for %s at %s", c.Context, hostOf(t, c))
		}
		synced := value(during, "clustergraph_cluster_last_sync_timestamp_seconds", map[string]string{"cluster": c.Context})
		if age := time.Since(time.Unix(int64(synced), 0)); age < 0 || age > time.Minute {
			t.Errorf("%s last synced %s ago", c.Context, age)
		}
		if value(during, "clustergraph_cluster_cached_objects", map[string]string{"cluster": c.Context, "resource": "pods"}) < 1 {
			t.Errorf("%s caches no pod", c.Context)
		}
	}

	// A cache's object count is what the cache holds: the namespaces the
	// canary (who may list them all) reads from it.
	eventually(t, 30*time.Second, "the scraped namespace count to equal the cached list's", func() bool {
		labels := map[string]string{"cluster": id.Context, "resource": "namespaces"}
		first := value(scrape(t, scrapeURL), "clustergraph_cluster_cached_objects", labels)
		out := post(token, "", `{ namespaces(clusters: ["`+id.Context+`"]) { totalCount } }`)
		listed, _ := out["data"].(map[string]any)["namespaces"].(map[string]any)["totalCount"].(float64)
		second := value(scrape(t, scrapeURL), "clustergraph_cluster_cached_objects", labels)
		return first == listed && listed == second && listed > 0
	})

	// The subscription ends with the socket: the gauges come back down.
	ws.Close(websocket.StatusNormalClosure, "")
	eventually(t, 10*time.Second, "the websocket and the watch to be counted closed", func() bool {
		fams := scrape(t, scrapeURL)
		return value(fams, "clustergraph_websocket_connections", nil) == value(before, "clustergraph_websocket_connections", nil) &&
			value(fams, "clustergraph_graphql_subscriptions", map[string]string{"field": "watch"}) == value(before, "clustergraph_graphql_subscriptions", map[string]string{"field": "watch"})
	})

	// The exposition passes the linter, as gathered and as served.
	problems, err := testutil.GatherAndLint(metrics.Registry)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(scrapeURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	served, err := promlint.New(strings.NewReader(string(body))).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range append(problems, served...) {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	// Nothing of the caller reaches a label.
	if os.Getenv("CLUSTERGRAPH_TEST_DUMP_METRICS") != "" {
		t.Logf("scrape:\n%s", body)
	}
	for _, secret := range []string{token, saName, user, ns, podName, suffix} {
		if strings.Contains(string(body), secret) {
			t.Errorf("the scrape carries %q", secret)
		}
	}
}

// scrape reads the exposition at url.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// value adds up the series of a scraped family (see metrics.FamilySum).
func value(fams map[string]*dto.MetricFamily, name string, match map[string]string) float64 {
	if f := fams[name]; f != nil {
		return metrics.FamilySum(f, match)
	}
	return 0
}

// hostOf is a test cluster's apiserver host:port, as the series name it.
func hostOf(t *testing.T, c testenv.Cluster) string {
	t.Helper()
	u, err := url.Parse(c.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// freeAddr is a loopback address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// randomHex is a short random suffix for the names a test owns.
func randomHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestMetricsListenConfig: the metrics are off unless an address is set,
// by flag or by CLUSTERGRAPH_METRICS_LISTEN.
func TestMetricsListenConfig(t *testing.T) {
	cfg, err := parseConfig(nil, func(string) string { return "" })
	if err != nil || cfg.metricsListen != "" {
		t.Errorf("default: %q, %v; want off", cfg.metricsListen, err)
	}
	env := map[string]string{"CLUSTERGRAPH_METRICS_LISTEN": "0.0.0.0:9090"}
	cfg, err = parseConfig(nil, func(k string) string { return env[k] })
	if err != nil || cfg.metricsListen != "0.0.0.0:9090" {
		t.Errorf("from the environment: %q, %v", cfg.metricsListen, err)
	}
	cfg, err = parseConfig([]string{"--metrics-listen", "127.0.0.1:9464"}, func(k string) string { return env[k] })
	if err != nil || cfg.metricsListen != "127.0.0.1:9464" {
		t.Errorf("the flag over the environment: %q, %v", cfg.metricsListen, err)
	}
}
