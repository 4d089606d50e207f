package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clustergraph/clustergraph/api"
	"github.com/clustergraph/clustergraph/db"
	"github.com/clustergraph/clustergraph/internal/testenv"
)

// replica starts clustergraph on the test clusters with its own connection
// to the database at dsn, as a second process would.
func replica(t *testing.T, cs []testenv.Cluster, dsn string, auth bool) *server {
	t.Helper()
	h, err := db.Connect(ctx, dsn, db.Options{Log: testLogger()}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return startServer(t, serverOpts{kubeconfigs: kubeconfigs(cs), waitReady: true, auth: auth, db: h,
		configHook: func(c *api.Config) { c.AlertAuth = api.AlertAuth{Token: alertToken, BasicAuth: "am:secret"} }})
}

type alertOut struct {
	ID, AlertName, Status, Source string
	Cluster, Namespace, Name      *string
	ObjectKind, Severity          *string
	Labels                        map[string]string
	StartsAt                      string
	EndsAt                        *string
}

const alertFields = `id alertName status source cluster namespace name objectKind severity labels startsAt endsAt`

// TestAlertmanagerWebhook: an Alertmanager notification posted twice and
// then resolved is one closed alert; a subscriber on another replica sees
// it fire and resolve; bad requests store nothing.
func TestAlertmanagerWebhook(t *testing.T) {
	cs := testenv.Clusters(t)
	dsn := testenv.MySQL(t)
	a, b := replica(t, cs, dsn, false), replica(t, cs, dsn, false)
	cluster := cs[0].Context

	sub := subscribeWS(t, b, "", `subscription($c: [String!]) { alerts(clusters: $c, filter: {alertNames: ["PodCrashLooping"]}) { `+alertFields+` } }`, map[string]any{"c": []string{cluster}})
	eventually(t, 10*time.Second, "the subscriber on replica b", func() bool { return b.hub.Subscribers() == 1 })

	start := time.Now().UTC().Add(-5 * time.Minute).Truncate(time.Second).Format(time.RFC3339)
	for i := range 2 {
		if code := postAlert(t, a, amPayload(cluster, "firing", start, "0001-01-01T00:00:00Z"), nil); code != http.StatusOK {
			t.Fatalf("post %d: status %d", i+1, code)
		}
	}
	end := time.Now().UTC().Truncate(time.Second).Format(time.RFC3339)
	if code := postAlert(t, a, amPayload(cluster, "resolved", start, end), nil); code != http.StatusOK {
		t.Fatalf("resolve: status %d", code)
	}

	var got []string
	for len(got) < 2 {
		var ev struct{ Alerts alertOut }
		if !sub.next(&ev) {
			t.Fatalf("subscription ended after %v", got)
		}
		got = append(got, ev.Alerts.Status)
	}
	// The firing post and the resolution: the repeat changed nothing.
	if got[0] != "FIRING" && got[0] != "RESOLVED" || got[1] != "RESOLVED" {
		t.Errorf("replica b's subscriber saw %v, want FIRING then RESOLVED", got)
	}

	var out struct {
		Alerts struct {
			TotalCount int
			Nodes      []alertOut
		}
	}
	b.query(t, `query($c: [String!]) { alerts(clusters: $c, filter: {alertNames: ["PodCrashLooping"]}) { totalCount nodes { `+alertFields+` } } }`, map[string]any{"c": []string{cluster}}, &out)
	if out.Alerts.TotalCount != 1 {
		t.Fatalf("%d alerts stored, want exactly one: %+v", out.Alerts.TotalCount, out.Alerts.Nodes)
	}
	al := out.Alerts.Nodes[0]
	if al.Status != "RESOLVED" || al.EndsAt == nil || *al.EndsAt != end || al.StartsAt != start || *al.ObjectKind != "Pod" ||
		*al.Name != "frontend-0" || *al.Namespace != "shop" || *al.Cluster != cluster || al.Source != "alertmanager" || al.Labels["team"] != "web" {
		t.Errorf("stored alert %+v", al)
	}

	// Filters, on the same data.
	for filter, want := range map[string]int{
		`{labelSelector: "team=web"}`:     1,
		`{labelSelector: "team!=web"}`:    0,
		`{status: FIRING}`:                0,
		`{status: RESOLVED}`:              1,
		`{severities: ["critical"]}`:      1,
		`{namespaces: ["ops"]}`:           0,
		`{objectKinds: ["Pod"]}`:          1,
		`{sources: ["hypercloud"]}`:       0,
		`{since: "2999-01-01T00:00:00Z"}`: 0,
	} {
		var r struct{ Alerts struct{ TotalCount int } }
		a.query(t, `query($c: [String!]) { alerts(clusters: $c, filter: `+filter+`) { totalCount } }`, map[string]any{"c": []string{cluster}}, &r)
		if r.Alerts.TotalCount != want {
			t.Errorf("filter %s: %d alerts, want %d", filter, r.Alerts.TotalCount, want)
		}
	}

	// The hypercloud list form, with basic auth, twice: one alert.
	hc := `[{"name": "redis-0", "alert": "CPU_noti", "namespace": "shop", "message": "cpu 20%", "cluster": "` + cluster + `"}]`
	for range 2 {
		if code := postAlert(t, a, hc, func(r *http.Request) { r.Header.Del("Authorization"); r.SetBasicAuth("am", "secret") }); code != http.StatusOK {
			t.Fatalf("hypercloud post: status %d", code)
		}
	}
	var hcOut struct{ Alerts struct{ TotalCount int } }
	a.query(t, `query($c: [String!]) { alerts(clusters: $c, filter: {alertNames: ["CPU_noti"], sources: ["hypercloud"]}) { totalCount } }`, map[string]any{"c": []string{cluster}}, &hcOut)
	if hcOut.Alerts.TotalCount != 1 {
		t.Errorf("hypercloud alert stored %d times, want once", hcOut.Alerts.TotalCount)
	}

	// Bad requests: a clear status, nothing stored.
	big := `[{"alert": "Big", "message": "` + strings.Repeat("x", 2<<20) + `"}]`
	for name, tc := range map[string]struct {
		body string
		edit func(*http.Request)
		want int
	}{
		"malformed JSON":     {`{"alerts": [`, nil, http.StatusBadRequest},
		"neither form":       {`"hello"`, nil, http.StatusBadRequest},
		"no alerts field":    {`{"version": "4"}`, nil, http.StatusBadRequest},
		"unknown version":    {`{"version": "3", "alerts": []}`, nil, http.StatusBadRequest},
		"no alertname":       {`[{"name": "x"}]`, nil, http.StatusBadRequest},
		"bad status":         {`[{"alert": "Bad", "status": "maybe"}]`, nil, http.StatusBadRequest},
		"oversized":          {big, nil, http.StatusRequestEntityTooLarge},
		"no credentials":     {hc, func(r *http.Request) { r.Header.Del("Authorization") }, http.StatusUnauthorized},
		"wrong token":        {hc, func(r *http.Request) { r.Header.Set("Authorization", "Bearer nope") }, http.StatusUnauthorized},
		"wrong basic auth":   {hc, func(r *http.Request) { r.Header.Del("Authorization"); r.SetBasicAuth("am", "nope") }, http.StatusUnauthorized},
		"GET":                {"", func(r *http.Request) { r.Method = http.MethodGet }, http.StatusMethodNotAllowed},
		"one bad among good": {`[{"alert": "Good1", "namespace": "shop"}, {"name": "no-alert"}]`, nil, http.StatusBadRequest},
	} {
		if code := postAlert(t, a, tc.body, tc.edit); code != tc.want {
			t.Errorf("%s: status %d, want %d", name, code, tc.want)
		}
	}
	var total struct{ Alerts struct{ TotalCount int } }
	a.query(t, `{ alerts { totalCount } }`, nil, &total)
	if total.Alerts.TotalCount != 2 {
		t.Errorf("%d alerts stored after the bad requests, want still 2", total.Alerts.TotalCount)
	}
}

// TestAlertsOnObjects: createAlert needs create on events where the alert
// lives; an alert about a pod links to the pod and its Deployment, and shows
// on the pod, the Deployment and the namespace; subscribers only hear of
// alerts they may read.
func TestAlertsOnObjects(t *testing.T) {
	cs := testenv.Clusters(t)
	c := cs[0]
	h := sqlite(t)
	s := startServer(t, serverOpts{kubeconfigs: kubeconfigs(cs), waitReady: true, auth: true, db: h})
	// writer may create and list events in shop; opsViewer may view ops.
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "alert-writer", Namespace: "shop"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"events", "pods"}, Verbs: []string{"create", "get", "list", "watch"}},
			{APIGroups: []string{"apps"}, Resources: []string{"deployments", "replicasets"}, Verbs: []string{"get", "list"}}}}
	if _, err := c.Client.RbacV1().Roles("shop").Create(ctx, role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Client.RbacV1().Roles("shop").Delete(context.Background(), role.Name, metav1.DeleteOptions{})
	})
	writer := makeUser(t, cs, "alert-writer", func(cl testenv.Cluster, u string) {
		if cl.Context == c.Context {
			roleBinding(t, cl, "shop", "alert-writer", "Role", "alert-writer", u)
		}
	})
	opsViewer := makeUser(t, cs, "alert-ops-viewer", func(cl testenv.Cluster, u string) {
		if cl.Context == c.Context {
			roleBinding(t, cl, "ops", "alert-ops-viewer", "ClusterRole", "view", u)
		}
	})
	adminUser := makeUser(t, cs, "alert-admin", func(cl testenv.Cluster, u string) { clusterBinding(t, cl, "alert-admin", "cluster-admin", u) })

	var pods struct {
		Pods struct{ Nodes []struct{ Name string } }
	}
	s.as(adminUser.token).query(t, `query($c: [String!]) { pods(clusters: $c, filter: {namespace: "shop", labelSelector: "app=frontend"}, first: 1) { nodes { name } } }`, map[string]any{"c": []string{c.Context}}, &pods)
	if len(pods.Pods.Nodes) != 1 {
		t.Fatalf("no frontend pod: %+v", pods)
	}
	podName := pods.Pods.Nodes[0].Name

	adminSub := subscribeWS(t, s, adminUser.token, `subscription { alerts(filter: {alertNames: ["Manual"]}) { alertName namespace } }`, nil)
	opsSub := subscribeWS(t, s, opsViewer.token, `subscription { alerts(filter: {alertNames: ["Manual"]}) { alertName namespace } }`, nil)
	eventually(t, 10*time.Second, "two alert subscribers", func() bool { return s.hub.Subscribers() == 2 })

	create := `mutation($in: CreateAlertInput!) { createAlert(input: $in) { id status alertName source module type
		object { ... on Pod { name } } workload { name kind } } }`
	in := map[string]any{"cluster": c.Context, "namespace": "shop", "name": podName, "objectKind": "Pod", "alertName": "Manual",
		"severity": "warning", "message": "disk almost full", "source": "10.0.0.4", "module": "bcs-health", "type": "sms", "labels": map[string]any{"team": "web"}}
	var made struct {
		CreateAlert struct {
			ID, Status, AlertName, Source, Module, Type string
			Object                                      struct{ Name string }
			Workload                                    struct{ Name, Kind string }
		}
	}
	s.as(writer.token).query(t, create, map[string]any{"in": in}, &made)
	m := made.CreateAlert
	if m.Status != "FIRING" || m.Object.Name != podName || m.Workload.Name != "frontend" || m.Workload.Kind != "DEPLOYMENT" || m.Module != "bcs-health" {
		t.Errorf("created %+v", m)
	}
	// Again: the same alert, not a second one.
	var again struct{ CreateAlert struct{ ID string } }
	s.as(writer.token).query(t, create, map[string]any{"in": in}, &again)
	if again.CreateAlert.ID != m.ID {
		t.Errorf("repeat created alert %s, want the same %s", again.CreateAlert.ID, m.ID)
	}
	// Not where the writer may not create events.
	in["namespace"] = "ops"
	r := s.as(writer.token).do(t, create, map[string]any{"in": in})
	if len(r.Errors) == 0 || r.Errors[0].Extensions["code"] != "FORBIDDEN" {
		t.Errorf("createAlert in ops: %+v, want FORBIDDEN", r.Errors)
	}
	in["cluster"] = "no-such-cluster"
	if r := s.as(writer.token).do(t, create, map[string]any{"in": in}); len(r.Errors) == 0 || r.Errors[0].Extensions["code"] == "INTERNAL" {
		t.Errorf("createAlert in an unknown cluster: %+v, want a clear error", r.Errors)
	}

	var ev struct {
		Alerts struct{ AlertName, Namespace string }
	}
	if !adminSub.next(&ev) || ev.Alerts.Namespace != "shop" {
		t.Errorf("the admin's subscription got %+v", ev)
	}
	// The ops viewer hears nothing of shop: a marker alert in ops arrives
	// first on their stream.
	in["cluster"], in["namespace"], in["name"], in["objectKind"] = c.Context, "ops", "", "Namespace"
	s.as(adminUser.token).query(t, create, map[string]any{"in": in}, &made)
	if !opsSub.next(&ev) || ev.Alerts.Namespace != "ops" {
		t.Errorf("the ops viewer's first alert is %+v, want the one in ops (never shop's)", ev)
	}

	var objs struct {
		Cluster struct {
			Namespace struct {
				Alerts []struct{ AlertName string }
				Pods   struct {
					Nodes []struct{ Alerts []struct{ AlertName string } }
				}
				Workloads struct {
					Nodes []struct {
						Name   string
						Alerts []struct{ AlertName string }
					}
				}
			}
		}
	}
	s.as(adminUser.token).query(t, `query($c: String!, $pod: String!) { cluster(name: $c) { namespace(name: "shop") { alerts { alertName }
		pods(filter: {fieldSelector: $pod}) { nodes { alerts { alertName } } }
		workloads(kinds: [DEPLOYMENT], filter: {name: "frontend"}) { nodes { name alerts(status: FIRING) { alertName } } } } } }`,
		map[string]any{"c": c.Context, "pod": "metadata.name=" + podName}, &objs)
	ns := objs.Cluster.Namespace
	if len(ns.Alerts) != 1 || len(ns.Pods.Nodes) != 1 || len(ns.Pods.Nodes[0].Alerts) != 1 {
		t.Errorf("namespace and pod alerts: %+v", ns)
	}
	found := false
	for _, w := range ns.Workloads.Nodes {
		if w.Name == "frontend" {
			found = len(w.Alerts) == 1
		}
	}
	if !found {
		t.Errorf("the frontend Deployment does not show its pod's alert: %+v", ns.Workloads.Nodes)
	}
}
