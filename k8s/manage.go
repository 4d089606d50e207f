package k8s

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/clustergraph/clustergraph/errkind"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
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

// ExtendTrial moves a namespace's trial expiry days further (from now when
// it has none or it has passed), as the caller.
func (c *Cluster) ExtendTrial(ctx context.Context, namespace string, days int) (*unstructured.Unstructured, error) {
	if days <= 0 || days > 3650 {
		return nil, errkind.BadInputf("days must be within 1 and 3650")
	}
	client, err := c.ClientFor(ctx)
	if err != nil {
		return nil, err
	}
	ns, err := client.CoreV1().Namespaces().Get(ctx, namespace, metav1.GetOptions{})
	if err != nil {
		return nil, c.apiError(err, "Namespace "+namespace)
	}
	from := time.Now().UTC()
	if t, err := time.Parse(time.RFC3339, ns.Annotations[TrialAnnotation]); err == nil && t.After(from) {
		from = t
	}
	until := from.Add(time.Duration(days) * 24 * time.Hour).Format(time.RFC3339)
	id := ObjectID{Cluster: c.Name, GVK: GVKNamespace, Name: namespace}
	return c.Patch(ctx, id, PatchMerge, map[string]any{"metadata": map[string]any{"annotations": map[string]any{TrialAnnotation: until}}}, ns.ResourceVersion)
}

// TrialExpiry returns a namespace's trial expiry, if it has one.
func TrialExpiry(ns *corev1.Namespace) *time.Time {
	t, err := time.Parse(time.RFC3339, ns.Annotations[TrialAnnotation])
	if err != nil {
		return nil
	}
	return &t
}

var unsafeName = regexp.MustCompile(`[^a-z0-9.-]+`)

// initialBindingName is the name of a user's initial ClusterRoleBinding.
func initialBindingName(user string) string {
	n := "clustergraph-initial-" + strings.Trim(unsafeName.ReplaceAllString(strings.ToLower(user), "-"), "-.")
	if len(n) > 253 {
		n = n[:253]
	}
	return n
}

// GrantInitialRole binds a user to a cluster role cluster-wide (the
// replaced console's "initial cluster role binding"), as the caller: the
// apiserver lets only callers who may grant that role do it.
func (c *Cluster) GrantInitialRole(ctx context.Context, user, role string) (*unstructured.Unstructured, error) {
	if user == "" || role == "" {
		return nil, errkind.BadInputf("user and clusterRole must not be empty")
	}
	client, err := c.ClientFor(ctx)
	if err != nil {
		return nil, err
	}
	b := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: initialBindingName(user), Labels: map[string]string{"clustergraph.io/initial-binding": "true"}},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
	}
	created, err := client.RbacV1().ClusterRoleBindings().Create(ctx, b, metav1.CreateOptions{FieldManager: FieldManager})
	if apierrors.IsAlreadyExists(err) {
		return nil, &ClusterError{Cluster: c.Name, Err: errkind.Newf(errkind.Conflict, "user %s already has an initial role binding (%s)", user, b.Name)}
	}
	if err != nil {
		return nil, c.apiError(err, "ClusterRoleBinding "+b.Name)
	}
	return toUnstructured(created, GVKClusterRoleBinding)
}

// RevokeInitialRole removes a user's initial ClusterRoleBinding.
func (c *Cluster) RevokeInitialRole(ctx context.Context, user string) error {
	client, err := c.ClientFor(ctx)
	if err != nil {
		return err
	}
	name := initialBindingName(user)
	if err := client.RbacV1().ClusterRoleBindings().Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		return c.apiError(err, "ClusterRoleBinding "+name)
	}
	return nil
}

// GVKClusterRoleBinding is rbac/v1 ClusterRoleBinding.
var GVKClusterRoleBinding = rbacv1.SchemeGroupVersion.WithKind("ClusterRoleBinding")

func toUnstructured(obj runtime.Object, gvk schema.GroupVersionKind) (*unstructured.Unstructured, error) {
	raw, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{Object: raw}
	u.SetGroupVersionKind(gvk)
	return u, nil
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
		return nil, c.apiError(err, fmt.Sprintf("versions ConfigMap %s/%s", namespace, name))
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
