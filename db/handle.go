package db

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/clustergraph/clustergraph/errkind"
)

// Handle is a Store that connects in the background: the server starts
// (and serves live data) while the database is still unreachable, and
// storage calls say so until it answers.
type Handle struct {
	mu      sync.RWMutex
	store   *Store
	lastErr error
	ready   chan struct{}
}

// Connect opens dsn now or, failing that, retries every retry (default 5s,
// each wait drawn up to half again as long)
// until it succeeds or ctx ends, logging each failure. A bad DSN (errkind.BadInput)
// is returned at once: retrying cannot fix it.
func Connect(ctx context.Context, dsn string, o Options, retry time.Duration) (*Handle, error) {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if retry <= 0 {
		retry = 5 * time.Second
	}
	h := &Handle{ready: make(chan struct{})}
	s, err := Open(ctx, dsn, o)
	if err == nil {
		h.set(s)
		return h, nil
	}
	if isBadInput(err) {
		return nil, err
	}
	h.lastErr = err
	o.Log.Error("database unavailable; storage features answer UNAVAILABLE until it is reached", "db", redact(dsn), "err", err, "retry", retry)
	go func() {
		for attempt := 2; ; attempt++ {
			select {
			case <-ctx.Done():
				return
			// Up to half again as long, so replicas that lost the
			// database together do not all come back at the same instant.
			case <-time.After(wait.Jitter(retry, 0.5)):
			}
			s, err := Open(ctx, dsn, o)
			if err == nil {
				o.Log.Info("database reached", "db", s.String(), "attempt", attempt)
				h.set(s)
				return
			}
			h.mu.Lock()
			h.lastErr = err
			h.mu.Unlock()
			o.Log.Warn("database still unavailable", "attempt", attempt, "err", err)
		}
	}()
	return h, nil
}

// Opened wraps an open store in a Handle.
func Opened(s *Store) *Handle {
	h := &Handle{ready: make(chan struct{})}
	h.set(s)
	return h
}

func (h *Handle) set(s *Store) {
	h.mu.Lock()
	h.store = s
	h.mu.Unlock()
	close(h.ready)
}

// Store returns the store, or ErrUnavailable with the last connection
// error while there is none yet. A nil Handle means storage is switched off.
func (h *Handle) Store() (*Store, error) {
	if h == nil {
		return nil, fmt.Errorf("%w: this server runs without a database (--database=none)", ErrUnavailable)
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.store == nil {
		return nil, fmt.Errorf("%w: not connected yet: %v", ErrUnavailable, h.lastErr)
	}
	return h.store, nil
}

// Ready is closed once the store is open.
func (h *Handle) Ready() <-chan struct{} { return h.ready }

// Close closes the store if it was opened.
func (h *Handle) Close() error {
	if h == nil {
		return nil
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.store != nil {
		return h.store.Close()
	}
	return nil
}

func isBadInput(err error) bool { return errors.Is(err, errkind.BadInput) }
