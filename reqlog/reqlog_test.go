package reqlog

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"
)

func TestHandlerAddsTheRequest(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(Handler{slog.NewJSONHandler(&buf, nil)}).With("cluster", "a")
	ctx := WithOperation(WithID(context.Background(), "abc"), "Pods")
	log.InfoContext(ctx, "hello")
	log.Info("no context")
	dec := json.NewDecoder(&buf)
	var first, second map[string]any
	if err := dec.Decode(&first); err != nil {
		t.Fatal(err)
	}
	if err := dec.Decode(&second); err != nil {
		t.Fatal(err)
	}
	if first["request"] != "abc" || first["operation"] != "Pods" || first["cluster"] != "a" {
		t.Errorf("line with a request context: %v", first)
	}
	if _, ok := second["request"]; ok {
		t.Errorf("line without one: %v", second)
	}
	if ID(ctx) != "abc" || ID(context.Background()) != "" {
		t.Errorf("ID: %q", ID(ctx))
	}
}

func TestValidID(t *testing.T) {
	for id, want := range map[string]bool{"abc-123_x.y": true, "": false, "a b": false, "a\nb": false, "é": false, string(make([]byte, 65)): false} {
		if ValidID(id) != want {
			t.Errorf("ValidID(%q) = %v", id, !want)
		}
	}
	if a, b := NewID(), NewID(); a == b || !ValidID(a) || len(a) != 16 {
		t.Errorf("NewID: %q %q", a, b)
	}
}
