package api

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	coderws "github.com/coder/websocket"
	"github.com/vektah/gqlparser/v2/ast"
	"go.opentelemetry.io/otel/trace"

	"github.com/clustergraph/clustergraph/alerting"
	"github.com/clustergraph/clustergraph/audit"
	"github.com/clustergraph/clustergraph/auth"
	"github.com/clustergraph/clustergraph/db"
	"github.com/clustergraph/clustergraph/errkind"
	"github.com/clustergraph/clustergraph/graph"
	"github.com/clustergraph/clustergraph/graphiql"
	"github.com/clustergraph/clustergraph/k8s"
	"github.com/clustergraph/clustergraph/loaders"
	"github.com/clustergraph/clustergraph/reqlog"
	"github.com/clustergraph/clustergraph/resolvers"
	"github.com/clustergraph/clustergraph/terminal"
	"github.com/clustergraph/clustergraph/tracing"
)

// Config configures the HTTP edge.
type Config struct {
	Registry *k8s.Registry
	// Authenticator checks bearer tokens. Nil switches authentication off:
	// every request then reads as clustergraph itself (local demo only).
	Authenticator *auth.Authenticator
	// MaxPage bounds first/limit on lists (default 100).
	MaxPage int
	// MaxBodyBytes bounds a request body (default 1 MiB).
	MaxBodyBytes int64
	// Loaders tunes the per-operation dataloaders.
	Loaders loaders.Config
	// Limits bound request size and cost.
	Limits Limits
	// TokenRecheck is how often a websocket's token is checked again
	// (default 30 s); the socket closes once it is refused.
	TokenRecheck time.Duration
	// AllowedOrigins are the browser origins (host patterns such as
	// "console.example.com" or "https://*.example.com") that may open a
	// websocket besides the server's own; cross-origin is denied by default.
	AllowedOrigins []string
	// VersionsConfigMap names the ConfigMap of component versions in each
	// cluster, "namespace/name".
	VersionsConfigMap string
	// Terminal bounds terminal sessions.
	Terminal terminal.Limits
	// Audit records mutations and terminal sessions (default: discarded).
	Audit *audit.Log
	// AuthzFallback is what a read does when the RBAC access set refuses
	// it: AuthzFallbackNone (the default) refuses, AuthzFallbackSAR asks the
	// cluster's authorizer with a SubjectAccessReview (batched per
	// operation, cached briefly), for clusters that authorize with a webhook
	// besides RBAC.
	AuthzFallback string
	// PersistedQueries, when set, is the allowlist of operations the server
	// runs (sha256 hex of the exact text → text; see
	// LoadPersistedQueries): by hash (the APQ extension) or by exact text.
	// Everything else is refused before it is parsed, and clients cannot
	// register new queries.
	PersistedQueries map[string]string
	// NoIntrospection turns schema introspection (and field suggestions in
	// errors) off, for production deployments that do not serve GraphiQL.
	NoIntrospection bool
	// DB stores metering, alerts and archived events; nil runs without.
	DB *db.Handle
	// Alerts streams alert changes to subscriptions; run its Run loop.
	Alerts *alerting.Hub
	// AlertAuth is what POST /alert accepts.
	AlertAuth AlertAuth
	// Draining is closed when the server starts shutting down: /readyz
	// answers 503 from then on (so load balancers stop sending new
	// clients), and websockets, once closed, close with 1001 (going away)
	// so clients reconnect elsewhere.
	Draining <-chan struct{}
	// OpenSockets, when set, counts open websockets (to wait for them at
	// shutdown).
	OpenSockets *sync.WaitGroup
	// Shell configures cluster shells and their proxy (/shell-proxy/);
	// nil switches them off.
	Shell  *terminal.ShellConfig
	Logger *slog.Logger
}

// AlertAuth holds the credentials of POST /alert: a bearer token, or basic
// auth as "user:password". With neither, the endpoint refuses everything
// (unless authentication is switched off for a demo).
type AlertAuth struct {
	Token, BasicAuth string
}

// The values of Config.AuthzFallback.
const (
	AuthzFallbackNone = "none"
	AuthzFallbackSAR  = "sar"
)

