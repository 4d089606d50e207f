package k8s

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/client-go/rest"

	"github.com/clustergraph/clustergraph/caller"
)

// TestRequestQuestions: requests are authorized as the apiserver's own
// parser names them, also where the hand-written parser this replaced
// read them otherwise ("was" says how).
func TestRequestQuestions(t *testing.T) {
	q := func(verb, group, resource, ns, name string) Question {
		return Question{Verb: verb, Group: group, Resource: resource, Namespace: ns, Name: name}
	}
	for _, tc := range []struct {
		method, url string
		want        []Question // nil: refused (not a resource request)
		was         string
	}{
		// Lists and watches.
		{"GET", "/api/v1/pods", []Question{q("list", "", "pods", "", "")}, ""},
		{"GET", "/api/v1/namespaces/shop/pods?watch=true", []Question{q("watch", "", "pods", "shop", "")}, ""},
		{"GET", "/api/v1/namespaces/shop/pods?watch=1", []Question{q("watch", "", "pods", "shop", "")}, ""},
		{"GET", "/api/v1/namespaces/shop/pods?watch=True", []Question{q("watch", "", "pods", "shop", "")}, "list"},
		{"GET", "/api/v1/namespaces/shop/pods?watch=yes", []Question{q("watch", "", "pods", "shop", "")}, "list"},
		{"GET", "/api/v1/namespaces/shop/pods?watch=", []Question{q("watch", "", "pods", "shop", "")}, "list"},
		{"GET", "/api/v1/namespaces/shop/pods?watch=yes&watch=false", []Question{q("watch", "", "pods", "shop", "")}, "list"},
		{"GET", "/api/v1/namespaces/shop/pods?watch=false", []Question{q("list", "", "pods", "shop", "")}, ""},
		{"GET", "/api/v1/namespaces/shop/pods?watch=0", []Question{q("list", "", "pods", "shop", "")}, ""},
		{"GET", "/api/v1/namespaces/shop/pods?watch=FALSE&limit=x", []Question{q("list", "", "pods", "shop", "")}, ""},
		{"HEAD", "/api/v1/namespaces/shop/pods", []Question{q("list", "", "pods", "shop", "")}, ""},
		{"GET", "/api/v1/watch/namespaces/shop/pods", []Question{q("watch", "", "pods", "shop", "")}, "refused"},
		{"GET", "/api/v1/watch/pods", []Question{q("watch", "", "pods", "", "")}, "refused"},
		{"GET", "/api/v1/watch/namespaces/shop/pods/web", []Question{q("watch", "", "pods", "shop", "web")}, "refused"},
		{"GET", "/apis/apps/v1/watch/namespaces/shop/deployments", []Question{q("watch", "apps", "deployments", "shop", "")}, "refused"},
		{"GET", "/api/v1/watch", nil, ""},
		// A list narrowed to one name is asked about that name.
		{"GET", "/api/v1/namespaces/shop/configmaps?fieldSelector=metadata.name%3Dapp", []Question{q("list", "", "configmaps", "shop", "app")}, "list of every name"},
		{"GET", "/api/v1/namespaces/shop/configmaps?watch=1&fieldSelector=metadata.name%3Dapp", []Question{q("watch", "", "configmaps", "shop", "app")}, "watch of every name"},
		{"GET", "/api/v1/namespaces/shop/configmaps?fieldSelector=metadata.name%21%3Dapp", []Question{q("list", "", "configmaps", "shop", "")}, ""},
		{"GET", "/api/v1/namespaces/shop/configmaps?fieldSelector=%3D%3D%3D", []Question{q("list", "", "configmaps", "shop", "")}, ""},
		// Gets and subresources.
		{"GET", "/api/v1/namespaces/shop/pods/web", []Question{q("get", "", "pods", "shop", "web")}, ""},
		{"GET", "/api/v1/namespaces/shop/pods/web/log?follow=true", []Question{q("get", "", "pods/log", "shop", "web")}, ""},
		{"GET", "/api/v1/namespaces/shop/pods/web/exec?command=sh", []Question{q("get", "", "pods/exec", "shop", "web"), q("create", "", "pods/exec", "shop", "web")}, "create alone"},
		{"GET", "/api/v1/namespaces/shop/pods/web/attach", []Question{q("get", "", "pods/attach", "shop", "web"), q("create", "", "pods/attach", "shop", "web")}, "create alone"},
		{"GET", "/api/v1/namespaces/shop/pods/web/portforward", []Question{q("get", "", "pods/portforward", "shop", "web"), q("create", "", "pods/portforward", "shop", "web")}, "create alone"},
		{"POST", "/api/v1/namespaces/shop/pods/web/exec?command=sh", []Question{q("create", "", "pods/exec", "shop", "web")}, ""},
		{"POST", "/api/v1/namespaces/shop/pods/web/eviction", []Question{q("create", "", "pods/eviction", "shop", "web")}, ""},
		{"PATCH", "/apis/apps/v1/namespaces/shop/deployments/web", []Question{q("patch", "apps", "deployments", "shop", "web")}, ""},
		{"PUT", "/apis/apps/v1/namespaces/shop/deployments/web/scale", []Question{q("update", "apps", "deployments/scale", "shop", "web")}, ""},
		{"PUT", "/apis/example.com/v1/namespaces/shop/widgets/w/status", []Question{q("update", "example.com", "widgets/status", "shop", "w")}, ""},
		// Proxies.
		{"GET", "/api/v1/namespaces/shop/pods/web/proxy/metrics", []Question{q("get", "", "pods/proxy", "shop", "web")}, "refused"},
		{"POST", "/api/v1/namespaces/shop/services/https:web:443/proxy/api/x", []Question{q("create", "", "services/proxy", "shop", "https:web:443")}, "refused"},
		{"GET", "/api/v1/nodes/n1/proxy/stats/summary", []Question{q("get", "", "nodes/proxy", "", "n1")}, "refused"},
		{"GET", "/api/v1/proxy/namespaces/shop/pods/web/metrics", []Question{q("proxy", "", "pods", "shop", "web")}, "refused"},
		// Deletes.
		{"DELETE", "/api/v1/namespaces/shop/configmaps", []Question{q("deletecollection", "", "configmaps", "shop", "")}, ""},
		{"DELETE", "/api/v1/namespaces/shop/configmaps/app", []Question{q("delete", "", "configmaps", "shop", "app")}, ""},
		{"DELETE", "/apis/rbac.authorization.k8s.io/v1/clusterroles", []Question{q("deletecollection", "rbac.authorization.k8s.io", "clusterroles", "", "")}, ""},
		// Namespaces: the object is asked about in its own namespace.
		{"GET", "/api/v1/namespaces", []Question{q("list", "", "namespaces", "", "")}, ""},
		{"GET", "/api/v1/namespaces/shop", []Question{q("get", "", "namespaces", "shop", "shop")}, ""},
		{"DELETE", "/api/v1/namespaces/shop", []Question{q("delete", "", "namespaces", "shop", "shop")}, ""},
		{"PUT", "/api/v1/namespaces/shop/finalize", []Question{q("update", "", "namespaces/finalize", "shop", "shop")}, ""},
		{"PATCH", "/api/v1/namespaces/shop/status", []Question{q("patch", "", "namespaces/status", "shop", "shop")}, ""},
		// Cluster-scoped.
		{"PATCH", "/api/v1/nodes/n1", []Question{q("patch", "", "nodes", "", "n1")}, ""},
		{"POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", []Question{q("create", "rbac.authorization.k8s.io", "clusterrolebindings", "", "")}, ""},
		{"GET", "/apis/storage.k8s.io/v1/storageclasses?watch=true", []Question{q("watch", "storage.k8s.io", "storageclasses", "", "")}, ""},
		// Not resource requests: never let through.
		{"GET", "/api", nil, ""},
		{"GET", "/api/v1", nil, ""},
		{"GET", "/apis", nil, ""},
		{"GET", "/apis/apps", nil, ""},
		{"GET", "/apis/apps/v1", nil, ""},
		{"GET", "/version", nil, ""},
		{"GET", "/healthz", nil, ""},
		{"GET", "/openapi/v3/apis/apps/v1", nil, ""},
		{"GET", "/metrics", nil, ""},
		{"GET", "/logs/kube-apiserver.log", nil, ""},
		{"OPTIONS", "/api/v1/pods", nil, ""},
	} {
		r := httptest.NewRequest(tc.method, "http://apiserver"+tc.url, nil)
		got, ok := requestQuestions(r)
		if ok != (tc.want != nil) || !slices.Equal(got, tc.want) {
			t.Errorf("%s %s: %+v %v, want %+v", tc.method, tc.url, got, ok, tc.want)
		}
	}
}

