// Package tracing is clustergraph's OpenTelemetry tracing: off unless the
// standard OTEL_* environment turns it on, and then one span per GraphQL
// operation (its name, type and estimated cost), children for the
// apiserver calls it makes (client-go's transport), its SQL statements
// and token reviews, joined to the caller's trace when the request
// carries W3C trace context (traceparent). It imports nothing of the
// project, so every room may start spans with it.
package tracing

import (
	"context"
	"fmt"
	"net/http"

	"strings"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
)

// Name is the instrumentation scope of clustergraph's own spans.
const Name = "github.com/clustergraph/clustergraph"

// Tracer is the tracer clustergraph's own spans come from: the global
// provider's, a no-op until Setup (or a test) installs one.
func Tracer() trace.Tracer { return otel.Tracer(Name) }

// Enabled reports whether the environment asks for traces: an OTLP
// endpoint or OTEL_TRACES_EXPORTER=otlp, and not OTEL_SDK_DISABLED or
// OTEL_TRACES_EXPORTER=none.
func Enabled(getenv func(string) string) bool {
	if strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") {
		return false
	}
	switch strings.ToLower(getenv("OTEL_TRACES_EXPORTER")) {
	case "none":
		return false
	case "otlp":
		return true
	case "":
	default:
		return false // an exporter this build does not have: Setup says so
	}
	return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Setup installs an OTLP/HTTP trace exporter configured by the standard
// environment (OTEL_EXPORTER_OTLP_*, OTEL_SERVICE_NAME,
// OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER[_ARG]) as the global
// provider, with W3C trace context and baggage as the propagators, when
// Enabled; else it does nothing. The returned function flushes and stops
// the exporter.
func Setup(ctx context.Context, getenv func(string) string, version string) (shutdown func(context.Context) error, err error) {
	none := func(context.Context) error { return nil }
	if e := strings.ToLower(getenv("OTEL_TRACES_EXPORTER")); e != "" && e != "otlp" && e != "none" {
		return none, fmt.Errorf("OTEL_TRACES_EXPORTER=%s: this build exports traces over OTLP only (otlp or none)", e)
	}
	if !Enabled(getenv) {
		return none, nil
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return none, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	res, err := resource.New(ctx, resource.WithFromEnv(), resource.WithTelemetrySDK(), resource.WithHost(),
		resource.WithAttributes(semconv.ServiceName(serviceName(getenv)), semconv.ServiceVersion(version)))
	if err != nil {
		return none, fmt.Errorf("trace resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	Install(tp)
	return tp.Shutdown, nil
}

// serviceName is OTEL_SERVICE_NAME, else clustergraph (WithFromEnv would
// also read it; the default must not be the SDK's unknown_service).
func serviceName(getenv func(string) string) string {
	if n := getenv("OTEL_SERVICE_NAME"); n != "" {
		return n
	}
	return "clustergraph"
}

// Install makes tp the global provider, with W3C trace context and
// baggage propagation (tests install an in-memory one).
func Install(tp trace.TracerProvider) {
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
}

// Handler wraps the HTTP edge: a server span per request, continuing the
// caller's trace when the request carries one.
func Handler(next http.Handler) http.Handler {
	return otelhttp.NewHandler(next, "clustergraph", otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
		return r.Method + " " + r.URL.Path
	}))
}

// Transport wraps an apiserver client's transport: a client span per
// request made within a traced operation. Requests outside one (the
// informers' lists and watches, health probes) make no span: they would
// be a root span each, forever.
func Transport(rt http.RoundTripper) http.RoundTripper {
	return otelhttp.NewTransport(rt, otelhttp.WithFilter(func(r *http.Request) bool {
		return trace.SpanContextFromContext(r.Context()).IsValid()
	}))
}

// Start starts a span of clustergraph's tracer as a child of ctx's.
func Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	return Tracer().Start(ctx, name, opts...)
}
