package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
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
	cs := testenv.Clusters(t)
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	debugAddr := free.Addr().String()
	free.Close()
	cfg, err := parseConfig([]string{"--kubeconfig", cs[0].Kubeconfig, "--listen", "127.0.0.1:0", "--insecure-disable-auth",
		"--data-dir", t.TempDir(), "--leader-elect=false", "--audit-log", filepath.Join(t.TempDir(), "audit.log"),
		"--debug-listen", debugAddr}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
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
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("not ready within a minute")
		}
		time.Sleep(100 * time.Millisecond)
	}
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
