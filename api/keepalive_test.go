package api_test

import (
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clustergraph/clustergraph/api"
	"github.com/clustergraph/clustergraph/internal/testenv"
)

// idleProxy forwards TCP connections to target and cuts any that carries
// no byte either way for idle, as load balancers and ingress proxies do
// (nginx's proxy_read_timeout, an AWS ALB's idle timeout).
func idleProxy(t *testing.T, target string, idle time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				server, err := net.Dial("tcp", target)
				if err != nil {
					_ = client.Close()
					return
				}
				var mu sync.Mutex
				last := time.Now()
				touch := func() { mu.Lock(); last = time.Now(); mu.Unlock() }
				done := make(chan struct{})
				var once sync.Once
				cut := func() { once.Do(func() { close(done); _ = client.Close(); _ = server.Close() }) }
				pipe := func(dst, src net.Conn) {
					buf := make([]byte, 32<<10)
					for {
						n, err := src.Read(buf)
						if n > 0 {
							touch()
							if _, werr := dst.Write(buf[:n]); werr != nil {
								break
							}
						}
						if err != nil {
							break
						}
					}
					cut()
				}
				go pipe(server, client)
				go pipe(client, server)
				tick := time.NewTicker(idle / 10)
				defer tick.Stop()
				for {
					select {
					case <-done:
						return
					case <-tick.C:
						mu.Lock()
						quiet := time.Since(last)
						mu.Unlock()
						if quiet > idle {
							cut()
							return
						}
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// TestKeepAlivePastAnIdleProxy: behind a proxy that cuts connections idle
// for a second, a subscription that sees no change for three seconds is
// still there to deliver the next one, on both subprotocols: the server's
// pings (and keep-alive messages) keep the socket busy. With the pings far
// apart the same proxy cuts it, so the proxy does what the test needs.
func TestKeepAlivePastAnIdleProxy(t *testing.T) {
	cs := testenv.Clusters(t)
	c := cs[0]
	ns := "keepalive"
	makeNamespace(t, c, ns)
	const query = `subscription($ns: String!) { watch(kind: "Pod", namespace: $ns) { type object { metadata { name } } } }`
	run := func(t *testing.T, protocol string, ping time.Duration, pod string) error {
		s := startServerWith(t, serverOpts{kubeconfigs: []string{c.Kubeconfig}, waitReady: true}, func(cfg *api.Config) {
			cfg.Limits.SocketPingInterval = ping
		})
		viaProxy := *s
		viaProxy.URL = "http://" + idleProxy(t, strings.TrimPrefix(s.URL, "http://"), time.Second)
		conn, err := wsDialProtocol(t, &viaProxy, "", protocol)
		if err != nil {
			t.Fatal(err)
		}
		wsSend(t, conn, map[string]any{"type": "connection_init", "payload": map[string]any{}})
		if m, err := wsRead(conn); err != nil || m.Type != "connection_ack" {
			t.Fatalf("init: %s %v", m.Type, err)
		}
		start := "subscribe"
		if protocol == "graphql-ws" {
			start = "start"
		}
		wsSend(t, conn, map[string]any{"id": "1", "type": start, "payload": map[string]any{"query": query, "variables": map[string]any{"ns": ns}}})
		// Read all along, as a client does (which also answers pings).
		events := make(chan wsMessage, 16)
		failed := make(chan error, 1)
		go func() {
			for {
				m, err := wsRead(conn) // well within its 10 s: the idle spell is 3 s
				if err != nil {
					failed <- err
					return
				}
				events <- m
			}
		}()
		time.Sleep(3 * time.Second)
		makePod(t, c, ns, pod)
		deadline := time.After(20 * time.Second)
		for {
			select {
			case m := <-events:
				if m.ID == "1" && strings.Contains(string(m.Payload), `"`+pod+`"`) {
					return nil
				}
			case err := <-failed:
				return err
			case <-deadline:
				return errors.New("no event for the new pod")
			}
		}
	}
	for _, protocol := range []string{"graphql-transport-ws", "graphql-ws"} {
		t.Run(protocol, func(t *testing.T) {
			if err := run(t, protocol, 300*time.Millisecond, "ka-"+protocol); err != nil {
				t.Errorf("after 3 s idle behind a proxy that cuts at 1 s: %v", err)
			}
		})
	}
	t.Run("pings too far apart", func(t *testing.T) {
		if err := run(t, "graphql-transport-ws", time.Hour, "ka-control"); err == nil {
			t.Error("the proxy did not cut a socket idle for 3 s: the test above proves nothing")
		}
	})
}
