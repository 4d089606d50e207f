package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/99designs/gqlgen/graphql/handler/transport"

	"github.com/clustergraph/clustergraph/errkind"
)

// socketCaps counts websockets so that no one caller holds too many: those
// not yet authenticated (upgraded, connection_init not yet accepted) in all
// and per client address, and authenticated ones, with their
// subscriptions, per user. A socket learns its user only from its
// connection_init, after the upgrade: admit puts a socket in the upgrade
// request's context, where the websocket's Accept (guardedWebsockets) and
// its init (wsInit) find it.
type socketCaps struct {
	pendingMax, pendingPerIP, socketsPerUser, subscriptionsPerUser int

	mu            sync.Mutex
	pending       int
	pendingByIP   map[string]int
	sockets       map[string]int
	subscriptions map[string]int
}

func newSocketCaps(l Limits) *socketCaps {
	return &socketCaps{
		pendingMax: l.MaxPendingSockets, pendingPerIP: l.MaxPendingSocketsPerIP,
		socketsPerUser: l.MaxSocketsPerUser, subscriptionsPerUser: l.MaxSubscriptionsPerUser,
		pendingByIP: map[string]int{}, sockets: map[string]int{}, subscriptions: map[string]int{},
	}
}

// closeTooMany is the close code of a socket over its user's cap: 4429,
// graphql-ws's code for "too many", after HTTP's 429.
const closeTooMany = 4429

type socketKey struct{}

// admit counts a websocket upgrade as not yet authenticated, refusing it
// with 429 when its client address, or the server, already has as many as
// allowed (InitTimeout ends those that never send connection_init). Every
// count the socket holds is given back when the socket's handler returns,
// however it ended.
func (sc *socketCaps) admit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isUpgrade(r) {
			next.ServeHTTP(w, r)
			return
		}
		s, err := sc.open(clientIP(r.RemoteAddr))
		if err != nil {
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusTooManyRequests, errkind.CodeUnavailable, err.Error())
			return
		}
		defer s.end()
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), socketKey{}, s)))
	})
}

func (sc *socketCaps) open(ip string) (*socket, error) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	switch {
	case sc.pendingByIP[ip] >= sc.pendingPerIP:
		return nil, fmt.Errorf("too many websockets from %s waiting for connection_init (limit %d); retry shortly", ip, sc.pendingPerIP)
	case sc.pending >= sc.pendingMax:
		return nil, fmt.Errorf("too many websockets waiting for connection_init (limit %d); retry shortly", sc.pendingMax)
	}
	sc.pending++
	sc.pendingByIP[ip]++
	return &socket{caps: sc, ip: ip, pending: true, subscriptions: map[string]bool{}}, nil
}

// socket is one websocket's share of the counts.
type socket struct {
	caps *socketCaps
	ip   string

	mu sync.Mutex
	// pending: counted as not yet authenticated.
	pending bool
	// user, once set, holds one of its user's sockets.
	user string
	// subscriptions holds the ids of the socket's subscriptions counted
	// against its user's cap.
	subscriptions map[string]bool
	// conn is the accepted connection, closed at the end.
	conn io.Closer
}

// socketFrom is the socket of a websocket's context; nil elsewhere.
func socketFrom(ctx context.Context) *socket {
	s, _ := ctx.Value(socketKey{}).(*socket)
	return s
}

// accepted notes the connection, to close it at the end.
func (s *socket) accepted(c io.Closer) {
	if s == nil {
		return
	}
	s.mu.Lock()
	s.conn = c
	s.mu.Unlock()
}

// authenticated moves the socket of ctx from the unauthenticated count to
// user's sockets. Over the user's cap it returns the error to refuse the
// socket with, and a context that has gqlgen close it with closeTooMany.
func authenticated(ctx context.Context, user string) (context.Context, error) {
	s := socketFrom(ctx)
	if s == nil {
		return ctx, nil
	}
	sc := s.caps
	s.mu.Lock()
	defer s.mu.Unlock()
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.releasePending(s)
	if sc.sockets[user] >= sc.socketsPerUser {
		ctx = transport.AppendCloseReason(ctx, fmt.Sprintf("too many sockets for this user (limit %d)", sc.socketsPerUser))
		return transport.WithWebsocketCloseCode(ctx, closeTooMany),
			fmt.Errorf("%s already has %d websockets open, the most allowed: close one first", user, sc.socketsPerUser)
	}
	sc.sockets[user]++
	s.user = user
	return ctx, nil
}

// subscribe counts subscription id against the socket's user's cap,
// reporting false (and counting nothing) when the user already runs as
// many as allowed. Before connection_init the socket has no user and runs
// nothing (gqlgen refuses any other message first), so nothing is counted.
func (s *socket) subscribe(id string) bool {
	if s == nil {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.user == "" {
		return true
	}
	sc := s.caps
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.subscriptions[s.user] >= sc.subscriptionsPerUser {
		return false
	}
	sc.subscriptions[s.user]++
	s.subscriptions[id] = true
	return true
}

// unsubscribe gives back the place of subscription id, if it held one.
func (s *socket) unsubscribe(id string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.subscriptions[id] {
		delete(s.subscriptions, id)
		s.caps.mu.Lock()
		decrement(s.caps.subscriptions, s.user, 1)
		s.caps.mu.Unlock()
	}
}

// unsubscribeAll gives back the places of all the socket's subscriptions.
func (s *socket) unsubscribeAll() {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.subscriptions) == 0 {
		return
	}
	s.caps.mu.Lock()
	decrement(s.caps.subscriptions, s.user, len(s.subscriptions))
	s.caps.mu.Unlock()
	clear(s.subscriptions)
}

// end closes the connection, in case gqlgen left it open (it does when a
// connection_init payload is not an object), and gives back the socket's
// counts (the connection's Close gives back its subscriptions).
func (s *socket) end() {
	s.mu.Lock()
	conn := s.conn
	s.mu.Unlock()
	if conn != nil {
		_ = conn.Close()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sc := s.caps
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.releasePending(s)
	if s.user != "" {
		decrement(sc.sockets, s.user, 1)
	}
}

func (sc *socketCaps) releasePending(s *socket) {
	if s.pending {
		s.pending = false
		sc.pending--
		decrement(sc.pendingByIP, s.ip, 1)
	}
}

// decrement takes n from m[k], deleting the key at zero so that the maps
// hold only who has something open.
func decrement(m map[string]int, k string, n int) {
	if m[k] -= n; m[k] <= 0 {
		delete(m, k)
	}
}
