// Command clustergraph serves one GraphQL API over the Kubernetes clusters
// of a kubeconfig (and the cluster it runs in). This file only wires: it
// reads configuration, builds the registry and the HTTP handler, serves, and
// shuts down on SIGINT/SIGTERM.
package main

// gqlgen runs from the repository root, where gqlgen.yml's paths are rooted.
//go:generate go tool gqlgen generate

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/signal"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/klog/v2"
	"sigs.k8s.io/yaml"

	"github.com/clustergraph/clustergraph/alerting"
	"github.com/clustergraph/clustergraph/api"
	"github.com/clustergraph/clustergraph/audit"
	"github.com/clustergraph/clustergraph/auth"
	"github.com/clustergraph/clustergraph/db"
	"github.com/clustergraph/clustergraph/k8s"
	"github.com/clustergraph/clustergraph/k8s/lease"
	"github.com/clustergraph/clustergraph/metrics"
	"github.com/clustergraph/clustergraph/reqlog"
	"github.com/clustergraph/clustergraph/terminal"
	"github.com/clustergraph/clustergraph/tracing"
)

// config is everything the server can be told, by flag or environment.
type config struct {
	listen      string
	debugListen string
	kubeconfigs []string
	inCluster   bool
	maxPage     int
	maxBody     int64
	logLevel    string
	logFormat   string
	identity    string
	// fleetWide are the system identities that act in every cluster.
	fleetWide  []string
	noAuth     bool
	origins    []string
	noIntro    bool
	auditPath  string
	versionsCM string
	storage    storageConfig
	shell      terminal.ShellConfig
	limits     api.Limits
	authzFall  string
	persisted  string
	// maxListObjects bounds what one resources() list reads per cluster.
	maxListObjects int
	// cacheSecrets and cacheConfigMaps choose whether those kinds are
	// cached (which needs list and watch on all of them in every cluster).
	cacheSecrets, cacheConfigMaps bool
	// clusterSecrets is where clusters registered as Secrets are.
	clusterSecrets k8s.ClusterSecrets
	// syncTimeout bounds a cluster's first sync; past it the cluster is
	// served partially.
	syncTimeout time.Duration
	// shutdownDelay is how long /readyz answers 503 before the listener
	// closes; shutdownGrace bounds the wait for in-flight requests.
	shutdownDelay, shutdownGrace time.Duration
	// metricsListen is the address of the Prometheus metrics, "" for off.
	metricsListen string
	// showVersion prints the version and exits.
	showVersion bool
}

