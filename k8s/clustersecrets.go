package k8s

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Clusters registered as Secrets, as Argo CD and Cluster API register
// them: in one namespace of the identity cluster, each Secret that the
// selector matches is a cluster, added, replaced (its data changed: a
// rotated token) and removed as the Secret is, with no restart, beside
// the kubeconfig's clusters and the in-cluster one.
//
// A Secret holds either a kubeconfig (key "kubeconfig": its current
// context, or its only one) or the parts of one: "server", "token", and
// optionally "ca.crt", "tls.crt" with "tls.key" (a client certificate),
// and "insecure-skip-tls-verify" ("true"). Credentials that run a program
// or read files (exec, auth-provider, token or certificate files) are
// refused: a Secret must carry its credential. The cluster is named by
// the Secret's label ClusterNameLabel, else after the Secret.
//
// A Secret that cannot be used (malformed, refused credentials, a name
// already taken) is logged and shown among the clusters as UNREACHABLE
// with its error; it never stops the others.

// ClusterSecretLabel is the label that marks a Secret as a cluster, with
// the value "true" (DefaultClusterSecretSelector).
const ClusterSecretLabel = "clustergraph.io/cluster"

// ClusterNameLabel names the cluster a Secret registers (default: the
// Secret's name).
const ClusterNameLabel = "clustergraph.io/cluster-name"

// DefaultClusterSecretSelector selects the Secrets that are clusters.
const DefaultClusterSecretSelector = ClusterSecretLabel + "=true"

// ClusterSecrets says where clusters registered as Secrets are.
type ClusterSecrets struct {
	// Namespace holds the Secrets, in the identity cluster.
	Namespace string
	// Selector selects them (default DefaultClusterSecretSelector).
	Selector string
	// Cluster is the cluster they are read from; empty means the default
	// identity cluster (in-cluster, else the kubeconfig's current
	// context). A cluster registered by a Secret never is.
	Cluster string
}

// secretSource is where a Secret's cluster came from, for logs and names.
func secretSource(s *corev1.Secret) string { return "secret " + s.Namespace + "/" + s.Name }

// clusterFromSecret reads one cluster Secret: its name and connection, or
// why it cannot be used.
func clusterFromSecret(s *corev1.Secret) (name string, cfg *rest.Config, err error) {
	name = s.Name
	if n := s.Labels[ClusterNameLabel]; n != "" {
		name = n
	}
	if kc, ok := s.Data["kubeconfig"]; ok {
		cfg, err = kubeconfigSecret(kc)
	} else {
		cfg, err = partsSecret(s.Data)
	}
	if err != nil {
		return name, nil, fmt.Errorf("%s: %w", secretSource(s), err)
	}
	return name, cfg, nil
}

// kubeconfigSecret is the connection of a kubeconfig held in a Secret.
func kubeconfigSecret(b []byte) (*rest.Config, error) {
	raw, err := clientcmd.Load(b)
	if err != nil {
		return nil, errors.New("key kubeconfig is not a kubeconfig" + parseErrorLine(err))
	}
	ctxName := raw.CurrentContext
	if ctxName == "" && len(raw.Contexts) == 1 {
		for n := range raw.Contexts {
			ctxName = n
		}
	}
	kctx, ok := raw.Contexts[ctxName]
	if !ok {
		return nil, fmt.Errorf("key kubeconfig has no current context (and not exactly one context)")
	}
	if err := selfContained(raw.Clusters[kctx.Cluster], raw.AuthInfos[kctx.AuthInfo]); err != nil {
		return nil, fmt.Errorf("key kubeconfig: %w", err)
	}
	cfg, err := clientcmd.NewNonInteractiveClientConfig(*raw, ctxName, &clientcmd.ConfigOverrides{}, nil).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("key kubeconfig: %w", err)
	}
	return cfg, nil
}

