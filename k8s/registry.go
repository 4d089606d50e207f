package k8s

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/clustergraph/clustergraph/errkind"
)

// InClusterName names the cluster clustergraph runs in, when it runs in a pod.
const InClusterName = "in-cluster"

// RegistryConfig says where clusters come from.
type RegistryConfig struct {
	// Kubeconfigs are the kubeconfig files to read, merged as kubectl merges
	// KUBECONFIG. Files that do not exist are skipped.
	Kubeconfigs []string
	// InCluster adds the cluster of the pod clustergraph runs in, when it
	// runs in one.
	InCluster bool
	// PollInterval is how often the kubeconfig files are checked for
	// changes. Polling (rather than inotify) also sees files that editors
	// and kubectl replace by renaming.
	PollInterval time.Duration
	// ProbeInterval and ProbeTimeout govern the per-cluster health probe.
	ProbeInterval time.Duration
	ProbeTimeout  time.Duration
	// WrapTransport, when set, wraps every cluster's HTTP transport (used to
	// observe the requests clustergraph makes).
	WrapTransport func(http.RoundTripper) http.RoundTripper
	// AccessReview answers what the access set refuses when a request asks
	// for the authorizer fallback (see WithReviewer); nil means a
	// SubjectAccessReview to the cluster's apiserver. Tests replace it.
	AccessReview ReviewFunc
	// MaxListObjects bounds the objects one resources() list reads from a
	// cluster's apiserver (default DefaultMaxListObjects).
	MaxListObjects int
	// SyncDeadline bounds a cluster's first sync: past it the cluster is
	// served with the kinds that synced (PARTIAL), the others keep trying.
	// 0 waits until every kind synced or is known to fail (forbidden, not
	// served).
	SyncDeadline time.Duration
	// Uncached are kinds not cached at all ("secrets", "configmaps": the
	// kinds whose informers need a right consoles may not want to give),
	// with the reason their reads give, e.g. "secrets" → "the server runs
	// with --cache-secrets=false": the install then needs no right to list
	// them.
	Uncached map[string]string
	// ClusterSecrets, when set, registers the clusters held as Secrets
	// there (see ClusterSecrets).
	ClusterSecrets *ClusterSecrets
	Logger         *slog.Logger
}

// clusterOptions are the options every cluster of the registry gets.
func (r *Registry) clusterOptions() clusterOptions {
	off := map[resource]string{}
	for k, why := range r.cfg.Uncached {
		off[resource(k)] = why
	}
	return clusterOptions{probe: r.cfg.ProbeTimeout, period: r.cfg.ProbeInterval, syncDeadline: r.cfg.SyncDeadline, off: off}
}

// DefaultKubeconfigs returns the kubeconfig files kubectl would use: the
// files in KUBECONFIG, else ~/.kube/config.
func DefaultKubeconfigs() []string {
	if env := os.Getenv("KUBECONFIG"); env != "" {
		return filepath.SplitList(env)
	}
	return []string{clientcmd.RecommendedHomeFile}
}

// Registry is the set of clusters clustergraph serves. It follows the
// kubeconfig: contexts added, changed or removed are engaged or torn down
// without a restart.
type Registry struct {
	cfg RegistryConfig
	log *slog.Logger
	ctx context.Context

	mu       sync.RWMutex
	clusters map[string]*Cluster
	lastStat string
	// current is the kubeconfig's current context.
	current string
	// secrets are the cluster Secrets last seen; secretClusters the names
	// of the clusters they registered.
	secrets        []*corev1.Secret
	secretClusters map[string]bool
	// reloading serializes Reload: the kubeconfig poll and the Secret
	// watch both call it.
	reloading sync.Mutex
}

// NewRegistry returns an empty registry; Run fills it.
func NewRegistry(cfg RegistryConfig) *Registry {
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 2 * time.Second
	}
	if cfg.ProbeInterval <= 0 {
		cfg.ProbeInterval = 5 * time.Second
	}
	if cfg.ProbeTimeout <= 0 {
		cfg.ProbeTimeout = 3 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Registry{cfg: cfg, log: cfg.Logger, clusters: map[string]*Cluster{}}
}

