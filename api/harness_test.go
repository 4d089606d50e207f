package api_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/clustergraph/clustergraph/alerting"
	"github.com/clustergraph/clustergraph/api"
	"github.com/clustergraph/clustergraph/auth"
	"github.com/clustergraph/clustergraph/caller"
	"github.com/clustergraph/clustergraph/db"
	"github.com/clustergraph/clustergraph/internal/testenv"
	"github.com/clustergraph/clustergraph/k8s"
	"github.com/clustergraph/clustergraph/reqlog"
	"github.com/clustergraph/clustergraph/terminal"
)

// server is clustergraph under test: a real registry over real clusters and
// the real HTTP handler on a local port.
type server struct {
	URL      string
	Registry *k8s.Registry
	// requests counts HTTP requests clustergraph sent to any apiserver;
	// impersonated those made as a caller (Impersonate-User).
	requests, impersonated *atomic.Int64
	// sent records every request clustergraph sent to an apiserver.
	sent *sentLog
	// token, when set, is sent as a bearer token.
	token string
	// hub streams alerts when the server has a database.
	hub *alerting.Hub
}

// as returns a client of the same server that sends token.
func (s *server) as(token string) *server {
	c := *s
	c.token = token
	return &c
}

type serverOpts struct {
	kubeconfigs   []string
	maxPage       int
	probeInterval time.Duration
	// waitReady waits for every cluster to be READY before returning.
	waitReady bool
	// terminal bounds terminal sessions.
	terminal terminal.Limits
	// authTTL is how long an accepted token is remembered (default 30 s).
	authTTL time.Duration
	// configHook edits the handler's configuration.
	configHook func(*api.Config)
	// auth turns authentication on (identity: the first kubeconfig's
	// current context); off, every request reads as clustergraph itself.
	auth bool
	// db, when set, is the server's database; its alert hub polls every
	// 100 ms.
	db *db.Handle
	// authzFallback is api.Config.AuthzFallback; accessReview replaces the
	// SubjectAccessReview it makes.
	authzFallback string
	accessReview  k8s.ReviewFunc
	// maxListObjects is k8s.RegistryConfig.MaxListObjects.
	maxListObjects int
	// syncDeadline and uncached are k8s.RegistryConfig.SyncDeadline and
	// Uncached.
	syncDeadline time.Duration
	uncached     map[string]string
	// fleetWide is auth.Config.FleetWideSystemUsers.
	fleetWide []string
	// clusterSecrets is k8s.RegistryConfig.ClusterSecrets.
	clusterSecrets *k8s.ClusterSecrets
}

type countingTransport struct {
	next            http.RoundTripper
	n, impersonated *atomic.Int64
	sent            *sentLog
}

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	as := r.Header.Get("Impersonate-User")
	if as != "" {
		c.impersonated.Add(1)
	}
	c.sent.add(sentRequest{As: as, Method: r.Method, Path: r.URL.Path, Query: r.URL.Query()})
	return c.next.RoundTrip(r)
}

// sentRequest is one request clustergraph sent to an apiserver; As is the
// impersonated user ("" for clustergraph's own).
type sentRequest struct {
	As, Method, Path string
	Query            url.Values
}

// sentLog records the requests clustergraph sends.
type sentLog struct {
	mu   sync.Mutex
	reqs []sentRequest
}

func (l *sentLog) add(r sentRequest) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reqs = append(l.reqs, r)
}

// since returns the requests after the first n; len(l.since(0)) is a mark.
func (l *sentLog) since(n int) []sentRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.reqs[n:])
}

func startServer(t testing.TB, o serverOpts) *server {
	t.Helper()
	if o.probeInterval == 0 {
		o.probeInterval = 500 * time.Millisecond
	}
	s := &server{requests: &atomic.Int64{}, impersonated: &atomic.Int64{}, sent: &sentLog{}}
	log := testLogger()
	s.Registry = k8s.NewRegistry(k8s.RegistryConfig{
		Kubeconfigs:   o.kubeconfigs,
		PollInterval:  200 * time.Millisecond,
		ProbeInterval: o.probeInterval,
		ProbeTimeout:  2 * time.Second,
		Logger:        log,
		WrapTransport: func(rt http.RoundTripper) http.RoundTripper {
			return countingTransport{rt, s.requests, s.impersonated, s.sent}
		},
		AccessReview:   o.accessReview,
		MaxListObjects: o.maxListObjects,
		SyncDeadline:   o.syncDeadline,
		Uncached:       o.uncached,
		ClusterSecrets: o.clusterSecrets,
	})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := s.Registry.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var authn *auth.Authenticator
	if o.auth {
		authn = auth.New(auth.Config{Registry: s.Registry, TTL: o.authTTL, FleetWideSystemUsers: o.fleetWide})
	}
	cfg := api.Config{Registry: s.Registry, Authenticator: authn, MaxPage: o.maxPage, Terminal: o.terminal, AuthzFallback: o.authzFallback, Logger: log}
	if o.db != nil {
		s.hub = alerting.NewHub(o.db.Store, 100*time.Millisecond, log)
		go s.hub.Run(ctx)
		cfg.DB, cfg.Alerts = o.db, s.hub
	}
	if o.configHook != nil {
		o.configHook(&cfg)
	}
	hs := httptest.NewServer(api.NewHandler(cfg))
	t.Cleanup(hs.Close)
	s.URL = hs.URL
	if o.waitReady {
		eventually(t, 2*time.Minute, "all clusters READY", func() bool {
			cs := s.Registry.Clusters()
			for _, c := range cs {
				if c.Status().State != k8s.StateReady {
					return false
				}
			}
			return len(cs) > 0
		})
	}
	return s
}

