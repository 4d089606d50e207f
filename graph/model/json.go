package model

import (
	"encoding/json"
	"fmt"
	"io"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// JSON is the JSON scalar: any value, written as JSON.
type JSON struct{ V any }

// MarshalGQL writes the value as JSON.
func (j JSON) MarshalGQL(w io.Writer) {
	b, err := json.Marshal(j.V)
	if err != nil {
		// Values come from decoded API objects; a marshal failure is a bug.
		b = []byte("null")
	}
	_, _ = w.Write(b)
}

// UnmarshalGQL accepts any input value.
func (j *JSON) UnmarshalGQL(v any) error {
	j.V = v
	return nil
}

// rawObject marshals a cached object with its apiVersion and kind: informer
// caches hold typed objects without TypeMeta, and the cached object must not
// be modified to add it.
type rawObject struct {
	gvk schema.GroupVersionKind
	obj any
}

func (r rawObject) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(r.obj)
	if err != nil {
		return nil, err
	}
	if len(b) < 2 || b[0] != '{' || r.gvk.Kind == "" {
		return b, nil
	}
	var probe struct {
		Kind string `json:"kind"`
	}
	if err := json.Unmarshal(b, &probe); err == nil && probe.Kind != "" {
		return b, nil
	}
	head := fmt.Sprintf(`{"apiVersion":%q,"kind":%q`, r.gvk.GroupVersion().String(), r.gvk.Kind)
	if len(b) == 2 {
		return []byte(head + "}"), nil
	}
	return append([]byte(head+","), b[1:]...), nil
}
