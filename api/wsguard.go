package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"

	"github.com/clustergraph/clustergraph/errkind"
	"github.com/clustergraph/clustergraph/metrics"
)

// guardedWebsockets wraps the websocket implementation to enforce what the
// GraphQL websocket protocols ask of a server and gqlgen leaves out: a
// subscription id already in use closes the socket (4409, as
// graphql-transport-ws says), and a connection holds at most max
// subscriptions, and its user at most the per-user cap across all their
// sockets (a further one is refused with an error message, the others keep
// running).
type guardedWebsockets struct {
	inner transport.WebsocketImplementation
	max   int
	// draining is done once the server shuts down: sockets then close with
	// 1001 (going away), which tells clients to reconnect elsewhere, not
	// gqlgen's 1000 (a normal end).
	draining <-chan struct{}
	// open counts the sockets, so a shutdown can wait for their close
	// frames to go out.
	open *sync.WaitGroup
}

func (g guardedWebsockets) Accept(w http.ResponseWriter, r *http.Request, o transport.WebsocketAcceptOptions) (transport.WebsocketConn, error) {
	// Counted open before the client can learn it is: a shutdown (or a
	// test) waiting for open sockets then sees it.
	var wait func()
	if g.open != nil {
		g.open.Add(1)
		wait = g.open.Done
	}
	c, err := g.inner.Accept(w, r, o)
	if err != nil {
		if wait != nil {
			wait()
		}
		return nil, err
	}
	closed := metrics.WebsocketOpened()
	done := sync.OnceFunc(func() {
		closed()
		if wait != nil {
			wait()
		}
	})
	gc := &guardedConn{WebsocketConn: c, max: g.max, socket: socketFrom(r.Context()), active: map[string]bool{}, draining: g.draining, done: done}
	gc.socket.accepted(gc)
	return gc, nil
}

type guardedConn struct {
	transport.WebsocketConn
	max int
	// socket holds the socket's share of its user's counts.
	socket   *socket
	draining <-chan struct{}
	done     func()

	mu     sync.Mutex
	active map[string]bool
}

// wsEnvelope is what both protocols' messages share.
type wsEnvelope struct {
	ID   string `json:"id,omitempty"`
	Type string `json:"type"`
}

// NextReader passes client messages on, after checking subscription starts.
func (c *guardedConn) NextReader() (int, io.Reader, error) {
	for {
		t, r, err := c.WebsocketConn.NextReader()
		if err != nil {
			return t, r, err
		}
		b, err := io.ReadAll(r)
		if err != nil {
			return t, nil, err
		}
		// gqlgen reads the first JSON value of a message and ignores what
		// follows; the guard must see exactly what gqlgen runs, so a
		// message that is not one JSON object (trailing bytes, say) ends
		// the socket, as graphql-transport-ws asks of invalid messages.
		var m wsEnvelope
		if err := json.Unmarshal(b, &m); err != nil {
			_ = c.WebsocketConn.WriteClose(websocketInvalidMessage, "invalid message: want one JSON object")
			_ = c.WebsocketConn.Close()
			return t, nil, transport.ErrWebsocketClosed
		}
		switch m.Type {
		case "subscribe", "start":
			c.mu.Lock()
			dup, full := c.active[m.ID], len(c.active) >= c.max
			userFull := !dup && !full && !c.socket.subscribe(m.ID)
			if !dup && !full && !userFull {
				c.active[m.ID] = true
			}
			c.mu.Unlock()
			switch {
			case dup:
				_ = c.WebsocketConn.WriteClose(4409, fmt.Sprintf("Subscriber for %s already exists", m.ID))
				_ = c.WebsocketConn.Close()
				return t, nil, transport.ErrWebsocketClosed
			case full:
				c.refuse(m.ID, fmt.Sprintf("this connection already runs %d subscriptions, the most allowed", c.max))
				continue
			case userFull:
				c.refuse(m.ID, fmt.Sprintf("you already run %d subscriptions across your connections, the most allowed", c.socket.caps.subscriptionsPerUser))
				continue
			}
		case "complete", "stop":
			c.forget(m.ID)
		}
		return t, bytes.NewReader(b), nil
	}
}

// WriteJSON passes server messages on, noting which subscriptions ended.
func (c *guardedConn) WriteJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	// Only an end of an operation frees its id; a "next" message, the
	// common case, is not decoded again unless its bytes could be one.
	if bytes.Contains(b, []byte(`"complete"`)) || bytes.Contains(b, []byte(`"error"`)) {
		var m wsEnvelope
		if json.Unmarshal(b, &m) == nil && (m.Type == "complete" || m.Type == "error") {
			c.forget(m.ID)
		}
	}
	return c.WebsocketConn.WriteJSON(json.RawMessage(b))
}

// refuse answers a subscription the caps do not let run with an error
// message; the socket lives on.
func (c *guardedConn) refuse(id, msg string) {
	metrics.GraphQLError(errkind.CodeBadUserInput)
	_ = c.WebsocketConn.WriteJSON(map[string]any{"id": id, "type": "error", "payload": []any{map[string]any{
		"message": msg, "extensions": map[string]any{"code": errkind.CodeBadUserInput},
	}}})
}

func (c *guardedConn) forget(id string) {
	c.mu.Lock()
	delete(c.active, id)
	c.mu.Unlock()
	c.socket.unsubscribe(id)
}

// The optional interfaces of the wrapped connection stay available.

func (c *guardedConn) SetReadLimit(limit int64) {
	if l, ok := c.WebsocketConn.(transport.WebsocketReadLimiter); ok {
		l.SetReadLimit(limit)
	}
}

func (c *guardedConn) SetReadDeadline(t time.Time) error {
	if d, ok := c.WebsocketConn.(transport.WebsocketReadDeadliner); ok {
		return d.SetReadDeadline(t)
	}
	return nil
}

// WriteClose says "going away" instead of a normal closure while the server
// shuts down.
func (c *guardedConn) WriteClose(code int, message string) error {
	if code == websocketNormalClosure && c.draining != nil {
		select {
		case <-c.draining:
			code, message = websocketGoingAway, "server shutting down; reconnect"
		default:
		}
	}
	return c.WebsocketConn.WriteClose(code, message)
}

// Websocket close codes (RFC 6455).
const (
	websocketNormalClosure = 1000
	websocketGoingAway     = 1001
	// websocketInvalidMessage is graphql-transport-ws's close code for a
	// message the server cannot read.
	websocketInvalidMessage = 4400
)

// Close closes the socket, counts it closed, and gives its subscriptions
// back to its user's cap: gqlgen cancels every operation of a closing
// socket.
func (c *guardedConn) Close() error {
	err := c.WebsocketConn.Close()
	c.socket.unsubscribeAll()
	if c.done != nil {
		c.done()
	}
	return err
}
