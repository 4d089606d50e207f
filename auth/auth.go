package auth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clustergraph/clustergraph/caller"
	"github.com/clustergraph/clustergraph/errkind"
	"github.com/clustergraph/clustergraph/k8s"
	"github.com/clustergraph/clustergraph/metrics"
	"github.com/clustergraph/clustergraph/tracing"
)

// Config configures an Authenticator.
type Config struct {
	Registry *k8s.Registry
	// IdentityCluster names the cluster whose TokenReview decides; empty
	// means the in-cluster cluster, else the kubeconfig's current context.
	IdentityCluster string
	// TTL and NegativeTTL bound how long an accepted and a refused token
	// are remembered (defaults 30 s and 5 s).
	TTL, NegativeTTL time.Duration
	// MaxEntries bounds the cache (default 10000).
	MaxEntries int
	// FleetWideSystemUsers are the system identities (names, or prefixes
	// ending in '*') that may act in every cluster; any other system
	// identity but a service account acts only in the identity cluster
	// (see caller.Subject.ForeignSystemIdentity).
	FleetWideSystemUsers []string
	// ReviewsPerSecond bounds the TokenReviews of tokens not in the cache
	// (default 50, bursts of 100), so a flood of made-up tokens cannot
	// hammer the identity cluster; past it a new token is UNAVAILABLE
	// (retryable) while cached ones keep working.
	ReviewsPerSecond float64
	// ClientReviewsPerSecond bounds them per client address (default 5,
	// bursts of 10), so one client's flood cannot use up the global rate
	// that everyone else's new tokens need.
	ClientReviewsPerSecond float64
}

// Authenticator turns bearer tokens into subjects.
type Authenticator struct {
	cfg     Config
	now     func() time.Time
	limiter *rate.Limiter
	// review checks a token with the identity cluster (a field so unit
	// tests can stand in for the apiserver).
	review func(ctx context.Context, token string) (*caller.Subject, error)

	mu    sync.Mutex
	cache map[[sha256.Size]byte]entry
	// clients are the per-address limiters; reviews collapses concurrent
	// reviews of one token into one.
	clients map[string]*rate.Limiter
	reviews singleflight.Group
}

// maxClients bounds the per-address limiters; past it they start over
// (which only forgives the flooders for a moment).
const maxClients = 10000

type clientKey struct{}

// WithClient tells Authenticate which client address a token comes from.
func WithClient(ctx context.Context, addr string) context.Context {
	return context.WithValue(ctx, clientKey{}, addr)
}

type entry struct {
	subject *caller.Subject
	err     error
	expires time.Time
}

// New returns an Authenticator.
func New(cfg Config) *Authenticator {
	if cfg.TTL <= 0 {
		cfg.TTL = 30 * time.Second
	}
	if cfg.NegativeTTL <= 0 {
		cfg.NegativeTTL = 5 * time.Second
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = 10000
	}
	if cfg.ReviewsPerSecond <= 0 {
		cfg.ReviewsPerSecond = 50
	}
	if cfg.ClientReviewsPerSecond <= 0 {
		cfg.ClientReviewsPerSecond = 5
	}
	a := &Authenticator{cfg: cfg, now: time.Now, cache: map[[sha256.Size]byte]entry{}, clients: map[string]*rate.Limiter{},
		limiter: rate.NewLimiter(rate.Limit(cfg.ReviewsPerSecond), int(2*cfg.ReviewsPerSecond))}
	a.review = a.tokenReview
	return a
}

// BearerToken extracts the token of an "Authorization: Bearer TOKEN" value.
func BearerToken(header string) (string, error) {
	if header == "" {
		return "", fmt.Errorf("%w: no bearer token: send Authorization: Bearer <token>", errkind.Unauthenticated)
	}
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "bearer") || strings.TrimSpace(token) == "" {
		return "", fmt.Errorf("%w: malformed Authorization header: want Bearer <token>", errkind.Unauthenticated)
	}
	return strings.TrimSpace(token), nil
}

