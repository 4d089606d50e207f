package auth

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	authenticationv1 "k8s.io/api/authentication/v1"

	"github.com/clustergraph/clustergraph/caller"
	"github.com/clustergraph/clustergraph/errkind"
	"github.com/clustergraph/clustergraph/metrics"
)

// fakeReview accepts tokens starting with "good-" and counts its calls; it
// stands in for the identity cluster (the real TokenReview path is tested
// against real apiservers in package api).
func fakeReview(calls *int) func(context.Context, string) (*caller.Subject, error) {
	return func(_ context.Context, token string) (*caller.Subject, error) {
		*calls++
		if len(token) > 5 && token[:5] == "good-" {
			return &caller.Subject{User: token[5:]}, nil
		}
		return nil, fmt.Errorf("%w: refused", errkind.Unauthenticated)
	}
}

// TestFloodKeepsRealCallers: a flood of made-up tokens neither evicts the
// callers who are real nor gets past the review rate.
func TestFloodKeepsRealCallers(t *testing.T) {
	calls := 0
	a := New(Config{MaxEntries: 100, ReviewsPerSecond: 1000})
	a.review = fakeReview(&calls)
	ctx := context.Background()
	if s, err := a.Authenticate(ctx, "good-alice"); err != nil || s.User != "alice" {
		t.Fatalf("alice: %v %v", s, err)
	}
	for i := range 500 {
		_, _ = a.Authenticate(ctx, fmt.Sprintf("made-up-%d", i))
	}
	before := calls
	if s, err := a.Authenticate(ctx, "good-alice"); err != nil || s.User != "alice" {
		t.Fatalf("alice after the flood: %v %v", s, err)
	}
	if calls != before {
		t.Error("alice's token was evicted by refused ones and reviewed again")
	}
}

// TestReviewRate: past the rate, new tokens are UNAVAILABLE (not refused,
// not cached), while cached ones still pass.
func TestReviewRate(t *testing.T) {
	calls := 0
	a := New(Config{ReviewsPerSecond: 1})
	a.review = fakeReview(&calls)
	ctx := context.Background()
	if _, err := a.Authenticate(ctx, "good-alice"); err != nil {
		t.Fatal(err)
	}
	var limited error
	for i := range 10 {
		if _, err := a.Authenticate(ctx, fmt.Sprintf("good-user%d", i)); errors.Is(err, errkind.Unavailable) {
			limited = err
			break
		}
	}
	if limited == nil {
		t.Fatal("no new token was held back past the review rate")
	}
	if _, err := a.Authenticate(ctx, "good-alice"); err != nil {
		t.Errorf("a cached token was held back: %v", err)
	}
}

// TestExpiry: an accepted JWT is remembered until its exp claim at the
// latest, not for the whole TTL, and once past it the token is refused
// even when the identity cluster (which allows some clock skew) still
// accepts it.
func TestExpiry(t *testing.T) {
	calls := 0
	a := New(Config{TTL: time.Hour})
	a.review = func(_ context.Context, token string) (*caller.Subject, error) {
		calls++
		return &caller.Subject{User: "u"}, nil
	}
	now := time.Unix(1_000_000, 0)
	a.now = func() time.Time { return now }
	jwt := func(exp int64) string {
		claims := base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, `{"sub":"u","exp":%d}`, exp))
		return "eyJhbGciOiJSUzI1NiJ9." + claims + ".c2ln"
	}
	short := jwt(now.Unix() + 5)
	for _, step := range []struct {
		at       time.Duration
		calls    int
		accepted bool
		// Past its exp the token is refused without a review.
	}{{0, 1, true}, {4 * time.Second, 1, true}, {6 * time.Second, 1, false}, {7 * time.Second, 1, false}} {
		now = time.Unix(1_000_000, 0).Add(step.at)
		_, err := a.Authenticate(context.Background(), short)
		if (err == nil) != step.accepted || err != nil && !errors.Is(err, errkind.Unauthenticated) {
			t.Errorf("at +%s: %v, want accepted %v", step.at, err, step.accepted)
		}
		if calls != step.calls {
			t.Errorf("at +%s: %d reviews, want %d", step.at, calls, step.calls)
		}
	}
	// Tokens that are not JWTs (static tokens) keep the TTL.
	now = time.Unix(1_000_000, 0)
	calls = 0
	for _, at := range []time.Duration{0, 30 * time.Minute} {
		now = now.Add(at)
		_, _ = a.Authenticate(context.Background(), "static-token")
	}
	if calls != 1 {
		t.Errorf("a static token was reviewed %d times within the TTL, want 1", calls)
	}
}

