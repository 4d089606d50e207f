package k8s

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/sets"
	apirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/client-go/rest"

	"github.com/clustergraph/clustergraph/caller"
	"github.com/clustergraph/clustergraph/errkind"
)

// ConfigFor is the cluster's REST config acting as the context's subject:
// every request impersonates the caller (user, UID, groups and extra
// attributes, as the identity cluster's TokenReview gave them), so the
// apiserver enforces its authorization and admission on the caller as they
// are, scopes and all, and its audit log names the real person and
// credential. (The UID and the extra attributes go to every cluster, also
// for a service account of the identity cluster elsewhere: they can only
// narrow what it may do there, its access set bounds it whatever they say,
// and the other cluster's audit log then tells it from a same-named local
// account by its UID and credential ID.) Impersonating them needs
// impersonate on uids and on userextras/KEY for every extra key
// (authentication.k8s.io; RBAC has no userextras/* wildcard, so resources
// ["*"] of that group) besides users and groups.
// Only the unrestricted demo subject uses clustergraph's own identity.
//
// A foreign service account (see ForeignServiceAccount) cannot simply be
// impersonated: the apiserver would match the other cluster's
// ServiceAccount bindings by its user name. Its requests are impersonated
// without the service-account groups and must first pass its access set
// here, which counts only User and Group bindings; the apiserver then
// checks them too, so it gets what both allow, which is what its access
// set allows.
func (c *Cluster) ConfigFor(ctx context.Context) (*rest.Config, error) {
	s := caller.From(ctx)
	if s == nil {
		return nil, &ClusterError{Cluster: c.Name, Err: errkind.Newf(errkind.Forbidden, "no caller")}
	}
	cfg := rest.CopyConfig(c.config)
	if s.Unrestricted {
		return cfg, nil
	}
	if s.ForeignSystemIdentity(c.Name) {
		return nil, &ClusterError{Cluster: c.Name, Err: errkind.Newf(errkind.Forbidden, "%s is a system identity of cluster %s and acts only there", s.User, s.Identity)}
	}
	cfg.Impersonate = rest.ImpersonationConfig{UserName: s.User, UID: s.UID, Groups: s.GroupsIn(c.Name), Extra: s.Extra}
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
	qs, ok := requestQuestions(r)
	refused := -1
	for i, q := range qs {
		if !g.access.Allows(q.Verb, schema.GroupResource{Group: q.Group, Resource: q.Resource}, q.Namespace, q.Name) {
			refused = i
			break
		}
	}
	if ok && refused < 0 {
		return g.next.RoundTrip(r)
	}
	what := r.URL.Path
	if ok {
		q := qs[refused]
		what = fmt.Sprintf("%s %s", q.Verb, schema.GroupResource{Group: q.Group, Resource: q.Resource})
		if q.Namespace != "" {
			what += " in namespace " + q.Namespace
		}
		if q.Name != "" {
			what += " named " + q.Name
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

// requestInfos is the apiserver's own request parser, set up as the
// apiserver sets it up (/api without a group, /apis with one).
var requestInfos = &apirequest.RequestInfoFactory{
	APIPrefixes:          sets.NewString("api", "apis"),
	GrouplessAPIPrefixes: sets.NewString("api"),
}

// requestQuestions tells what the apiserver authorizes a resource request
// as, read by the apiserver's own parser (RequestInfoFactory): its verb,
// group, resource ("resource/subresource"), namespace and name, so legacy
// /watch/ paths, every spelling of ?watch the apiserver takes for true,
// deletecollection, subresources, proxy and a list narrowed to one name
// by fieldSelector=metadata.name= are read as the apiserver reads them. A
// websocket upgrade to exec, attach or portforward (a GET) is asked twice,
// as the apiserver asks it: get by the request, and create by the
// subresource (the AuthorizePodWebsocketUpgradeCreatePermission check).
// ok is false for anything else (discovery, non-resource URLs, a method
// the apiserver has no verb for), which a foreign service account is
// never let through to.
func requestQuestions(r *http.Request) (qs []Question, ok bool) {
	// Only the parameters that name the verb and the object are handed
	// on: the parser logs the query of a request it cannot decode, and
	// nothing of a request may reach the log.
	query := url.Values{}
	all := r.URL.Query()
	if v, found := all["watch"]; found {
		query["watch"] = v[:1]
	}
	if v := all["fieldSelector"]; len(v) > 0 {
		if _, err := fields.ParseSelector(v[0]); err == nil {
			query["fieldSelector"] = v[:1]
		}
	}
	u := &url.URL{Path: r.URL.Path, RawQuery: query.Encode()}
	info, err := requestInfos.NewRequestInfo(&http.Request{Method: r.Method, URL: u})
	if err != nil || !info.IsResourceRequest || info.Verb == "" || info.Resource == "" {
		return nil, false
	}
	q := Question{Verb: info.Verb, Group: info.APIGroup, Resource: info.Resource, Namespace: info.Namespace, Name: info.Name}
	if info.Subresource != "" {
		q.Resource += "/" + info.Subresource
	}
	qs = []Question{q}
	if info.Verb == "get" {
		switch info.Subresource {
		case "exec", "attach", "portforward":
			q.Verb = "create"
			qs = append(qs, q)
		}
	}
	return qs, true
}
