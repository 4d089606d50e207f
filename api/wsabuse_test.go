package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clustergraph/clustergraph/api"
	"github.com/clustergraph/clustergraph/audit"
	"github.com/clustergraph/clustergraph/internal/testenv"
)

// busyTerminal starts a terminal whose command prints without end on a new
// socket (as token, when set), reads its first output, and returns the
// stream, which the caller then stops reading.
func busyTerminal(t *testing.T, s *server, token string, c testenv.Cluster, ns, pod string) *stream {
	t.Helper()
	st := subscribeWS(t, s, token, `subscription($ns: String!, $pod: String!) { terminal(cluster: "`+c.Context+`", namespace: $ns, pod: $pod, tty: false,
		command: ["sh", "-c", "yes 0123456789abcdefghijklmnopqrstuvwxyz | head -c 200000000"]) { type data error } }`, map[string]any{"ns": ns, "pod": pod})
	for {
		f, ok := st.nextFrame()
		if !ok || f.Type == "EXIT" {
			t.Fatalf("the terminal ended before printing: %s %s", f.Type, deref(f.Error))
		}
		if f.Type == "STDOUT" {
			return st
		}
	}
}

// freshNamespace makes ns, once a previous run's (which the end of its
// test deletes) is gone.
func freshNamespace(t *testing.T, c testenv.Cluster, ns string) {
	t.Helper()
	eventually(t, 2*time.Minute, ns+" of a previous run gone", func() bool {
		n, err := c.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		return apierrors.IsNotFound(err) || err == nil && n.Status.Phase != corev1.NamespaceTerminating
	})
	makeNamespace(t, c, ns)
}

// socketsClosed waits until every websocket counted in open is closed on
// the server's side.
func socketsClosed(t *testing.T, open *sync.WaitGroup, within time.Duration, what string) {
	t.Helper()
	done := make(chan struct{})
	go func() { open.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(within):
		t.Fatalf("%s: a websocket was still open on the server after %s", what, within)
	}
}

// TestWebsocketStalledReader: a client that stops reading a busy stream
// (a terminal printing without end) is dropped once the server's writes to
// it back up past the write timeout; the terminal on it ends (its end is
// audited), the socket closes on the server's side, and another client of
// the same server is served all along.
func TestWebsocketStalledReader(t *testing.T) {
	cs := testenv.Clusters(t)
	c := cs[0]
	ns := "ws-stall"
	freshNamespace(t, c, ns)
	makePod(t, c, ns, "target")
	auditLog := &syncBuffer{}
	var open sync.WaitGroup
	s := startServerWith(t, serverOpts{kubeconfigs: []string{c.Kubeconfig}, waitReady: true}, func(cfg *api.Config) {
		cfg.Audit = audit.New(auditLog)
		cfg.OpenSockets = &open
		cfg.Limits.SocketWriteTimeout = time.Second
	})
	s.waitRunning(t, ns, 1)
	other := subscribeWS(t, s, "", watchQuery, map[string]any{"ns": ns})
	other.until("SYNCED", "")

	busyTerminal(t, s, "", c, ns, "target")
	// Served while the stalled socket's writes back up, and after.
	makePod(t, c, ns, "witness")
	other.until("ADDED", "witness")
	eventually(t, time.Minute, "the stalled client's terminal ends", func() bool {
		return strings.Contains(auditLog.String(), `"action":"terminal.end"`)
	})
	deletePod(t, c, ns, "witness")
	other.until("DELETED", "witness")

	other.c.CloseNow()
	socketsClosed(t, &open, 30*time.Second, "the stalled socket")
}

