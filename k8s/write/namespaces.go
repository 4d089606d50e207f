package write

import (
	"context"
	"regexp"
	"strings"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/clustergraph/clustergraph/errkind"
	"github.com/clustergraph/clustergraph/k8s"
)

// ExtendTrial moves a namespace's trial expiry days further (from now when
// it has none or it has passed), as the caller.
func ExtendTrial(ctx context.Context, c *k8s.Cluster, namespace string, days int) (*unstructured.Unstructured, error) {
	if days <= 0 || days > 3650 {
		return nil, errkind.BadInputf("days must be within 1 and 3650")
	}
	client, err := c.ClientFor(ctx)
	if err != nil {
		return nil, err
	}
	ns, err := client.CoreV1().Namespaces().Get(ctx, namespace, metav1.GetOptions{})
	if err != nil {
		return nil, c.APIError(err, "Namespace "+namespace)
	}
	from := time.Now().UTC()
	if t, err := time.Parse(time.RFC3339, ns.Annotations[k8s.TrialAnnotation]); err == nil && t.After(from) {
		from = t
	}
	until := from.Add(time.Duration(days) * 24 * time.Hour).Format(time.RFC3339)
	id := k8s.ObjectID{Cluster: c.Name, GVK: k8s.GVKNamespace, Name: namespace}
	return Patch(ctx, c, id, PatchMerge, map[string]any{"metadata": map[string]any{"annotations": map[string]any{k8s.TrialAnnotation: until}}}, ns.ResourceVersion)
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
func GrantInitialRole(ctx context.Context, c *k8s.Cluster, user, role string) (*unstructured.Unstructured, error) {
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
		return nil, &k8s.ClusterError{Cluster: c.Name, Err: errkind.Newf(errkind.Conflict, "user %s already has an initial role binding (%s)", user, b.Name)}
	}
	if err != nil {
		return nil, c.APIError(err, "ClusterRoleBinding "+b.Name)
	}
	return toUnstructured(created, GVKClusterRoleBinding)
}

// RevokeInitialRole removes a user's initial ClusterRoleBinding.
func RevokeInitialRole(ctx context.Context, c *k8s.Cluster, user string) error {
	client, err := c.ClientFor(ctx)
	if err != nil {
		return err
	}
	name := initialBindingName(user)
	if err := client.RbacV1().ClusterRoleBindings().Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		return c.APIError(err, "ClusterRoleBinding "+name)
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
