package k8s

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
)

// configFor is the cluster's REST config acting as the context's subject:
// every request impersonates the caller (user, groups), so the apiserver
// enforces its authorization and its audit log names the real person.
// Only the unrestricted demo subject uses clustergraph's own identity.
//
// A foreign service account (see ForeignServiceAccount) cannot simply be
// impersonated: the apiserver would match the other cluster's
// ServiceAccount bindings by its user name. Its requests are impersonated
// without the service-account groups and must first pass its access set
// here, which counts only User and Group bindings; the apiserver then
// checks them too, so it gets what both allow, which is what its access
// set allows.
func (c *Cluster) configFor(ctx context.Context) (*rest.Config, error) {
	s := SubjectFrom(ctx)
	if s == nil {
		return nil, &ClusterError{Cluster: c.Name, Err: coded(ErrForbidden, "no caller")}
	}
	cfg := rest.CopyConfig(c.config)
	if s.Unrestricted {
		return cfg, nil
	}
	if s.ForeignSystemIdentity(c.Name) {
		return nil, &ClusterError{Cluster: c.Name, Err: coded(ErrForbidden, "%s is a system identity of cluster %s and acts only there", s.User, s.Identity)}
	}
	cfg.Impersonate = rest.ImpersonationConfig{UserName: s.User, Groups: s.GroupsIn(c.Name)}
	if s.ForeignServiceAccount(c.Name) {
		a := c.AccessFor(s)
		cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
			return &foreignGuard{next: rt, access: a, cluster: c.Name, identity: s.Identity, user: s.User}
		})
	}
	return cfg, nil
}

// foreignGuard lets through only the requests a foreign service account's
// access set allows; others get the 403 the apiserver would send.
type foreignGuard struct {
	next                    http.RoundTripper
	access                  *Access
	cluster, identity, user string
}

func (g *foreignGuard) RoundTrip(r *http.Request) (*http.Response, error) {
	attrs, ok := requestAttributes(r.Method, r.URL.Path, r.URL.Query().Get("watch"))
	if ok && g.access.Allows(attrs.Verb, schema.GroupResource{Group: attrs.Group, Resource: attrs.Resource}, attrs.Namespace, attrs.Name) {
		return g.next.RoundTrip(r)
	}
	what := r.URL.Path
	if ok {
		what = fmt.Sprintf("%s %s", attrs.Verb, schema.GroupResource{Group: attrs.Group, Resource: attrs.Resource})
		if attrs.Namespace != "" {
			what += " in namespace " + attrs.Namespace
		}
		if attrs.Name != "" {
			what += " named " + attrs.Name
		}
	}
	msg := fmt.Sprintf("%s is a service account of the identity cluster %s: in cluster %s it holds only what User and Group bindings grant, never the ServiceAccount bindings of the same name, and those do not allow %s", g.user, g.identity, g.cluster, what)
	body, _ := json.Marshal(&metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure, Reason: metav1.StatusReasonForbidden, Code: http.StatusForbidden, Message: msg,
	})
	if r.Body != nil {
		_ = r.Body.Close()
	}
	return &http.Response{
		StatusCode: http.StatusForbidden, Status: "403 Forbidden", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)), Request: r,
	}, nil
}

// requestAttributes tells what the apiserver authorizes a resource request
// as: its verb, group, resource ("resource/subresource"), namespace and
// name. ok is false for anything else (discovery, non-resource URLs),
// which a foreign service account is never let through to.
func requestAttributes(method, path, watch string) (q Question, ok bool) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case len(parts) >= 3 && parts[0] == "api":
		parts = parts[2:]
	case len(parts) >= 4 && parts[0] == "apis":
		q.Group = parts[1]
		parts = parts[3:]
	default:
		return q, false
	}
	if parts[0] == "namespaces" && len(parts) >= 2 {
		q.Namespace = parts[1]
		// /namespaces/NAME and its status and finalize subresources are
		// the Namespace object itself, asked about in its own namespace.
		if len(parts) > 2 && parts[2] != "status" && parts[2] != "finalize" {
			parts = parts[2:]
		}
	}
	var resource, sub string
	switch len(parts) {
	case 1:
		resource = parts[0]
	case 2:
		resource, q.Name = parts[0], parts[1]
	case 3:
		resource, q.Name, sub = parts[0], parts[1], parts[2]
	default:
		return q, false
	}
	q.Resource = resource
	if sub != "" {
		q.Resource += "/" + sub
	}
	switch method {
	case http.MethodGet, http.MethodHead:
		switch {
		case sub == "exec" || sub == "attach" || sub == "portforward":
			q.Verb = "create" // a websocket upgrade; the apiserver asks create too
		case watch == "true" || watch == "1":
			q.Verb = "watch"
		case q.Name == "":
			q.Verb = "list"
		default:
			q.Verb = "get"
		}
	case http.MethodPost:
		q.Verb = "create"
	case http.MethodPut:
		q.Verb = "update"
	case http.MethodPatch:
		q.Verb = "patch"
	case http.MethodDelete:
		q.Verb = "delete"
		if q.Name == "" {
			q.Verb = "deletecollection"
		}
	default:
		return q, false
	}
	return q, true
}