func main() {
	cfg, err := parseConfig(os.Args[1:], os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if cfg.showVersion {
		fmt.Println(versionString())
		return
	}
	if err := run(cfg); err != nil {
		slog.Error("clustergraph stopped", "err", err)
		os.Exit(1)
	}
}

// parseConfig reads the configuration: each flag from the command line,
// else its environment variable (CLUSTERGRAPH_*, named in its usage), else
// the config file (-config), else its built-in default. A value that does
// not parse is an error naming where it came from.
func parseConfig(args []string, getenv func(string) string) (config, error) {
	fs := flag.NewFlagSet("clustergraph", flag.ContinueOnError)
	var cfg config
	var kubeconfig string
	fs.StringVar(&cfg.listen, "listen", "127.0.0.1:8080", "address to serve HTTP on (env CLUSTERGRAPH_LISTEN)")
	fs.StringVar(&cfg.debugListen, "debug-listen", "", "address to serve Go profiles (/debug/pprof/) on, apart from the API; off when empty (env CLUSTERGRAPH_DEBUG_LISTEN)")
	fs.StringVar(&cfg.metricsListen, "metrics-listen", "", "address to serve Prometheus metrics (/metrics) on without a token, apart from the API (which serves them to callers with a token), e.g. 0.0.0.0:9090 in a pod; off when empty (env CLUSTERGRAPH_METRICS_LISTEN)")
	fs.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file(s), separated by '"+string(os.PathListSeparator)+"' (env CLUSTERGRAPH_KUBECONFIG; default $KUBECONFIG, then ~/.kube/config)")
	fs.BoolVar(&cfg.inCluster, "in-cluster", true, "also serve the cluster clustergraph runs in, when it runs in a pod (env CLUSTERGRAPH_IN_CLUSTER)")
	fs.IntVar(&cfg.maxPage, "max-page", 100, "largest first/limit a list accepts, also the default page size (env CLUSTERGRAPH_MAX_PAGE)")
	maxBody := fs.Int("max-body-bytes", 1<<20, "largest request body accepted (env CLUSTERGRAPH_MAX_BODY_BYTES)")
	fs.StringVar(&cfg.identity, "identity-cluster", "", "cluster whose TokenReview authenticates callers (env CLUSTERGRAPH_IDENTITY_CLUSTER; default in-cluster, else the kubeconfig's current context)")
	fleetWide := fs.String("fleet-wide-system-users", "", "comma-separated system identities (names, or prefixes ending in *) that may act in every cluster; any other system: identity but a service account acts only in the identity cluster (env CLUSTERGRAPH_FLEET_WIDE_SYSTEM_USERS)")
	fs.BoolVar(&cfg.noAuth, "insecure-disable-auth", false, "serve every request as clustergraph itself, with no token: for a local demo only, never expose it (env CLUSTERGRAPH_INSECURE_DISABLE_AUTH)")
	origins := fs.String("allowed-origins", "", "comma-separated browser origins (host patterns) allowed to open websockets besides the server's own and to call /query from their pages (CORS) (env CLUSTERGRAPH_ALLOWED_ORIGINS)")
	fs.BoolVar(&cfg.noIntro, "disable-introspection", false, "turn off schema introspection and field suggestions, for production without GraphiQL (env CLUSTERGRAPH_DISABLE_INTROSPECTION)")
	fs.StringVar(&cfg.auditPath, "audit-log", "-", "file to append the audit log to (JSON lines), - for stderr (env CLUSTERGRAPH_AUDIT_LOG)")
	fs.StringVar(&cfg.versionsCM, "versions-configmap", "", "NAMESPACE/NAME of the ConfigMap listing component versions in each cluster, for Query.versions (env CLUSTERGRAPH_VERSIONS_CONFIGMAP)")
	fs.StringVar(&cfg.storage.dsn, "database", "", "metering, alerts and event history: mysql://user:pass@tcp(host:3306)/db, sqlite:///path/file.db, or none (env CLUSTERGRAPH_DATABASE; default SQLite in -data-dir)")
	fs.StringVar(&cfg.storage.dataDir, "data-dir", "data", "directory of the default SQLite database and of the metering spool (env CLUSTERGRAPH_DATA_DIR)")
	fs.DurationVar(&cfg.storage.meterEvery, "metering-interval", time.Minute, "how often the collector samples every namespace (env CLUSTERGRAPH_METERING_INTERVAL)")
	fs.StringVar(&cfg.storage.trafficSource, "traffic-source", "none", "where metering's traffic in/out comes from: none (0), or kubelet (each node's cAdvisor counters through the apiserver's node proxy, every interval; needs get on nodes/proxy) (env CLUSTERGRAPH_TRAFFIC_SOURCE)")
	fs.StringVar(&cfg.storage.trafficPath, "traffic-path", "/metrics/cadvisor", "the kubelet path the kubelet traffic source reads; {node} becomes the node's name (env CLUSTERGRAPH_TRAFFIC_PATH)")
	retention := map[string]*string{}
	for _, r := range []struct{ name, def, what string }{
		{"samples", "7d", "raw metering samples (at least 2h)"}, {"hour", "90d", "hourly metering"}, {"day", "730d", "daily metering"},
		{"month", "3650d", "monthly metering"}, {"year", "0", "yearly metering"}, {"usage", "24h", "node and pod usage history"},
		{"alerts", "365d", "resolved alerts"}, {"events", "90d", "archived events"},
	} {
		envName := "CLUSTERGRAPH_RETENTION_" + strings.ToUpper(r.name)
		retention[r.name] = fs.String("retention-"+r.name, r.def, "how long to keep "+r.what+", e.g. 90d or 36h; 0 keeps forever (env "+envName+")")
	}
	fs.BoolVar(&cfg.storage.leaderElect, "leader-elect", true, "run the collector and event archive on one replica at a time, through a Lease in the identity cluster (env CLUSTERGRAPH_LEADER_ELECT)")
	fs.StringVar(&cfg.storage.leaseNamespace, "lease-namespace", lease.DefaultNamespace(), "namespace of the leader Lease (env CLUSTERGRAPH_LEASE_NAMESPACE; default the pod's namespace, else default)")
	fs.StringVar(&cfg.storage.leaseName, "lease-name", "clustergraph-collector", "name of the leader Lease (env CLUSTERGRAPH_LEASE_NAME)")
	fs.DurationVar(&cfg.storage.leaseDuration, "lease-duration", 15*time.Second, "how long a dead leader holds the Lease before another replica takes over (env CLUSTERGRAPH_LEASE_DURATION)")
	fs.DurationVar(&cfg.storage.alertPoll, "alert-poll-interval", time.Second, "how often each replica checks the database for alerts other replicas received (env CLUSTERGRAPH_ALERT_POLL_INTERVAL)")
	fs.StringVar(&cfg.storage.alertToken, "alert-token", "", "bearer token POST /alert accepts (Alertmanager's http_config.authorization) (env CLUSTERGRAPH_ALERT_TOKEN)")
	fs.StringVar(&cfg.storage.alertBasicAuth, "alert-basic-auth", "", "USER:PASSWORD POST /alert accepts as basic auth (env CLUSTERGRAPH_ALERT_BASIC_AUTH)")
	fs.StringVar(&cfg.authzFall, "authz-fallback", api.AuthzFallbackNone, "what a read RBAC refuses does: none (refused) or sar (asks the apiserver with a SubjectAccessReview, for webhook authorizers; costs apiserver calls) (env CLUSTERGRAPH_AUTHZ_FALLBACK)")
	fs.StringVar(&cfg.persisted, "persisted-queries", "", "JSON file mapping document id (hex SHA-256, sha256:hex, SHA-1 or MD5 of the text) → query, as Apollo, graphql-codegen and relay-compiler write it: when set, only those run, by id (documentId, doc_id, the APQ extension) or exact text (env CLUSTERGRAPH_PERSISTED_QUERIES)")
	fs.IntVar(&cfg.limits.MaxComplexity, "max-complexity", 250000, "largest estimated query cost (fields times the page sizes of the lists around them) (env CLUSTERGRAPH_MAX_COMPLEXITY)")
	fs.IntVar(&cfg.limits.PerUserConcurrency, "max-user-concurrency", 32, "requests one user may have in flight (env CLUSTERGRAPH_MAX_USER_CONCURRENCY)")
	fs.IntVar(&cfg.maxListObjects, "max-list-objects", k8s.DefaultMaxListObjects, "most objects one resources() list reads from a cluster's apiserver; past it the list is cut with an error (env CLUSTERGRAPH_MAX_LIST_OBJECTS)")
	fs.StringVar(&cfg.clusterSecrets.Namespace, "cluster-secrets-namespace", podNamespace(), "namespace of the identity cluster whose Secrets labelled as clusters (see -cluster-secrets-selector) register clusters, followed without a restart; - turns it off (env CLUSTERGRAPH_CLUSTER_SECRETS_NAMESPACE; default the pod's namespace in a pod, else off)")
	fs.StringVar(&cfg.clusterSecrets.Selector, "cluster-secrets-selector", k8s.DefaultClusterSecretSelector, "label selector of the Secrets that register clusters (env CLUSTERGRAPH_CLUSTER_SECRETS_SELECTOR)")
	fs.BoolVar(&cfg.cacheSecrets, "cache-secrets", true, "cache Secrets' metadata (names, types, labels; never values) for Namespace.secrets and Secret watches; needs list and watch on Secrets in every cluster. Off, the server needs no Secret right and those fields answer UNAVAILABLE saying so (env CLUSTERGRAPH_CACHE_SECRETS)")
	fs.BoolVar(&cfg.cacheConfigMaps, "cache-configmaps", true, "cache ConfigMaps' metadata for Namespace.configMaps and ConfigMap watches; needs list and watch on ConfigMaps in every cluster. Off, those fields answer UNAVAILABLE saying so (env CLUSTERGRAPH_CACHE_CONFIGMAPS)")
	fs.DurationVar(&cfg.syncTimeout, "cache-sync-timeout", 2*time.Minute, "longest a cluster's first sync may take before the cluster is served with the kinds that synced (PARTIAL) while the rest keep trying; 0 waits for every kind (env CLUSTERGRAPH_CACHE_SYNC_TIMEOUT)")
	fs.IntVar(&cfg.limits.MaxSocketsPerUser, "max-sockets-per-user", 16, "websockets one user may hold open; a further one is closed with 4429 (env CLUSTERGRAPH_MAX_SOCKETS_PER_USER)")
	fs.IntVar(&cfg.limits.MaxSubscriptionsPerUser, "max-subscriptions-per-user", 200, "subscriptions one user may run at once over all their websockets (env CLUSTERGRAPH_MAX_SUBSCRIPTIONS_PER_USER)")
	fs.IntVar(&cfg.limits.MaxPendingSockets, "max-pending-sockets", 256, "websockets not yet authenticated by connection_init, server-wide; past it upgrades get 429 (env CLUSTERGRAPH_MAX_PENDING_SOCKETS)")
	fs.IntVar(&cfg.limits.MaxPendingSocketsPerIP, "max-pending-sockets-per-ip", 16, "websockets not yet authenticated, per client address (raise it behind a proxy that hides client addresses) (env CLUSTERGRAPH_MAX_PENDING_SOCKETS_PER_IP)")
	fs.DurationVar(&cfg.limits.SocketWriteTimeout, "ws-write-timeout", 10*time.Second, "longest a write to a websocket may take before the client is dropped as stalled (env CLUSTERGRAPH_WS_WRITE_TIMEOUT)")
	fs.DurationVar(&cfg.limits.SocketPingInterval, "ws-ping-interval", 25*time.Second, "how often websockets are pinged (also keeps idle sockets alive through proxies) (env CLUSTERGRAPH_WS_PING_INTERVAL)")
	fs.DurationVar(&cfg.limits.SocketPongTimeout, "ws-pong-timeout", 20*time.Second, "how long a ping's answer may take before the websocket is closed as dead (env CLUSTERGRAPH_WS_PONG_TIMEOUT)")
	fs.IntVar(&cfg.limits.MaxDepth, "max-depth", 15, "deepest query nesting accepted (env CLUSTERGRAPH_MAX_DEPTH)")
	fs.StringVar(&cfg.shell.Namespace, "shell-namespace", "", "namespace (in every cluster) for cluster-shell pods; empty turns clusterShell off (env CLUSTERGRAPH_SHELL_NAMESPACE)")
	fs.StringVar(&cfg.shell.Image, "shell-image", "registry.k8s.io/kubectl:v1.37.2", "image with kubectl and a shell for cluster shells (env CLUSTERGRAPH_SHELL_IMAGE)")
	fs.StringVar(&cfg.shell.ProxyURL, "shell-proxy-url", "", "URL at which shell pods reach this server, e.g. http://clustergraph.clustergraph.svc:8080 (env CLUSTERGRAPH_SHELL_PROXY_URL)")
	fs.DurationVar(&cfg.shutdownDelay, "shutdown-delay", 0, "on SIGTERM, how long /readyz answers 503 while new requests are still served, before the listener closes: give load balancers time to stop sending (e.g. 5s behind a Kubernetes Service) (env CLUSTERGRAPH_SHUTDOWN_DELAY)")
	fs.DurationVar(&cfg.shutdownGrace, "shutdown-grace", 15*time.Second, "on SIGTERM, how long in-flight requests may run after the listener closed; then websockets close with 1001 and the rest is cut (env CLUSTERGRAPH_SHUTDOWN_GRACE)")
	fs.BoolVar(&cfg.showVersion, "version", false, "print the version, the commit it was built from and the Go version, and exit")
	fs.StringVar(&cfg.logLevel, "log-level", "info", "debug, info, warn or error (env CLUSTERGRAPH_LOG_LEVEL)")
	fs.StringVar(&cfg.logFormat, "log-format", "text", "text (logfmt-like key=value) or json, one object a line (env CLUSTERGRAPH_LOG_FORMAT)")
	fs.String("config", "", "YAML file whose keys are these flags' names (e.g. listen: 0.0.0.0:8080, allowed-origins: [a.example.com, b.example.com]); the environment overrides it, and the command line both (env CLUSTERGRAPH_CONFIG)")
	if err := applySources(fs, args, getenv); err != nil {
		return cfg, err
	}
	cfg.maxBody = int64(*maxBody)
	for name, v := range retention {
		d, err := parseAge(*v)
		if err != nil {
			return cfg, fmt.Errorf("-retention-%s: %w", name, err)
		}
		*map[string]*time.Duration{
			"samples": &cfg.storage.retention.Samples, "hour": &cfg.storage.retention.Hour, "day": &cfg.storage.retention.Day,
			"month": &cfg.storage.retention.Month, "year": &cfg.storage.retention.Year, "usage": &cfg.storage.retention.Usage,
			"alerts": &cfg.storage.retention.Alerts, "events": &cfg.storage.retention.Events,
		}[name] = d
	}
	cfg.storage.retention.AlertChanges = db.DefaultRetention.AlertChanges
	if r := cfg.storage.retention.Samples; r > 0 && r < 2*time.Hour {
		return cfg, fmt.Errorf("-retention-samples must be at least 2h (rollups read the current hour's samples), got %s", r)
	}
	if cfg.storage.meterEvery < time.Second {
		return cfg, fmt.Errorf("-metering-interval must be at least 1s, got %s", cfg.storage.meterEvery)
	}
	if t := cfg.storage.trafficSource; t != "none" && t != "kubelet" {
		return cfg, fmt.Errorf("-traffic-source must be none or kubelet, got %q", t)
	}
	if (cfg.shell.Namespace == "") != (cfg.shell.ProxyURL == "") {
		return cfg, fmt.Errorf("-shell-namespace and -shell-proxy-url go together (cluster shells need both)")
	}
	if b := cfg.storage.alertBasicAuth; b != "" && !strings.Contains(b, ":") {
		return cfg, fmt.Errorf("-alert-basic-auth must be USER:PASSWORD")
	}
	if cfg.versionsCM != "" && strings.Count(cfg.versionsCM, "/") != 1 {
		return cfg, fmt.Errorf("-versions-configmap must be NAMESPACE/NAME, got %q", cfg.versionsCM)
	}
	if cfg.authzFall != api.AuthzFallbackNone && cfg.authzFall != api.AuthzFallbackSAR {
		return cfg, fmt.Errorf("-authz-fallback must be none or sar, got %q", cfg.authzFall)
	}
	if *origins != "" {
		cfg.origins = strings.Split(*origins, ",")
	}
	if *fleetWide != "" {
		cfg.fleetWide = strings.Split(*fleetWide, ",")
		for _, u := range cfg.fleetWide {
			if !strings.HasPrefix(u, "system:") || strings.HasPrefix(u, "system:serviceaccount:") {
				return cfg, fmt.Errorf("-fleet-wide-system-users: %q is not a system identity other than a service account (system:node:NAME, system:kube-scheduler, system:node:*, ...)", u)
			}
		}
	}
	if kubeconfig != "" {
		cfg.kubeconfigs = strings.Split(kubeconfig, string(os.PathListSeparator))
	} else {
		cfg.kubeconfigs = k8s.DefaultKubeconfigs()
	}
	if cfg.maxPage <= 0 {
		return cfg, fmt.Errorf("-max-page must be positive, got %d", cfg.maxPage)
	}
	if cfg.logFormat != "text" && cfg.logFormat != "json" {
		return cfg, fmt.Errorf("-log-format must be text or json, got %q", cfg.logFormat)
	}
	if cfg.syncTimeout < 0 {
		return cfg, fmt.Errorf("-cache-sync-timeout must not be negative, got %s", cfg.syncTimeout)
	}
	if cfg.shutdownDelay < 0 || cfg.shutdownGrace < 0 {
		return cfg, fmt.Errorf("-shutdown-delay and -shutdown-grace must not be negative")
	}
	return cfg, nil
}

// flagEnv finds a flag's environment variable in its usage text.
var flagEnv = regexp.MustCompile(`\(env (CLUSTERGRAPH_[A-Z0-9_]+)`)

// applySources sets fs from the config file, then the environment, then
// args, each overriding the one before.
func applySources(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	path := getenv("CLUSTERGRAPH_CONFIG")
	if p, ok := configArg(args); ok {
		path = p
	}
	if path != "" {
		if err := applyConfigFile(fs, path); err != nil {
			return err
		}
	}
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		m := flagEnv.FindStringSubmatch(f.Usage)
		if m == nil {
			return
		}
		if v := getenv(m[1]); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("environment variable %s=%q: %w", m[1], v, err))
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return fs.Parse(args)
}

