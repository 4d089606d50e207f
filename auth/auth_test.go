package auth

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/clustergraph/clustergraph/k8s"
)

// fakeReview accepts tokens starting with "good-" and counts its calls; it
// stands in for the identity cluster (the real TokenReview path is tested
// against real apiservers in package api).
func fakeReview(calls *int) func(context.Context, string) (*k8s.Subject, error) {
	return func(_ context.Context, token string) (*k8s.Subject, error) {
		*calls++
		if len(token) > 5 && token[:5] == "good-" {
			return &k8s.Subject{User: token[5:]}, nil
		}
		return nil, fmt.Errorf("%w: refused", ErrUnauthenticated)
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
		if _, err := a.Authenticate(ctx, fmt.Sprintf("good-user%d", i)); errors.Is(err, k8s.ErrUnavailable) {
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
