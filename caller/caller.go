// Package caller is who a request is for: the authenticated Subject, carried
// in the request's context from the edge (api, auth) to every read and write
// below it (k8s, db callers). It imports nothing of the project, so every
// room can depend on it.
package caller

import (
	"context"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Subject is who a read is for: the authenticated caller.
type Subject struct {
	User   string
	Groups []string
	// UID and Extra are the rest of what the identity cluster's
	// TokenReview said about the caller: the UID of the user (a service
	// account's object UID) and the extra attributes, such as the
	// credential ID and the pod a service-account token is bound to, or a
	// token's scopes. Both are passed on wherever the caller is
	// impersonated or reviewed, to every cluster: an extra attribute can
	// narrow what an authorizer or admission allows (scopes), so dropping
	// one could widen the token, never narrow it.
	UID   string
	Extra map[string][]string
	// Identity names the cluster whose TokenReview authenticated the
	// subject. A service account of that cluster is a service account only
	// there (see ForeignServiceAccount).
	Identity string
	// Unrestricted marks the server's own identity, used only when
	// authentication is switched off for a local demo.
	Unrestricted bool
	// FleetWide marks a system identity the install lets act in every
	// cluster (see ForeignSystemIdentity), e.g. a component of a central
	// management cluster whose name every member cluster binds.
	FleetWide bool
}

// ServiceAccountPrefix starts the user name of every service account.
const ServiceAccountPrefix = "system:serviceaccount:"

// ForeignServiceAccount reports whether the subject is a service account
// of its identity cluster seen in another cluster. The apiserver matches
// ServiceAccount subjects (and the groups system:serviceaccounts[:NS]) by
// name alone, so without this rule a service account anyone can create in
// the identity cluster would inherit the rights of the same-named service
// account of every other cluster.
func (s *Subject) ForeignServiceAccount(cluster string) bool {
	return s != nil && !s.Unrestricted && s.Identity != "" && s.Identity != cluster && strings.HasPrefix(s.User, ServiceAccountPrefix)
}

// ForeignSystemIdentity reports whether the subject is a system identity
// of its identity cluster other than a service account (a node
// system:node:NAME, a bootstrap token system:bootstrap:ID, a control-plane
// component system:kube-scheduler, ...) seen in another cluster. Such an
// identity names a component of one cluster, and authorizers besides RBAC
// grant by that name alone (the Node authorizer lets system:node:NAME
// act for the pods of any node so named), so it may read and do nothing
// in any other cluster: a kubeadm join token of one cluster must not act
// as a node of the next.
//
// An install may name system identities that act everywhere (FleetWide).
func (s *Subject) ForeignSystemIdentity(cluster string) bool {
	return s != nil && !s.Unrestricted && !s.FleetWide && s.Identity != "" && s.Identity != cluster &&
		strings.HasPrefix(s.User, "system:") && !strings.HasPrefix(s.User, ServiceAccountPrefix)
}

// MatchesAny reports whether user is one of patterns: a name, or a prefix
// ending in '*' ("system:node:*").
func MatchesAny(user string, patterns []string) bool {
	for _, p := range patterns {
		if prefix, ok := strings.CutSuffix(p, "*"); ok && strings.HasPrefix(user, prefix) || p == user {
			return true
		}
	}
	return false
}

// ForeignGroups drops the service-account groups, which name the identity
// cluster's namespaces, not another cluster's.
func ForeignGroups(groups []string) []string {
	out := make([]string, 0, len(groups))
	for _, g := range groups {
		if g != "system:serviceaccounts" && !strings.HasPrefix(g, "system:serviceaccounts:") {
			out = append(out, g)
		}
	}
	return out
}

// GroupsIn are the groups the subject has in a cluster: its own, less the
// service-account groups of a foreign service account.
func (s *Subject) GroupsIn(cluster string) []string {
	if s.ForeignServiceAccount(cluster) {
		return ForeignGroups(s.Groups)
	}
	return s.Groups
}

type key struct{}

// With returns a context whose reads and writes are made for s. Every read
// of the caches takes its subject from the context; a context without one
// sees nothing, so a caller that forgets to authenticate fails closed.
func With(ctx context.Context, s *Subject) context.Context {
	return context.WithValue(ctx, key{}, s)
}

// From returns the context's subject, or nil.
func From(ctx context.Context) *Subject {
	s, _ := ctx.Value(key{}).(*Subject)
	return s
}

// Key identifies the subject in the caches of RBAC answers. Every part is
// length-prefixed, so no user name or group (which may hold any byte) can
// make two different subjects share a key. RBAC matches users and groups
// only, so UID and Extra are not part of it (see ReviewKey).
func (s *Subject) Key() string {
	g := slices.Clone(s.Groups)
	sort.Strings(g)
	var b strings.Builder
	for _, part := range append([]string{s.Identity, s.User}, g...) {
		writePart(&b, part)
	}
	return b.String()
}

// ReviewKey identifies the subject in the cache of the authorizer's
// answers: its key, its UID and every extra attribute, since an authorizer
// other than RBAC may decide by any of them.
func (s *Subject) ReviewKey() string {
	var b strings.Builder
	writePart(&b, s.Key())
	writePart(&b, s.UID)
	keys := make([]string, 0, len(s.Extra))
	for k := range s.Extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		writePart(&b, k)
		writePart(&b, strconv.Itoa(len(s.Extra[k])))
		for _, v := range s.Extra[k] {
			writePart(&b, v)
		}
	}
	return b.String()
}

func writePart(b *strings.Builder, part string) {
	b.WriteString(strconv.Itoa(len(part)))
	b.WriteByte(':')
	b.WriteString(part)
}