// NewHandler returns the server's whole HTTP surface:
//
//	/query    GraphQL over POST, GET and websocket (graphql-transport-ws)
//	/healthz  liveness: the process serves HTTP
//	/readyz   readiness: every cluster finished its first connection attempt
//	/alert    Alertmanager's webhook (and the hypercloud alert list)
//	/metrics  Prometheus, to this host or a caller with a token (and on --metrics-listen)
//	/         GraphiQL
func NewHandler(cfg Config) http.Handler {
	if cfg.MaxPage <= 0 {
		cfg.MaxPage = 100
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.Loaders.MaxBatch <= 0 {
		cfg.Loaders = loaders.DefaultConfig
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Limits.defaults()
	if cfg.TokenRecheck <= 0 {
		cfg.TokenRecheck = 30 * time.Second
	}
	if cfg.Audit == nil {
		cfg.Audit = audit.Discard
	}
	cfg.Loaders.Store, cfg.Loaders.Registry = cfg.DB, cfg.Registry
	if cfg.Alerts == nil {
		cfg.Alerts = alerting.NewHub(cfg.DB.Store, 0, cfg.Logger)
	}
	mux := http.NewServeMux()
	if cfg.Shell != nil {
		if cfg.Shell.Tokens == nil {
			cfg.Shell.Tokens = terminal.NewShellTokens()
		}
		mux.Handle("/shell-proxy/", shellProxy(cfg.Registry, cfg.Shell.Tokens))
	}
	mux.Handle("/alert", &alerting.Receiver{
		Store: cfg.DB.Store, Hub: cfg.Alerts, Token: cfg.AlertAuth.Token, BasicAuth: cfg.AlertAuth.BasicAuth,
		Insecure: cfg.Authenticator == nil, MaxBody: cfg.MaxBodyBytes, DefaultCluster: onlyCluster(cfg.Registry), Log: cfg.Logger,
	})
	mux.Handle("/query", withCORS(cfg.AllowedOrigins, limitBody(cfg.MaxBodyBytes, cfg.Logger, authenticate(cfg.Authenticator, perUser(cfg.Limits.PerUserConcurrency, checkBody(cfg.Logger, graphQL(cfg)))))))
	if cfg.NoIntrospection {
		mux.Handle("/schema.graphql", http.NotFoundHandler())
	} else {
		mux.Handle("/schema.graphql", withCORS(cfg.AllowedOrigins, authenticate(cfg.Authenticator, schemaSDL())))
	}
	mux.Handle("/metrics", metricsHandler(cfg.Authenticator))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.Handle("/readyz", readyz(cfg.Registry, cfg.Authenticator, cfg.Draining))
	mux.Handle("/", graphiql.Handler("clustergraph", "/query", "/query"))
	var h http.Handler = mux
	if cfg.Authenticator == nil {
		h = localHostOnly(h)
	}
	return tracing.Handler(requestID(h))
}

// requestID gives every request an id, the client's X-Request-Id when it
// sends a valid one, else a new one: returned in the same header and
// added to every line logged for the request (see reqlog).
func requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(reqlog.Header)
		if !reqlog.ValidID(id) {
			id = reqlog.NewID()
		}
		w.Header().Set(reqlog.Header, id)
		next.ServeHTTP(w, r.WithContext(reqlog.WithID(r.Context(), id)))
	})
}

// localHostOnly serves requests addressed to this host by a loopback name
// only. Without authentication (a local demo) any web page the user opens
// could otherwise reach the server through a DNS name rebound to 127.0.0.1
// and act with clustergraph's own credentials. The shell proxy carries its
// own token and is addressed by pods, so it is left out.
func localHostOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/shell-proxy/") && !isLocalHost(r.Host) {
			writeError(w, http.StatusForbidden, errkind.CodeForbidden, "authentication is off (--insecure-disable-auth): only requests addressed to localhost or a loopback address are served")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// isLocalHost reports whether a Host header names this host by a loopback
// name or address.
func isLocalHost(hostport string) bool {
	host := strings.ToLower(strings.TrimSuffix(hostOf(hostport), "."))
	return host == "localhost" || strings.HasSuffix(host, ".localhost") || isLoopback(host)
}