// configArg finds -config FILE (or --config, or =FILE) among args.
func configArg(args []string) (string, bool) {
	for i, a := range args {
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "config" {
			continue
		}
		if hasValue {
			return value, true
		}
		if i+1 < len(args) {
			return args[i+1], true
		}
	}
	return "", false
}

// applyConfigFile sets fs from a YAML file whose keys are flag names; a
// list becomes the flag's comma-separated (for kubeconfig: path-list)
// form.
func applyConfigFile(fs *flag.FlagSet, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	var values map[string]any
	if err := yaml.Unmarshal(b, &values); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	var errs []error
	for _, key := range slices.Sorted(maps.Keys(values)) {
		if fs.Lookup(key) == nil || key == "config" || key == "version" {
			errs = append(errs, fmt.Errorf("config file %s: unknown key %q (the keys are the flags' names, e.g. listen)", path, key))
			continue
		}
		v, err := configValue(key, values[key])
		if err == nil {
			err = fs.Set(key, v)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("config file %s: key %s: %w", path, key, err))
		}
	}
	return errors.Join(errs...)
}

// configValue is a config file value as its flag's text.
func configValue(key string, v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case bool:
		return strconv.FormatBool(v), nil
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), nil
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			s, err := configValue(key, e)
			if err != nil {
				return "", err
			}
			parts[i] = s
		}
		sep := ","
		if key == "kubeconfig" {
			sep = string(os.PathListSeparator)
		}
		return strings.Join(parts, sep), nil
	case nil:
		return "", nil
	}
	return "", fmt.Errorf("a %T is not a value of a flag", v)
}

