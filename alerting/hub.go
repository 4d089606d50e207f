package alerting

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/clustergraph/clustergraph/db"
)

// Hub streams alert changes to subscribers. It polls the database's change
// log (shared by every replica), so alerts stored anywhere reach everyone;
// Poke makes it poll at once after a local write.
type Hub struct {
	store    func() (*db.Store, error)
	interval time.Duration
	log      *slog.Logger
	poke     chan struct{}

	mu   sync.Mutex
	subs map[*sub]struct{}
}

type sub struct {
	ch     chan db.Alert
	match  func(db.Alert) bool
	closed bool
}

// SubscriberBuffer bounds the alerts held for a slow subscriber; past it the
// subscriber is dropped (its stream ends) rather than slowing the others.
const SubscriberBuffer = 256

// NewHub polls every interval (default 1s) once Run is called.
func NewHub(store func() (*db.Store, error), interval time.Duration, log *slog.Logger) *Hub {
	if interval <= 0 {
		interval = time.Second
	}
	return &Hub{store: store, interval: interval, log: log, poke: make(chan struct{}, 1), subs: map[*sub]struct{}{}}
}

// Poke asks for a poll now.
func (h *Hub) Poke() {
	select {
	case h.poke <- struct{}{}:
	default:
	}
}

// Subscribe streams the changed alerts match accepts until ctx ends (or the
// subscriber falls SubscriberBuffer alerts behind); the channel is closed then.
func (h *Hub) Subscribe(ctx context.Context, match func(db.Alert) bool) <-chan db.Alert {
	s := &sub{ch: make(chan db.Alert, SubscriberBuffer), match: match}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	go func() {
		<-ctx.Done()
		h.drop(s)
	}()
	return s.ch
}

func (h *Hub) drop(s *sub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !s.closed {
		s.closed = true
		delete(h.subs, s)
		close(s.ch)
	}
}

// Subscribers is how many streams are open.
func (h *Hub) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// Run polls until ctx ends. It starts at the newest change when the
// database first answers: subscribers hear of changes after they joined.
func (h *Hub) Run(ctx context.Context) {
	var last uint64
	started := false
	t := time.NewTicker(h.interval)
	defer t.Stop()
	for {
		if store, err := h.store(); err == nil {
			if !started {
				if last, err = store.LastAlertChange(ctx); err == nil {
					started = true
				}
			} else {
				last = h.poll(ctx, store, last)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-h.poke:
		}
	}
}

func (h *Hub) poll(ctx context.Context, store *db.Store, last uint64) uint64 {
	for {
		alerts, upTo, err := store.AlertChanges(ctx, last, 500)
		if err != nil {
			if ctx.Err() == nil {
				h.log.Warn("polling alert changes", "err", err)
			}
			return last
		}
		h.publish(alerts)
		if upTo == last || len(alerts) < 500 {
			return upTo
		}
		last = upTo
	}
}

func (h *Hub) publish(alerts []db.Alert) {
	if len(alerts) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		for _, a := range alerts {
			if !s.match(a) {
				continue
			}
			select {
			case s.ch <- a:
			default:
				h.log.Warn("dropping an alert subscriber that stopped reading")
				s.closed = true
				delete(h.subs, s)
				close(s.ch)
			}
			if s.closed {
				break
			}
		}
	}
}
