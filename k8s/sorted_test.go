package k8s

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	"github.com/clustergraph/clustergraph/caller"
	"github.com/clustergraph/clustergraph/internal/testenv"
)

// TestKeptSortedLists (real apiserver): a label query ordered by creation
// is answered from a kept sorted list after its first use, the list
// follows adds, deletes and relabels and survives status-like updates,
// every page agrees with sorting the apiserver's objects, and a query
// whose objects churn between requests keeps no list until they hold still.
func TestKeptSortedLists(t *testing.T) {
	tc := testenv.Clusters(t)[0]
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reg := NewRegistry(RegistryConfig{Kubeconfigs: []string{tc.Kubeconfig}})
	if err := reg.Start(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := reg.Cluster(tc.Context)
	if err != nil {
		t.Fatal(err)
	}
	ns := fmt.Sprintf("kept-%d", time.Now().UnixNano())
	if _, err := tc.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tc.Client.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
	pods := tc.Client.CoreV1().Pods(ns)
	create := func(name string) {
		t.Helper()
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kept": ns}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example/app:1"}}}}
		if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 12 {
		create(fmt.Sprintf("p-%02d", i))
	}

	user := caller.With(ctx, &caller.Subject{User: "test", Unrestricted: true})
	f := &Filter{Labels: labels.SelectorFromSet(labels.Set{"kept": ns})}
	order := Order{Field: OrderCreated, Desc: true}
	q, _ := sortable(resPods, f, order.Field)
	sorted := c.caches.sorted
	kept := func() (*sortedList, uint64) {
		sorted.mu.Lock()
		defer sorted.mu.Unlock()
		return sorted.lists[q], sorted.gens[resPods].Load()
	}
	// want is every labelled pod, newest first, as the apiserver has them.
	want := func() []string {
		l, err := pods.List(ctx, metav1.ListOptions{LabelSelector: "kept=" + ns})
		if err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(l.Items, func(a, b corev1.Pod) int {
			if c := b.CreationTimestamp.Compare(a.CreationTimestamp.Time); c != 0 {
				return c
			}
			return -slices.Compare([]string{a.Namespace, a.Name}, []string{b.Namespace, b.Name})
		})
		var names []string
		for _, p := range l.Items {
			names = append(names, p.Name)
		}
		return names
	}
	// walk pages through the query, five at a time, by cursor. A total
	// that changes between pages (the cache moved) is -1.
	walk := func() ([]string, int) {
		var names []string
		after, total := "", -1
		for {
			p, errs, err := PageAcross(user, []*Cluster{c}, GVKPod, f, order, PageArgs{First: 5, After: after}, 100)
			if err != nil || len(errs) > 0 {
				t.Fatal(err, errs)
			}
			if total >= 0 && p.Total != total {
				return names, -1
			}
			total = p.Total
			for _, it := range p.Items {
				names = append(names, it.Obj.(*corev1.Pod).Name)
			}
			if !p.HasNext {
				return names, total
			}
			if p.HasPrev != (after != "") {
				t.Fatalf("hasPrev %v after %q", p.HasPrev, after)
			}
			after = p.Cursor(len(p.Items) - 1)
		}
	}
	agree := func(what string) {
		t.Helper()
		var diff string
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			names, total := walk()
			w := want()
			if diff = cmp.Diff(w, names); diff == "" && total == len(w) {
				return
			}
			diff += fmt.Sprintf("total %d, want %d", total, len(w))
		}
		t.Fatalf("%s: pages disagree with the apiserver (-apiserver +pages):\n%s", what, diff)
	}

	eventually := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(15 * time.Second); !cond(); time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	eventually("the cluster's caches", func() bool { return c.Status().State == StateReady })
	agree("first walk")
	// The pods' adds reach the tracker after the cache: once it holds
	// still, a walk builds the list on its first page and uses it after.
	eventually("the generation to hold still", func() bool {
		_, g := kept()
		time.Sleep(300 * time.Millisecond)
		_, g2 := kept()
		return g == g2
	})
	agree("second walk")
	l, gen := kept()
	if l == nil || l.keys == nil || l.hits == 0 {
		t.Fatalf("no kept list used after a walk of three pages: %+v", l)
	}
	if l.gen != gen || len(l.keys) != 12 {
		t.Fatalf("kept list at generation %d with %d keys; the resource is at %d with 12 matches", l.gen, len(l.keys), gen)
	}

	// An update that leaves labels alone keeps the list, and the page
	// serves the updated object.
	if _, err := pods.Patch(ctx, "p-03", types.MergePatchType, []byte(`{"metadata":{"annotations":{"touched":"yes"}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually("the annotation on a page", func() bool {
		p, _, err := PageAcross(user, []*Cluster{c}, GVKPod, f, Order{Field: OrderName}, PageArgs{First: 20}, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range p.Items {
			if pod := it.Obj.(*corev1.Pod); pod.Name == "p-03" && pod.Annotations["touched"] == "yes" {
				return true
			}
		}
		return false
	})
	if l2, gen2 := kept(); l2 != l || gen2 != gen {
		t.Fatalf("an annotation rebuilt the list (generation %d -> %d)", gen, gen2)
	}

	// Adds, relabels and deletes show on the next page.
	create("p-new")
	agree("after an add")
	if _, err := pods.Patch(ctx, "p-05", types.MergePatchType, []byte(`{"metadata":{"labels":{"kept":null}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	agree("after a relabel")
	if err := pods.Delete(ctx, "p-07", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	agree("after a delete")
	if got := len(want()); got != 11 {
		t.Fatalf("%d labelled pods, want 11", got)
	}

	// A list that goes out of date unused is not rebuilt at once: the
	// next request only notes the generation, the one after builds.
	_, _ = kept()
	create("p-churn")
	eventually("the add counted", func() bool {
		l, gen := kept()
		return l.gen != gen
	})
	// Drop the hit the walks counted, as if the last list went unused.
	sorted.mu.Lock()
	sorted.lists[q].hits = 0
	sorted.mu.Unlock()
	page := func() Page {
		p, _, err := PageAcross(user, []*Cluster{c}, GVKPod, f, order, PageArgs{First: 5}, 100)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	// (Creation times have seconds: p-churn may tie with p-new, and the
	// names break the tie.)
	if p, w := page(), want(); p.Total != len(w) || p.Items[0].Obj.(*corev1.Pod).Name != w[0] || len(w) != 12 {
		t.Fatalf("churned query: total %d, first %s; want %d, %s", p.Total, p.Items[0].Obj.(*corev1.Pod).Name, len(w), w[0])
	}
	if l, _ := kept(); l.keys != nil {
		t.Fatal("a list that went out of date unused was rebuilt at once")
	}
	page()
	if l, gen := kept(); l.keys == nil || l.gen != gen {
		t.Fatal("no list built when the generation held still")
	}

	// Queries the list cannot answer are answered by filtering.
	if _, ok := sortable(resPods, &Filter{Status: "Running"}, OrderCreated); ok {
		t.Fatal("a status filter is not kept: status changes without a label change")
	}
	if _, ok := sortable(resPods, f, OrderStatus); ok {
		t.Fatal("a status order is not kept")
	}
}

// TestSortedListsBudget: kept lists stay within their count and key
// budgets, the least recently used going first, and a query larger than
// the whole budget is answered without being kept, then not built again.
func TestSortedListsBudget(t *testing.T) {
	store := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{IndexLabel: labelIndex})
	for i := range 100 {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p-%03d", i), Namespace: "ns",
			Labels: map[string]string{"group": fmt.Sprint(i % 10), "all": "yes"}}}
		if err := store.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	c := &Cluster{Name: "c"}
	s := newSortedLists()
	s.maxLists, s.maxKeys = 3, 35
	query := func(sel string) (sortedQuery, *Filter) {
		key, value, _ := strings.Cut(sel, "=")
		f := &Filter{Labels: labels.SelectorFromSet(labels.Set{key: value})}
		q, _ := sortable(resPods, f, OrderName)
		return q, f
	}
	keep := func(sel string) sortedQuery {
		t.Helper()
		q, f := query(sel)
		if !s.wanted(q, 1) {
			t.Fatalf("%s not wanted", sel)
		}
		var matches []Item
		for _, o := range store.List() {
			if f.Matches(o) {
				matches = append(matches, Item{Cluster: c, Obj: o})
			}
		}
		if got := len(s.build(q, 1, matches)); got != 10 && sel != "all=yes" {
			t.Fatalf("%s: %d keys, want 10", sel, got)
		}
		if s.lookup(q, 1) == nil && sel != "all=yes" {
			t.Fatalf("%s not kept", sel)
		}
		return q
	}
	kept := func() int {
		n := 0
		for _, l := range s.lists {
			n += len(l.keys)
		}
		if n != s.keys {
			t.Fatalf("the budget counts %d keys, the lists hold %d", s.keys, n)
		}
		return n
	}
	g0, g1, g2 := keep("group=0"), keep("group=1"), keep("group=2")
	s.lookup(g0, 1) // g1 is now the least recently used
	keep("group=3") // a fourth list: over the count budget
	if _, ok := s.lists[g1]; ok || s.lists[g0] == nil || s.lists[g2] == nil {
		t.Fatalf("the least recently used list was not the one evicted: %v", s.lists)
	}
	if kept() != 30 {
		t.Fatalf("%d keys kept, want 30", kept())
	}
	all := keep("all=yes") // 100 keys: over the whole budget
	if s.lookup(all, 1) != nil {
		t.Fatal("a list over the whole key budget was kept")
	}
	if s.wanted(all, 1) || s.wanted(all, 2) {
		t.Fatal("a query over the whole budget is built again")
	}
	if kept() > 35 {
		t.Fatalf("%d keys kept, over the budget of 35", kept())
	}
}

// TestSortedQueryKeys: queries that can differ in their answer never share
// a kept list; an update regroups an object when its labels change or a
// relist reports another object under the same name.
func TestSortedQueryKeys(t *testing.T) {
	epoch := time.Unix(0, 0)
	unset, _ := sortable(resPods, &Filter{}, OrderCreated)
	atEpoch, _ := sortable(resPods, &Filter{CreatedBefore: epoch}, OrderCreated)
	if unset == atEpoch {
		t.Error("createdBefore 1970-01-01 shares a kept list with no bound")
	}
	local, _ := sortable(resPods, &Filter{CreatedAfter: epoch.In(time.FixedZone("x", 3600))}, OrderCreated)
	utc, _ := sortable(resPods, &Filter{CreatedAfter: epoch.UTC()}, OrderCreated)
	if local != utc {
		t.Error("one instant in two locations keys two lists")
	}

	pod := func(uid string, created int64, l map[string]string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: types.UID(uid),
			CreationTimestamp: metav1.Unix(created, 0), Labels: l, ResourceVersion: uid}}
	}
	a := map[string]string{"app": "a"}
	for _, tc := range []struct {
		name     string
		old, new *corev1.Pod
		want     bool
	}{
		{"status-like update", pod("1", 10, a), pod("1", 10, map[string]string{"app": "a"}), false},
		{"relabel", pod("1", 10, a), pod("1", 10, map[string]string{"app": "b"}), true},
		{"recreated under the same name", pod("1", 10, a), pod("2", 20, a), true},
	} {
		if got := regrouped(tc.old, tc.new); got != tc.want {
			t.Errorf("%s: regrouped = %v, want %v", tc.name, got, tc.want)
		}
	}
}