// TestForeignGuard: the guard lets a request through only when every
// question the apiserver asks about it is allowed by the foreign service
// account's access set; a refused one gets a 403 Status and never reaches
// the apiserver.
func TestForeignGuard(t *testing.T) {
	user := "system:serviceaccount:ci:deployer"
	u := rbacv1.Subject{Kind: rbacv1.UserKind, Name: user}
	a := computeAccess(&caller.Subject{User: user, Identity: "a"}, true, policy(t,
		clusterRole("lister", rule([]string{"list"}, []string{"configmaps"})),
		clusterRole("execer", rule([]string{"create"}, []string{"pods/exec"})),
		clusterRole("exec-viewer", rule([]string{"get", "create"}, []string{"pods/exec"})),
		roleBindingTo("shop", "lister", "lister", u),
		roleBindingTo("shop", "execer", "execer", u),
		roleBindingTo("ops", "exec-viewer", "exec-viewer", u),
	))
	var passed atomic.Int64
	g := &foreignGuard{access: a, cluster: "b", identity: "a", user: user, next: roundTripper(func(r *http.Request) (*http.Response, error) {
		passed.Add(1)
		return &http.Response{StatusCode: http.StatusOK, Body: io.NopCloser(strings.NewReader("{}")), Request: r}, nil
	})}
	for _, tc := range []struct {
		method, url string
		want        int
	}{
		{"GET", "/api/v1/namespaces/shop/configmaps", http.StatusOK},
		{"GET", "/api/v1/namespaces/shop/configmaps?watch=true", http.StatusForbidden},
		{"GET", "/api/v1/namespaces/shop/configmaps?watch=yes", http.StatusForbidden},
		{"GET", "/api/v1/watch/namespaces/shop/configmaps", http.StatusForbidden},
		{"DELETE", "/api/v1/namespaces/shop/configmaps", http.StatusForbidden},
		{"GET", "/api/v1/namespaces/data/configmaps", http.StatusForbidden},
		{"POST", "/api/v1/namespaces/shop/pods/web/exec?command=sh", http.StatusOK},
		// A websocket exec is also a get of pods/exec, which only ops grants.
		{"GET", "/api/v1/namespaces/shop/pods/web/exec?command=sh", http.StatusForbidden},
		{"GET", "/api/v1/namespaces/ops/pods/web/exec?command=sh", http.StatusOK},
		{"GET", "/apis", http.StatusForbidden},
	} {
		before := passed.Load()
		resp, err := g.RoundTrip(httptest.NewRequest(tc.method, "http://apiserver"+tc.url, nil))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s: %d %s, want %d", tc.method, tc.url, resp.StatusCode, body, tc.want)
		}
		if reached := passed.Load() > before; reached != (tc.want == http.StatusOK) {
			t.Errorf("%s %s: reached the apiserver = %v", tc.method, tc.url, reached)
		}
		if resp.StatusCode == http.StatusForbidden && !strings.Contains(string(body), "identity cluster a") {
			t.Errorf("%s %s: the refusal does not say why: %s", tc.method, tc.url, body)
		}
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestImpersonationCarriesUIDAndExtra: ConfigFor impersonates the caller's
// UID and extra attributes, in the identity cluster and in others alike
// (less only the service-account groups of a foreign service account).
func TestImpersonationCarriesUIDAndExtra(t *testing.T) {
	extra := map[string][]string{"authentication.kubernetes.io/credential-id": {"JTI=abc"}, "scopes.example.com": {"read", "pods"}}
	for _, tc := range []struct {
		name       string
		s          *caller.Subject
		wantGroups []string
	}{
		{"a user", &caller.Subject{User: "alice", UID: "u-1", Groups: []string{"dev", "system:authenticated"}, Extra: extra, Identity: "a"},
			[]string{"dev", "system:authenticated"}},
		{"a local service account", &caller.Subject{User: "system:serviceaccount:ci:deployer", UID: "u-2", Groups: []string{"system:serviceaccounts", "system:serviceaccounts:ci", "system:authenticated"}, Extra: extra, Identity: "c"},
			[]string{"system:serviceaccounts", "system:serviceaccounts:ci", "system:authenticated"}},
		{"a foreign service account", &caller.Subject{User: "system:serviceaccount:ci:deployer", UID: "u-3", Groups: []string{"system:serviceaccounts", "system:serviceaccounts:ci", "system:authenticated"}, Extra: extra, Identity: "a"},
			[]string{"system:authenticated"}},
	} {
		c := fakeCluster(t)
		c.config = &rest.Config{Host: "https://apiserver"}
		cfg, err := c.ConfigFor(caller.With(context.Background(), tc.s))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		imp := cfg.Impersonate
		if imp.UserName != tc.s.User || imp.UID != tc.s.UID || !slices.Equal(imp.Groups, tc.wantGroups) || len(imp.Extra) != len(extra) {
			t.Errorf("%s: impersonation %+v, want user %s, UID %s, groups %v, extra %v", tc.name, imp, tc.s.User, tc.s.UID, tc.wantGroups, extra)
		}
		for k, v := range extra {
			if !slices.Equal(imp.Extra[k], v) {
				t.Errorf("%s: extra %s = %v, want %v", tc.name, k, imp.Extra[k], v)
			}
		}
	}
}

// TestAccessReviewCarriesUIDAndExtra: a SubjectAccessReview names the
// caller as impersonation does, and the answers of the authorizer are
// cached per UID and extra attributes too: a token with other scopes is
// asked again.
func TestAccessReviewCarriesUIDAndExtra(t *testing.T) {
	s := &caller.Subject{User: "alice", UID: "u-1", Groups: []string{"system:authenticated"}, Identity: "a",
		Extra: map[string][]string{"scopes.example.com": {"read"}}}
	q := Question{Verb: "get", Resource: "pods/log", Namespace: "shop", Name: "web"}
	sar := accessReview(s, "b", q).Spec
	if sar.User != "alice" || sar.UID != "u-1" || !slices.Equal(sar.Groups, s.Groups) || !slices.Equal([]string(sar.Extra["scopes.example.com"]), []string{"read"}) ||
		sar.ResourceAttributes.Resource != "pods" || sar.ResourceAttributes.Subresource != "log" || sar.ResourceAttributes.Name != "web" {
		t.Errorf("review %+v", sar)
	}

	c := fakeCluster(t)
	var asked []*caller.Subject
	c.review = func(_ context.Context, _ *Cluster, s *caller.Subject, _ Question) (bool, error) {
		asked = append(asked, s)
		return s.Extra["scopes.example.com"][0] == "read", nil
	}
	other := *s
	other.Extra = map[string][]string{"scopes.example.com": {"write"}}
	uid := *s
	uid.UID = "u-2"
	for _, tc := range []struct {
		s     *caller.Subject
		want  bool
		asked int
	}{{s, true, 1}, {s, true, 1}, {&other, false, 2}, {&uid, true, 3}} {
		got := c.Review(caller.With(context.Background(), tc.s), []Question{q})[0]
		if got != tc.want || len(asked) != tc.asked {
			t.Errorf("%+v: %v after %d reviews, want %v after %d", tc.s, got, len(asked), tc.want, tc.asked)
		}
	}
}