// TestFloodFromOneAddress: one client's flood of made-up tokens uses its
// own review budget, not the one other clients' new tokens need.
func TestFloodFromOneAddress(t *testing.T) {
	calls := 0
	a := New(Config{ReviewsPerSecond: 20, ClientReviewsPerSecond: 2})
	a.review = fakeReview(&calls)
	flooder := WithClient(context.Background(), "192.0.2.66")
	held := 0
	for i := range 200 {
		if _, err := a.Authenticate(flooder, fmt.Sprintf("made-up-%d", i)); errors.Is(err, errkind.Unavailable) {
			held++
		}
	}
	if held == 0 || calls > 10 {
		t.Errorf("the flood made %d reviews and was held back %d times", calls, held)
	}
	for i := range 10 {
		user := WithClient(context.Background(), fmt.Sprintf("192.0.2.%d", i))
		if s, err := a.Authenticate(user, fmt.Sprintf("good-user%d", i)); err != nil || s == nil {
			t.Errorf("user %d beside the flood: %v", i, err)
		}
	}
}

// TestExpiredJWTNeedsNoReview: a JWT past its exp claim is refused
// before any review.
func TestExpiredJWTNeedsNoReview(t *testing.T) {
	calls := 0
	a := New(Config{})
	a.review = fakeReview(&calls)
	payload := base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf(`{"exp":%d}`, time.Now().Add(-time.Minute).Unix())))
	if _, err := a.Authenticate(context.Background(), "good-x."+payload+".sig"); !errors.Is(err, errkind.Unauthenticated) || calls != 0 {
		t.Errorf("expired JWT: %v after %d reviews, want refused after none", err, calls)
	}
}

// TestConcurrentReviewsCollapse: callers of one new token at once share
// one review.
func TestConcurrentReviewsCollapse(t *testing.T) {
	var calls atomic.Int32
	release := make(chan struct{})
	a := New(Config{})
	a.review = func(_ context.Context, token string) (*caller.Subject, error) {
		calls.Add(1)
		<-release
		return &caller.Subject{User: token}, nil
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := a.Authenticate(context.Background(), "good-burst"); err != nil {
				t.Error(err)
			}
		}()
	}
	// Let every caller reach the review before it answers.
	for deadline := time.Now().Add(5 * time.Second); calls.Load() == 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Errorf("%d reviews for one token asked 20 times at once, want 1", n)
	}
}

// TestSubjectKeepsUIDAndExtra: everything a TokenReview says about the
// user reaches the subject, which impersonation and reviews pass on.
func TestSubjectKeepsUIDAndExtra(t *testing.T) {
	s := subjectOf(authenticationv1.UserInfo{Username: "system:serviceaccount:ci:deployer", UID: "0b5e", Groups: []string{"system:authenticated"},
		Extra: map[string]authenticationv1.ExtraValue{"authentication.kubernetes.io/credential-id": {"JTI=1"}, "authentication.kubernetes.io/pod-name": {"web"}}}, "a")
	if s.User != "system:serviceaccount:ci:deployer" || s.UID != "0b5e" || s.Identity != "a" || len(s.Groups) != 1 ||
		len(s.Extra) != 2 || s.Extra["authentication.kubernetes.io/credential-id"][0] != "JTI=1" || s.Extra["authentication.kubernetes.io/pod-name"][0] != "web" {
		t.Errorf("subject %+v", s)
	}
	if s := subjectOf(authenticationv1.UserInfo{Username: "alice"}, "a"); s.Extra != nil || s.UID != "" {
		t.Errorf("a user without extras: %+v", s)
	}
}

// TestMetrics: a token the cache answers is a hit, one it cannot a miss;
// only reviews sent are timed, by their result; a token past the review
// budget is counted throttled.
func TestMetrics(t *testing.T) {
	calls := 0
	a := New(Config{ReviewsPerSecond: 1})
	a.review = fakeReview(&calls)
	ctx := context.Background()
	read := func() []float64 {
		return []float64{
			metrics.Sum("clustergraph_token_cache_hits_total", nil), metrics.Sum("clustergraph_token_cache_misses_total", nil),
			metrics.Sum("clustergraph_token_review_duration_seconds", map[string]string{"result": metrics.ReviewAuthenticated}),
			metrics.Sum("clustergraph_token_review_duration_seconds", map[string]string{"result": metrics.ReviewUnauthenticated}),
			metrics.Sum("clustergraph_token_reviews_throttled_total", nil),
		}
	}
	before := read()
	_, _ = a.Authenticate(ctx, "good-alice") // miss, reviewed: authenticated
	_, _ = a.Authenticate(ctx, "good-alice") // hit
	_, _ = a.Authenticate(ctx, "bad")        // miss, reviewed: unauthenticated (the burst is 2)
	_, _ = a.Authenticate(ctx, "good-bob")   // miss, throttled
	got := read()
	for i := range got {
		got[i] -= before[i]
	}
	if diff := cmp.Diff([]float64{1, 3, 1, 1, 1}, got); diff != "" {
		t.Errorf("hits, misses, authenticated, unauthenticated, throttled (-want +got):\n%s", diff)
	}
}
