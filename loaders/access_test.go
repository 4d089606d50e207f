package loaders

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/clustergraph/clustergraph/caller"
	"github.com/clustergraph/clustergraph/db"
	"github.com/clustergraph/clustergraph/k8s"
)

// TestStoredLoadersAuthorize: the stored loaders serve an object's records
// only to a caller who may list events in its namespace (as the cache
// reads decide it), so a resolver cannot forget the check: alice, who may
// list events in "a" alone, gets the archived events of a pod in "a" and
// none of one in "b"; a caller with no grant, or loaders without a
// registry, get none.
func TestStoredLoadersAuthorize(t *testing.T) {
	ctx := context.Background()
	reg, err := k8s.NewStaticRegistry(map[string][]runtime.Object{"east": {
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "a"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "b"}},
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "event-reader"},
			Rules: []rbacv1.PolicyRule{{Verbs: []string{"list"}, APIGroups: []string{""}, Resources: []string{"events"}}}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "alice-reads-events"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "event-reader"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "alice"}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	store, err := db.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "cg.db"), db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Truncate(time.Second)
	var events []db.ArchivedEvent
	for _, ns := range []string{"a", "b"} {
		events = append(events, db.ArchivedEvent{Cluster: "east", UID: "uid-" + ns, Namespace: ns, Name: "e-" + ns,
			InvolvedKind: "Pod", InvolvedNamespace: ns, InvolvedName: "p", Type: "Normal", Reason: "Started",
			Count: 1, FirstSeen: now, LastSeen: now, Raw: []byte("{}")})
	}
	if err := store.ArchiveEvents(ctx, events); err != nil {
		t.Fatal(err)
	}
	inA := db.InvolvedRef{Cluster: "east", Kind: "Pod", Namespace: "a", Name: "p"}
	inB := db.InvolvedRef{Cluster: "east", Kind: "Pod", Namespace: "b", Name: "p"}
	load := func(r *k8s.Registry, s *caller.Subject) (a, b int) {
		t.Helper()
		l := New(Config{Wait: time.Millisecond, MaxBatch: 10, Store: db.Opened(store), Registry: r})
		got, errs := l.ArchivedEvents.LoadMany(caller.With(ctx, s), []db.InvolvedRef{inA, inB})
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		return len(got[0]), len(got[1])
	}
	for _, tc := range []struct {
		name         string
		reg          *k8s.Registry
		subject      *caller.Subject
		wantA, wantB int
	}{
		{"alice", reg, &caller.Subject{User: "alice"}, 1, 0},
		{"no grant", reg, &caller.Subject{User: "bob"}, 0, 0},
		{"no caller", reg, nil, 0, 0},
		{"the server itself", reg, &caller.Subject{User: "clustergraph", Unrestricted: true}, 1, 1},
		{"no registry", nil, &caller.Subject{User: "clustergraph", Unrestricted: true}, 0, 0},
	} {
		if a, b := load(tc.reg, tc.subject); a != tc.wantA || b != tc.wantB {
			t.Errorf("%s: %d and %d archived events in a and b, want %d and %d", tc.name, a, b, tc.wantA, tc.wantB)
		}
	}
}
