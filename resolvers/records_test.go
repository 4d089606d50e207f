package resolvers_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/99designs/gqlgen/client"
	"github.com/google/go-cmp/cmp"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/clustergraph/clustergraph/caller"
	"github.com/clustergraph/clustergraph/db"
	"github.com/clustergraph/clustergraph/errkind"
	"github.com/clustergraph/clustergraph/k8s"
	"github.com/clustergraph/clustergraph/loaders"
)

// TestStoredFieldsAreAuthorized: the fields over stored records answer
// through loaders.Records, so the caller's rights decide them there:
// alice, who may list pods in shop and nothing else, is refused a
// cluster's metering and createAlert and sees no alert; admin gets all
// three. Without a database, cluster metering says so before it refuses.
// (What each check allows is loaders' tests; this is the wiring.)
func TestStoredFieldsAreAuthorized(t *testing.T) {
	reg, err := k8s.NewStaticRegistry(map[string][]runtime.Object{"east": {
		namespace("shop"),
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "pod-reader"},
			Rules: []rbacv1.PolicyRule{{Verbs: []string{"get", "list"}, APIGroups: []string{""}, Resources: []string{"pods"}}}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "alice-reads-pods"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "pod-reader"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "alice"}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	c := storedClient(t, reg)
	const (
		clusterMetering = `{ cluster(name: "east") { metering(timeUnit: HOUR, first: 5) { id } } }`
		createAlert     = `mutation { createAlert(input: {cluster: "east", namespace: "shop", alertName: "A", message: "m"}) { namespace alertName } }`
		alerts          = `{ alerts { totalCount } }`
	)
	forbidden := []refusal{{Code: errkind.CodeForbidden}}
	if diff := cmp.Diff(forbidden, refusals(run(t, c, clusterMetering, nil, nil, as(alice)))); diff != "" {
		t.Errorf("alice's cluster metering (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(forbidden, refusals(run(t, c, createAlert, nil, nil, as(alice)))); diff != "" {
		t.Errorf("alice's createAlert (-want +got):\n%s", diff)
	}
	if errs := run(t, c, clusterMetering, nil, nil, as(admin)); len(errs) > 0 {
		t.Errorf("admin's cluster metering: %+v", errs)
	}
	var created struct {
		CreateAlert struct{ Namespace, AlertName string }
	}
	if errs := run(t, c, createAlert, nil, &created, as(admin)); len(errs) > 0 || created.CreateAlert.Namespace != "shop" {
		t.Errorf("admin's createAlert: %+v, errors %+v", created, errs)
	}
	for _, tc := range []struct {
		who  *caller.Subject
		want int
	}{{alice, 0}, {admin, 1}} {
		var out struct{ Alerts struct{ TotalCount int } }
		if errs := run(t, c, alerts, nil, &out, as(tc.who)); len(errs) > 0 || out.Alerts.TotalCount != tc.want {
			t.Errorf("%s sees %d alerts (errors %+v), want %d", tc.who.User, out.Alerts.TotalCount, errs, tc.want)
		}
	}
	none := newClient(reg)
	if diff := cmp.Diff([]refusal{{Code: errkind.CodeUnavailable}}, refusals(run(t, none, clusterMetering, nil, nil, as(alice)))); diff != "" {
		t.Errorf("alice's cluster metering without a database (-want +got):\n%s", diff)
	}
}

// TestStoredPagesBackward: the alerts, paged by offset in SQL, page
// backward too: last/before walk from the end and meet the forward
// order, pageInfo says what lies on each side, and offset does not go
// with last.
func TestStoredPagesBackward(t *testing.T) {
	reg, err := k8s.NewStaticRegistry(map[string][]runtime.Object{"east": {namespace("shop")}})
	if err != nil {
		t.Fatal(err)
	}
	c := storedClient(t, reg)
	for _, name := range []string{"a1", "a2", "a3", "a4", "a5"} {
		if errs := run(t, c, `mutation($n: String!) { createAlert(input: {cluster: "east", namespace: "shop", alertName: $n, message: "m"}) { alertName } }`, map[string]any{"n": name}, nil, as(admin)); len(errs) > 0 {
			t.Fatal(errs)
		}
	}
	type page struct {
		Alerts struct {
			TotalCount int
			PageInfo   struct {
				HasNextPage, HasPreviousPage bool
				StartCursor, EndCursor       *string
			}
			Nodes []struct{ AlertName string }
		}
	}
	names := func(p page) (out []string) {
		for _, n := range p.Alerts.Nodes {
			out = append(out, n.AlertName)
		}
		return out
	}
	var forward page
	if errs := run(t, c, `{ alerts(ascending: true, first: 10) { totalCount nodes { alertName } } }`, nil, &forward, as(admin)); len(errs) > 0 {
		t.Fatal(errs)
	}
	var back []string
	var before any
	for i := 0; ; i++ {
		var p page
		if errs := run(t, c, `query($b: String) { alerts(ascending: true, last: 2, before: $b) { totalCount pageInfo { hasNextPage hasPreviousPage startCursor } nodes { alertName } } }`, map[string]any{"b": before}, &p, as(admin)); len(errs) > 0 {
			t.Fatal(errs)
		}
		if p.Alerts.TotalCount != 5 || p.Alerts.PageInfo.HasNextPage != (i > 0) || len(p.Alerts.Nodes) == 0 {
			t.Fatalf("page %d: %+v", i, p.Alerts)
		}
		back = append(names(p), back...)
		if !p.Alerts.PageInfo.HasPreviousPage {
			break
		}
		if i > 5 {
			t.Fatal("no first page")
		}
		before = *p.Alerts.PageInfo.StartCursor
	}
	if diff := cmp.Diff(names(forward), back); diff != "" || len(back) != 5 {
		t.Errorf("backward pages put in order vs forward (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]refusal{{Code: errkind.CodeBadUserInput}}, refusals(run(t, c, `{ alerts(last: 2, offset: 1) { totalCount } }`, nil, nil, as(admin)))); diff != "" {
		t.Errorf("offset with last (-want +got):\n%s", diff)
	}
}

// storedClient is newClient with a fresh SQLite database behind the
// stored records.
func storedClient(t *testing.T, reg *k8s.Registry) *client.Client {
	t.Helper()
	store, err := db.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "cg.db"), db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	return newClientWith(reg, loaders.NewRecords(db.Opened(store), nil))
}