// Authenticate returns the subject a token belongs to. Tokens are cached by
// their SHA-256, never in clear.
func (a *Authenticator) Authenticate(ctx context.Context, token string) (*caller.Subject, error) {
	key := sha256.Sum256([]byte(token))
	now := a.now()
	a.mu.Lock()
	e, ok := a.cache[key]
	a.mu.Unlock()
	if ok && now.Before(e.expires) {
		metrics.TokenCacheHit()
		return e.subject, e.err
	}
	metrics.TokenCacheMiss()
	exp, hasExp := expiry(token)
	if hasExp && !now.Before(exp) {
		// Expired by its own word: no review needed to refuse it.
		return nil, expired(exp)
	}
	if !a.clientAllows(ctx) {
		metrics.TokenReviewThrottled()
		return nil, fmt.Errorf("%w: too many new tokens from your address to check right now; retry shortly", errkind.Unavailable)
	}
	if !a.limiter.Allow() {
		metrics.TokenReviewThrottled()
		return nil, fmt.Errorf("%w: too many new tokens to check right now; retry shortly", errkind.Unavailable)
	}
	type result struct {
		s   *caller.Subject
		err error
	}
	// Callers of the same token at once (a console's burst of requests
	// after its cached review expired) share one review.
	v, _, _ := a.reviews.Do(string(key[:]), func() (any, error) {
		start := time.Now()
		s, err := a.review(context.WithoutCancel(ctx), token)
		metrics.TokenReview(reviewResult(err), time.Since(start))
		return result{s, err}, nil
	})
	s, err := v.(result).s, v.(result).err
	if err != nil && !errors.Is(err, errkind.Unauthenticated) {
		return nil, err // the identity cluster failed: do not remember that
	}
	if err == nil && hasExp && !now.Before(exp) {
		// The apiserver accepts a JWT for a while past its expiry (its
		// validation allows a minute of clock skew); a socket is meant to
		// close when its token expires, so the token's own word counts.
		s, err = nil, expired(exp)
	}
	ttl := a.cfg.TTL
	if err != nil {
		ttl = a.cfg.NegativeTTL
	} else if hasExp && exp.Sub(now) < ttl {
		// Never remember an accepted token past its own expiry.
		ttl = exp.Sub(now)
	}
	a.mu.Lock()
	if len(a.cache) >= a.cfg.MaxEntries {
		a.evict(now)
	}
	a.cache[key] = entry{subject: s, err: err, expires: now.Add(ttl)}
	a.mu.Unlock()
	return s, err
}

// reviewResult is a TokenReview's result as the metrics name it.
func reviewResult(err error) string {
	switch {
	case err == nil:
		return metrics.ReviewAuthenticated
	case errors.Is(err, errkind.Unauthenticated):
		return metrics.ReviewUnauthenticated
	default:
		return metrics.ReviewError
	}
}

func expired(exp time.Time) error {
	return fmt.Errorf("%w: the token expired at %s", errkind.Unauthenticated, exp.UTC().Format(time.RFC3339))
}

// clientAllows takes one review from the client address's own budget.
// A context without an address (an in-process caller) is not limited
// per client.
func (a *Authenticator) clientAllows(ctx context.Context) bool {
	addr, _ := ctx.Value(clientKey{}).(string)
	if addr == "" {
		return true
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	l := a.clients[addr]
	if l == nil {
		if len(a.clients) >= maxClients {
			clear(a.clients)
		}
		l = rate.NewLimiter(rate.Limit(a.cfg.ClientReviewsPerSecond), int(2*a.cfg.ClientReviewsPerSecond))
		a.clients[addr] = l
	}
	return l.Allow()
}

// expiry returns the exp claim of a JWT (service-account and OIDC tokens
// are JWTs), read without checking the signature: it is only used to
// refuse a token sooner, never to accept one. ok is false for tokens that are not JWTs.
func expiry(token string) (time.Time, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp *float64 `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Exp == nil {
		return time.Time{}, false
	}
	return time.Unix(int64(*claims.Exp), 0), true
}

// evict makes room: expired entries go first, then refused tokens (a flood
// of made-up tokens must not push out the callers who are real), and only
// then everything. Called with the lock held.
func (a *Authenticator) evict(now time.Time) {
	for k, e := range a.cache {
		if !now.Before(e.expires) {
			delete(a.cache, k)
		}
	}
	if len(a.cache) >= a.cfg.MaxEntries {
		for k, e := range a.cache {
			if e.err != nil {
				delete(a.cache, k)
			}
		}
	}
	if len(a.cache) >= a.cfg.MaxEntries {
		clear(a.cache)
	}
}

func (a *Authenticator) tokenReview(ctx context.Context, token string) (*caller.Subject, error) {
	c, err := a.cfg.Registry.IdentityCluster(a.cfg.IdentityCluster)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ctx, span := tracing.Start(ctx, "auth.TokenReview", trace.WithAttributes(attribute.String("k8s.cluster.name", c.Name)))
	defer span.End()
	tr, err := c.Typed.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token}}, metav1.CreateOptions{})
	if err != nil {
		return nil, &k8s.ClusterError{Cluster: c.Name, Err: fmt.Errorf("%w: token review failed: %v", errkind.Unavailable, err)}
	}
	if !tr.Status.Authenticated {
		msg := "the identity cluster does not accept this token"
		if tr.Status.Error != "" {
			msg += ": " + tr.Status.Error
		}
		return nil, fmt.Errorf("%w: %s", errkind.Unauthenticated, msg)
	}
	s := subjectOf(tr.Status.User, c.Name)
	s.FleetWide = strings.HasPrefix(s.User, "system:") && !strings.HasPrefix(s.User, caller.ServiceAccountPrefix) &&
		caller.MatchesAny(s.User, a.cfg.FleetWideSystemUsers)
	return s, nil
}

// subjectOf is the subject a TokenReview authenticated, everything it said
// about the user kept: name, UID, groups and extra attributes (a bound
// token's credential ID and pod, a scoped token's scopes), which
// impersonation and SubjectAccessReviews pass on.
func subjectOf(u authenticationv1.UserInfo, identity string) *caller.Subject {
	s := &caller.Subject{User: u.Username, UID: u.UID, Groups: u.Groups, Identity: identity}
	if len(u.Extra) > 0 {
		s.Extra = make(map[string][]string, len(u.Extra))
		for k, v := range u.Extra {
			s.Extra[k] = []string(v)
		}
	}
	return s
}
