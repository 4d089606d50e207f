package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/clustergraph/clustergraph/internal/testenv"
)

// TestServeAndShutdown runs the server as main wires it (configuration,
// SQLite storage, alert hub, collectors, HTTP) on the first test cluster,
// then shuts it down: a running subscription's socket closes with 1001
// (going away), so a console reconnects, and serve returns.
func TestServeAndShutdown(t *testing.T) {
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	debugAddr := free.Addr().String()
	free.Close()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	base, done := startServe(t, ctx, "--debug-listen", debugAddr)
	// Profiles are served on the debug address only, never on the API's.
	get := func(url string) (int, string) {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("http://" + debugAddr + "/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("debug address: %d %.200s", code, body)
	}
	if code, body := get(base + "/debug/pprof/goroutine?debug=1"); code == 200 && strings.Contains(body, "goroutine profile") {
		t.Errorf("the API address serves profiles")
	}
	// Storage is wired: an alert is stored (demo mode needs no credentials).
	resp, err := http.Post(base+"/alert", "application/json", strings.NewReader(`[{"alert": "Wired", "namespace": "default"}]`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("POST /alert: %v %v", resp, err)
	}
	resp.Body.Close()

	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/query", &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		t.Fatal(err)
	}
	send := func(v any) {
		b, _ := json.Marshal(v)
		if err := c.Write(ctx, websocket.MessageText, b); err != nil {
			t.Fatal(err)
		}
	}
	read := func() (map[string]any, error) {
		_, b, err := c.Read(context.Background())
		if err != nil {
			return nil, err
		}
		var m map[string]any
		return m, json.Unmarshal(b, &m)
	}
	send(map[string]any{"type": "connection_init", "payload": map[string]any{}})
	if m, err := read(); err != nil || m["type"] != "connection_ack" {
		t.Fatalf("init: %v %v", m, err)
	}
	send(map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": `subscription { watch(kind: "Namespace") { type } }`}})
	if m, err := read(); err != nil || m["type"] != "next" {
		t.Fatalf("first event: %v %v", m, err)
	}

	stop()
	var closeErr error
	for closeErr == nil {
		_, closeErr = read()
	}
	if code := websocket.CloseStatus(closeErr); code != websocket.StatusGoingAway {
		t.Errorf("socket closed with %v (%v), want 1001 going away", code, closeErr)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve returned %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Error("serve did not return within 30s of the shutdown")
	}
}

// startServe runs serve as main does on the first test cluster (demo mode,
// SQLite in a temporary directory) until ctx ends, and waits until it is
// ready. It returns the server's base URL and serve's result.
func startServe(t *testing.T, ctx context.Context, args ...string) (string, <-chan error) {
	t.Helper()
	cs := testenv.Clusters(t)
	cfg, err := parseConfig(append([]string{"--kubeconfig", cs[0].Kubeconfig, "--listen", "127.0.0.1:0", "--insecure-disable-auth",
		"--data-dir", t.TempDir(), "--leader-elect=false", "--audit-log", filepath.Join(t.TempDir(), "audit.log")}, args...),
		func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	addrs := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), func(a net.Addr) { addrs <- a })
	}()
	var base string
	select {
	case a := <-addrs:
		base = "http://" + a.String()
	case err := <-done:
		t.Fatalf("serve: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("the server did not listen within a minute")
	}
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return base, done
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("not ready within a minute")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestGracefulShutdown: on shutdown /readyz turns 503 at once while
// requests are still served (the delay), then the listener closes, a
// request in flight (its body half sent) still gets its answer, and only
// after it do websockets close, with 1001.
func TestGracefulShutdown(t *testing.T) {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	base, done := startServe(t, ctx, "--shutdown-delay", "2s", "--shutdown-grace", "30s")
	host := strings.TrimPrefix(base, "http://")

	ws, _, err := websocket.Dial(ctx, "ws://"+host+"/query", &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{`{"type":"connection_init","payload":{}}`, `{"id":"1","type":"subscribe","payload":{"query":"subscription { watch(kind: \"Namespace\") { type } }"}}`} {
		if err := ws.Write(ctx, websocket.MessageText, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	// The socket's end: it must come after the in-flight request's answer.
	events := make(chan string, 1)
	go func() {
		for {
			if _, _, err := ws.Read(context.Background()); err != nil {
				events <- fmt.Sprintf("socket closed %d", websocket.CloseStatus(err))
				return
			}
		}
	}()

	// A request in flight: headers and half its body sent.
	body := `{"query":"{ clusters { name } }"}`
	inflight, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer inflight.Close()
	fmt.Fprintf(inflight, "POST /query HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", host, len(body), body[:10])

	stop()
	eventually(t, 2*time.Second, "/readyz to answer 503 with shuttingDown", func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == 503 && strings.Contains(string(b), `"shuttingDown":true`)
	})
	// During the delay new requests are still served.
	if resp, err := http.Post(base+"/query", "application/json", strings.NewReader(body)); err != nil || resp.StatusCode != 200 {
		t.Errorf("a request during the shutdown delay: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	eventually(t, 10*time.Second, "the listener to close", func() bool {
		c, err := net.DialTimeout("tcp", host, time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	select {
	case e := <-events:
		t.Fatalf("%s before the request in flight was answered", e)
	default:
	}
	if _, err := io.WriteString(inflight, body[10:]); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(inflight), nil)
	if err != nil {
		t.Fatalf("the request in flight got no answer: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"clusters"`) {
		t.Errorf("the request in flight: %d %s", resp.StatusCode, b)
	}
	var closed string
	select {
	case closed = <-events:
	case <-time.After(30 * time.Second):
		t.Fatal("the websocket did not close")
	}
	if closed != "socket closed 1001" {
		t.Errorf("%s, want 1001 (going away)", closed)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve returned %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Error("serve did not return within 30s of the shutdown")
	}
}

// eventually polls cond until it holds, failing the test after timeout.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
	}
}

// TestConfigRefusesBadValues: flags with values the server cannot use stop
// it at start with a message naming the flag.
func TestConfigRefusesBadValues(t *testing.T) {
	noEnv := func(string) string { return "" }
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--traffic-source", "prometheus"}, "-traffic-source"},
		{[]string{"--metering-interval", "10ms"}, "-metering-interval"},
		{[]string{"--retention-samples", "1h"}, "-retention-samples"},
		{[]string{"--alert-basic-auth", "nopassword"}, "-alert-basic-auth"},
		{[]string{"--log-format", "xml"}, "-log-format"},
	} {
		_, err := parseConfig(c.args, noEnv)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err %v, want one naming %s", c.args, err, c.want)
		}
	}
	cfg, err := parseConfig([]string{"--traffic-source", "kubelet", "--traffic-path", "/metrics/nodes/{node}/metrics/cadvisor"}, noEnv)
	if err != nil || cfg.storage.trafficSource != "kubelet" || cfg.storage.trafficPath != "/metrics/nodes/{node}/metrics/cadvisor" {
		t.Errorf("kubelet source: %+v, %v", cfg.storage, err)
	}
}

// TestVersionFlag: --version is parsed, and the version line names the
// release, the commit and the Go version.
func TestVersionFlag(t *testing.T) {
	cfg, err := parseConfig([]string{"--version"}, func(string) string { return "" })
	if err != nil || !cfg.showVersion {
		t.Fatalf("--version: %+v, %v", cfg.showVersion, err)
	}
	v := versionString()
	if !strings.HasPrefix(v, "clustergraph "+version+" (commit ") || !strings.Contains(v, "go1.") {
		t.Errorf("version line %q", v)
	}
}

// TestDataDirMustBeWritable: storage on a data dir that cannot be written
// (a read-only root filesystem in a container; here a path under a file)
// stops the server at once with an error naming the flags that fix it,
// instead of failing later at the first write; --database=none needs no
// data dir.
func TestDataDirMustBeWritable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	ctx := context.Background()
	for _, dsn := range []string{"", "mysql://u:p@tcp(127.0.0.1:1)/db"} {
		h, err := openStorage(ctx, storageConfig{dsn: dsn, dataDir: filepath.Join(file, "data")}, log)
		if err == nil {
			h.Close()
			t.Fatalf("database %q: a data dir under a file was accepted", dsn)
		}
		if msg := err.Error(); !strings.Contains(msg, "-data-dir") || !strings.Contains(msg, "--database=none") {
			t.Errorf("database %q: %q should name --data-dir and --database=none", dsn, msg)
		}
	}
	if h, err := openStorage(ctx, storageConfig{dsn: "none", dataDir: filepath.Join(file, "data")}, log); h != nil || err != nil {
		t.Errorf("--database=none: %v, %v; want no store and no error", h, err)
	}
	dir := filepath.Join(t.TempDir(), "new", "data")
	h, err := openStorage(ctx, storageConfig{dataDir: dir}, log)
	if err != nil {
		t.Fatal(err)
	}
	h.Close()
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Contains(names, "clustergraph.db") || slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, ".write-check-") }) {
		t.Errorf("data dir holds %v, want the database and nothing the write check left", names)
	}
}