func graphQL(cfg Config) http.Handler {
	srv := handler.New(graph.NewExecutableSchema(graph.Config{Resolvers: &resolvers.Resolver{Registry: cfg.Registry, MaxPage: cfg.MaxPage, Terminals: terminal.NewRegistry(cfg.Terminal), Audit: cfg.Audit, VersionsConfigMap: cfg.VersionsConfigMap, Records: loaders.NewRecords(cfg.DB, cfg.Alerts), Shell: cfg.Shell}}))
	// Browsers may open a websocket from the server's own origin and from
	// AllowedOrigins only (cross-site websocket hijacking, CVE-2019-13209);
	// an Origin of "null" is refused.
	srv.AddTransport(transport.Websocket{
		Implementation: guardedWebsockets{
			inner: wsImplementation{
				accept:       coderws.AcceptOptions{OriginPatterns: cfg.AllowedOrigins},
				writeTimeout: cfg.Limits.SocketWriteTimeout,
				pingInterval: cfg.Limits.SocketPingInterval,
				pongTimeout:  cfg.Limits.SocketPongTimeout,
			},
			max:      cfg.Limits.MaxSubscriptions,
			draining: cfg.Draining,
			open:     cfg.OpenSockets,
		},
		// graphql-ws's "ka" (and graphql-transport-ws's "pong") messages,
		// at the ping interval: clients that watch for them see a live
		// socket, as proxies see the ping frames (see wsImplementation).
		KeepAlivePingInterval: cfg.Limits.SocketPingInterval,
		InitFunc:              wsInit(cfg.Authenticator, cfg.TokenRecheck),
		InitTimeout:           10 * time.Second,
	})
	srv.AddTransport(transport.Options{})
	srv.AddTransport(transport.GET{})
	srv.AddTransport(transport.POST{})
	srv.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	if !cfg.NoIntrospection {
		srv.Use(extension.Introspection{})
	}
	srv.SetDisableSuggestion(cfg.NoIntrospection)
	srv.SetParserTokenLimit(cfg.Limits.MaxTokens)
	srv.Use(queryLimits{maxDepth: cfg.Limits.MaxDepth, maxComplexity: cfg.Limits.MaxComplexity, defaultPage: cfg.MaxPage})
	if cfg.PersistedQueries != nil {
		srv.Use(persistedOnly{queries: cfg.PersistedQueries})
	} else {
		srv.Use(noDocuments{})
		srv.Use(extension.AutomaticPersistedQuery{Cache: lru.New[string](100)})
	}
	srv.Use(newOperationMetrics(cfg.PersistedQueries))
	srv.SetErrorPresenter(presenter(cfg.Logger))
	srv.SetRecoverFunc(func(ctx context.Context, p any) error {
		cfg.Logger.ErrorContext(ctx, "panic in resolver", "panic", p, "stack", string(debug.Stack()))
		return fmt.Errorf("panic: %v", p)
	})
	// Loaders live for one operation, so a websocket connection gets fresh
	// ones per operation and never serves memoized stale data.
	// Every mutation is audited here, by one middleware (see
	// resolvers.AuditMutations), not by each resolver.
	srv.AroundFields(resolvers.AuditMutations(cfg.Audit))
	srv.AroundOperations(func(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
		oc := graphql.GetOperationContext(ctx)
		var span trace.Span
		if oc.Operation != nil {
			// Every line logged for the operation names it (see reqlog).
			if oc.Operation.Name != "" {
				ctx = reqlog.WithOperation(ctx, oc.Operation.Name)
			}
			cfg.Logger.DebugContext(ctx, "operation", "type", string(oc.Operation.Operation))
			ctx, span = operationSpan(ctx, oc)
		}
		l := loaders.New(cfg.Loaders)
		ctx = loaders.With(ctx, l)
		if cfg.AuthzFallback == AuthzFallbackSAR {
			ctx = k8s.WithReviewer(ctx, l)
		}
		respond := next(ctx)
		if span == nil {
			return respond
		}
		return endSpanWith(span, oc, respond)
	})
	// Websockets are counted from their upgrade on, per client address
	// until authenticated, then per user (see socketCaps).
	return newSocketCaps(cfg.Limits).admit(srv)
}

// limitBody rejects bodies over maxBytes with a GraphQL-shaped 413.
func limitBody(maxBytes int64, log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > maxBytes {
			refuseBody(log, w, r, http.StatusRequestEntityTooLarge, r.ContentLength,
				fmt.Sprintf("request body of %d bytes is over the limit of %d bytes", r.ContentLength, maxBytes))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBytes)
		next.ServeHTTP(w, r)
	})
}

// mayReadDetail reports whether a request comes from this host (the
// loopback interface), runs without authentication (a local demo), or
// carries a token the identity cluster accepts.
func mayReadDetail(r *http.Request, authn *auth.Authenticator) bool {
	if authn == nil || isLoopback(r.RemoteAddr) {
		return true
	}
	_, err := bearer(r.Context(), authn, r.Header.Get("Authorization"))
	return err == nil
}

// isLoopback reports whether an address (with or without a port) is a
// loopback IP.
func isLoopback(addr string) bool {
	ip := net.ParseIP(hostOf(addr))
	return ip != nil && ip.IsLoopback()
}

// onlyCluster names the cluster of alerts without a cluster label: the only
// cluster, when there is exactly one.
func onlyCluster(reg *k8s.Registry) func() string {
	return func() string {
		if cs := reg.Clusters(); len(cs) == 1 {
			return cs[0].Name
		}
		return ""
	}
}

// readyz reports 200 once no cluster is still on its first sync; an
// unreachable or partially synced cluster does not hold readiness back,
// and a cluster's first sync is bounded (RegistryConfig.SyncDeadline).
// Once ready it stays so: a cluster added later (a kubeconfig reload)
// syncs while the others are served, and never takes the server out of
// its Service. From the start of a shutdown (draining closed) it reports
// 503 with "shuttingDown". Each cluster's state (which names the
// clusters) is told only to a caller on the same host or with an accepted
// token: probes need only the status code.
func readyz(reg *k8s.Registry, authn *auth.Authenticator, draining <-chan struct{}) http.Handler {
	var once atomic.Bool // the first sync of the clusters at start is over
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		states := map[string]k8s.State{}
		ready, shuttingDown := true, isClosed(draining)
		for _, c := range reg.Clusters() {
			s := c.Status().State
			states[c.Name] = s
			if s == k8s.StateSyncing {
				ready = false
			}
		}
		if ready {
			once.Store(true)
		}
		ready = once.Load()
		ready = ready && !shuttingDown
		w.Header().Set("Content-Type", "application/json")
		if !ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		body := map[string]any{"ready": ready}
		if shuttingDown {
			body["shuttingDown"] = true
		}
		if mayReadDetail(r, authn) {
			body["clusters"] = states
		}
		_ = json.NewEncoder(w).Encode(body)
	})
}

// isClosed reports whether ch is closed; a nil channel never is.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
