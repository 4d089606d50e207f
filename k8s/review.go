package k8s

import (
	"context"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/clustergraph/clustergraph/caller"
)

// The access set answers from RBAC objects alone. Clusters that also
// authorize with a webhook (or any authorizer other than RBAC) may allow
// what RBAC does not; for them a "no" from the access set can be put to the
// apiserver as a SubjectAccessReview. That costs apiserver calls, so it is
// asked only through a Reviewer in the context (one per operation, which
// batches and memoizes), answers are cached briefly per cluster, and a list
// asks per kind and namespace, never per object.

// Question is one authorization question about the context's subject, as a
// SubjectAccessReview puts it. Resource may name a subresource
// ("pods/exec").
type Question struct {
	Verb, Group, Resource, Namespace, Name string
}

func question(verb string, gr schema.GroupResource, namespace, name string) Question {
	return Question{Verb: verb, Group: gr.Group, Resource: gr.Resource, Namespace: namespace, Name: name}
}

// ReviewFunc asks a cluster's authorizer whether s may do what q asks.
type ReviewFunc func(ctx context.Context, c *Cluster, s *caller.Subject, q Question) (bool, error)

// Reviewer answers, for one operation, questions the access set said no
// to. Review returns one answer per question, in order.
type Reviewer interface {
	Review(ctx context.Context, c *Cluster, qs []Question) []bool
}

type reviewerKey struct{}

// WithReviewer returns a context whose reads put what RBAC refuses to the
// cluster's authorizer through r.
func WithReviewer(ctx context.Context, r Reviewer) context.Context {
	return context.WithValue(ctx, reviewerKey{}, r)
}

// reviewer returns the context's reviewer, or nil when there is none or
// the subject must not be reviewed: the unrestricted demo subject needs
// none, and the apiserver would match a foreign service account's
// ServiceAccount bindings by name (see ForeignServiceAccount).
func (c *Cluster) reviewer(ctx context.Context) Reviewer {
	s := caller.From(ctx)
	if s == nil || s.Unrestricted || s.ForeignServiceAccount(c.Name) || s.ForeignSystemIdentity(c.Name) {
		return nil
	}
	r, _ := ctx.Value(reviewerKey{}).(Reviewer)
	return r
}

// allows reports whether the context's subject may do verb on the
// resource: the access set, else the reviewer.
func (c *Cluster) allows(ctx context.Context, verb string, gr schema.GroupResource, namespace, name string) bool {
	if c.AccessFor(caller.From(ctx)).Allows(verb, gr, namespace, name) {
		return true
	}
	r := c.reviewer(ctx)
	return r != nil && r.Review(ctx, c, []Question{question(verb, gr, requestNamespace(verb, gr, namespace, name), name)})[0]
}

// Allows reports whether the context's subject may do verb on the
// resource, in the namespace ("" for all or cluster-scoped), on the named
// object ("" for any): the access set, and where it says no and the
// context has a reviewer, the cluster's authorizer.
func (c *Cluster) Allows(ctx context.Context, verb string, gr schema.GroupResource, namespace, name string) bool {
	return c.allows(ctx, verb, gr, namespace, name)
}