// TestConfigSources: the command line overrides the environment, which
// overrides the config file; a value that does not parse names its
// source.
func TestConfigSources(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "clustergraph.yaml")
	if err := os.WriteFile(file, []byte("listen: 0.0.0.0:9000\nmax-page: 50\nallowed-origins: [a.example.com, b.example.com]\nkubeconfig: [/k/one, /k/two]\nleader-elect: false\nmetering-interval: 2m\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(vars map[string]string) func(string) string {
		return func(k string) string { return vars[k] }
	}
	cfg, err := parseConfig([]string{"--config", file}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.listen != "0.0.0.0:9000" || cfg.maxPage != 50 || !slices.Equal(cfg.origins, []string{"a.example.com", "b.example.com"}) ||
		!slices.Equal(cfg.kubeconfigs, []string{"/k/one", "/k/two"}) || cfg.storage.leaderElect || cfg.storage.meterEvery != 2*time.Minute {
		t.Errorf("from the file: %+v", cfg)
	}
	cfg, err = parseConfig([]string{"--max-page", "7"}, env(map[string]string{"CLUSTERGRAPH_CONFIG": file, "CLUSTERGRAPH_LISTEN": "127.0.0.1:1", "CLUSTERGRAPH_MAX_PAGE": "9"}))
	if err != nil || cfg.listen != "127.0.0.1:1" || cfg.maxPage != 7 {
		t.Errorf("precedence: listen %q (want the environment's), max-page %d (want the flag's), %v", cfg.listen, cfg.maxPage, err)
	}
	for _, c := range []struct {
		env  map[string]string
		file string
		want string
	}{
		{map[string]string{"CLUSTERGRAPH_MAX_PAGE": "ten"}, "", `CLUSTERGRAPH_MAX_PAGE="ten"`},
		{map[string]string{"CLUSTERGRAPH_METERING_INTERVAL": "5 minutes"}, "", "CLUSTERGRAPH_METERING_INTERVAL"},
		{map[string]string{"CLUSTERGRAPH_IN_CLUSTER": "yes"}, "", "CLUSTERGRAPH_IN_CLUSTER"},
		{nil, "lissen: x\n", `unknown key "lissen"`},
		{nil, "max-page: many\n", "key max-page"},
		{nil, "listen: {host: x}\n", "key listen"},
		{nil, "listen: [unclosed\n", "clustergraph.yaml"},
	} {
		vars := c.env
		if c.file != "" {
			if err := os.WriteFile(file, []byte(c.file), 0o600); err != nil {
				t.Fatal(err)
			}
			vars = map[string]string{"CLUSTERGRAPH_CONFIG": file}
		}
		if _, err := parseConfig(nil, env(vars)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v %q: %v, want an error naming %s", c.env, c.file, err, c.want)
		}
	}
}
