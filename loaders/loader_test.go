package loaders

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestLoaderBatchesAndMemoizes: concurrent loads share one batch, and a key
// asked again is answered from memory. The batch is dispatched by size (50
// distinct keys) and never by time, so the test does not depend on how
// fast the goroutines start.
func TestLoaderBatchesAndMemoizes(t *testing.T) {
	var calls, keys atomic.Int64
	l := NewLoader(time.Hour, 50, func(_ context.Context, ks []int) ([]int, []error) {
		calls.Add(1)
		keys.Add(int64(len(ks)))
		out := make([]int, len(ks))
		for i, k := range ks {
			out[i] = k * 2
		}
		return out, nil
	})
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			v, err := l.Load(context.Background(), i%50)
			if err != nil || v != (i%50)*2 {
				t.Errorf("Load(%d) = %d, %v", i%50, v, err)
			}
		})
	}
	wg.Wait()
	if calls.Load() != 1 || keys.Load() != 50 {
		t.Errorf("fetch called %d times with %d keys, want once with 50 distinct keys", calls.Load(), keys.Load())
	}
	if v, _ := l.Load(context.Background(), 7); v != 14 || calls.Load() != 1 {
		t.Errorf("memoized load = %d after %d calls", v, calls.Load())
	}
}

// TestLoaderMaxBatch dispatches a full batch without waiting.
func TestLoaderMaxBatch(t *testing.T) {
	var calls atomic.Int64
	l := NewLoader(time.Hour, 10, func(_ context.Context, ks []int) ([]int, []error) {
		calls.Add(1)
		return make([]int, len(ks)), nil
	})
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Go(func() { _, _ = l.Load(context.Background(), i) })
	}
	wg.Wait()
	if calls.Load() != 3 {
		t.Errorf("fetch called %d times, want 3 full batches", calls.Load())
	}
}

// TestLoaderCanceled returns when the caller's context ends.
func TestLoaderCanceled(t *testing.T) {
	l := NewLoader(time.Hour, 100, func(_ context.Context, ks []int) ([]int, []error) { return make([]int, len(ks)), nil })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Load(ctx, 1); err == nil {
		t.Error("want the context's error")
	}
}

// TestLoadManyOneBatch: the keys of one LoadMany go out in one batch, in
// order, and keys already loaded are not fetched again.
func TestLoadManyOneBatch(t *testing.T) {
	var batches [][]int
	var mu sync.Mutex
	l := NewLoader(time.Millisecond, 1000, func(_ context.Context, ks []int) ([]int, []error) {
		mu.Lock()
		batches = append(batches, append([]int(nil), ks...))
		mu.Unlock()
		out := make([]int, len(ks))
		for i, k := range ks {
			out[i] = -k
		}
		return out, nil
	})
	if v, _ := l.Load(context.Background(), 3); v != -3 {
		t.Fatalf("Load(3) = %d", v)
	}
	vals, errs := l.LoadMany(context.Background(), []int{1, 2, 3, 4, 2})
	for i, want := range []int{-1, -2, -3, -4, -2} {
		if vals[i] != want || errs[i] != nil {
			t.Errorf("value %d = %d, %v; want %d", i, vals[i], errs[i], want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(batches) != 2 || len(batches[1]) != 3 {
		t.Errorf("batches = %v, want [[3] [1 2 4]]", batches)
	}
}

// TestLoadAllFetchesAtOnce: LoadAll answers every key without a batch
// window (the wait here is an hour), fetches each new key once, in batches
// of at most maxBatch, and reuses what earlier loads fetched.
func TestLoadAllFetchesAtOnce(t *testing.T) {
	var batches [][]int
	l := NewLoader(time.Hour, 3, func(_ context.Context, ks []int) ([]int, []error) {
		batches = append(batches, append([]int(nil), ks...))
		out, errs := make([]int, len(ks)), make([]error, len(ks))
		for i, k := range ks {
			out[i] = k * 2
			if k < 0 {
				errs[i] = context.Canceled
			}
		}
		return out, errs
	})
	vals, errs := l.LoadAll(context.Background(), []int{1, 2, 1, 3, 4, -1})
	want := []int{2, 4, 2, 6, 8}
	for i, w := range want {
		if vals[i] != w || errs[i] != nil {
			t.Errorf("key %d: %d, %v; want %d", i, vals[i], errs[i], w)
		}
	}
	if errs[5] == nil {
		t.Errorf("key -1: no error")
	}
	if len(batches) != 2 || len(batches[0]) != 3 || len(batches[1]) != 2 {
		t.Errorf("batches %v, want the 5 distinct keys in two calls of at most 3", batches)
	}
	vals, _ = l.LoadAll(context.Background(), []int{4, 5})
	if vals[0] != 8 || vals[1] != 10 || len(batches) != 3 || len(batches[2]) != 1 || batches[2][0] != 5 {
		t.Errorf("second LoadAll: %v after batches %v; want only key 5 fetched", vals, batches)
	}
}
