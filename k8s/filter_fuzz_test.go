package k8s

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"
)

// fuzzPods builds up to 64 pods from data: two bytes each pick a
// namespace, a name, up to two labels out of a small alphabet (so selectors
// hit them often), a node and a phase.
func fuzzPods(data []byte) []*corev1.Pod {
	ns := []string{"default", "shop", "kube-system", "a"}
	keys := []string{"app", "tier", "env", "a.b/c"}
	vals := []string{"web", "db", "", "x", "prod"}
	phases := []corev1.PodPhase{corev1.PodRunning, corev1.PodPending, corev1.PodFailed, corev1.PodSucceeded}
	var pods []*corev1.Pod
	for i := 0; i+1 < len(data) && len(pods) < 64; i += 2 {
		a, b := int(data[i]), int(data[i+1])
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
			Namespace: ns[a%len(ns)],
			Name:      fmt.Sprintf("p%d-%s", len(pods), vals[b%len(vals)]),
			Labels:    map[string]string{},
		}}
		if a&4 != 0 {
			p.Labels[keys[(a>>3)%len(keys)]] = vals[b%len(vals)]
		}
		if b&8 != 0 {
			p.Labels[keys[(b>>4)%len(keys)]] = vals[(a>>5)%len(vals)]
		}
		p.Spec.NodeName = fmt.Sprintf("n%d", b%3)
		p.Status.Phase = phases[(a>>6)%len(phases)]
		pods = append(pods, p)
	}
	return pods
}

// FuzzFilter: for any filter a caller can write and any set of pods, (1)
// narrowing by the cache's indexes (candidates) loses no pod a full scan
// matches, and (2) a pod passes exactly when it passes each condition read
// on its own, the selectors as apimachinery's own parsers read them.
func FuzzFilter(f *testing.F) {
	for _, seed := range []struct {
		ns, name, label, field string
		pods                   []byte
	}{
		{"", "", "", "", []byte{1, 2, 3, 4, 5, 6, 7, 8}},
		{"shop", "", "app=web", "", []byte{5, 9, 13, 200, 77, 31, 44, 12}},
		{"", "P1", "app==web,tier!=db", "spec.nodeName=n1", []byte{4, 8, 12, 16, 20, 24, 28, 255}},
		{"default", "-x", "env in (prod,x),!tier", "status.phase!=Running", []byte{0, 255, 127, 128, 64, 63}},
		{"", "", "a.b/c=,app", "metadata.namespace==a", []byte{3, 3, 7, 7, 11, 11, 15, 15}},
		{"", "", "app notin (web)", "metadata.name!=p0-web", []byte{9, 10, 11, 12}},
		// One requirement of each operator first in its selector: the
		// index may narrow by the first equality only.
		{"", "", "tier!=db", "", []byte{12, 9, 44, 201, 76, 8, 140, 72}},
		{"", "", "env in (prod)", "", []byte{28, 232, 92, 104, 60, 24}},
		{"", "", "!app", "", []byte{4, 0, 36, 8, 0, 0}},
		{"", "", "a.b/c", "", []byte{28, 200, 92, 24}},
		{"shop", "", "tier=x", "spec.nodeName!=n0", []byte{13, 11, 77, 27, 141, 155}},
	} {
		f.Add(seed.ns, seed.name, seed.label, seed.field, seed.pods)
	}
	f.Fuzz(func(t *testing.T, ns, name, label, field string, data []byte) {
		ls, fs, err := ParseSelectors(label, field)
		if err != nil {
			return // FuzzParseSelectors covers refusals
		}
		filter := &Filter{Namespace: ns, Name: name, Labels: ls, Fields: fs}
		refLabels, err := labels.Parse(label)
		if err != nil {
			t.Fatalf("ParseSelectors accepted %q, labels.Parse refuses it: %v", label, err)
		}
		refFields, err := fields.ParseSelector(field)
		if err != nil {
			t.Fatalf("ParseSelectors accepted %q, fields.ParseSelector refuses it: %v", field, err)
		}
		store := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{IndexNamespace: cache.MetaNamespaceIndexFunc, IndexLabel: labelIndex})
		pods := fuzzPods(data)
		for _, p := range pods {
			if err := store.Add(p); err != nil {
				t.Fatal(err)
			}
		}
		var scanned, narrowed []string
		for _, p := range pods {
			want := (ns == "" || p.Namespace == ns) &&
				strings.Contains(strings.ToLower(p.Name), strings.ToLower(name)) &&
				refLabels.Matches(labels.Set(p.Labels)) &&
				refFields.Matches(fieldsOf(p))
			if got := filter.Matches(p); got != want {
				t.Fatalf("pod %s/%s labels %v: Matches = %v, each condition on its own says %v", p.Namespace, p.Name, p.Labels, got, want)
			}
			if want {
				scanned = append(scanned, p.Namespace+"/"+p.Name)
			}
		}
		for _, o := range candidates(store, filter) {
			if filter.Matches(o) {
				p := o.(*corev1.Pod)
				narrowed = append(narrowed, p.Namespace+"/"+p.Name)
			}
		}
		slices.Sort(scanned)
		slices.Sort(narrowed)
		if !slices.Equal(scanned, narrowed) {
			t.Fatalf("index narrowing lost pods: a scan matches %v, the indexes give %v", scanned, narrowed)
		}
	})
}