// Start loads the clusters and keeps following the kubeconfig until ctx
// ends, then stops every cluster. It returns after the first load; clusters
// connect and sync in the background, so an unreachable one never blocks.
func (r *Registry) Start(ctx context.Context) error {
	r.ctx = ctx
	err := r.Reload()
	if s := r.cfg.ClusterSecrets; s != nil && s.Namespace != "" {
		go r.followSecrets(ctx)
	}
	go func() {
		t := time.NewTicker(r.cfg.PollInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				r.stopAll()
				return
			case <-t.C:
				if r.kubeconfigChanged() {
					if err := r.Reload(); err != nil {
						r.log.Error("reloading kubeconfig", "err", err)
					}
				}
			}
		}
	}()
	return err
}

// kubeconfigChanged compares size and modification time of the files with
// what the last reload saw.
func (r *Registry) kubeconfigChanged() bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.statFiles() != r.lastStat
}

func (r *Registry) statFiles() string {
	var s string
	for _, p := range r.cfg.Kubeconfigs {
		if fi, err := os.Stat(p); err == nil {
			s += fmt.Sprintf("%s:%d:%d;", p, fi.Size(), fi.ModTime().UnixNano())
		}
	}
	return s
}

// wanted is a cluster the configuration asks for.
type wanted struct {
	config *rest.Config
	hash   string
	// source names a Secret's cluster's Secret ("" for the kubeconfig and
	// in-cluster); broken says why that Secret cannot be used.
	source string
	broken error
}

// Reload reads the kubeconfig and the cluster Secrets last seen, and
// brings the clusters in line with them.
func (r *Registry) Reload() error {
	r.reloading.Lock()
	defer r.reloading.Unlock()
	stat := r.statFiles()
	want, current, err := r.load()
	if err != nil {
		return err
	}
	r.mu.RLock()
	secrets := slices.Clone(r.secrets)
	r.mu.RUnlock()
	var wrap func(*rest.Config)
	if r.cfg.WrapTransport != nil {
		wrap = func(cfg *rest.Config) { cfg.Wrap(r.cfg.WrapTransport) }
	}
	fromSecrets := secretWants(secrets, func(name string) bool { _, ok := want[name]; return ok }, wrap)
	for name, w := range fromSecrets {
		want[name] = w
	}
	r.mu.Lock()
	r.lastStat, r.current = stat, current
	r.secretClusters = map[string]bool{}
	for name := range fromSecrets {
		r.secretClusters[name] = true
	}
	stop := map[*Cluster]string{}
	for name, c := range r.clusters {
		if w, ok := want[name]; !ok || w.hash != c.hash {
			stop[c] = "removed from the configuration"
			if ok {
				stop[c] = "replaced (its server or credentials changed): subscribe again to watch the new one"
			}
			delete(r.clusters, name)
			r.log.Info("cluster removed", "cluster", name, "replaced", ok)
		}
	}
	for name, w := range want {
		if _, ok := r.clusters[name]; ok {
			continue
		}
		if w.broken != nil {
			r.log.Error("cluster Secret not usable", "cluster", name, "err", w.broken)
			r.clusters[name] = newBrokenCluster(name, w, r.log)
			continue
		}
		c, err := newCluster(r.ctx, name, w.config, w.hash, r.clusterOptions(), r.log)
		if err != nil {
			r.log.Error("cluster not engaged", "cluster", name, "err", err)
			continue
		}
		c.review, c.maxList = r.cfg.AccessReview, r.cfg.MaxListObjects
		r.clusters[name] = c
		r.log.Info("cluster added", "cluster", name, "server", c.Server, "from", cmp.Or(w.source, "kubeconfig"))
	}
	r.mu.Unlock()
	// Stopping waits for informers to end; do it outside the lock.
	for c, why := range stop {
		c.retire(why)
	}
	return nil
}

