package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/clustergraph/clustergraph/metrics"
)

// serveDebug serves Go's profiles (/debug/pprof/...) on addr, a listener of
// its own so they are never reachable through the API's address, until ctx
// ends. Profiles show the process's internals: bind addr to loopback or a
// network only operators reach.
func serveDebug(ctx context.Context, addr string, log *slog.Logger) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return serveAside(ctx, addr, mux, log, "serving profiles", "/debug/pprof/")
}

// serveMetrics serves the Prometheus exposition at /metrics on addr, a
// listener of its own, until ctx ends. It needs no token, so it is never
// the API's address (where the cluster names it carries are told to
// authenticated callers only, see /readyz): expose it only to the
// scraper (a NetworkPolicy, a loopback address).
func serveMetrics(ctx context.Context, addr string, log *slog.Logger) error {
	metrics.ObserveClientGo()
	mux := http.NewServeMux()
	mux.Handle("/metrics", metrics.Handler())
	return serveAside(ctx, addr, mux, log, "serving metrics", "/metrics")
}

// serveAside serves h on a listener of its own at addr until ctx ends,
// logging what it serves at the URL of path.
func serveAside(ctx context.Context, addr string, h http.Handler, log *slog.Logger, what, path string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	log.Info(what, "url", "http://"+ln.Addr().String()+path)
	go func() { _ = srv.Serve(ln) }()
	return nil
}
