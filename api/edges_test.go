package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clustergraph/clustergraph/api"
	"github.com/clustergraph/clustergraph/auth"
	"github.com/clustergraph/clustergraph/internal/testenv"
)

// TestReadyzDetail: readiness tells every caller its status code, but
// names the clusters only to this host, or to a caller with an accepted
// token. Requests from elsewhere are made in process with a remote
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
	before = s.impersonated.Load()
	s.as(viewer.token).query(t, q, nil, &out)
	pods, err := cs[0].Client.CoreV1().Pods("shop").List(ctx, metav1.ListOptions{})
	if err != nil || out.C.TotalCount != len(pods.Items) || out.C.TotalCount == 0 {
		t.Errorf("a viewer of shop: %d pods, want %d (%v)", out.C.TotalCount, len(pods.Items), err)
	}
	// The pods of shop, which the viewer may list, are listed as the
	// viewer; the cluster-wide lists (they may list in shop only) are
	// clustergraph's, cut down.
	if n := s.impersonated.Load() - before; n != 1 {
		t.Errorf("a viewer of shop: %d LISTs made as the viewer, want 1 (pods in shop)", n)
	}
	cms, err := cs[0].Client.CoreV1().ConfigMaps("shop").List(ctx, metav1.ListOptions{})
	if err != nil || out.A.TotalCount != len(cms.Items) {
		t.Errorf("a viewer of shop: %d configmaps cluster-wide, want the %d of shop (%v)", out.A.TotalCount, len(cms.Items), err)
	}
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