// visibleGR keeps the objects the context's subject may see by the
// visibility rule (see the package doc): the access set's CanSee, and where
// it hides objects and the context has a reviewer, the cluster's
// authorizer, asked the same rule's questions: at most one list for the
// whole cluster, then one list per namespace of the hidden objects, never
// one per object and never a bare get (a get without resourceNames shows
// nothing in a list). Namespace objects are asked about by name (see
// namedNamespaces). An object an authorizer besides RBAC grants only by
// name therefore stays hidden: that fails closed, where asking per object
// would cost a review per hidden object of every list. RBAC's own
// resourceNames are in the access set.
func (c *Cluster) visibleGR(ctx context.Context, gr schema.GroupResource, objs []any) []any {
	a := c.AccessFor(caller.From(ctx))
	if a.Allows("list", gr, "", "") {
		return objs
	}
	isNamespace := isNamespaces(gr)
	// scope is what the fallback asks about for a hidden object: its
	// namespace, or a Namespace object's own name.
	scope := func(o any) (string, bool) {
		m, err := metaOf(o)
		if err != nil {
			return "", false
		}
		if isNamespace {
			return m.GetName(), true
		}
		return m.GetNamespace(), true
	}
	seen := make([]bool, len(objs))
	hidden := map[string]bool{}
	for i, o := range objs {
		m, err := metaOf(o)
		if err != nil {
			continue
		}
		if seen[i] = a.CanSee(gr, m.GetNamespace(), m.GetName()); !seen[i] {
			s, _ := scope(o)
			hidden[s] = true
		}
	}
	r := c.reviewer(ctx)
	if len(hidden) == 0 || r == nil {
		return masked(objs, seen)
	}
	if r.Review(ctx, c, []Question{question("list", gr, "", "")})[0] {
		return objs
	}
	delete(hidden, "")
	if len(hidden) == 0 {
		return masked(objs, seen)
	}
	scopes := make([]string, 0, len(hidden))
	for s := range hidden {
		scopes = append(scopes, s)
	}
	var allowed map[string]bool
	if isNamespace {
		allowed = c.namedNamespaces(ctx, r, scopes)
	} else {
		allowed = c.listableIn(ctx, r, gr, scopes)
	}
	for i, o := range objs {
		if !seen[i] {
			s, ok := scope(o)
			seen[i] = ok && allowed[s]
		}
	}
	return masked(objs, seen)
}

// listableIn asks the reviewer, in one batch, in which of the namespaces
// the subject may list the resource.
func (c *Cluster) listableIn(ctx context.Context, r Reviewer, gr schema.GroupResource, namespaces []string) map[string]bool {
	qs := make([]Question, len(namespaces))
	for i, ns := range namespaces {
		qs[i] = question("list", gr, ns, "")
	}
	answers := r.Review(ctx, c, qs)
	out := make(map[string]bool, len(namespaces))
	for i, ns := range namespaces {
		out[ns] = answers[i]
	}
	return out
}

// probeNamespace is a namespace name asked about to learn whether an
// authorizer allows a get of every namespace. Should a namespace of that
// name exist, the answer is taken as yes (which hides, failing closed).
const probeNamespace = "clustergraph-probe-no-such-namespace"

// namedNamespaces asks the reviewer, in one batch, which of the named
// Namespace objects the visibility rule lets the subject see: a list of
// every namespace, a list narrowed to its name, or a get of it (asked in
// that namespace, as the apiserver asks it) by a grant that does not allow
// a get of every namespace. An authorizer that lets the subject get a
// namespace that does not exist allows the get of any name, which names no
// object: its yes per namespace would enumerate them all. Two questions
// per namespace and two for all.
func (c *Cluster) namedNamespaces(ctx context.Context, r Reviewer, names []string) map[string]bool {
	gr := schema.GroupResource{Resource: "namespaces"}
	qs := make([]Question, 0, 2+2*len(names))
	qs = append(qs, question("list", gr, "", ""), question("get", gr, probeNamespace, probeNamespace))
	for _, n := range names {
		qs = append(qs, question("list", gr, "", n), question("get", gr, n, n))
	}
	answers := r.Review(ctx, c, qs)
	_, probeExists, _ := c.caches.store(resNamespaces).GetByKey(probeNamespace)
	listsAll, getsEvery := answers[0], answers[1] || probeExists
	out := make(map[string]bool, len(names))
	for i, n := range names {
		out[n] = listsAll || answers[2+2*i] || answers[3+2*i] && !getsEvery
	}
	return out
}

func masked(objs []any, mask []bool) []any {
	out := objs[:0:0]
	for i, o := range objs {
		if mask[i] {
			out = append(out, o)
		}
	}
	return out
}

// reviewTTL is how long an answer of the authorizer is reused, by every
// request of the subject: a grant or a revocation made outside RBAC shows
// within this time.
const reviewTTL = 10 * time.Second

// maxReviews bounds a cluster's cache of answers.
const maxReviews = 10000

// reviewParallel bounds the SubjectAccessReviews one batch has in flight.
const reviewParallel = 8

type reviewKey struct {
	subject string
	q       Question
}

