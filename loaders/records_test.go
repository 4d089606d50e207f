package loaders

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/clustergraph/clustergraph/caller"
	"github.com/clustergraph/clustergraph/db"
	"github.com/clustergraph/clustergraph/errkind"
	"github.com/clustergraph/clustergraph/k8s"
)

// The callers of the Records tests, in cluster "east" with namespaces "a"
// and "b": alice may list pods and events and create events in "a" only;
// carol may list pods and events cluster-wide; bob has no grant; the
// server itself may do anything.
var (
	alice  = &caller.Subject{User: "alice"}
	bob    = &caller.Subject{User: "bob"}
	carol  = &caller.Subject{User: "carol"}
	server = &caller.Subject{User: "clustergraph", Unrestricted: true}
)

// recordsFixture is a static cluster "east" with the grants above and a
// SQLite store holding, in "a" and "b" each, an hour of metering, an alert
// and an archived event.
func recordsFixture(t *testing.T) (*k8s.Cluster, *db.Store) {
	t.Helper()
	ctx := context.Background()
	subject := func(name string) []rbacv1.Subject {
		return []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: name}}
	}
	reg, err := k8s.NewStaticRegistry(map[string][]runtime.Object{"east": {
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "a"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "b"}},
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "reader"},
			Rules: []rbacv1.PolicyRule{
				{Verbs: []string{"list"}, APIGroups: []string{""}, Resources: []string{"pods", "events"}},
				{Verbs: []string{"create"}, APIGroups: []string{""}, Resources: []string{"events"}},
			}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "alice-reads"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "reader"},
			Subjects: subject("alice")},
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "lister"},
			Rules: []rbacv1.PolicyRule{{Verbs: []string{"list"}, APIGroups: []string{""}, Resources: []string{"pods", "events"}}}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "carol-lists"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "lister"},
			Subjects: subject("carol")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := reg.Cluster("east")
	if err != nil {
		t.Fatal(err)
	}
	store, err := db.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "cg.db"), db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	hour := time.Now().Add(-2 * time.Hour).Truncate(time.Hour)
	var samples []db.Sample
	var events []db.ArchivedEvent
	var alerts []db.Alert
	for _, ns := range []string{"a", "b"} {
		samples = append(samples, db.Sample{Cluster: "east", Namespace: ns, Time: hour, CPUMillis: 100})
		events = append(events, db.ArchivedEvent{Cluster: "east", UID: "uid-" + ns, Namespace: ns, Name: "e-" + ns,
			InvolvedKind: "Pod", InvolvedNamespace: ns, InvolvedName: "p", Type: "Normal", Reason: "Started",
			Count: 1, FirstSeen: hour, LastSeen: hour, Raw: []byte("{}")})
		alerts = append(alerts, db.Alert{Fingerprint: "f-" + ns, Status: db.Firing, Cluster: "east", Namespace: ns, AlertName: "A"})
	}
	if err := store.WriteSamples(ctx, samples); err != nil {
		t.Fatal(err)
	}
	if err := store.ArchiveEvents(ctx, events); err != nil {
		t.Fatal(err)
	}
	if _, err := store.RecordAlerts(ctx, alerts); err != nil {
		t.Fatal(err)
	}
	return c, store
}

// namespaces lists the namespaces of what a query returned, sorted.
func namespaces[T any](items []T, ns func(T) string) []string {
	out := []string{}
	for _, it := range items {
		out = append(out, ns(it))
	}
	slices.Sort(out)
	return out
}

