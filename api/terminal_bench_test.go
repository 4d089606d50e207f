package api_test

import (
	"context"
	"encoding/json"
	"io"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"

	"github.com/clustergraph/clustergraph/internal/testenv"
)

// BenchmarkLiveTerminalKeystroke: the round trip of one keystroke through
// `cat` in the benchmark pod's container (kwok runs it on this machine,
// through the apiserver's exec), from sending it to reading its echo, one
// keystroke at a time: through clustergraph (the terminal subscription and
// terminalInput mutations on the same websocket), through client-go's
// remotecommand WebSocket executor (what clustergraph itself uses towards
// the apiserver), and through `kubectl exec -i`.
func BenchmarkLiveTerminalKeystroke(b *testing.B) {
	l := newLiveBed(b)
	b.Run("clustergraph", func(b *testing.B) {
		c := initWS(b, l.s, l.token)
		defer c.CloseNow()
		started, echoes := make(chan string, 1), make(chan int, 64)
		var inputErrors atomic.Int64
		go func() {
			for {
				_, data, err := c.Read(context.Background())
				if err != nil {
					return
				}
				var m struct {
					ID, Type string
					Payload  struct {
						Data struct {
							Terminal struct{ Session, Type, Data string }
						}
						Errors []gqlError
					}
				}
				if json.Unmarshal(data, &m) != nil || m.Type == "ping" || m.Type == "pong" || m.Type == "complete" {
					continue
				}
				if m.ID != "t" {
					if len(m.Payload.Errors) > 0 || m.Type == "error" {
						inputErrors.Add(1)
					}
					continue
				}
				switch f := m.Payload.Data.Terminal; f.Type {
				case "STARTED":
					started <- f.Session
				case "STDOUT":
					echoes <- len(f.Data)
				default:
					close(echoes)
					return
				}
			}
		}()
		wsSend(b, c, map[string]any{"id": "t", "type": "subscribe", "payload": map[string]any{
			"query": `subscription($c: String!, $ns: String!, $p: String!) {
				terminal(cluster: $c, namespace: $ns, pod: $p, tty: false, command: ["cat"]) { session type data } }`,
			"variables": map[string]any{"c": l.c.Context, "ns": liveNS, "p": livePod},
		}})
		var session string
		select {
		case session = <-started:
		case <-time.After(30 * time.Second):
			b.Fatal("the terminal did not start within 30s")
		}
		i := 0
		keystrokes(b, echoes, func() {
			i++
			wsSend(b, c, map[string]any{"id": "in" + strconv.Itoa(i), "type": "subscribe", "payload": map[string]any{
				"query":     `mutation($s: ID!, $d: String!) { terminalInput(session: $s, data: $d) }`,
				"variables": map[string]any{"s": session, "d": "x"},
			}})
		})
		if n := inputErrors.Load(); n > 0 {
			b.Errorf("%d terminalInput mutations failed", n)
		}
	})
	b.Run("client-go", func(b *testing.B) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req := l.c.Client.CoreV1().RESTClient().Post().Resource("pods").Namespace(liveNS).Name(livePod).SubResource("exec").
			VersionedParams(&corev1.PodExecOptions{Container: "app", Command: []string{"cat"}, Stdin: true, Stdout: true, Stderr: true}, scheme.ParameterCodec)
		exec, err := remotecommand.NewWebSocketExecutor(l.c.Config, "GET", req.URL().String())
		if err != nil {
			b.Fatal(err)
		}
		stdin, typed := io.Pipe()
		defer typed.Close()
		echoes := make(chan int, 64)
		go func() {
			defer close(echoes)
			_ = exec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: stdin, Stdout: echoWriter(echoes), Stderr: io.Discard})
		}()
		keystrokes(b, echoes, func() {
			if _, err := typed.Write([]byte("x")); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("kubectl", func(b *testing.B) {
		cmd := testenv.KubectlCommand(b, l.c, "exec", "-i", "-n", liveNS, livePod, "-c", "app", "--", "cat")
		typed, err := cmd.StdinPipe()
		if err != nil {
			b.Fatal(err)
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
		echoes := make(chan int, 64)
		go func() {
			defer close(echoes)
			_, _ = io.Copy(echoWriter(echoes), out)
		}()
		keystrokes(b, echoes, func() {
			if _, err := typed.Write([]byte("x")); err != nil {
				b.Fatal(err)
			}
		})
	})
}

// echoWriter counts the bytes written to it onto a channel.
type echoWriter chan<- int

func (e echoWriter) Write(p []byte) (int, error) {
	e <- len(p)
	return len(p), nil
}

// keystrokes types one byte per loop and waits for its echo, then reports
// the round trips' p50, p99 and max (ns/op is their mean).
func keystrokes(b *testing.B, echoes <-chan int, type1 func()) {
	b.Helper()
	roundTrip := func() time.Duration {
		t0 := time.Now()
		type1()
		select {
		case _, ok := <-echoes:
			if !ok {
				b.Fatal("the session ended")
			}
		case <-time.After(10 * time.Second):
			b.Fatal("no echo within 10s")
		}
		return time.Since(t0)
	}
	// The first keystroke waits for the session to connect; it is not one
	// of the samples.
	roundTrip()
	var d []time.Duration
	for b.Loop() {
		d = append(d, roundTrip())
	}
	reportLatencies(b, d)
}
