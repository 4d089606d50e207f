package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"
	coderws "github.com/coder/websocket"
)

// wsImplementation accepts websockets with github.com/coder/websocket, as
// gqlgen's CoderWebsocketImplementation does, but so that no peer can hold
// a socket, and every subscription and terminal on it, open forever:
//
//   - every write has a deadline. gqlgen sends each message holding one
//     mutex, and its close takes the same mutex: without a deadline a
//     client that stops reading blocks every writer and the close itself
//     (a revoked token's included) for good. When a write's deadline
//     passes, coder/websocket closes the connection, which ends gqlgen's
//     read loop, and gqlgen then cancels every operation on the socket.
//   - every pingInterval the server sends a websocket ping (an RFC 6455
//     control frame, which browsers and websocket libraries answer by
//     themselves) on both subprotocols, and closes the connection when no
//     pong comes within pongTimeout: a client that vanished (or stopped
//     reading) is noticed, and an idle socket carries a frame often enough
//     for proxies and load balancers not to cut it. graphql-ws's reference
//     server keeps sockets alive the same way, so gqlgen's
//     application-level pings (PingPongInterval, graphql-transport-ws only)
//     stay off: one mechanism serves both protocols.
type wsImplementation struct {
	accept       coderws.AcceptOptions
	writeTimeout time.Duration
	pingInterval time.Duration
	pongTimeout  time.Duration
}

func (i wsImplementation) Accept(w http.ResponseWriter, r *http.Request, o transport.WebsocketAcceptOptions) (transport.WebsocketConn, error) {
	for name, values := range o.ResponseHeader {
		for _, v := range values {
			w.Header().Add(name, v)
		}
	}
	opts := i.accept
	// Clipped: appending must not write into the array all sockets share.
	opts.Subprotocols = slices.Clip(opts.Subprotocols)
	for _, p := range o.Subprotocols {
		if !slices.Contains(opts.Subprotocols, p) {
			opts.Subprotocols = append(opts.Subprotocols, p)
		}
	}
	conn, err := coderws.Accept(w, r, &opts)
	if err != nil {
		return nil, err
	}
	c := &wsConn{conn: conn, writeTimeout: i.writeTimeout, stopped: make(chan struct{})}
	go c.keepAlive(i.pingInterval, i.pongTimeout)
	return c, nil
}

// wsConn is one accepted websocket.
type wsConn struct {
	conn         *coderws.Conn
	writeTimeout time.Duration
	// stopped is closed once the socket is closing: pings stop.
	stopped chan struct{}
	stop    sync.Once

	mu sync.Mutex
	// readDeadline closes the connection when a read deadline passes.
	readDeadline *time.Timer
	// closing is set once WriteClose started the close handshake.
	closing bool
}

var (
	_ transport.WebsocketConn          = (*wsConn)(nil)
	_ transport.WebsocketReadLimiter   = (*wsConn)(nil)
	_ transport.WebsocketReadDeadliner = (*wsConn)(nil)
)

// keepAlive pings the peer until the socket closes, and closes it at once
// (no close handshake: the peer is not listening) when a pong does not
// come in time. Pongs are read by gqlgen's read loop, which always waits
// for the next message.
func (c *wsConn) keepAlive(every, timeout time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-c.stopped:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		err := c.conn.Ping(ctx)
		cancel()
		if err != nil {
			_ = c.conn.CloseNow()
			return
		}
	}
}

func (c *wsConn) NextReader() (int, io.Reader, error) {
	typ, data, err := c.conn.Read(context.Background())
	if err != nil {
		// gqlgen expects ErrWebsocketClosed for a peer's normal close.
		if s := coderws.CloseStatus(err); s == coderws.StatusNormalClosure || s == coderws.StatusNoStatusRcvd {
			return int(typ), nil, transport.ErrWebsocketClosed
		}
		return int(typ), nil, err
	}
	return int(typ), bytes.NewReader(data), nil
}

// WriteJSON sends one message within the write timeout; past it the
// connection is closed.
func (c *wsConn) WriteJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.writeTimeout)
	defer cancel()
	return c.conn.Write(ctx, coderws.MessageText, b)
}

// WriteClose starts the close handshake in the background: coder/websocket
// waits up to 5 s for the peer's answering close frame (and as long again
// to send its own), and gqlgen's teardown must not wait for a slow or
// absent peer. Close then leaves the connection to the handshake.
func (c *wsConn) WriteClose(code int, reason string) error {
	c.stopPinging()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return nil
	}
	c.closing = true
	go func() { _ = c.conn.Close(coderws.StatusCode(code), reason) }()
	return nil
}

func (c *wsConn) Close() error {
	c.stopPinging()
	c.mu.Lock()
	closing := c.closing
	c.mu.Unlock()
	if closing {
		return nil
	}
	return c.conn.CloseNow()
}

// stopPinging ends keepAlive and a pending read deadline.
func (c *wsConn) stopPinging() {
	c.stop.Do(func() { close(c.stopped) })
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopReadDeadline()
}

func (c *wsConn) Subprotocol() string { return c.conn.Subprotocol() }

func (c *wsConn) SetReadLimit(limit int64) { c.conn.SetReadLimit(limit) }

// SetReadDeadline closes the connection when t passes before the next
// call; the zero time clears the deadline. (coder/websocket bounds reads by
// a context, but gqlgen sets deadlines from another goroutine while a read
// is pending.)
func (c *wsConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopReadDeadline()
	if t.IsZero() {
		return nil
	}
	c.readDeadline = time.AfterFunc(time.Until(t), func() { _ = c.conn.CloseNow() })
	return nil
}

func (c *wsConn) stopReadDeadline() {
	if c.readDeadline != nil {
		c.readDeadline.Stop()
		c.readDeadline = nil
	}
}
