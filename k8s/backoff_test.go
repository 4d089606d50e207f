package k8s

import (
	"slices"
	"testing"
	"time"
)

// TestReconnectBackoffIsJittered: two clusters' retry schedules differ,
// and each wait lies between the doubling schedule's step (1 s, 2 s, …,
// capped at 20 s) and half again as much.
func TestReconnectBackoffIsJittered(t *testing.T) {
	schedule := func() []time.Duration {
		b := reconnectBackoff()
		var out []time.Duration
		for range 10 {
			out = append(out, b.Step())
		}
		return out
	}
	a, b := schedule(), schedule()
	if slices.Equal(a, b) {
		t.Errorf("two schedules are the same: %v", a)
	}
	for _, s := range [][]time.Duration{a, b} {
		base := time.Second
		for i, d := range s {
			if d < base || d > base*3/2 {
				t.Errorf("wait %d is %s, want between %s and %s", i, d, base, base*3/2)
			}
			base = min(base*2, 20*time.Second)
		}
	}
}