// TestWebsocketPing: on both subprotocols the server pings every socket;
// one whose client does not answer (a coder/websocket client answers only
// while it reads, so one that stops reading is a peer that vanished) is
// closed, and one whose client reads stays open across many pings.
func TestWebsocketPing(t *testing.T) {
	cs := testenv.Clusters(t)
	for _, protocol := range []string{"graphql-transport-ws", "graphql-ws"} {
		t.Run(protocol, func(t *testing.T) {
			var open sync.WaitGroup
			s := startServerWith(t, serverOpts{kubeconfigs: []string{cs[0].Kubeconfig}}, func(cfg *api.Config) {
				cfg.OpenSockets = &open
				cfg.Limits.SocketPingInterval = 200 * time.Millisecond
				cfg.Limits.SocketPongTimeout = 300 * time.Millisecond
			})
			initOn := func() *websocket.Conn {
				c, err := wsDialProtocol(t, s, "", protocol)
				if err != nil {
					t.Fatal(err)
				}
				wsSend(t, c, map[string]any{"type": "connection_init", "payload": map[string]any{}})
				if m, err := wsRead(c); err != nil || m.Type != "connection_ack" {
					t.Fatalf("init: %s %s %v", m.Type, m.Payload, err)
				}
				return c
			}

			initOn() // and never read again
			socketsClosed(t, &open, 15*time.Second, "the socket of a client that answers no ping")

			c := initOn()
			// Read all along (which answers pings), up to the answer of
			// operation 1.
			answer := make(chan error, 1)
			go func() {
				for {
					m, err := wsRead(c)
					if err != nil || m.ID == "1" {
						if err == nil && !strings.Contains(string(m.Payload), "Query") {
							err = fmt.Errorf("answer %s %s", m.Type, m.Payload)
						}
						answer <- err
						return
					}
				}
			}()
			time.Sleep(10 * 200 * time.Millisecond)
			start := map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": `{ __typename }`}}
			if protocol == "graphql-ws" {
				start["type"] = "start"
			}
			wsSend(t, c, start)
			if err := <-answer; err != nil {
				t.Fatalf("the socket of a client that reads, after 10 pings: %v", err)
			}
			c.CloseNow()
		})
	}
}

