package api_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/clustergraph/clustergraph/api"
	"github.com/clustergraph/clustergraph/internal/testenv"
	"github.com/clustergraph/clustergraph/reqlog"
)

// TestRequestIDInLogs: every response carries an X-Request-Id (the
// client's when valid), and the JSON lines logged for the request carry
// it and the operation's name, never the request's variables.
func TestRequestIDInLogs(t *testing.T) {
	cs := testenv.Clusters(t)
	var buf syncBuffer
	s := startServerWith(t, serverOpts{kubeconfigs: kubeconfigs(cs[:1]), waitReady: true}, func(cfg *api.Config) {
		cfg.Logger = slog.New(reqlog.Handler{Handler: slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})})
	})
	// post sends body with the X-Request-Id id and returns the id answered.
	post := func(id, body string) string {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, s.URL+"/query", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if id != "" {
			req.Header.Set(reqlog.Header, id)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.Header.Get(reqlog.Header)
	}
	secret := "cg-leak-marker-reqlog"
	if got := post("trace-1", `{"query":"query ClusterNames($x: String!) { cluster(name: $x) { name } }","variables":{"x":"`+secret+`"}}`); got != "trace-1" {
		t.Errorf("X-Request-Id %q, want the client's trace-1", got)
	}
	if got := post("bad id;x", `{"query":`); !reqlog.ValidID(got) || got == "bad id;x" {
		t.Errorf("X-Request-Id %q for an invalid client id, want a new one", got)
	}
	lines := map[string]map[string]any{}
	for _, line := range bytes.Split(bytes.TrimSpace([]byte(buf.String())), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("not a JSON line: %s", line)
		}
		if msg, _ := m["msg"].(string); msg == "operation" || msg == "refused request body" {
			lines[msg] = m
		}
	}
	if op := lines["operation"]; op["request"] != "trace-1" || op["operation"] != "ClusterNames" || op["type"] != "query" {
		t.Errorf("the operation's line: %v, want request trace-1, operation ClusterNames, type query", op)
	}
	if ref := lines["refused request body"]; ref["request"] == nil || ref["request"] == "bad id;x" {
		t.Errorf("the refused body's line: %v, want the new request id", ref)
	}
	if strings.Contains(buf.String(), secret) {
		t.Errorf("a variable's value reached the log")
	}
}
