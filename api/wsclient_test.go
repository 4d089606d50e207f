package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// Clients of the server's websocket (graphql-transport-ws): dialing,
// frames, and a subscription read as a stream.

// wsMessage is a graphql-transport-ws message.
type wsMessage struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// wsDial opens a graphql-transport-ws socket on /query, sending origin as
// Origin when set; the socket closes when the test ends.
func wsDial(t testing.TB, s *server, origin string) (*websocket.Conn, error) {
	t.Helper()
	return wsDialProtocol(t, s, origin, "graphql-transport-ws")
}

// wsDialProtocol is wsDial with another subprotocol.
func wsDialProtocol(t testing.TB, s *server, origin, protocol string) (*websocket.Conn, error) {
	t.Helper()
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.URL, "http")+"/query", &websocket.DialOptions{
		Subprotocols: []string{protocol}, HTTPHeader: h,
	})
	if c != nil {
		t.Cleanup(func() { c.CloseNow() })
	}
	return c, err
}

// wsSend writes m as one JSON frame, failing the test when it cannot.
func wsSend(t testing.TB, c *websocket.Conn, m any) {
	t.Helper()
	b, _ := json.Marshal(m)
	if err := c.Write(context.Background(), websocket.MessageText, b); err != nil {
		t.Fatal(err)
	}
}

// wsRead returns the next message that is not a keep-alive, within 10 s;
// every frame is checked for planted secrets (see leak_test.go).
func wsRead(c *websocket.Conn) (wsMessage, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			return wsMessage{}, err
		}
		leaks.check("a websocket frame", b)
		var m wsMessage
		if err := json.Unmarshal(b, &m); err != nil {
			return m, err
		}
		// Keep-alives: ping/pong (graphql-transport-ws), ka (legacy).
		if m.Type != "ping" && m.Type != "pong" && m.Type != "ka" {
			return m, nil
		}
	}
}

// watchEvent is what the tests select of a ResourceEvent.
type watchEvent struct {
	Type   string
	Cursor string
	Object *struct {
		Metadata struct{ Name, Namespace string }
	}
	Error *struct{ Message, Code string }
}

// stream is one subscription over the websocket.
type stream struct {
	t *testing.T
	c *websocket.Conn
	// n numbers the operations send started; sent holds their results.
	n    int
	sent []wsMessage
}

// subscribeWS opens a socket (with token when set) and starts one
// subscription on it.
func subscribeWS(t *testing.T, s *server, token, query string, vars map[string]any) *stream {
	t.Helper()
	c := initWS(t, s, token)
	wsSend(t, c, map[string]any{"id": "w", "type": "subscribe", "payload": map[string]any{"query": query, "variables": vars}})
	return &stream{t: t, c: c}
}

// initWS opens a socket and initializes it (with token when set).
func initWS(t testing.TB, s *server, token string) *websocket.Conn {
	t.Helper()
	c, err := wsDial(t, s, "")
	if err != nil {
		t.Fatal(err)
	}
	payload := map[string]any{}
	if token != "" {
		payload["Authorization"] = "Bearer " + token
	}
	wsSend(t, c, map[string]any{"type": "connection_init", "payload": payload})
	if m, err := wsRead(c); err != nil || m.Type != "connection_ack" {
		t.Fatalf("init: %+v %v", m, err)
	}
	return c
}

// send runs a query or mutation on the subscription's socket without
// waiting for its result (next sets results aside in st.sent).
func (st *stream) send(query string, vars map[string]any) {
	st.t.Helper()
	st.n++
	wsSend(st.t, st.c, map[string]any{"id": fmt.Sprintf("op%d", st.n), "type": "subscribe", "payload": map[string]any{"query": query, "variables": vars}})
}

// next returns the next result of the subscription; ok is false when the
// stream completed or the socket closed.
func (st *stream) next(out any) (ok bool) {
	st.t.Helper()
	m, err := wsRead(st.c)
	// Results of mutations sent on the same socket (see send) are set
	// aside.
	for err == nil && strings.HasPrefix(m.ID, "op") {
		if m.Type == "next" {
			st.sent = append(st.sent, m)
		}
		m, err = wsRead(st.c)
	}
	if err != nil || m.Type == "complete" {
		return false
	}
	if m.Type != "next" {
		st.t.Fatalf("unexpected message %+v", m)
	}
	var r struct {
		Data   json.RawMessage
		Errors []gqlError
	}
	if err := json.Unmarshal(m.Payload, &r); err != nil || len(r.Errors) > 0 {
		st.t.Fatalf("subscription result %s: %v", m.Payload, err)
	}
	if err := json.Unmarshal(r.Data, out); err != nil {
		st.t.Fatal(err)
	}
	return true
}

// errorCode reads the subscription's first message, which must be an error,
// and returns its extensions.code.
func (st *stream) errorCode() string {
	st.t.Helper()
	m, err := wsRead(st.c)
	if err != nil {
		st.t.Fatal(err)
	}
	var errs []gqlError
	switch m.Type {
	case "error":
		_ = json.Unmarshal(m.Payload, &errs)
	case "next":
		var r struct{ Errors []gqlError }
		_ = json.Unmarshal(m.Payload, &r)
		errs = r.Errors
	}
	if len(errs) == 0 {
		st.t.Fatalf("want an error, got %+v", m)
	}
	code, _ := errs[0].Extensions["code"].(string)
	return code
}

// watchQuery watches the pods of $ns, selecting what watchEvent holds.
const watchQuery = `subscription($ns: String, $after: String) { watch(kind: "Pod", namespace: $ns, after: $after) {
	type cursor object { metadata { name namespace } } error { message code } } }`

// nextWatch returns the next watch event, failing when the stream ends.
func (st *stream) nextWatch() watchEvent {
	st.t.Helper()
	var out struct{ Watch watchEvent }
	if !st.next(&out) {
		st.t.Fatal("the watch ended")
	}
	return out.Watch
}

// until reads watch events up to one of the given type (and name, when
// set), returning all read.
func (st *stream) until(typ, name string) []watchEvent {
	st.t.Helper()
	var seen []watchEvent
	for {
		ev := st.nextWatch()
		seen = append(seen, ev)
		if ev.Type == typ && (name == "" || ev.Object != nil && ev.Object.Metadata.Name == name) {
			return seen
		}
	}
}

// terminalFrame is what the tests select of a TerminalFrame.
type terminalFrame struct {
	Session  string
	Type     string
	Data     *string
	ExitCode *int
	Error    *string
}

// nextFrame returns the next frame of a terminal subscription; ok is false
// when the stream ended.
func (st *stream) nextFrame() (terminalFrame, bool) {
	st.t.Helper()
	var out struct{ Terminal terminalFrame }
	ok := st.next(&out)
	return out.Terminal, ok
}

// untilExit reads a terminal to its EXIT frame and counts the output
// frames before it; a stream that ends without one fails the test.
func (st *stream) untilExit() (exit terminalFrame, outputs int) {
	st.t.Helper()
	for {
		f, ok := st.nextFrame()
		if !ok {
			st.t.Fatal("the stream ended without EXIT")
		}
		switch f.Type {
		case "EXIT":
			return f, outputs
		case "STDOUT", "STDERR":
			outputs++
		}
	}
}
