package api_test

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/clustergraph/clustergraph/internal/testenv"
)

// watchedKind is a kind TestWatchEachKindMatchesTheAPIServer changes at
// random: its resource and a minimal valid object.
type watchedKind struct {
	kind string
	gvr  schema.GroupVersionResource
	spec func(name string) map[string]any // the object's fields besides metadata
}

var watchedKinds = []watchedKind{
	{"ConfigMap", schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}, func(string) map[string]any {
		return map[string]any{"data": map[string]any{"k": "v"}}
	}},
	{"Secret", schema.GroupVersionResource{Version: "v1", Resource: "secrets"}, func(string) map[string]any {
		return map[string]any{"stringData": map[string]any{"password": "hunter2"}}
	}},
	{"Service", schema.GroupVersionResource{Version: "v1", Resource: "services"}, func(name string) map[string]any {
		return map[string]any{"spec": map[string]any{"selector": map[string]any{"app": name}, "ports": []any{map[string]any{"port": int64(80)}}}}
	}},
	{"PersistentVolumeClaim", schema.GroupVersionResource{Version: "v1", Resource: "persistentvolumeclaims"}, func(string) map[string]any {
		return map[string]any{"spec": map[string]any{"accessModes": []any{"ReadWriteOnce"}, "resources": map[string]any{"requests": map[string]any{"storage": "1Gi"}}}}
	}},
	{"Deployment", schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, func(name string) map[string]any {
		labels := map[string]any{"app": name}
		return map[string]any{"spec": map[string]any{"replicas": int64(1), "selector": map[string]any{"matchLabels": labels},
			"template": map[string]any{"metadata": map[string]any{"labels": labels},
				"spec": map[string]any{"containers": []any{map[string]any{"name": "app", "image": "example/app:1"}}}}}}
	}},
	// Not cached: watched through an informer started on demand.
	{"ServiceAccount", schema.GroupVersionResource{Version: "v1", Resource: "serviceaccounts"}, func(string) map[string]any { return map[string]any{} }},
}

// TestWatchEachKindMatchesTheAPIServer: for cached kinds of every shape
// (typed, metadata-only, controller-updated) and one watched on demand, a
// watch opened before seeded random creates, label changes and deletes
// ends in exactly the apiserver's state (names, uids, resourceVersions),
// every event makes sense against the watch's model, and every object's
// id names its kind.
func TestWatchEachKindMatchesTheAPIServer(t *testing.T) {
	cs := testenv.Clusters(t)
	c := cs[0]
	const ns = "watch-kinds"
	makeNamespace(t, c, ns)
	s := startServer(t, serverOpts{kubeconfigs: []string{c.Kubeconfig}, waitReady: true})
	dyn := dynamic.NewForConfigOrDie(c.Config)
	watches := map[string]*podWatch{}
	for _, k := range watchedKinds {
		w := watchKind(t, s, k.kind, ns, "", nil)
		eventually(t, 30*time.Second, "the "+k.kind+" watch's current state", w.syncedOnce)
		watches[k.kind] = w
	}

	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	names := []string{"a", "b", "c"}
	for step := range 60 {
		k := watchedKinds[rng.IntN(len(watchedKinds))]
		name := names[rng.IntN(len(names))]
		r := dyn.Resource(k.gvr).Namespace(ns)
		_, err := r.Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			o := &unstructured.Unstructured{Object: k.spec(name)}
			o.SetAPIVersion(k.gvr.GroupVersion().String())
			o.SetKind(k.kind)
			o.SetName(name)
			o.SetLabels(map[string]string{"step": fmt.Sprint(step)})
			_, err = r.Create(ctx, o, metav1.CreateOptions{})
		case err != nil:
		case rng.IntN(2) == 0:
			_, err = r.Patch(ctx, name, types.MergePatchType, fmt.Appendf(nil, `{"metadata":{"labels":{"step":"%d"}}}`, step), metav1.PatchOptions{})
		default:
			err = r.Delete(ctx, name, metav1.DeleteOptions{})
		}
		if err != nil && !apierrors.IsNotFound(err) {
			t.Fatalf("step %d, %s %s: %v", step, k.kind, name, err)
		}
	}

	for _, k := range watchedKinds {
		w := watches[k.kind]
		var diff string
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			l, err := dyn.Resource(k.gvr).Namespace(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]podVersion{}
			for _, o := range l.Items {
				if strings.HasPrefix(o.GetName(), "default") && k.kind == "ServiceAccount" {
					continue // the namespace's own, made by the controller, not by the test
				}
				want[o.GetName()] = podVersion{UID: string(o.GetUID()), RV: o.GetResourceVersion()}
			}
			got, events, problems, closed := w.snapshot()
			for name := range got {
				if strings.HasPrefix(name, "default") && k.kind == "ServiceAccount" {
					delete(got, name)
				}
			}
			if len(problems) > 0 || closed != nil {
				t.Errorf("%s watch: problems %q, closed %v; events %q", k.kind, problems, closed, events)
				break
			}
			if maps.Equal(got, want) {
				diff = ""
				break
			}
			diff = fmt.Sprintf("apiserver %v\nwatch     %v\nevents    %q", want, got, events)
			if time.Now().After(deadline) {
				break
			}
		}
		if diff != "" {
			t.Errorf("%s watch (seed %d) disagrees with the apiserver:\n%s", k.kind, seed, diff)
		}
	}
}
