package k8s

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/clustergraph/clustergraph/errkind"
)

func TestIDRoundTrip(t *testing.T) {
	for _, id := range []ObjectID{
		{Cluster: "kwok-a", GVK: GVKPod, Namespace: "shop", Name: "web-1"},
		{Cluster: "in-cluster", GVK: GVKNode, Name: "node-0"},
		{Cluster: "c", GVK: GVKDeployment, Namespace: "ns", Name: "d"},
	} {
		got, err := ParseID(id.Encode())
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(id, got); diff != "" {
			t.Errorf("round trip (-want +got):\n%s", diff)
		}
	}
	for _, bad := range []string{"", "!!", "bm9wZQ", ObjectID{Cluster: "c", GVK: GVKPod}.Encode()} {
		if _, err := ParseID(bad); !errors.Is(err, errkind.BadInput) {
			t.Errorf("ParseID(%q) = %v, want errkind.BadInput", bad, err)
		}
	}
}

func testPods(n int) []Item {
	c := &Cluster{Name: "c"}
	items := make([]Item, n)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range items {
		items[i] = Item{Cluster: c, Obj: &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
			Namespace: fmt.Sprintf("ns%d", i%3), Name: fmt.Sprintf("p%02d", i),
			CreationTimestamp: metav1.NewTime(base.Add(time.Duration(i%5) * time.Minute)),
		}}}
	}
	return items
}

func names(items []Item) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.Obj.(*corev1.Pod).Name
	}
	return out
}

// TestPaginateCursorsAndOffsets: walking with cursors, in any order and
// page size, visits every item once in order; offset agrees.
func TestPaginateCursorsAndOffsets(t *testing.T) {
	items := testPods(23)
	for _, order := range []Order{{Field: OrderName}, {Field: OrderCreated, Desc: true}, {Field: OrderNamespace}, {}} {
		full, err := Paginate(items, order, PageArgs{First: 100}, 100)
		if err != nil {
			t.Fatal(err)
		}
		if full.Total != 23 || len(full.Items) != 23 || full.HasNext || full.HasPrev {
			t.Fatalf("full page = %+v", full)
		}
		for _, size := range []int{1, 4, 23} {
			var walked []string
			after := ""
			for {
				p, err := Paginate(items, order, PageArgs{After: after, First: size}, 100)
				if err != nil {
					t.Fatal(err)
				}
				walked = append(walked, names(p.Items)...)
				if !p.HasNext {
					break
				}
				after = p.Cursor(len(p.Items) - 1)
			}
			if diff := cmp.Diff(names(full.Items), walked); diff != "" {
				t.Errorf("order %+v size %d (-full +walked):\n%s", order, size, diff)
			}
		}
		p, err := Paginate(items, order, PageArgs{First: 5, Offset: 10}, 100)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(names(full.Items[10:15]), names(p.Items)); diff != "" || !p.HasPrev || !p.HasNext {
			t.Errorf("offset page (-want +got):\n%s %+v", diff, p)
		}
	}
}

func TestPaginateBadArgs(t *testing.T) {
	for _, args := range []PageArgs{{First: 101}, {First: 1, Offset: -1}, {First: 1, After: "%%%"},
		// offset+first+1 would wrap around.
		{First: 1, Offset: math.MaxInt}} {
		if _, err := Paginate(testPods(3), Order{}, args, 100); !errors.Is(err, errkind.BadInput) {
			t.Errorf("Paginate(%+v) = %v, want errkind.BadInput", args, err)
		}
	}
	p, err := Paginate(testPods(3), Order{}, PageArgs{First: -1, Offset: 10}, 100)
	if err != nil || len(p.Items) != 0 || p.Total != 3 {
		t.Errorf("offset past the end = %+v, %v", p, err)
	}
}

func TestFilter(t *testing.T) {
	ls, fs, err := ParseSelectors("app=web,tier notin (db)", "spec.nodeName=n1")
	if err != nil {
		t.Fatal(err)
	}
	f := Filter{Labels: ls, Fields: fs, Name: "WEB"}
	match := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-1", Labels: map[string]string{"app": "web"}}, Spec: corev1.PodSpec{NodeName: "n1"}}
	if !f.Matches(match) {
		t.Error("want a match")
	}
	for _, mutate := range []func(*corev1.Pod){
		func(p *corev1.Pod) { p.Labels["tier"] = "db" },
		func(p *corev1.Pod) { p.Spec.NodeName = "n2" },
		func(p *corev1.Pod) { p.Name = "api-1" },
	} {
		p := match.DeepCopy()
		mutate(p)
		if f.Matches(p) {
			t.Errorf("%+v should not match", p)
		}
	}
	if _, _, err := ParseSelectors("a in (", ""); !errors.Is(err, errkind.BadInput) {
		t.Errorf("bad label selector: %v", err)
	}
}

