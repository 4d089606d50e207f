package testenv

import (
	"context"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// WithScale gives a custom resource a scale subresource on .spec.replicas.
func WithScale(v *apiextensionsv1.CustomResourceDefinitionVersion) {
	v.Subresources = &apiextensionsv1.CustomResourceSubresources{Scale: &apiextensionsv1.CustomResourceSubresourceScale{
		SpecReplicasPath: ".spec.replicas", StatusReplicasPath: ".status.replicas",
	}}
}

// CreateCRD defines a schemaless custom resource in the cluster, waits until
// the apiserver serves it, deletes it when the test ends, and returns a
// dynamic client for it. Options edit the served version (see WithScale).
func CreateCRD(t testing.TB, c Cluster, gvr schema.GroupVersionResource, kind string, namespaced bool, opts ...func(*apiextensionsv1.CustomResourceDefinitionVersion)) dynamic.NamespaceableResourceInterface {
	t.Helper()
	ctx := context.Background()
	scope := apiextensionsv1.ClusterScoped
	if namespaced {
		scope = apiextensionsv1.NamespaceScoped
	}
	preserve := true
	crd := &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: gvr.Resource + "." + gvr.Group},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: gvr.Group,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: gvr.Resource, Singular: strings.ToLower(kind), Kind: kind, ListKind: kind + "List"},
			Scope: scope,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: gvr.Version, Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{Type: "object", XPreserveUnknownFields: &preserve}},
			}},
		},
	}
	for _, o := range opts {
		o(&crd.Spec.Versions[0])
	}
	crds := apiextensionsclient.NewForConfigOrDie(c.Config).ApiextensionsV1().CustomResourceDefinitions()
	if _, err := crds.Create(ctx, crd, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = crds.Delete(ctx, crd.Name, metav1.DeleteOptions{}) })
	res := dynamic.NewForConfigOrDie(c.Config).Resource(gvr)
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := res.List(ctx, metav1.ListOptions{Limit: 1})
		if err == nil {
			return res
		}
		if time.Now().After(deadline) {
			t.Fatalf("CRD %s not served after 30s: %v", crd.Name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
