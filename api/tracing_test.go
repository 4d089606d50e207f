package api_test

import (
	"net/http"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/clustergraph/clustergraph/internal/testenv"
	"github.com/clustergraph/clustergraph/tracing"
)

// TestTraces: with a tracer provider installed (here the SDK's in-memory
// recorder; in a deployment the OTLP exporter OTEL_* configures), a
// request carrying W3C trace context gets a server span in the caller's
// trace, an operation span under it with the operation's name, type and
// cost, and under that the token review, the apiserver requests and the
// SQL statements the operation made. Nothing of the request's variables
// is recorded.
func TestTraces(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	tracing.Install(tp)
	t.Cleanup(func() { tracing.Install(noop.NewTracerProvider()) })

	cs := testenv.Clusters(t)
	u := makeUser(t, cs[:1], "cg-traced", func(c testenv.Cluster, user string) { clusterBinding(t, c, "cg-traced", "view", user) })
	s := startServer(t, serverOpts{kubeconfigs: kubeconfigs(cs[:1]), waitReady: true, auth: true, db: sqlite(t)})

	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	secret := "cg-leak-marker-traced"
	body := `{"query":"query Traced($ns: String!, $x: String) { resources(group: \"\", version: \"v1\", resource: \"configmaps\", filter: {namespace: $ns, name: $x}) { totalCount } alerts(first: 1) { totalCount } }","variables":{"ns":"shop","x":"` + secret + `"}}`
	req, err := http.NewRequest(http.MethodPost, s.URL+"/query", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+u.token)
	req.Header.Set("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if err := tp.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}

	var op sdktrace.ReadOnlySpan
	byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	var ours []sdktrace.ReadOnlySpan
	for _, sp := range rec.Ended() {
		if sp.SpanContext().TraceID().String() != traceID {
			continue
		}
		ours = append(ours, sp)
		byID[sp.SpanContext().SpanID()] = sp
		if sp.Name() == "graphql.query Traced" {
			op = sp
		}
	}
	if op == nil {
		t.Fatalf("no operation span in the caller's trace among %d spans: %v", len(ours), names(ours))
	}
	attrs := map[string]string{}
	for _, kv := range op.Attributes() {
		attrs[string(kv.Key)] = kv.Value.String()
	}
	if attrs["graphql.operation.name"] != "Traced" || attrs["graphql.operation.type"] != "query" || attrs["graphql.operation.complexity"] == "" {
		t.Errorf("operation span attributes %v", attrs)
	}
	if parent, ok := byID[op.Parent().SpanID()]; !ok || !strings.HasPrefix(parent.Name(), "POST /query") {
		t.Errorf("the operation's parent is not the request's server span: %v", op.Parent())
	}
	// Children of the operation, by kind.
	under := func(sp sdktrace.ReadOnlySpan) bool {
		for p := sp.Parent(); p.IsValid(); {
			if p.SpanID() == op.SpanContext().SpanID() {
				return true
			}
			next, ok := byID[p.SpanID()]
			if !ok {
				return false
			}
			p = next.Parent()
		}
		return false
	}
	var apiserver, sql bool
	for _, sp := range ours {
		switch {
		case !under(sp):
		case sp.SpanKind() == trace.SpanKindClient && strings.HasPrefix(sp.Name(), "db "):
			sql = true
		case sp.SpanKind() == trace.SpanKindClient:
			apiserver = true
		}
		for _, kv := range sp.Attributes() {
			if strings.Contains(kv.Value.String(), secret) {
				t.Errorf("span %s records a variable's value in %s", sp.Name(), kv.Key)
			}
		}
	}
	review := false
	for _, sp := range ours {
		review = review || sp.Name() == "auth.TokenReview"
	}
	if !apiserver || !sql || !review {
		t.Errorf("spans: apiserver call %v, SQL %v, token review %v; all: %v", apiserver, sql, review, names(ours))
	}
}

func names(spans []sdktrace.ReadOnlySpan) []string {
	out := make([]string, len(spans))
	for i, sp := range spans {
		out[i] = sp.Name()
	}
	return out
}
