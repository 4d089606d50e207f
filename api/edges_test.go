package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clustergraph/clustergraph/api"
	"github.com/clustergraph/clustergraph/auth"
	"github.com/clustergraph/clustergraph/internal/testenv"
)

// TestReadyzDetail: readiness tells every caller its status code, but
// names the clusters only to this host, or to a caller with an accepted
// token; /metrics is served to the same callers only. Requests from elsewhere are made in process with a remote
// address set, so the test needs no second network interface.
func TestReadyzDetail(t *testing.T) {
	cs := testenv.Clusters(t)
	u := makeUser(t, cs, "cg-readyz", nil)
	s := startServer(t, serverOpts{kubeconfigs: kubeconfigs(cs[:1]), waitReady: true})
	h := api.NewHandler(api.Config{Registry: s.Registry, Authenticator: auth.New(auth.Config{Registry: s.Registry}), Logger: testLogger()})
	for _, c := range []struct {
		name, remote, authz string
		detail              bool
	}{
		{"remote, no token", "192.0.2.9:4000", "", false},
		{"remote, refused token", "192.0.2.9:4000", "Bearer " + leakMarker + "nope", false},
		{"remote, accepted token", "192.0.2.9:4000", "Bearer " + u.token, true},
		{"loopback", "127.0.0.1:4000", "", true},
		{"loopback v6", "[::1]:4000", "", true},
	} {
		req := httptest.NewRequest(http.MethodGet, "http://clustergraph:8080/readyz", nil)
		req.RemoteAddr = c.remote
		if c.authz != "" {
			req.Header.Set("Authorization", c.authz)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var body struct {
			Ready    bool
			Clusters map[string]string
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != http.StatusOK || !body.Ready {
			t.Errorf("%s: %d %s, want 200 ready", c.name, rec.Code, rec.Body)
			continue
		}
		if got := body.Clusters[cs[0].Context] != ""; got != c.detail {
			t.Errorf("%s: cluster states shown = %v, want %v: %s", c.name, got, c.detail, rec.Body)
		}
		secretFree(t, "readyz "+c.name, rec.Body.Bytes())

		// /metrics names the clusters too: the same callers may read it,
		// the others get 401.
		req = httptest.NewRequest(http.MethodGet, "http://clustergraph:8080/metrics", nil)
		req.RemoteAddr = c.remote
		if c.authz != "" {
			req.Header.Set("Authorization", c.authz)
		}
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if served := rec.Code == http.StatusOK && strings.Contains(rec.Body.String(), "clustergraph_"); served != c.detail || !c.detail && rec.Code != http.StatusUnauthorized {
			t.Errorf("%s: /metrics %d, want served: %v (else 401)", c.name, rec.Code, c.detail)
		}
	}
}

// TestInsecureModeServesLocalHostOnly: with authentication off, a request
// whose Host is not a loopback name (a DNS name rebound to 127.0.0.1 by a
// web page) is refused before it reads anything; localhost names pass.
func TestInsecureModeServesLocalHostOnly(t *testing.T) {
	cs := testenv.Clusters(t)
	s := startServer(t, serverOpts{kubeconfigs: kubeconfigs(cs[:1]), waitReady: true})
	query := []byte(`{"query":"{ clusters { name } }"}`)
	for host, allowed := range map[string]bool{
		"":                       true, // the test server's own 127.0.0.1:port
		"localhost:8080":         true,
		"app.localhost":          true,
		"[::1]:8080":             true,
		"attacker.example.com":   false,
		"127.0.0.1.nip.io:8080":  false,
		"clustergraph.internal.": false,
	} {
		for _, path := range []string{"/query", "/"} {
			method := http.MethodPost
			var body io.Reader = bytes.NewReader(query)
			if path == "/" {
				method, body = http.MethodGet, nil
			}
			req, _ := http.NewRequest(method, s.URL+path, body)
			req.Header.Set("Content-Type", "application/json")
			if host != "" {
				req.Host = host
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			refused := resp.StatusCode == http.StatusForbidden && strings.Contains(string(raw), "FORBIDDEN")
			if refused == allowed {
				t.Errorf("Host %q, %s %s: %d %s", host, method, path, resp.StatusCode, raw)
			}
			if !allowed && strings.Contains(string(raw), cs[0].Context) {
				t.Errorf("Host %q: the refusal names a cluster: %s", host, raw)
			}
		}
	}
}

// TestResourcesListsNothingForNoGrant: resources() of a caller no grant
// lets see any object of the kind answers empty without the apiserver
// LIST clustergraph would make with its own credentials; a caller who may
// list still gets the apiserver's answer.
func TestResourcesListsNothingForNoGrant(t *testing.T) {
	cs := testenv.Clusters(t)
	none := makeUser(t, cs[:1], "cg-resources-none", nil)
	viewer := makeUser(t, cs[:1], "cg-resources-view", func(c testenv.Cluster, user string) {
		roleBinding(t, c, "shop", "cg-resources-view", "ClusterRole", "view", user)
	})
	// No probes during the count: only the queries' own requests.
	s := startServer(t, serverOpts{kubeconfigs: kubeconfigs(cs[:1]), waitReady: true, auth: true, probeInterval: time.Hour})
	q := `{ a: resources(group: "", version: "v1", resource: "configmaps") { totalCount }
		b: resources(group: "apps", version: "v1", resource: "deployments") { totalCount }
		c: resources(group: "", version: "v1", resource: "pods", filter: {namespace: "shop"}) { totalCount } }`
	var warm struct{ Viewer struct{ Username string } }
	s.as(none.token).query(t, `{ viewer { username } }`, nil, &warm) // the token review
	before := s.requests.Load()
	var out struct{ A, B, C struct{ TotalCount int } }
	s.as(none.token).query(t, q, nil, &out)
	if n := s.requests.Load() - before; n != 0 || out.A.TotalCount+out.B.TotalCount+out.C.TotalCount != 0 {
		t.Errorf("a caller without grants: %d apiserver requests, counts %+v; want none and 0", n, out)
	}
	s.as(viewer.token).query(t, `{ viewer { username } }`, nil, &warm) // the token review
	mark := len(s.sent.since(0))
	s.as(viewer.token).query(t, q, nil, &out)
	pods, err := cs[0].Client.CoreV1().Pods("shop").List(ctx, metav1.ListOptions{})
	if err != nil || out.C.TotalCount != len(pods.Items) || out.C.TotalCount == 0 {
		t.Errorf("a viewer of shop: %d pods, want %d (%v)", out.C.TotalCount, len(pods.Items), err)
	}
	// Every read is made as the viewer: the pods of shop, which they may
	// list, and for the cluster-wide lists (they may list in shop only)
	// one LIST in shop each. Nothing is listed with clustergraph's own
	// credentials (its discovery requests aside).
	var asViewer []string
	for _, r := range s.sent.since(mark) {
		switch {
		case r.As == viewer.user:
			asViewer = append(asViewer, r.Method+" "+r.Path)
		case isDiscovery(r.Path) || r.Query.Get("watch") == "true":
		default:
			t.Errorf("a viewer's resources(): clustergraph sent %s %s with its own credentials", r.Method, r.Path)
		}
	}
	slices.Sort(asViewer)
	want := []string{"GET /api/v1/namespaces/shop/configmaps", "GET /api/v1/namespaces/shop/pods", "GET /apis/apps/v1/namespaces/shop/deployments"}
	if !slices.Equal(asViewer, want) {
		t.Errorf("a viewer of shop: requests as the viewer %q, want %q", asViewer, want)
	}
	cms, err := cs[0].Client.CoreV1().ConfigMaps("shop").List(ctx, metav1.ListOptions{})
	if err != nil || out.A.TotalCount != len(cms.Items) {
		t.Errorf("a viewer of shop: %d configmaps cluster-wide, want the %d of shop (%v)", out.A.TotalCount, len(cms.Items), err)
	}
}

// isDiscovery reports whether path is an API discovery request (/api,
// /apis, /api/v1, /apis/GROUP, /apis/GROUP/VERSION).
func isDiscovery(path string) bool {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch parts[0] {
	case "api":
		return len(parts) <= 2
	case "apis":
		return len(parts) <= 3
	}
	return false
}

// TestResourcesListIsBounded: resources() reads at most MaxListObjects
// objects of a cluster, in pages no larger, and says when it cut the list;
// a list under the bound is whole and says nothing.
func TestResourcesListIsBounded(t *testing.T) {
	cs := testenv.Clusters(t)
	c := cs[0]
	ns := "res-bounded"
	makeNamespace(t, c, ns)
	for i := range 30 {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%02d", i), Namespace: ns}}
		if _, err := c.Client.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	all, err := c.Client.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	q := `query($ns: String) { resources(group: "", version: "v1", resource: "configmaps", filter: {namespace: $ns}, first: 5) { totalCount } }`
	vars := map[string]any{"ns": ns}

	whole := startServer(t, serverOpts{kubeconfigs: kubeconfigs(cs[:1]), waitReady: true, probeInterval: time.Hour, maxListObjects: 100})
	r := whole.do(t, q, vars)
	var out struct{ Resources struct{ TotalCount int } }
	if err := jsonInto(r, &out); err != nil || len(r.Errors) > 0 || out.Resources.TotalCount != len(all.Items) {
		t.Errorf("under the bound: %+v %v, want all %d and no error", out, r.Errors, len(all.Items))
	}

	cut := startServer(t, serverOpts{kubeconfigs: kubeconfigs(cs[:1]), waitReady: true, probeInterval: time.Hour, maxListObjects: 12})
	before := cut.requests.Load()
	r = cut.do(t, q, vars)
	if n := cut.requests.Load() - before; n != 1 {
		t.Errorf("over the bound: %d apiserver requests, want one page of 12", n)
	}
	if err := jsonInto(r, &out); err != nil || out.Resources.TotalCount != 12 {
		t.Errorf("over the bound: %+v %v, want the first 12", out, err)
	}
	if len(r.Errors) != 1 || r.Errors[0].Extensions["code"] != "BAD_USER_INPUT" || !strings.Contains(r.Errors[0].Message, "only the first 12 objects") {
		t.Errorf("over the bound: errors %+v, want one BAD_USER_INPUT saying the list was cut", r.Errors)
	}
}

// TestResourcesReadsWhatThePageNeeds: resources() asks the apiserver for
// what the page needs (offset+first+1 objects) unless the selection counts
// them all (totalCount) or orders them otherwise; a caller granted single
// objects by name gets each by a GET made as themselves, never a LIST
// made as clustergraph.
func TestResourcesReadsWhatThePageNeeds(t *testing.T) {
	cs := testenv.Clusters(t)
	c := cs[0]
	ns := "res-page"
	makeNamespace(t, c, ns)
	for i := range 30 {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%02d", i), Namespace: ns, Labels: map[string]string{"odd": strconv.FormatBool(i%2 == 1)}}}
		if _, err := c.Client.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	named := makeUser(t, cs[:1], "cg-resources-named", func(c testenv.Cluster, user string) {
		role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "cg-resources-named", Namespace: ns},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get"}, ResourceNames: []string{"cm-03", "cm-04", "cm-gone"}}}}
		if _, err := c.Client.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		roleBinding(t, c, ns, "cg-resources-named", "Role", "cg-resources-named", user)
	})
	viewer := makeUser(t, cs[:1], "cg-resources-page", func(c testenv.Cluster, user string) {
		roleBinding(t, c, ns, "cg-resources-page", "ClusterRole", "view", user)
	})
	s := startServer(t, serverOpts{kubeconfigs: kubeconfigs(cs[:1]), waitReady: true, auth: true, probeInterval: time.Hour})
	as := s.as(viewer.token)
	// page runs a query and returns its answer with the LISTs (sent) and
	// GETs of configmaps it made.
	page := func(t *testing.T, as *server, query string) (got namesPage, sent, gets []sentRequest) {
		t.Helper()
		mark := len(s.sent.since(0))
		var out struct{ Resources namesPage }
		as.query(t, query, map[string]any{"ns": ns}, &out)
		for _, r := range s.sent.since(mark) {
			switch {
			case r.Query.Get("watch") == "true" || !strings.Contains(r.Path, "/configmaps"):
			case strings.HasSuffix(r.Path, "/configmaps"):
				sent = append(sent, r)
			default:
				gets = append(gets, r)
			}
		}
		return out.Resources, sent, gets
	}

	t.Run("first page", func(t *testing.T) {
		got, sent, _ := page(t, as, `query($ns: String) { resources(group: "", version: "v1", resource: "configmaps", filter: {namespace: $ns}, first: 5, offset: 2) { pageInfo { hasNextPage } nodes { metadata { name } } } }`)
		if len(sent) != 1 || sent[0].Query.Get("limit") != "8" {
			t.Errorf("sent %+v, want one LIST with limit 8 (offset 2 + first 5 + 1)", sent)
		}
		if names := namesOf(got); !slices.Equal(names, []string{"cm-02", "cm-03", "cm-04", "cm-05", "cm-06"}) || !got.PageInfo.HasNextPage {
			t.Errorf("page %v (next %v), want cm-02..cm-06 and a next page", names, got.PageInfo.HasNextPage)
		}
	})
	t.Run("filtered here", func(t *testing.T) {
		// The name filter runs here: more pages are asked for until the
		// page is full.
		got, sent, _ := page(t, as, `query($ns: String) { resources(group: "", version: "v1", resource: "configmaps", filter: {namespace: $ns, name: "1"}, first: 3) { nodes { metadata { name } } } }`)
		if names := namesOf(got); !slices.Equal(names, []string{"cm-01", "cm-10", "cm-11"}) || len(sent) < 2 {
			t.Errorf("page %v from %d LISTs, want cm-01, cm-10, cm-11 from several", names, len(sent))
		}
	})
	t.Run("totalCount", func(t *testing.T) {
		got, sent, _ := page(t, as, `query($ns: String) { resources(group: "", version: "v1", resource: "configmaps", filter: {namespace: $ns, labelSelector: "odd=true"}, first: 2) { totalCount nodes { metadata { name } } } }`)
		if got.TotalCount != 15 || len(sent) != 1 || sent[0].Query.Get("limit") != "500" {
			t.Errorf("totalCount %d from %+v, want 15 from one whole LIST", got.TotalCount, sent)
		}
	})
	t.Run("other order", func(t *testing.T) {
		got, sent, _ := page(t, as, `query($ns: String) { resources(group: "", version: "v1", resource: "configmaps", filter: {namespace: $ns}, first: 2, orderBy: {field: NAME, direction: DESC}) { nodes { metadata { name } } } }`)
		if names := namesOf(got); !slices.Equal(names, []string{"kube-root-ca.crt", "cm-29"}) || len(sent) != 1 || sent[0].Query.Get("limit") != "500" {
			t.Errorf("page %v from %+v, want kube-root-ca.crt, cm-29 from one whole LIST", names, sent)
		}
	})
	t.Run("granted by name", func(t *testing.T) {
		for _, scope := range []string{`query($ns: String) { resources(group: "", version: "v1", resource: "configmaps", filter: {namespace: $ns})`, `{ resources(group: "", version: "v1", resource: "configmaps")`} {
			got, sent, gets := page(t, s.as(named.token), scope+` { totalCount nodes { metadata { name } } } }`)
			if n := namesOf(got); !slices.Equal(n, []string{"cm-03", "cm-04"}) {
				t.Errorf("%q: %v, want the two named configmaps that exist", scope, n)
			}
			if len(gets) != 3 {
				t.Errorf("%q: %d GETs, want one per name granted (3)", scope, len(gets))
			}
			for _, r := range gets {
				if r.As != named.user {
					t.Errorf("%q: %s %s sent as %q, want as the caller", scope, r.Method, r.Path, r.As)
				}
			}
			if len(sent) != 0 {
				t.Errorf("%q: %d LISTs for a caller who may only get by name", scope, len(sent))
			}
			// kubectl agrees: the names a get --as answers are those served.
			for _, name := range []string{"cm-03", "cm-04", "cm-05"} {
				_, err := testenv.Kubectl(t, c, "get", "configmap", name, "-n", ns, "--as", named.user)
				if served := slices.Contains(namesOf(got), name); served != (err == nil) {
					t.Errorf("%q: %s served %v, kubectl get --as: %v", scope, name, served, err)
				}
			}
		}
	})
}

// namesPage is a connection's count, next-page flag and node names.
type namesPage struct {
	TotalCount int
	PageInfo   struct{ HasNextPage bool }
	Nodes      []struct{ Metadata struct{ Name string } }
}

// namesOf returns the names of a page's nodes.
func namesOf(c namesPage) []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.Metadata.Name
	}
	return out
}