// TestWebsocketRevokedWhileStalled: a socket whose token is revoked while
// its client has stopped reading a busy stream (so that the server's
// writes to it block) is closed within the token recheck and the write
// timeout: before write deadlines, its close waited behind a blocked write
// for good.
func TestWebsocketRevokedWhileStalled(t *testing.T) {
	cs := testenv.Clusters(t)
	c := cs[0]
	ns := "ws-revoke-stall"
	freshNamespace(t, c, ns)
	makePod(t, c, ns, "target")
	u := makeUser(t, cs[:1], "cg-ws-stall", func(c testenv.Cluster, user string) {
		roleBinding(t, c, ns, "cg-ws-stall", "ClusterRole", "admin", user)
	})
	var open sync.WaitGroup
	s := startServerWith(t, serverOpts{kubeconfigs: []string{c.Kubeconfig}, waitReady: true, auth: true, authTTL: time.Second}, func(cfg *api.Config) {
		cfg.TokenRecheck = time.Second
		cfg.OpenSockets = &open
		cfg.Limits.SocketWriteTimeout = 2 * time.Second
	})
	s.as(u.token).waitRunning(t, ns, 1)
	busyTerminal(t, s, u.token, c, ns, "target")
	if err := c.Client.CoreV1().ServiceAccounts(accessNS).Delete(ctx, "cg-ws-stall", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	socketsClosed(t, &open, time.Minute, "the socket of a revoked token")
}

// TestWebsocketPerUserCaps: a user holds at most MaxSocketsPerUser sockets
// (a further one is refused at connection_init and closed with 4429, on
// both subprotocols) and runs at most MaxSubscriptionsPerUser
// subscriptions across them (a further one is refused with BAD_USER_INPUT,
// the socket lives on); another user is not held back, and what a user
// completes or closes is given back.
func TestWebsocketPerUserCaps(t *testing.T) {
	cs := testenv.Clusters(t)
	bind := func(name string) testUser {
		return makeUser(t, cs[:1], name, func(c testenv.Cluster, user string) {
			roleBinding(t, c, "shop", name, "ClusterRole", "view", user)
		})
	}
	u, v := bind("cg-ws-caps"), bind("cg-ws-caps-other")
	s := startServerWith(t, serverOpts{kubeconfigs: []string{cs[0].Kubeconfig}, waitReady: true, auth: true}, func(cfg *api.Config) {
		cfg.Limits.MaxSocketsPerUser = 2
		cfg.Limits.MaxSubscriptionsPerUser = 3
	})
	initial := map[string]any{"Authorization": "Bearer " + u.token}
	// tryInit opens a socket for u: nil when it was refused with 4429.
	tryInit := func(protocol string) *websocket.Conn {
		t.Helper()
		c, err := wsDialProtocol(t, s, "", protocol)
		if err != nil {
			t.Fatal(err)
		}
		wsSend(t, c, map[string]any{"type": "connection_init", "payload": initial})
		m, err := wsRead(c)
		if protocol == "graphql-ws" && err == nil && m.Type == "connection_error" {
			if !strings.Contains(string(m.Payload), "the most allowed") {
				t.Errorf("connection_error %s, want the limit named", m.Payload)
			}
			m, err = wsRead(c)
		}
		if err == nil && m.Type == "connection_ack" {
			return c
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != 4429 || !strings.Contains(ce.Reason, "limit 2") {
			t.Fatalf("%s: %s %s %v, want an ack or a close with 4429 naming the limit", protocol, m.Type, m.Payload, err)
		}
		return nil
	}
	subscribe := func(c *websocket.Conn, id string) {
		wsSend(t, c, map[string]any{"id": id, "type": "subscribe", "payload": map[string]any{"query": watchQuery, "variables": map[string]any{"ns": "shop"}}})
	}
	// next returns the next message of operation id on c. Messages of the
	// socket's other operations read on the way are held for their own
	// turn: two subscriptions' first results arrive in either order.
	held := map[*websocket.Conn][]wsMessage{}
	next := func(c *websocket.Conn, id string) wsMessage {
		t.Helper()
		for i, m := range held[c] {
			if m.ID == id {
				held[c] = append(held[c][:i:i], held[c][i+1:]...)
				return m
			}
		}
		for {
			m, err := wsRead(c)
			if err != nil {
				t.Fatalf("reading for %s: %v", id, err)
			}
			if m.ID == id {
				return m
			}
			held[c] = append(held[c], m)
		}
	}

	a, b := tryInit("graphql-transport-ws"), tryInit("graphql-transport-ws")
	if a == nil || b == nil {
		t.Fatal("a socket under the cap was refused")
	}
	for _, protocol := range []string{"graphql-transport-ws", "graphql-ws"} {
		if tryInit(protocol) != nil {
			t.Fatalf("%s: a third socket of the user was accepted", protocol)
		}
	}
	initWS(t, s, v.token) // another user is not held back

	subscribe(a, "w1")
	subscribe(a, "w2")
	subscribe(b, "w3")
	for _, w := range []struct {
		c  *websocket.Conn
		id string
	}{{a, "w1"}, {a, "w2"}, {b, "w3"}} {
		if m := next(w.c, w.id); m.Type != "next" {
			t.Fatalf("%s: %s %s", w.id, m.Type, m.Payload)
		}
	}
	subscribe(b, "w4")
	if m := next(b, "w4"); m.Type != "error" || !strings.Contains(string(m.Payload), "BAD_USER_INPUT") || !strings.Contains(string(m.Payload), "3 subscriptions") {
		t.Fatalf("the user's fourth subscription: %s %s, want an error naming the limit", m.Type, m.Payload)
	}
	// Completing one gives its place back, to the same socket that was
	// refused (which lives on).
	wsSend(t, a, map[string]any{"id": "w1", "type": "complete"})
	for next(a, "w1").Type != "complete" { // results sent before come first
	}
	subscribe(b, "w5")
	if m := next(b, "w5"); m.Type != "next" {
		t.Fatalf("a subscription after one completed: %s %s", m.Type, m.Payload)
	}

	// Closing a socket gives back it and its subscription (w2).
	a.CloseNow()
	var c *websocket.Conn
	eventually(t, 15*time.Second, "a socket in the place of the closed one", func() bool {
		c = tryInit("graphql-transport-ws")
		return c != nil
	})
	subscribe(c, "w6")
	if m := next(c, "w6"); m.Type != "next" {
		t.Fatalf("a subscription in the place of the closed socket's: %s %s", m.Type, m.Payload)
	}
}

// wsDialFrom opens a websocket from a local address of its own (any of
// 127.0.0.0/8 reaches the test server), without connection_init.
func wsDialFrom(t *testing.T, s *server, localIP string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(localIP)}}
	client := &http.Client{Transport: recordingTransport{&http.Transport{DialContext: dialer.DialContext}}}
	dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(dctx, "ws"+strings.TrimPrefix(s.URL, "http")+"/query", &websocket.DialOptions{
		Subprotocols: []string{"graphql-transport-ws"}, HTTPClient: client,
	})
	if c != nil {
		t.Cleanup(func() { c.CloseNow() })
	}
	return c, resp, err
}

