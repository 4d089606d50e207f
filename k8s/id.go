package k8s

import (
	"encoding/base64"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/clustergraph/clustergraph/errkind"
)

// ObjectID identifies any object in any cluster. Its encoded form is the
// opaque global id the API hands out.
type ObjectID struct {
	Cluster   string
	GVK       schema.GroupVersionKind
	Namespace string
	Name      string
	// AsResource marks an object of a cached kind read as a plain
	// Resource (a Pod through resources()), whose plain id names the
	// cached view: one id names one typed thing, as Relay's store needs.
	AsResource bool
}

// idPrefix versions the encoding so it can change without breaking old ids.
const idPrefix = "o1"

// asResource is the optional eighth part of an id with AsResource.
const asResource = "r"

// Encode returns the opaque id: base64url of "o1" and the parts, separated by
// a character that cannot appear in any of them (and "r" last for
// AsResource).
func (id ObjectID) Encode() string {
	parts := []string{idPrefix, id.Cluster, id.GVK.Group, id.GVK.Version, id.GVK.Kind, id.Namespace, id.Name}
	if id.AsResource {
		parts = append(parts, asResource)
	}
	return base64.RawURLEncoding.EncodeToString([]byte(strings.Join(parts, "\x00")))
}

// ClusterID is the global id of cluster name itself.
func ClusterID(name string) ObjectID {
	return ObjectID{Cluster: name, GVK: GVKCluster, Name: name}
}

// ParseID decodes an id made by Encode. Anything else is errkind.BadInput.
func ParseID(s string) (ObjectID, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return ObjectID{}, errkind.BadInputf("malformed id %q", s)
	}
	p := strings.Split(string(b), "\x00")
	marked := len(p) == 8 && p[7] == asResource
	if len(p) == 8 && !marked {
		return ObjectID{}, errkind.BadInputf("malformed id %q", s)
	}
	if marked {
		p = p[:7]
	}
	if len(p) != 7 || p[0] != idPrefix || p[1] == "" || p[3] == "" || p[4] == "" || p[6] == "" {
		return ObjectID{}, errkind.BadInputf("malformed id %q", s)
	}
	return ObjectID{
		Cluster:    p[1],
		GVK:        schema.GroupVersionKind{Group: p[2], Version: p[3], Kind: p[4]},
		Namespace:  p[5],
		Name:       p[6],
		AsResource: marked,
	}, nil
}