// TestRecordsScopeQueries: metering, alerts and archived events over many
// records keep only the namespaces where the caller may list pods (for
// metering) or events, whatever scope the query came with; no database
// answers UNAVAILABLE.
func TestRecordsScopeQueries(t *testing.T) {
	c, store := recordsFixture(t)
	rs := NewRecords(db.Opened(store), nil)
	cs := []*k8s.Cluster{c}
	// A scope a resolver might pass: everything. Records must replace it.
	all := db.Scope{"east": {All: true}}
	for _, tc := range []struct {
		name    string
		subject *caller.Subject
		want    []string
	}{
		{"alice", alice, []string{"a"}},
		{"carol", carol, []string{"a", "b"}},
		{"bob", bob, []string{}},
		{"no caller", nil, []string{}},
		{"the server itself", server, []string{"a", "b"}},
	} {
		ctx := caller.With(context.Background(), tc.subject)
		records, _, err := rs.Metering(ctx, cs, db.MeteringQuery{Unit: db.Hour, Scope: all})
		if err != nil {
			t.Fatal(err)
		}
		if got := namespaces(records, func(r db.Record) string { return r.Namespace }); !slices.Equal(got, tc.want) {
			t.Errorf("%s: metering of %q, want %q", tc.name, got, tc.want)
		}
		alerts, _, err := rs.Alerts(ctx, cs, db.AlertQuery{Scope: all, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if got := namespaces(alerts, func(a db.Alert) string { return a.Namespace }); !slices.Equal(got, tc.want) {
			t.Errorf("%s: alerts of %q, want %q", tc.name, got, tc.want)
		}
		events, _, err := rs.Events(ctx, cs, db.EventQuery{Scope: all, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if got := namespaces(events, func(e db.ArchivedEvent) string { return e.Namespace }); !slices.Equal(got, tc.want) {
			t.Errorf("%s: archived events of %q, want %q", tc.name, got, tc.want)
		}
	}
	// Without a database (nil handle, nil Records) every query says so.
	ctx := caller.With(context.Background(), server)
	for _, rs := range []*Records{NewRecords(nil, nil), nil} {
		if rs.Enabled() {
			t.Error("Records without a database is enabled")
		}
		if err := rs.Available(); !errors.Is(err, errkind.Unavailable) {
			t.Errorf("Available without a database: %v, want unavailable", err)
		}
		if _, _, err := rs.Metering(ctx, cs, db.MeteringQuery{Unit: db.Hour}); !errors.Is(err, errkind.Unavailable) {
			t.Errorf("metering without a database: %v, want unavailable", err)
		}
		if _, _, err := rs.Alerts(ctx, cs, db.AlertQuery{}); !errors.Is(err, errkind.Unavailable) {
			t.Errorf("alerts without a database: %v, want unavailable", err)
		}
		if _, _, err := rs.Events(ctx, cs, db.EventQuery{}); !errors.Is(err, errkind.Unavailable) {
			t.Errorf("archived events without a database: %v, want unavailable", err)
		}
	}
	if !rs.Enabled() || rs.Available() != nil {
		t.Error("Records over an open store is not enabled and available")
	}
}

// TestRecordsClusterMetering: a cluster's own metering needs list on pods
// cluster-wide; a namespace grant is not enough. The database's absence is
// told first, as before the check moved here from the resolver.
func TestRecordsClusterMetering(t *testing.T) {
	c, store := recordsFixture(t)
	rs := NewRecords(db.Opened(store), nil)
	for _, tc := range []struct {
		name    string
		subject *caller.Subject
		allowed bool
	}{
		{"carol", carol, true},
		{"the server itself", server, true},
		{"alice, in one namespace", alice, false},
		{"bob", bob, false},
		{"no caller", nil, false},
	} {
		got, err := rs.ClusterMetering(caller.With(context.Background(), tc.subject), c, db.Hour, time.Time{}, time.Time{}, 30)
		switch {
		case tc.allowed && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.allowed && (len(got) != 1 || got[0].Cluster != "east" || got[0].CPUMillis != 200):
			t.Errorf("%s: cluster metering %+v, want one hour of east at 200m", tc.name, got)
		case !tc.allowed && !errors.Is(err, errkind.Forbidden):
			t.Errorf("%s: %d records, error %v; want forbidden", tc.name, len(got), err)
		}
	}
	_, err := NewRecords(nil, nil).ClusterMetering(caller.With(context.Background(), bob), c, db.Hour, time.Time{}, time.Time{}, 30)
	if !errors.Is(err, errkind.Unavailable) {
		t.Errorf("without a database: %v, want unavailable", err)
	}
}

// stream stands for alerting.Hub: it keeps the match of each
// subscription and counts pokes.
type stream struct {
	matches []func(db.Alert) bool
	pokes   int
}

func (s *stream) Subscribe(_ context.Context, match func(db.Alert) bool) <-chan db.Alert {
	s.matches = append(s.matches, match)
	return make(chan db.Alert)
}

func (s *stream) Poke() { s.pokes++ }

// TestRecordsSubscribeAlerts: a subscription gets the alerts of its
// clusters that the caller may read (list on events in the alert's
// namespace, cluster-wide for one without) and its filter accepts, asked
// per alert; without a stream there is no subscription.
func TestRecordsSubscribeAlerts(t *testing.T) {
	c, _ := recordsFixture(t)
	inA := db.Alert{Cluster: "east", Namespace: "a", Severity: "critical"}
	inB := db.Alert{Cluster: "east", Namespace: "b", Severity: "critical"}
	ofCluster := db.Alert{Cluster: "east", Severity: "critical"}
	elsewhere := db.Alert{Cluster: "west", Namespace: "a", Severity: "critical"}
	quiet := db.Alert{Cluster: "east", Namespace: "a", Severity: "info"}
	critical := func(a db.Alert) bool { return a.Severity == "critical" }
	for _, tc := range []struct {
		name    string
		subject *caller.Subject
		want    []bool // inA, inB, ofCluster, elsewhere, quiet
	}{
		{"alice", alice, []bool{true, false, false, false, false}},
		{"carol", carol, []bool{true, true, true, false, false}},
		{"bob", bob, []bool{false, false, false, false, false}},
		{"no caller", nil, []bool{false, false, false, false, false}},
		{"the server itself", server, []bool{true, true, true, false, false}},
	} {
		s := &stream{}
		if _, err := NewRecords(nil, s).SubscribeAlerts(caller.With(context.Background(), tc.subject), []*k8s.Cluster{c}, critical); err != nil {
			t.Fatal(err)
		}
		if len(s.matches) != 1 {
			t.Fatalf("%s: %d subscriptions, want 1", tc.name, len(s.matches))
		}
		var got []bool
		for _, a := range []db.Alert{inA, inB, ofCluster, elsewhere, quiet} {
			got = append(got, s.matches[0](a))
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: delivered %v of (a, b, cluster-wide, other cluster, filtered out), want %v", tc.name, got, tc.want)
		}
	}
	for _, rs := range []*Records{NewRecords(nil, nil), nil} {
		if _, err := rs.SubscribeAlerts(context.Background(), []*k8s.Cluster{c}, critical); !errors.Is(err, errkind.Unavailable) {
			t.Errorf("without a stream: %v, want unavailable", err)
		}
	}
}

// TestRecordsCreateAlert: createAlert needs create on events where the
// alert is; a refused caller is told so before its input is looked at,
// and nothing is stored. An allowed one gets the stored alert and the
// stream is poked.
func TestRecordsCreateAlert(t *testing.T) {
	c, store := recordsFixture(t)
	s := &stream{}
	rs := NewRecords(db.Opened(store), s)
	alert := func(ns, name string) func() (db.Alert, error) {
		return func() (db.Alert, error) {
			return db.Alert{Fingerprint: "new-" + ns + name, Status: db.Firing, Cluster: "east", Namespace: ns, AlertName: name}, nil
		}
	}
	stored := func(fingerprint string) bool {
		_, err := store.LatestAlert(context.Background(), fingerprint)
		return err == nil
	}
	// Allowed: alice in "a", the server anywhere.
	for _, tc := range []struct {
		subject *caller.Subject
		ns      string
	}{{alice, "a"}, {server, "b"}, {server, ""}} {
		got, err := rs.CreateAlert(caller.With(context.Background(), tc.subject), c, tc.ns, alert(tc.ns, "Created"))
		if err != nil {
			t.Fatalf("%s in %q: %v", tc.subject.User, tc.ns, err)
		}
		if got.ID == 0 || got.Namespace != tc.ns || got.AlertName != "Created" {
			t.Errorf("%s in %q: got %+v, want the stored alert", tc.subject.User, tc.ns, got)
		}
	}
	if s.pokes != 3 {
		t.Errorf("%d pokes after three alerts, want 3", s.pokes)
	}
	// Refused: alice outside "a" (carol may list but not create), bob, no
	// caller. The input is never built.
	for _, tc := range []struct {
		subject *caller.Subject
		ns      string
	}{{alice, "b"}, {alice, ""}, {carol, "a"}, {bob, "a"}, {nil, "a"}} {
		built := false
		_, err := rs.CreateAlert(caller.With(context.Background(), tc.subject), c, tc.ns, func() (db.Alert, error) {
			built = true
			return alert(tc.ns, "Refused")()
		})
		if !errors.Is(err, errkind.Forbidden) || built {
			t.Errorf("%v in %q: error %v, input built %v; want forbidden, not built", tc.subject, tc.ns, err, built)
		}
	}
	if stored("new-bRefused") || stored("new-aRefused") || stored("new-Refused") || s.pokes != 3 {
		t.Error("a refused alert was stored or poked")
	}
	// The build's error is returned as it is; an alert built for another
	// namespace than the one checked is refused, not stored.
	bad := errkind.BadInputf("labels must be a JSON object of strings")
	if _, err := rs.CreateAlert(caller.With(context.Background(), alice), c, "a", func() (db.Alert, error) { return db.Alert{}, bad }); err != bad {
		t.Errorf("build error: got %v, want %v", err, bad)
	}
	if _, err := rs.CreateAlert(caller.With(context.Background(), alice), c, "a", alert("b", "Moved")); err == nil || stored("new-bMoved") {
		t.Errorf("alert built for b after a check on a: error %v, stored %v", err, stored("new-bMoved"))
	}
	// Without a database: allowed, built, then unavailable.
	if _, err := NewRecords(nil, s).CreateAlert(caller.With(context.Background(), alice), c, "a", alert("a", "Lost")); !errors.Is(err, errkind.Unavailable) {
		t.Errorf("without a database: %v, want unavailable", err)
	}
}
