package terminal

import (
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"

	"github.com/clustergraph/clustergraph/k8s"
)

// ShellConfig configures cluster shells: kubectl in a short-lived pod that
// reaches the apiserver through clustergraph's shell proxy, as the caller.
// An empty Namespace switches cluster shells off.
type ShellConfig struct {
	// Namespace holds the shell pods (the operator creates it).
	Namespace string
	// Image has kubectl and a shell.
	Image string
	// ProxyURL is where shell pods reach clustergraph (its /shell-proxy
	// endpoint), e.g. http://clustergraph.clustergraph.svc:8080.
	ProxyURL string
	// StartTimeout bounds the wait for the pod to run (default 2 minutes).
	StartTimeout time.Duration
	// Tokens are the live shells' proxy credentials.
	Tokens *ShellTokens
}

// ShellSession is what a shell's proxy token stands for.
type ShellSession struct {
	Cluster string
	Subject *k8s.Subject
}

// ShellTokens maps the proxy tokens of running shells to their callers. A
// token exists only while its shell runs.
type ShellTokens struct {
	mu sync.RWMutex
	m  map[string]ShellSession
}

// NewShellTokens returns an empty token table.
func NewShellTokens() *ShellTokens { return &ShellTokens{m: map[string]ShellSession{}} }

// Add mints a token for a caller's shell in a cluster.
func (t *ShellTokens) Add(s ShellSession) string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	tok := hex.EncodeToString(b)
	t.mu.Lock()
	t.m[tok] = s
	t.mu.Unlock()
	return tok
}

// Lookup returns the session of a token.
func (t *ShellTokens) Lookup(tok string) (ShellSession, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	s, ok := t.m[tok]
	return s, ok
}

// Remove ends a token.
func (t *ShellTokens) Remove(tok string) {
	t.mu.Lock()
	delete(t.m, tok)
	t.mu.Unlock()
}
