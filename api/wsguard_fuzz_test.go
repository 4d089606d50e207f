package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"

	"github.com/99designs/gqlgen/graphql/handler/transport"
)

// scriptedConn serves a fixed list of client messages, then EOF.
type scriptedConn struct {
	msgs   [][]byte
	closed bool
}

func (c *scriptedConn) NextReader() (int, io.Reader, error) {
	if c.closed || len(c.msgs) == 0 {
		return 0, nil, io.EOF
	}
	m := c.msgs[0]
	c.msgs = c.msgs[1:]
	return 1, bytes.NewReader(m), nil
}
func (c *scriptedConn) WriteJSON(any) error          { return nil }
func (c *scriptedConn) WriteClose(int, string) error { c.closed = true; return nil }
func (c *scriptedConn) Close() error                 { c.closed = true; return nil }
func (c *scriptedConn) Subprotocol() string          { return "graphql-transport-ws" }

// FuzzWebsocketGuard: whatever the client sends, every message the guard
// passes on is read by gqlgen (its decoder takes the first JSON value) as
// the guard read it, so a subscription gqlgen would start is always one
// the guard counted, and no more than its cap run at once. A message with
// trailing bytes used to start a subscription the guard never saw.
func FuzzWebsocketGuard(f *testing.F) {
	for _, seed := range []string{
		`{"id":"1","type":"subscribe","payload":{}}`,
		"{\"id\":\"1\",\"type\":\"subscribe\"} x\n{\"id\":\"2\",\"type\":\"subscribe\"} x\n{\"id\":\"3\",\"type\":\"subscribe\"}",
		"{\"id\":\"1\",\"type\":\"subscribe\"}\n{\"id\":\"1\",\"type\":\"complete\"}\n{\"id\":\"1\",\"type\":\"subscribe\"}",
		"{\"ID\":\"1\",\"TYPE\":\"start\"}\n{\"type\":\"ping\",\"type\":\"subscribe\",\"id\":\"9\"}",
		`{"id":"1","type":"subscribe"}{"id":"2","type":"subscribe"}`,
		"[]\nnull\n\"subscribe\"",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, script []byte) {
		inner := &scriptedConn{msgs: bytes.Split(script, []byte("\n"))}
		const limit = 2
		g := &guardedConn{WebsocketConn: inner, max: limit, active: map[string]bool{}}
		for {
			_, r, err := g.NextReader()
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, transport.ErrWebsocketClosed) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			b, _ := io.ReadAll(r)
			// As gqlgen reads it: the first JSON value, the rest ignored.
			var m wsEnvelope
			if json.NewDecoder(bytes.NewReader(b)).Decode(&m) != nil {
				continue
			}
			if (m.Type == "subscribe" || m.Type == "start") && !g.active[m.ID] {
				t.Fatalf("gqlgen would start %q, which the guard did not count: %q", m.ID, b)
			}
			if len(g.active) > limit {
				t.Fatalf("%d subscriptions run, cap %d", len(g.active), limit)
			}
		}
	})
}