// parseErrorLine says where a kubeconfig failed to parse, and no more: the
// decoders' messages quote what they read (a value, a key, an apiVersion),
// and what a cluster Secret holds is a credential, while the error is
// shown to every caller of `clusters`.
func parseErrorLine(err error) string {
	if m := lineOfError.FindStringSubmatch(err.Error()); m != nil {
		return " (YAML or JSON of kind Config, apiVersion v1; the parser stopped at line " + m[1] + ")"
	}
	return " (YAML or JSON of kind Config, apiVersion v1)"
}

var lineOfError = regexp.MustCompile(`\bline (\d+)\b`)

// selfContained refuses what would make a Secret's cluster run a program
// or read a file of this server: the credential must be in the Secret.
func selfContained(c *clientcmdapi.Cluster, a *clientcmdapi.AuthInfo) error {
	switch {
	case c == nil:
		return errors.New("the current context names no cluster")
	case c.Server == "":
		return errors.New("the cluster has no server")
	case c.CertificateAuthority != "":
		return errors.New("certificate-authority names a file; put the CA in certificate-authority-data")
	case a == nil:
		return nil
	case a.Exec != nil || a.AuthProvider != nil:
		return errors.New("exec and auth-provider credentials are not supported: give a token or a client certificate")
	case a.TokenFile != "" || a.ClientCertificate != "" || a.ClientKey != "":
		return errors.New("the credential names a file; put it in the kubeconfig itself (token, client-certificate-data, client-key-data)")
	case a.Impersonate != "" || len(a.ImpersonateGroups) > 0:
		return errors.New("impersonation in a cluster Secret is not supported")
	}
	return nil
}

// partsSecret is the connection given as a Secret's keys.
func partsSecret(d map[string][]byte) (*rest.Config, error) {
	server := strings.TrimSpace(string(d["server"]))
	if server == "" {
		return nil, errors.New(`neither key "kubeconfig" nor key "server" is set`)
	}
	if !strings.HasPrefix(server, "https://") && !strings.HasPrefix(server, "http://") {
		return nil, fmt.Errorf("key server %q is not an http(s) URL", server)
	}
	cfg := &rest.Config{Host: server, BearerToken: strings.TrimSpace(string(d["token"]))}
	cfg.CAData = d["ca.crt"]
	cfg.CertData, cfg.KeyData = d["tls.crt"], d["tls.key"]
	if (len(cfg.CertData) == 0) != (len(cfg.KeyData) == 0) {
		return nil, errors.New("keys tls.crt and tls.key go together")
	}
	if cfg.BearerToken == "" && len(cfg.CertData) == 0 {
		return nil, errors.New(`no credential: set key "token", or "tls.crt" and "tls.key"`)
	}
	switch v := strings.TrimSpace(string(d["insecure-skip-tls-verify"])); v {
	case "", "false":
	case "true":
		cfg.Insecure = true
	default:
		return nil, fmt.Errorf("key insecure-skip-tls-verify must be true or false, got %q", v)
	}
	if cfg.Insecure && len(cfg.CAData) > 0 {
		return nil, errors.New("keys ca.crt and insecure-skip-tls-verify=true exclude each other")
	}
	return cfg, nil
}

