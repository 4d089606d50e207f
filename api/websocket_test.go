package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clustergraph/clustergraph/api"
	"github.com/clustergraph/clustergraph/internal/testenv"
)

// TestWebsocket: the socket authenticates with the token in
// connection_init, serves queries as that user, refuses connections
// without a valid token, and refuses cross-origin browsers before the
// upgrade.
func TestWebsocket(t *testing.T) {
	cs := testenv.Clusters(t)
	u := makeUser(t, cs[:1], "cg-ws", func(c testenv.Cluster, user string) {
		roleBinding(t, c, "shop", "cg-ws", "ClusterRole", "view", user)
	})
	s := startServer(t, serverOpts{kubeconfigs: []string{cs[0].Kubeconfig}, waitReady: true, auth: true})

	t.Run("authenticated query", func(t *testing.T) {
		c, err := wsDial(t, s, "")
		if err != nil {
			t.Fatal(err)
		}
		wsSend(t, c, map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + u.token}})
		if m, err := wsRead(c); err != nil || m.Type != "connection_ack" {
			t.Fatalf("init: %+v %v, want connection_ack", m, err)
		}
		wsSend(t, c, map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": `{ viewer { username } pods { totalCount nodes { namespace } } }`}})
		m, err := wsRead(c)
		if err != nil || m.Type != "next" || m.ID != "1" {
			t.Fatalf("query: %+v %v", m, err)
		}
		var out struct {
			Data struct {
				Viewer struct{ Username string }
				Pods   struct {
					TotalCount int
					Nodes      []struct{ Namespace string }
				}
			}
		}
		if err := json.Unmarshal(m.Payload, &out); err != nil {
			t.Fatal(err)
		}
		if out.Data.Viewer.Username != u.user || out.Data.Pods.TotalCount == 0 {
			t.Fatalf("got %s", m.Payload)
		}
		for _, p := range out.Data.Pods.Nodes {
			if p.Namespace != "shop" {
				t.Errorf("user bound to shop sees a pod in %s", p.Namespace)
			}
		}
		if m, err := wsRead(c); err != nil || m.Type != "complete" {
			t.Errorf("after the result: %+v %v, want complete", m, err)
		}
	})
	for name, payload := range map[string]map[string]any{
		"no token":    {},
		"bogus token": {"Authorization": "Bearer nope"},
		"malformed":   {"Authorization": u.token},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := wsDial(t, s, "")
			if err != nil {
				t.Fatal(err)
			}
			wsSend(t, c, map[string]any{"type": "connection_init", "payload": payload})
			m, err := wsRead(c)
			if err == nil && m.Type == "connection_ack" {
				t.Fatalf("connection acknowledged with %v", payload)
			}
			// 4403, Forbidden: graphql-ws clients retry it within their
			// limit; after a normal closure they reconnect without end.
			if code := websocket.CloseStatus(err); code != 4403 {
				t.Errorf("refused connection_init: %+v %v (close code %d), want a close with 4403", m, err, code)
			}
			// Whatever was said, nothing is served on this socket (the
			// server normally has closed it already).
			b, _ := json.Marshal(map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": `{ pods { totalCount } }`}})
			if err := c.Write(context.Background(), websocket.MessageText, b); err != nil {
				return
			}
			if m, err := wsRead(c); err == nil && m.Type == "next" {
				t.Fatalf("served %s on an unauthenticated socket", m.Payload)
			}
		})
	}
	t.Run("review budget spent: 1013", func(t *testing.T) {
		// New tokens past the client's review budget (5 a second, bursts of
		// 10) are not refused but not reviewed either: try again later,
		// which graphql-ws clients retry with backoff.
		own := startServer(t, serverOpts{kubeconfigs: []string{cs[0].Kubeconfig}, waitReady: true, auth: true})
		codes := map[int]int{}
		for i := range 20 {
			c, err := wsDial(t, own, "")
			if err != nil {
				t.Fatal(err)
			}
			wsSend(t, c, map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": fmt.Sprintf("Bearer made-up-%d", i)}})
			_, err = wsRead(c)
			codes[int(websocket.CloseStatus(err))]++
		}
		if len(codes) != 2 || codes[4403] == 0 || codes[1013] == 0 {
			t.Errorf("close codes of 20 new made-up tokens at once: %v, want 4403 (reviewed) and 1013 (over the budget)", codes)
		}
	})
	for name, origin := range map[string]string{"cross-origin": "https://evil.example", "null origin": "null"} {
		t.Run(name, func(t *testing.T) {
			if _, err := wsDial(t, s, origin); err == nil {
				t.Fatalf("upgrade with Origin %q accepted", origin)
			}
		})
	}
	t.Run("revoked token closes the socket", func(t *testing.T) {
		gone := makeUser(t, cs[:1], "cg-ws-revoked", func(c testenv.Cluster, user string) {
			roleBinding(t, c, "shop", "cg-ws-revoked", "ClusterRole", "view", user)
		})
		short := startServerWith(t, serverOpts{kubeconfigs: []string{cs[0].Kubeconfig}, waitReady: true, auth: true, authTTL: time.Second}, func(cfg *api.Config) {
			cfg.TokenRecheck = time.Second
		})
		st := subscribeWS(t, short, gone.token, watchQuery, map[string]any{"ns": "shop"})
		st.until("SYNCED", "")
		if err := cs[0].Client.CoreV1().ServiceAccounts(accessNS).Delete(ctx, "cg-ws-revoked", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		deleted := time.Now()
		// One read with a long deadline: it must end by the socket closing,
		// not by the deadline (which would also close it, so it is told apart
		// by the context).
		rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for {
			if _, _, err := st.c.Read(rctx); err != nil {
				if rctx.Err() != nil {
					t.Fatal("the socket outlived its revoked token by 30s")
				}
				break
			}
		}
		t.Logf("socket closed %s after its service account was deleted", time.Since(deleted).Round(time.Millisecond))
	})
	t.Run("legacy subscriptions-transport-ws", func(t *testing.T) {
		c, err := wsDialProtocol(t, s, "", "graphql-ws")
		if err != nil {
			t.Fatal(err)
		}
		wsSend(t, c, map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + u.token}})
		if m, err := wsRead(c); err != nil || m.Type != "connection_ack" {
			t.Fatalf("init: %+v %v", m, err)
		}
		wsSend(t, c, map[string]any{"id": "1", "type": "start", "payload": map[string]any{"query": `{ viewer { username } }`}})
		if m, err := wsRead(c); err != nil || m.Type != "data" || !strings.Contains(string(m.Payload), u.user) {
			t.Fatalf("query: %+v %v", m, err)
		}
	})
	t.Run("duplicate subscription id", func(t *testing.T) {
		st := subscribeWS(t, s, u.token, watchQuery, map[string]any{"ns": "shop"})
		st.until("SYNCED", "")
		wsSend(t, st.c, map[string]any{"id": "w", "type": "subscribe", "payload": map[string]any{"query": watchQuery, "variables": map[string]any{"ns": "shop"}}})
		rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for {
			if _, _, err := st.c.Read(rctx); err != nil {
				if code := websocket.CloseStatus(err); code != 4409 {
					t.Fatalf("closed with %d (%v), want 4409", code, err)
				}
				break
			}
		}
	})
	t.Run("subscription cap", func(t *testing.T) {
		capped := startServerWith(t, serverOpts{kubeconfigs: []string{cs[0].Kubeconfig}, waitReady: true, auth: true}, func(cfg *api.Config) {
			cfg.Limits.MaxSubscriptions = 2
		})
		st := subscribeWS(t, capped, u.token, watchQuery, map[string]any{"ns": "shop"})
		st.until("SYNCED", "")
		for _, id := range []string{"second", "third"} {
			wsSend(t, st.c, map[string]any{"id": id, "type": "subscribe", "payload": map[string]any{"query": watchQuery, "variables": map[string]any{"ns": "data"}}})
		}
		for {
			m, err := wsRead(st.c)
			if err != nil {
				t.Fatalf("no refusal of the third subscription: %v", err)
			}
			if m.ID == "third" {
				if m.Type != "error" || !strings.Contains(string(m.Payload), "BAD_USER_INPUT") {
					t.Errorf("third subscription: %+v, want an error", m)
				}
				break
			}
		}
	})
	t.Run("trailing bytes", func(t *testing.T) {
		// gqlgen would run the subscription and ignore " x"; the guard
		// could not read it and would not count it: it closes the socket.
		capped := startServerWith(t, serverOpts{kubeconfigs: []string{cs[0].Kubeconfig}, waitReady: true, auth: true}, func(cfg *api.Config) {
			cfg.Limits.MaxSubscriptions = 1
		})
		st := subscribeWS(t, capped, u.token, watchQuery, map[string]any{"ns": "shop"})
		st.until("SYNCED", "")
		b, _ := json.Marshal(map[string]any{"id": "second", "type": "subscribe", "payload": map[string]any{"query": watchQuery, "variables": map[string]any{"ns": "data"}}})
		if err := st.c.Write(context.Background(), websocket.MessageText, append(b, " x"...)); err != nil {
			t.Fatal(err)
		}
		for {
			m, err := wsRead(st.c)
			if err != nil {
				if code := websocket.CloseStatus(err); code != 4400 {
					t.Fatalf("closed with %d (%v), want 4400", code, err)
				}
				break
			}
			if m.ID == "second" {
				t.Fatalf("a message with trailing bytes ran past the cap: %+v", m)
			}
		}
	})
	t.Run("same origin", func(t *testing.T) {
		if _, err := wsDial(t, s, s.URL); err != nil {
			t.Fatalf("same-origin upgrade refused: %v", err)
		}
	})
}
