package terminal

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/clustergraph/clustergraph/caller"
	"github.com/clustergraph/clustergraph/errkind"
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
	// MaxPerUser bounds one user's shells running at once (default 2).
	MaxPerUser int
}

// ShellResource is what a cluster shell needs a grant on: create on
// clustershells.clustergraph.io in the shell namespace (a Role there) or
// cluster-wide. A right of its own, not create on pods/exec in the shell
// namespace, which would let the holder exec into other users' shell pods
// and take their proxy credentials.
var ShellResource = schema.GroupResource{Group: "clustergraph.io", Resource: "clustershells"}

// ShellRight is the right to open (and keep) a cluster shell.
func ShellRight(c *k8s.Cluster, namespace string) Authorize {
	return func(ctx context.Context) bool {
		return c.Allows(ctx, "create", ShellResource, namespace, "")
	}
}

// ErrTooManyShells refuses a shell past ShellConfig.MaxPerUser.
var ErrTooManyShells = fmt.Errorf("%w: you already run the most cluster shells allowed at once; close one first", errkind.BadInput)

// ShellSession is what a shell's proxy token stands for.
type ShellSession struct {
	Cluster string
	Subject *caller.Subject
}

// ShellTokens maps the proxy tokens of running shells to their callers. A
// token exists only while its shell runs.
type ShellTokens struct {
	mu sync.RWMutex
	m  map[string]ShellSession
}

// NewShellTokens returns an empty token table.
func NewShellTokens() *ShellTokens { return &ShellTokens{m: map[string]ShellSession{}} }

// Add mints a token for a caller's shell in a cluster, unless the caller
// already runs maxShells shells (ErrTooManyShells; maxShells <= 0 means 2).
func (t *ShellTokens) Add(s ShellSession, maxShells int) (string, error) {
	if maxShells <= 0 {
		maxShells = 2
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, other := range t.m {
		if other.Subject != nil && s.Subject != nil && other.Subject.User == s.Subject.User {
			n++
		}
	}
	if n >= maxShells {
		return "", ErrTooManyShells
	}
	tok := randomHex(32)
	t.m[tok] = s
	return tok, nil
}

// randomHex is n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// NewShellID names a shell's pod: random, and unrelated to its token, so
// nothing anyone may read of the pod reveals the token.
func NewShellID() string { return randomHex(16) }

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