// TestPaginateShortPagesMatchAFullSort: the bounded-heap path for short
// pages of long lists returns exactly what sorting everything returns, for
// every order, direction, offset and cursor.
func TestPaginateShortPagesMatchAFullSort(t *testing.T) {
	c := &Cluster{Name: "c"}
	rng := rand.New(rand.NewPCG(1, 2))
	var items []Item
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 500 {
		items = append(items, Item{Cluster: c, Obj: &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
			Name: fmt.Sprintf("p-%03d-%03d", rng.IntN(300), i), Namespace: fmt.Sprintf("ns-%d", rng.IntN(5)),
			// Ties on the first key are common, as in real lists.
			CreationTimestamp: metav1.NewTime(base.Add(time.Duration(rng.IntN(50)) * time.Minute)),
			UID:               types.UID(fmt.Sprint(i)),
		}}})
	}
	names := func(p Page) []string {
		var out []string
		for _, it := range p.Items {
			m := it.Obj.(*corev1.Pod)
			out = append(out, m.Namespace+"/"+m.Name+"@"+m.CreationTimestamp.String())
		}
		return out
	}
	for _, field := range []OrderField{OrderName, OrderNamespace, OrderCreated, OrderCluster} {
		for _, desc := range []bool{false, true} {
			order := Order{Field: field, Desc: desc}
			// The whole list sorted (first = everything takes the full sort).
			all, err := Paginate(items, order, PageArgs{First: len(items)}, len(items))
			if err != nil {
				t.Fatal(err)
			}
			for _, offset := range []int{0, 7, 100} {
				after := ""
				pos := offset
				for page := 0; page < 3; page++ {
					got, err := Paginate(items, order, PageArgs{First: 10, Offset: offset, After: after}, len(items))
					if err != nil {
						t.Fatal(err)
					}
					if page > 0 {
						pos += 10
					}
					want := names(Page{Items: all.Items[pos:min(pos+10, len(all.Items))]})
					if diff := cmp.Diff(want, names(got)); diff != "" {
						t.Fatalf("%s desc=%v offset %d page %d (-full sort +short page):\n%s", field, desc, offset, page, diff)
					}
					if got.Total != len(items) || got.HasNext != (pos+10 < len(items)) || got.HasPrev != (pos > 0) {
						t.Fatalf("%s page %d: total %d next %v prev %v at position %d", field, page, got.Total, got.HasNext, got.HasPrev, pos)
					}
					after = got.Cursor(len(got.Items) - 1)
					offset = 0
				}
			}
		}
	}
}

// TestTimeCursorsRoundTrip: a time order's cursor carries the time as
// digits and parses back to the same key; digits that are not a time are
// a malformed cursor, not a panic or a silent first page.
func TestTimeCursorsRoundTrip(t *testing.T) {
	k := sortKey{t: 1_700_000_000_123_456_789, timed: true, s: [4]string{"", "a", "ns", "pod"}}
	got, err := parseCursor(k.cursor(), OrderCreated)
	if err != nil || got != k {
		t.Errorf("round trip: %+v, %v; want %+v", got, err, k)
	}
	notTime := sortKey{s: [4]string{"web", "ns", "a"}}.cursor()
	if _, err := parseCursor(notTime, OrderLastSeen); err == nil {
		t.Errorf("a name cursor parsed as a time cursor")
	}
	if _, err := parseCursor(notTime, OrderName); err != nil {
		t.Errorf("name cursor: %v", err)
	}
}

// BenchmarkPaginateFirstPage: the first page of 20, newest first, out of
// 10,000 matches (the bench's label at L): the cost Paginate adds to a
// console's most common list request.
func BenchmarkPaginateFirstPage(b *testing.B) {
	c := &Cluster{Name: "c"}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	items := make([]Item, 10_000)
	for i := range items {
		items[i] = Item{Cluster: c, Obj: &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
			Name: fmt.Sprintf("web-%d", i), Namespace: fmt.Sprintf("ns-%d", i%250),
			CreationTimestamp: metav1.NewTime(base.Add(time.Duration(i*7919%10_000) * time.Second)),
		}}}
	}
	order := Order{Field: OrderCreated, Desc: true}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Paginate(items, order, PageArgs{First: 20}, 1000); err != nil {
			b.Fatal(err)
		}
	}
}
