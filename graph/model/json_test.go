package model_test

import (
	"bytes"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/clustergraph/clustergraph/graph/model"
)

func marshal(j model.JSON) string {
	var b bytes.Buffer
	j.MarshalGQL(&b)
	return b.String()
}

// TestJSON: the JSON scalar writes any value as JSON and takes any input
// as it is.
func TestJSON(t *testing.T) {
	if got := marshal(model.JSON{V: map[string]any{"b": []int{1, 2}, "a": nil}}); got != `{"a":null,"b":[1,2]}` {
		t.Errorf("marshal = %s", got)
	}
	if got := marshal(model.JSON{V: func() {}}); got != "null" {
		t.Errorf("a value JSON cannot hold = %s, want null", got)
	}
	var j model.JSON
	in := map[string]any{"op": "replace", "path": "/spec/replicas", "value": 3}
	if err := j.UnmarshalGQL(in); err != nil || j.V == nil {
		t.Errorf("unmarshal: %v %v", j.V, err)
	}
}

// TestRawCarriesKind: an object's raw JSON starts with its apiVersion and
// kind, which cached typed objects lack, without the cached object being
// changed; objects that carry a kind are written as they are.
func TestRawCarriesKind(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "shop"}}
	if got, want := marshal(model.NewPod(nil, pod).Raw()), `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web-1","namespace":"shop"},"spec":{"containers":null},"status":{}}`; got != want {
		t.Errorf("pod raw =\n%s\nwant\n%s", got, want)
	}
	if pod.Kind != "" || pod.APIVersion != "" {
		t.Errorf("the cached pod was given a kind: %+v", pod.TypeMeta)
	}
	meta := &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}, ObjectMeta: metav1.ObjectMeta{Name: "s"}}
	if got, want := marshal(model.NewMetadataObject(nil, meta).Raw()), `{"kind":"Secret","apiVersion":"v1","metadata":{"name":"s"}}`; got != want {
		t.Errorf("metadata raw = %s, want %s", got, want)
	}
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "example.com/v1", "kind": "Widget", "metadata": map[string]any{"name": "w"}}}
	if got, want := marshal(model.NewResource(nil, u).Raw()), `{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w"}}`; got != want {
		t.Errorf("resource raw = %s, want %s", got, want)
	}
}