// podNamespace is the namespace of the pod the server runs in, or "" out
// of a pod.
func podNamespace() string {
	b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// uncached names the kinds this install does not cache, with the reason
// their fields answer.
func (cfg config) uncached() map[string]string {
	off := map[string]string{}
	if !cfg.cacheSecrets {
		off["secrets"] = "the server runs with --cache-secrets=false"
	}
	if !cfg.cacheConfigMaps {
		off["configmaps"] = "the server runs with --cache-configmaps=false"
	}
	return off
}

// newLogger is the server's logger: text or json lines to w at level, each
// line logged for a request carrying its id and operation (see reqlog).
func newLogger(format, level string, w io.Writer) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("-log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(reqlog.Handler{Handler: slog.NewTextHandler(w, opts)}), nil
	case "json":
		return slog.New(reqlog.Handler{Handler: slog.NewJSONHandler(w, opts)}), nil
	}
	return nil, fmt.Errorf("-log-format must be text or json, got %q", format)
}

func run(cfg config) error {
	log, err := newLogger(cfg.logFormat, cfg.logLevel, os.Stderr)
	if err != nil {
		return err
	}
	slog.SetDefault(log)
	klog.SetSlogLogger(log) // client-go's logs join ours

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serve(ctx, cfg, log, nil)
}