// TestWebsocketUnauthenticatedBound: sockets that have not sent
// connection_init are bounded per client address and in all: an upgrade
// over either bound is refused with 429, while other addresses are served
// until the global bound; an init frees a place. A socket whose
// connection_init gqlgen cannot read (a payload that is not an object) is
// closed, not left open uncounted.
func TestWebsocketUnauthenticatedBound(t *testing.T) {
	cs := testenv.Clusters(t)
	var open sync.WaitGroup
	s := startServerWith(t, serverOpts{kubeconfigs: []string{cs[0].Kubeconfig}}, func(cfg *api.Config) {
		cfg.OpenSockets = &open
		cfg.Limits.MaxPendingSocketsPerIP = 2
		cfg.Limits.MaxPendingSockets = 3
	})
	accepted := func(ip string) *websocket.Conn {
		t.Helper()
		c, _, err := wsDialFrom(t, s, ip)
		if err != nil {
			t.Fatalf("from %s: %v", ip, err)
		}
		return c
	}
	refused := func(ip, limit string) {
		t.Helper()
		_, resp, err := wsDialFrom(t, s, ip)
		if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("from %s over the bound: %v (%v), want 429 with Retry-After", ip, err, resp)
		}
		body, _ := io.ReadAll(resp.Body)
		var r response
		if json.Unmarshal(body, &r) != nil || len(r.Errors) == 0 || r.Errors[0].Extensions["code"] != "UNAVAILABLE" || !strings.Contains(r.Errors[0].Message, limit) {
			t.Fatalf("refusal %s, want UNAVAILABLE naming %s", body, limit)
		}
	}

	p1 := accepted("127.0.0.1")
	accepted("127.0.0.1")
	refused("127.0.0.1", "limit 2")
	accepted("127.0.0.2")
	refused("127.0.0.2", "limit 3")

	wsSend(t, p1, map[string]any{"type": "connection_init", "payload": map[string]any{}})
	if m, err := wsRead(p1); err != nil || m.Type != "connection_ack" {
		t.Fatalf("init: %s %s %v", m.Type, m.Payload, err)
	}
	accepted("127.0.0.2")
	refused("127.0.0.3", "limit 3")

	t.Run("unreadable connection_init", func(t *testing.T) {
		var open sync.WaitGroup
		s := startServerWith(t, serverOpts{kubeconfigs: []string{cs[0].Kubeconfig}}, func(cfg *api.Config) { cfg.OpenSockets = &open })
		c, err := wsDial(t, s, "")
		if err != nil {
			t.Fatal(err)
		}
		wsSend(t, c, map[string]any{"type": "connection_init", "payload": "not an object"})
		socketsClosed(t, &open, 15*time.Second, "a socket whose connection_init was unreadable")
	})
}

// TestWebsocketMessageTooBig: a message over the 1 MiB read limit closes
// the socket with 1009 (message too big), and the server goes on serving.
func TestWebsocketMessageTooBig(t *testing.T) {
	cs := testenv.Clusters(t)
	s := startServer(t, serverOpts{kubeconfigs: kubeconfigs(cs[:1]), waitReady: true})
	c := initWS(t, s, "")
	big := strings.Repeat("x", 1<<20+1)
	wsSend(t, c, map[string]any{"id": "big", "type": "subscribe", "payload": map[string]any{"query": "{ clusters { name } }", "variables": map[string]any{"pad": big}}})
	_, err := wsRead(c)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusMessageTooBig {
		t.Fatalf("after a message over 1 MiB: %v, want a close with 1009", err)
	}
	var out struct{ Clusters []struct{ Name string } }
	s.query(t, `{ clusters { name } }`, nil, &out)
	if len(out.Clusters) == 0 {
		t.Error("the server does not answer after the socket was closed")
	}
}
