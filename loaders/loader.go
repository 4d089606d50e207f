package loaders

import (
	"context"
	"sync"
	"time"
)

// Loader batches and memoizes lookups by key for one request.
type Loader[K comparable, V any] struct {
	fetch    func(ctx context.Context, keys []K) ([]V, []error)
	wait     time.Duration
	maxBatch int

	mu    sync.Mutex
	cache map[K]*result[V]
	batch *batch[K, V]
}

type result[V any] struct {
	done chan struct{}
	v    V
	err  error
}

type batch[K comparable, V any] struct {
	keys    []K
	results []*result[V]
}

// NewLoader returns a loader whose fetch answers a batch of distinct keys,
// with one value (and optionally one error) per key, in key order. A batch
// is dispatched wait after its first key, or at once when it holds maxBatch.
func NewLoader[K comparable, V any](wait time.Duration, maxBatch int, fetch func(ctx context.Context, keys []K) ([]V, []error)) *Loader[K, V] {
	return &Loader[K, V]{fetch: fetch, wait: wait, maxBatch: maxBatch, cache: map[K]*result[V]{}}
}

// Load returns the value for key, joining the current batch.
func (l *Loader[K, V]) Load(ctx context.Context, key K) (V, error) {
	l.mu.Lock()
	r := l.enqueue(ctx, key)
	l.mu.Unlock()
	return r.wait(ctx)
}

// LoadMany returns the values for keys, in order, all joining the same
// batch (unless it fills up).
func (l *Loader[K, V]) LoadMany(ctx context.Context, keys []K) ([]V, []error) {
	rs := make([]*result[V], len(keys))
	l.mu.Lock()
	for i, k := range keys {
		rs[i] = l.enqueue(ctx, k)
	}
	l.mu.Unlock()
	vals := make([]V, len(keys))
	errs := make([]error, len(keys))
	for i, r := range rs {
		vals[i], errs[i] = r.wait(ctx)
	}
	return vals, errs
}

// LoadAll returns the values for keys, in order, for a caller that already
// holds every key it needs (a batch resolver): the keys nobody asked for yet
// are fetched at once, in one call and in the caller's goroutine, with no
// batch window; keys already asked for (done, or in a pending batch) are
// waited for as by Load.
func (l *Loader[K, V]) LoadAll(ctx context.Context, keys []K) ([]V, []error) {
	rs := make([]*result[V], len(keys))
	var mine batch[K, V]
	l.mu.Lock()
	for i, k := range keys {
		r, ok := l.cache[k]
		if !ok {
			r = &result[V]{done: make(chan struct{})}
			l.cache[k] = r
			mine.keys = append(mine.keys, k)
			mine.results = append(mine.results, r)
		}
		rs[i] = r
	}
	l.mu.Unlock()
	for len(mine.keys) > 0 {
		n := len(mine.keys)
		if l.maxBatch > 0 {
			n = min(n, l.maxBatch)
		}
		l.run(ctx, &batch[K, V]{keys: mine.keys[:n], results: mine.results[:n]})
		mine.keys, mine.results = mine.keys[n:], mine.results[n:]
	}
	vals := make([]V, len(keys))
	errs := make([]error, len(keys))
	for i, r := range rs {
		vals[i], errs[i] = r.wait(ctx)
	}
	return vals, errs
}

func (r *result[V]) wait(ctx context.Context) (V, error) {
	select {
	case <-r.done:
		return r.v, r.err
	case <-ctx.Done():
		var zero V
		return zero, ctx.Err()
	}
}

// enqueue returns the memoized result of key, or adds key to the current
// batch. Called with the lock held.
func (l *Loader[K, V]) enqueue(ctx context.Context, key K) *result[V] {
	r, ok := l.cache[key]
	if !ok {
		r = &result[V]{done: make(chan struct{})}
		l.cache[key] = r
		if l.batch == nil {
			l.batch = &batch[K, V]{}
			b := l.batch
			time.AfterFunc(l.wait, func() { l.dispatch(ctx, b) })
		}
		l.batch.keys = append(l.batch.keys, key)
		l.batch.results = append(l.batch.results, r)
		if len(l.batch.keys) >= l.maxBatch {
			b := l.batch
			l.batch = nil
			go l.run(ctx, b)
		}
	}
	return r
}

// dispatch runs a batch when its wait ends, unless it was already run
// because it filled up.
func (l *Loader[K, V]) dispatch(ctx context.Context, b *batch[K, V]) {
	l.mu.Lock()
	if l.batch != b {
		l.mu.Unlock()
		return
	}
	l.batch = nil
	l.mu.Unlock()
	l.run(ctx, b)
}

func (l *Loader[K, V]) run(ctx context.Context, b *batch[K, V]) {
	vals, errs := l.fetch(ctx, b.keys)
	for i, r := range b.results {
		if i < len(vals) {
			r.v = vals[i]
		}
		if i < len(errs) {
			r.err = errs[i]
		}
		close(r.done)
	}
}