// serve runs the server until ctx ends, then shuts down in this order:
// /readyz answers 503 (for shutdownDelay, while requests are still
// served), the listener closes, in-flight requests finish (up to
// shutdownGrace), and only then do websockets close, with 1001 (going
// away) so consoles reconnect to another replica. listening, when set, is
// told the address once the listener is open.
func serve(ctx context.Context, cfg config, log *slog.Logger, listening func(net.Addr)) error {
	stopTracing, err := tracing.Setup(ctx, os.Getenv, version)
	if err != nil {
		return err
	}
	defer func() {
		// Flush what the exporter still holds, within a bound.
		flush, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := stopTracing(flush); err != nil {
			log.Warn("flushing traces", "err", err)
		}
	}()
	if tracing.Enabled(os.Getenv) {
		log.Info("tracing on: spans go to the OTLP endpoint of OTEL_EXPORTER_OTLP_*")
	}

	regCfg := k8s.RegistryConfig{
		Kubeconfigs: cfg.kubeconfigs, InCluster: cfg.inCluster, MaxListObjects: cfg.maxListObjects,
		SyncDeadline: cfg.syncTimeout, Uncached: cfg.uncached(), Logger: log,
	}
	if ns := cfg.clusterSecrets.Namespace; ns != "" && ns != "-" {
		src := cfg.clusterSecrets
		src.Cluster = cfg.identity
		regCfg.ClusterSecrets = &src
	}
	reg := k8s.NewRegistry(regCfg)
	defer metrics.WatchClusters(reg)()
	metrics.ObserveClientGo() // /metrics is served on the API's address too
	if cfg.metricsListen != "" {
		// Until serve returns, so the scraper sees the shutdown too.
		aside, stopAside := context.WithCancel(context.Background())
		defer stopAside()
		if err := serveMetrics(aside, cfg.metricsListen, log); err != nil {
			return fmt.Errorf("-metrics-listen: %w", err)
		}
	}
	if err := reg.Start(ctx); err != nil {
		return err
	}
	log.Info("starting", "version", versionString())
	log.Info("clusters", "kubeconfigs", cfg.kubeconfigs, "count", len(reg.Clusters()))

	store, err := openStorage(ctx, cfg.storage, log)
	if err != nil {
		return err
	}
	defer store.Close()
	hub := alerting.NewHub(store.Store, cfg.storage.alertPoll, log.With("component", "alerts"))
	go hub.Run(ctx)
	if err := runCollectors(ctx, reg, store, cfg.storage, cfg.identity, log); err != nil {
		return err
	}

	if cfg.debugListen != "" {
		if err := serveDebug(ctx, cfg.debugListen, log); err != nil {
			return fmt.Errorf("-debug-listen: %w", err)
		}
	}
	var openSockets sync.WaitGroup
	sockets, closeSockets := context.WithCancel(context.Background())
	defer closeSockets()
	draining := make(chan struct{})
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return err
	}
	auditOut := os.Stderr
	if cfg.auditPath != "-" {
		f, err := os.OpenFile(cfg.auditPath, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			return fmt.Errorf("-audit-log: %w", err)
		}
		defer f.Close()
		auditOut = f
	}
	var persisted map[string]string
	if cfg.persisted != "" {
		if persisted, err = api.LoadPersistedQueries(cfg.persisted); err != nil {
			return fmt.Errorf("-persisted-queries: %w", err)
		}
		log.Info("persisted-query allowlist", "file", cfg.persisted, "queries", len(persisted))
	}
	var authn *auth.Authenticator
	if cfg.noAuth {
		log.Warn("AUTHENTICATION IS DISABLED (--insecure-disable-auth): every request reads with clustergraph's own credentials. Use this for a local demo only; never expose this server.")
	} else {
		authn = auth.New(auth.Config{Registry: reg, IdentityCluster: cfg.identity, FleetWideSystemUsers: cfg.fleetWide})
	}
	srv := &http.Server{
		Handler: api.NewHandler(api.Config{
			Registry: reg, Authenticator: authn, AllowedOrigins: cfg.origins, NoIntrospection: cfg.noIntro, AuthzFallback: cfg.authzFall, PersistedQueries: persisted,
			MaxPage: cfg.maxPage, MaxBodyBytes: cfg.maxBody, Audit: audit.New(auditOut), VersionsConfigMap: cfg.versionsCM, Logger: log,
			DB: store, Alerts: hub, AlertAuth: api.AlertAuth{Token: cfg.storage.alertToken, BasicAuth: cfg.storage.alertBasicAuth},
			Limits: cfg.limits, Shell: shellConfig(cfg.shell), Draining: draining, OpenSockets: &openSockets,
		}),
		ReadHeaderTimeout: 10 * time.Second,
		// Websockets are hijacked connections that Shutdown does not wait
		// for; their contexts derive from this one, which is cancelled
		// once in-flight requests are done, so every subscription ends and
		// its socket is closed.
		BaseContext: func(net.Listener) context.Context { return sockets },
	}
	log.Info("serving GraphQL", "url", "http://"+ln.Addr().String()+"/query", "graphiql", "http://"+ln.Addr().String()+"/")
	if listening != nil {
		listening(ln.Addr())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down", "delay", cfg.shutdownDelay, "grace", cfg.shutdownGrace)
	close(draining)
	time.Sleep(cfg.shutdownDelay)
	deadline := time.Now().Add(cfg.shutdownGrace)
	shutdown, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if err := srv.Shutdown(shutdown); errors.Is(err, context.DeadlineExceeded) {
		log.Warn("requests still running at the shutdown deadline; cutting them", "grace", cfg.shutdownGrace)
		_ = srv.Close()
	} else if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	closeSockets()
	// Shutdown does not wait for hijacked connections: wait (a few
	// seconds at most past the deadline) for the websockets' close frames
	// to go out.
	closed := make(chan struct{})
	go func() { openSockets.Wait(); close(closed) }()
	select {
	case <-closed:
		log.Info("every websocket closed")
	case <-time.After(time.Until(deadline) + 5*time.Second):
		log.Warn("websockets still open at the shutdown deadline")
	}
	return nil
}

// shellConfig is nil (cluster shells off) unless a namespace is set.
func shellConfig(c terminal.ShellConfig) *terminal.ShellConfig {
	if c.Namespace == "" {
		return nil
	}
	return &c
}