// testLogger is the servers' logger: silent unless -v. client-go logs
// through klog, a process global, so it is pointed at the same logger once;
// watches that end when a test stops its server or cluster are expected.
// Whatever it logs also goes to logFile, which the run checks for
// secrets (see leak_test.go).
var testLogger = sync.OnceValue(func() *slog.Logger {
	var out io.Writer = logFile
	if testing.Verbose() {
		out = io.MultiWriter(logFile, os.Stderr)
	}
	log := slog.New(reqlog.Handler{Handler: slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug})})
	klog.SetSlogLogger(log)
	return log
})

// kubeconfigs lists the clusters' kubeconfig files.
func kubeconfigs(cs []testenv.Cluster) []string {
	paths := make([]string, len(cs))
	for i, c := range cs {
		paths[i] = c.Kubeconfig
	}
	return paths
}

// seeded starts clustergraph over the seeded test clusters.
func seeded(t *testing.T) (*server, []testenv.Cluster) {
	t.Helper()
	cs := testenv.Clusters(t)
	paths := kubeconfigs(cs)
	return startServer(t, serverOpts{kubeconfigs: paths, waitReady: true}), cs
}

// gqlError is an error of a GraphQL response.
type gqlError struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

type response struct {
	Data   json.RawMessage `json:"data"`
	Errors []gqlError      `json:"errors"`
	Status int
}

// do posts a query and returns the raw response.
func (s *server) do(t testing.TB, query string, vars map[string]any) response {
	t.Helper()
	return s.doWithin(t, 2*time.Minute, query, vars)
}

// doWithin posts a query within a deadline, so a request the server never
// answers fails the test instead of hanging it.
func (s *server) doWithin(t testing.TB, d time.Duration, query string, vars map[string]any) response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/query", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	defer resp.Body.Close()
	var r response
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("response is not JSON (%d): %s", resp.StatusCode, raw)
	}
	r.Status = resp.StatusCode
	return r
}

