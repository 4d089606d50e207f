package api_test

import (
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/clustergraph/clustergraph/internal/testenv"
)

// The identities the tests act as, and the RBAC that grants them access.

// testUser is a service account of the identity cluster with its bindings
// in every test cluster (bound by user name where it is not a local account).
type testUser struct {
	name   string
	token  string
	user   string
	groups []string
}

// accessNS is the namespace of makeUser's service accounts.
const accessNS = "default"

// makeUser creates the service account in the identity cluster (cs[0]),
// applies its bindings in every cluster, and returns it with a token.
func makeUser(t testing.TB, cs []testenv.Cluster, name string, bind func(c testenv.Cluster, user string)) testUser {
	t.Helper()
	id := cs[0]
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: accessNS}}
	if _, err := id.Client.CoreV1().ServiceAccounts(accessNS).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = id.Client.CoreV1().ServiceAccounts(accessNS).Delete(ctx, name, metav1.DeleteOptions{}) })
	user := "system:serviceaccount:" + accessNS + ":" + name
	for _, c := range cs {
		if bind != nil {
			bind(c, user)
		}
	}
	tr, err := id.Client.CoreV1().ServiceAccounts(accessNS).CreateToken(ctx, name, &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return testUser{name: name, token: tr.Status.Token, user: user,
		groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + accessNS, "system:authenticated"}}
}

// userSubject names a user as the subject of a binding.
func userSubject(user string) []rbacv1.Subject {
	return []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}
}

// clusterBinding binds a ClusterRole to user cluster-wide until the test
// ends.
func clusterBinding(t *testing.T, c testenv.Cluster, name, role, user string) {
	t.Helper()
	b := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name}, RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role}, Subjects: userSubject(user)}
	if _, err := c.Client.RbacV1().ClusterRoleBindings().Create(ctx, b, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Client.RbacV1().ClusterRoleBindings().Delete(ctx, name, metav1.DeleteOptions{}) })
}

// roleBinding binds a Role or ClusterRole (kind) to user in namespace ns
// until the test ends.
func roleBinding(t testing.TB, c testenv.Cluster, ns, name, kind, role, user string) {
	t.Helper()
	b := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: kind, Name: role}, Subjects: userSubject(user)}
	if _, err := c.Client.RbacV1().RoleBindings(ns).Create(ctx, b, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Client.RbacV1().RoleBindings(ns).Delete(ctx, name, metav1.DeleteOptions{}) })
}

// can asks the apiserver (a SubjectAccessReview, what `kubectl auth can-i`
// does) whether u may do verb on the resource.
func can(t *testing.T, c testenv.Cluster, u testUser, verb string, gr schema.GroupResource, ns, name string) bool {
	t.Helper()
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: u.user, Groups: u.groups,
		ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: verb, Group: gr.Group, Resource: gr.Resource, Namespace: ns, Name: name},
	}}
	got, err := c.Client.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return got.Status.Allowed
}