// secretHash identifies a Secret's cluster as configured: a change of its
// data or name replaces the cluster.
func secretHash(name string, s *corev1.Secret) string {
	h := sha256.New()
	fmt.Fprintf(h, "secret\x00%s\x00%s/%s\x00", name, s.Namespace, s.Name)
	for _, k := range slices.Sorted(maps.Keys(s.Data)) {
		fmt.Fprintf(h, "%s\x00%d\x00", k, len(s.Data[k]))
		h.Write(s.Data[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// secretWants turns the cluster Secrets into wanted clusters. taken are
// the names the kubeconfig and in-cluster already use. A Secret that
// cannot be used is wanted as a broken cluster showing its error: under
// its cluster name when that is free, else under "secret:NS/NAME".
func secretWants(secrets []*corev1.Secret, taken func(string) bool, wrap func(*rest.Config)) map[string]wanted {
	slices.SortFunc(secrets, func(a, b *corev1.Secret) int { return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name) })
	out := map[string]wanted{}
	for _, s := range secrets {
		name, cfg, err := clusterFromSecret(s)
		hash := secretHash(name, s)
		if err == nil && (taken(name) || out[name].config != nil || out[name].broken != nil) {
			err = fmt.Errorf("%s: cluster name %q is already taken (by the kubeconfig, in-cluster or another Secret); set label %s to another name", secretSource(s), name, ClusterNameLabel)
			name = "secret:" + s.Namespace + "/" + s.Name
		}
		if err != nil {
			if taken(name) || out[name].config != nil {
				name = "secret:" + s.Namespace + "/" + s.Name
			}
			out[name] = wanted{hash: hash, broken: err, source: secretSource(s)}
			continue
		}
		if wrap != nil {
			wrap(cfg)
		}
		out[name] = wanted{config: cfg, hash: hash, source: secretSource(s)}
	}
	return out
}

// followSecrets keeps the clusters registered as Secrets in line with
// them until ctx ends: it watches the Secrets in the source cluster, and
// starts over when that cluster is replaced.
func (r *Registry) followSecrets(ctx context.Context) {
	src := r.cfg.ClusterSecrets
	selector := src.Selector
	if selector == "" {
		selector = DefaultClusterSecretSelector
	}
	var from *Cluster
	stop := func() {}
	defer func() { stop() }()
	tick := time.NewTicker(r.cfg.PollInterval)
	defer tick.Stop()
	for {
		c, err := r.secretSourceCluster(src.Cluster)
		if err == nil && c != from {
			stop()
			from = c
			inner, cancel := context.WithCancel(ctx)
			stop = cancel
			r.log.Info("following cluster Secrets", "cluster", c.Name, "namespace", src.Namespace, "selector", selector)
			r.watchSecrets(inner, c, src.Namespace, selector)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// secretSourceCluster is the cluster the Secrets are read from: never one
// a Secret registered.
func (r *Registry) secretSourceCluster(name string) (*Cluster, error) {
	c, err := r.IdentityCluster(name)
	if err != nil {
		return nil, err
	}
	r.mu.RLock()
	_, fromSecret := r.secretClusters[c.Name]
	r.mu.RUnlock()
	if fromSecret {
		return nil, fmt.Errorf("cluster %s was registered by a Secret", c.Name)
	}
	return c, nil
}

// watchSecrets runs an informer on the cluster Secrets of c until ctx
// ends, reloading the registry on every change.
func (r *Registry) watchSecrets(ctx context.Context, c *Cluster, namespace, selector string) {
	f := informers.NewSharedInformerFactoryWithOptions(c.Typed, 0, informers.WithNamespace(namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = selector }))
	inf := f.Core().V1().Secrets().Informer()
	changed := func() {
		var secrets []*corev1.Secret
		for _, o := range inf.GetStore().List() {
			if s, ok := o.(*corev1.Secret); ok {
				secrets = append(secrets, s)
			}
		}
		r.mu.Lock()
		r.secrets = secrets
		r.mu.Unlock()
		if err := r.Reload(); err != nil {
			r.log.Error("reloading clusters after a cluster Secret changed", "err", err)
		}
	}
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { changed() },
		UpdateFunc: func(_, _ any) { changed() },
		DeleteFunc: func(any) { changed() },
	})
	_ = inf.SetWatchErrorHandlerWithContext(func(ctx context.Context, refl *cache.Reflector, err error) {
		r.log.Warn("cannot watch cluster Secrets (clustergraph's account needs get, list and watch on secrets there)", "cluster", c.Name, "namespace", namespace, "err", err)
		cache.DefaultWatchErrorHandler(ctx, refl, err)
	})
	f.Start(ctx.Done())
}
