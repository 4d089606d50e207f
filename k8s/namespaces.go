package k8s

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// The management operations of the replaced consoles.

// TrialAnnotation holds when a trial namespace expires (RFC 3339).
const TrialAnnotation = "clustergraph.io/trial-expires-at"

// NamespaceTaken reports whether a namespace of that name exists in the
// cluster. It reads the cache as clustergraph itself: telling whether a name
// is free is the point of the question, whoever asks.
func (c *Cluster) NamespaceTaken(name string) (bool, error) {
	if ok, err := c.readable(); !ok {
		return false, err
	}
	if err := c.kindReadable(resNamespaces); err != nil {
		return false, err
	}
	_, exists, _ := c.caches.store(resNamespaces).GetByKey(name)
	return exists, nil
}

// ValidNamespaceName says why a name cannot be a namespace's, or "".
func ValidNamespaceName(name string) string {
	if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
		return strings.Join(errs, "; ")
	}
	return ""
}

// TrialExpiry returns a namespace's trial expiry, if it has one.
func TrialExpiry(ns *corev1.Namespace) *time.Time {
	t, err := time.Parse(time.RFC3339, ns.Annotations[TrialAnnotation])
	if err != nil {
		return nil
	}
	return &t
}

// ComponentVersion is one component's version.
type ComponentVersion struct {
	Name, Status, Version string
}

// Versions reads the component versions of the ConfigMap namespace/name, as
// the caller. Each data key is a component; its value is either a version,
// or a JSON object with "version" and "status".
func (c *Cluster) Versions(ctx context.Context, namespace, name string) ([]ComponentVersion, error) {
	client, err := c.ClientFor(ctx)
	if err != nil {
		return nil, err
	}
	cm, err := client.CoreV1().ConfigMaps(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, c.APIError(err, fmt.Sprintf("versions ConfigMap %s/%s", namespace, name))
	}
	out := make([]ComponentVersion, 0, len(cm.Data))
	for k, v := range cm.Data {
		cv := ComponentVersion{Name: k, Version: strings.TrimSpace(v), Status: "Unknown"}
		var j struct{ Version, Status string }
		if json.Unmarshal([]byte(v), &j) == nil && j.Version != "" {
			cv.Version = j.Version
			if j.Status != "" {
				cv.Status = j.Status
			}
		}
		out = append(out, cv)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