func (r *Registry) load() (map[string]wanted, string, error) {
	want := map[string]wanted{}
	if r.cfg.InCluster {
		if cfg, err := rest.InClusterConfig(); err == nil {
			want[InClusterName] = wanted{config: cfg, hash: "in-cluster:" + cfg.Host}
		}
	}
	var files []string
	for _, p := range r.cfg.Kubeconfigs {
		if _, err := os.Stat(p); err == nil {
			files = append(files, p)
		}
	}
	if len(files) == 0 {
		return want, "", nil
	}
	rules := &clientcmd.ClientConfigLoadingRules{Precedence: files}
	raw, err := rules.Load()
	if err != nil {
		return nil, "", fmt.Errorf("loading kubeconfig %v: %w", files, err)
	}
	for name, kctx := range raw.Contexts {
		cfg, err := clientcmd.NewNonInteractiveClientConfig(*raw, name, &clientcmd.ConfigOverrides{}, rules).ClientConfig()
		if err != nil {
			r.log.Error("skipping kubeconfig context", "context", name, "err", err)
			continue
		}
		if r.cfg.WrapTransport != nil {
			cfg.Wrap(r.cfg.WrapTransport)
		}
		// The hash covers everything that shapes the connection, so a
		// changed server or credential replaces the cluster.
		b, _ := json.Marshal([]any{kctx, raw.Clusters[kctx.Cluster], raw.AuthInfos[kctx.AuthInfo]})
		sum := sha256.Sum256(b)
		want[name] = wanted{config: cfg, hash: hex.EncodeToString(sum[:])}
	}
	return want, raw.CurrentContext, nil
}

// IdentityCluster returns the named cluster, or when name is empty the
// cluster that owns identity by default: in-cluster, else the kubeconfig's
// current context, else the first by name.
func (r *Registry) IdentityCluster(name string) (*Cluster, error) {
	if name != "" {
		return r.Cluster(name)
	}
	r.mu.RLock()
	current := r.current
	r.mu.RUnlock()
	for _, n := range []string{InClusterName, current} {
		if c, err := r.Cluster(n); err == nil {
			return c, nil
		}
	}
	if cs := r.Clusters(); len(cs) > 0 {
		return cs[0], nil
	}
	return nil, errkind.Newf(errkind.Unavailable, "no cluster to check tokens with")
}

func (r *Registry) stopAll() {
	r.mu.Lock()
	all := r.clusters
	r.clusters = map[string]*Cluster{}
	r.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range all {
		wg.Go(c.stop)
	}
	wg.Wait()
}

// Clusters returns every cluster, sorted by name.
func (r *Registry) Clusters() []*Cluster {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]*Cluster, 0, len(r.clusters))
	for _, c := range r.clusters {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b *Cluster) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Cluster returns one cluster by name, or an errkind.NotFound ClusterError.
func (r *Registry) Cluster(name string) (*Cluster, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if c, ok := r.clusters[name]; ok {
		return c, nil
	}
	return nil, &ClusterError{Cluster: name, Err: errkind.Newf(errkind.NotFound, "no such cluster (known: the kubeconfig contexts and in-cluster)")}
}

// Select returns the named clusters, or all when names is empty. An unknown
// name is an error.
func (r *Registry) Select(names []string) ([]*Cluster, error) {
	if len(names) == 0 {
		return r.Clusters(), nil
	}
	out := make([]*Cluster, 0, len(names))
	for _, n := range names {
		c, err := r.Cluster(n)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// Lookup fetches the object an id names, as the context's subject.
func (r *Registry) Lookup(ctx context.Context, id ObjectID) (*Cluster, any, error) {
	c, err := r.Cluster(id.Cluster)
	if err != nil {
		return nil, nil, err
	}
	if id.GVK == GVKNodePoolLabel || id.GVK == GVKNodePoolObject {
		for _, p := range c.NodePools(ctx) {
			if p.Name == id.Name {
				return c, p, nil
			}
		}
		return c, nil, errkind.Newf(errkind.NotFound, "node pool %s", id.Name)
	}
	obj, err := c.Get(ctx, id.GVK, id.Namespace, id.Name)
	return c, obj, err
}