type reviewAnswer struct {
	allowed bool
	expires time.Time
}

type reviewCache struct {
	mu      sync.Mutex
	answers map[reviewKey]reviewAnswer
	// allowed, denied and failed count the reviews sent, by answer, for
	// the metrics.
	allowed, denied, failed atomic.Uint64
}

// reviewCount counts one review sent to the authorizer by its answer.
func (c *Cluster) reviewCount(allowed bool, err error) {
	switch {
	case err != nil:
		c.reviews.failed.Add(1)
	case allowed:
		c.reviews.allowed.Add(1)
	default:
		c.reviews.denied.Add(1)
	}
}

// Review asks the cluster's authorizer each question about the context's
// subject, concurrently, reusing answers younger than reviewTTL. A failed
// review is a no (fail closed) and is not remembered.
func (c *Cluster) Review(ctx context.Context, qs []Question) []bool {
	out := make([]bool, len(qs))
	s := caller.From(ctx)
	if s == nil {
		return out
	}
	if s.Unrestricted {
		for i := range out {
			out[i] = true
		}
		return out
	}
	if s.ForeignServiceAccount(c.Name) {
		return out
	}
	subject := s.ReviewKey()
	now := time.Now()
	rc := &c.reviews
	var ask []int
	rc.mu.Lock()
	for i, q := range qs {
		if a, ok := rc.answers[reviewKey{subject, q}]; ok && now.Before(a.expires) {
			out[i] = a.allowed
		} else {
			ask = append(ask, i)
		}
	}
	rc.mu.Unlock()
	if len(ask) == 0 {
		return out
	}
	review := c.review
	if review == nil {
		review = SubjectAccessReview
	}
	ok := make([]bool, len(ask))
	sem := make(chan struct{}, reviewParallel)
	var wg sync.WaitGroup
	for j, i := range ask {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			allowed, err := review(ctx, c, s, qs[i])
			c.reviewCount(allowed, err)
			if err != nil {
				c.log.WarnContext(ctx, "subject access review failed; treating it as a refusal", "cluster", c.Name, "user", s.User, "question", qs[i], "err", err)
				return
			}
			out[i], ok[j] = allowed, true
		})
	}
	wg.Wait()
	expires := time.Now().Add(reviewTTL)
	rc.mu.Lock()
	if rc.answers == nil || len(rc.answers)+len(ask) > maxReviews {
		rc.answers = map[reviewKey]reviewAnswer{}
	}
	for j, i := range ask {
		if ok[j] {
			rc.answers[reviewKey{subject, qs[i]}] = reviewAnswer{allowed: out[i], expires: expires}
		}
	}
	rc.mu.Unlock()
	return out
}

// SubjectAccessReview is the ReviewFunc that asks the apiserver, with
// clustergraph's credentials (which need create on
// subjectaccessreviews.authorization.k8s.io).
func SubjectAccessReview(ctx context.Context, c *Cluster, s *caller.Subject, q Question) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	got, err := c.Typed.AuthorizationV1().SubjectAccessReviews().Create(ctx, accessReview(s, c.Name, q), metav1.CreateOptions{})
	if err != nil {
		return false, err
	}
	return got.Status.Allowed && !got.Status.Denied, nil
}

// accessReview is the SubjectAccessReview of q about s in the cluster: the
// subject as impersonation presents it there (see ConfigFor), UID and
// extra attributes included, so an authorizer that decides by them (a
// token's scopes) answers for the caller as they are.
func accessReview(s *caller.Subject, cluster string, q Question) *authorizationv1.SubjectAccessReview {
	resource, sub, _ := strings.Cut(q.Resource, "/")
	var extra map[string]authorizationv1.ExtraValue
	if len(s.Extra) > 0 {
		extra = make(map[string]authorizationv1.ExtraValue, len(s.Extra))
		for k, v := range s.Extra {
			extra[k] = slices.Clone(v)
		}
	}
	return &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: s.User, UID: s.UID, Groups: s.GroupsIn(cluster), Extra: extra,
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Verb: q.Verb, Group: q.Group, Resource: resource, Subresource: sub, Namespace: q.Namespace, Name: q.Name,
		},
	}}
}