// query runs a query that must succeed and decodes its data into out.
func (s *server) query(t testing.TB, query string, vars map[string]any, out any) {
	t.Helper()
	r := s.do(t, query, vars)
	if len(r.Errors) > 0 {
		t.Fatalf("query failed: %+v\nquery: %s", r.Errors, query)
	}
	if err := json.Unmarshal(r.Data, out); err != nil {
		t.Fatalf("decoding %s: %v", r.Data, err)
	}
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// metricsEventually is eventually for a condition on metrics-server's
// figures: when they never come, the failure says how metrics-server fares.
func metricsEventually(t testing.TB, c testenv.Cluster, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after 3m0s waiting for %s\n%s", what, c.DescribeMetricsServer())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// byCluster lists something in every test cluster, by cluster name.
func byCluster[T any](t testing.TB, cs []testenv.Cluster, list func(testenv.Cluster) ([]T, error)) map[string][]T {
	t.Helper()
	out := map[string][]T{}
	for _, c := range cs {
		items, err := list(c)
		if err != nil {
			t.Fatal(err)
		}
		out[c.Context] = items
	}
	return out
}

// matchingKeys returns the sorted keys of the objects, listed per cluster,
// that match; it is the reference a filter's result is compared with.
func matchingKeys[T any](byCluster map[string][]T, match func(T) bool) []string {
	var keys []string
	for c, items := range byCluster {
		for i := range items {
			if match(items[i]) {
				m := any(&items[i]).(metav1.Object)
				keys = append(keys, key(c, m.GetNamespace(), m.GetName()))
			}
		}
	}
	sort.Strings(keys)
	return keys
}

// key names an object across clusters.
func key(cluster, namespace, name string) string {
	return strings.Join([]string{cluster, namespace, name}, "/")
}

// TestMain points klog at the test logger before any client starts a
// goroutine that logs (klog's logger is a process global).
// Every response any test reads and the whole server log are checked for
// secrets at the end (see leak_test.go).
func TestMain(m *testing.M) {
	flag.Parse()
	testLogger()
	http.DefaultTransport = recordingTransport{http.DefaultTransport}
	code := m.Run()
	if !checkRunForLeaks() && code == 0 {
		fmt.Fprintln(os.Stderr, "FAIL: a secret the tests planted left the server (above)")
		code = 1
	}
	os.Exit(code)
}

func base64URL(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// waitRunning waits until n pods of the namespace run, as the cache sees it.
func (s *server) waitRunning(t testing.TB, namespace string, n int) {
	t.Helper()
	eventually(t, 30*time.Second, fmt.Sprintf("%d running pods in %s", n, namespace), func() bool {
		var out struct{ Pods struct{ TotalCount int } }
		s.query(t, `query($ns: String) { pods(filter: {namespace: $ns, status: "Running"}) { totalCount } }`, map[string]any{"ns": namespace}, &out)
		return out.Pods.TotalCount == n
	})
}

// rawSubscribe subscribes to a cluster's pods of a namespace directly, as
// an unrestricted subject, with the given buffer; it ends with the test.
func (s *server) rawSubscribe(t *testing.T, cluster, namespace string, buffer int) <-chan k8s.Change {
	t.Helper()
	cl, err := s.Registry.Cluster(cluster)
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(caller.With(context.Background(), &caller.Subject{User: "test", Unrestricted: true}))
	t.Cleanup(cancel)
	changes, _, err := cl.Subscribe(wctx, "Pod", &k8s.Filter{Namespace: namespace}, k8s.SubscribeOptions{Buffer: buffer})
	if err != nil {
		t.Fatal(err)
	}
	return changes
}

// jsonInto decodes a response's data, whatever its errors.
func jsonInto(r response, v any) error { return json.Unmarshal(r.Data, v) }

// agree retries until clustergraph and the apiserver agree (the caches
// follow the apiserver by a watch event), then fails with the diff.
func agree[T any](t *testing.T, what string, want, got func() T) {
	t.Helper()
	var diff string
	deadline := time.Now().Add(15 * time.Second)
	for {
		diff = cmp.Diff(want(), got())
		if diff == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: clustergraph disagrees with the apiserver (-apiserver +clustergraph):\n%s", what, diff)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// ctx is the context of the tests' own calls to the apiservers.
var ctx = context.Background()

// named is what server.all reads of a node: enough for its key.
type named struct {
	Name      string
	Namespace *string
	Cluster   struct{ Name string }
}

func (n named) key() string {
	ns := ""
	if n.Namespace != nil {
		ns = *n.Namespace
	}
	return key(n.Cluster.Name, ns, n.Name)
}

// all pages through a root list field and returns every node's key.
func (s *server) all(t *testing.T, field, args string) []string {
	t.Helper()
	var keys []string
	after := ""
	for {
		var out map[string]struct {
			TotalCount int
			PageInfo   struct {
				HasNextPage bool
				EndCursor   string
			}
			Nodes []struct {
				Metadata struct {
					Name      string
					Namespace *string
				}
				Cluster struct{ Name string }
			}
		}
		s.query(t, fmt.Sprintf(`query($after: String) { l: %s(first: 50, after: $after %s) {
			totalCount pageInfo { hasNextPage endCursor } nodes { ... on KubeObject { metadata { name namespace } cluster { name } } } } }`, field, args),
			map[string]any{"after": after}, &out)
		for _, n := range out["l"].Nodes {
			keys = append(keys, named{Name: n.Metadata.Name, Namespace: n.Metadata.Namespace, Cluster: n.Cluster}.key())
		}
		if !out["l"].PageInfo.HasNextPage {
			sort.Strings(keys)
			return keys
		}
		after = out["l"].PageInfo.EndCursor
	}
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startServerWith is startServer with a hook on the handler's config.
func startServerWith(t *testing.T, o serverOpts, edit func(*api.Config)) *server {
	t.Helper()
	o.configHook = edit
	return startServer(t, o)
}

// ptr returns a pointer to a copy of v.
func ptr[T any](v T) *T { return &v }

// deref returns *s, or "<nil>".
func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

// hasClusterError reports whether one of errs names the cluster with code.
func hasClusterError(errs []gqlError, cluster, code string) bool {
	return slices.ContainsFunc(errs, func(e gqlError) bool {
		return e.Extensions["cluster"] == cluster && e.Extensions["code"] == code
	})
}
