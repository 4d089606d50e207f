// Package resolvers holds the hand-written GraphQL resolvers. They are thin:
// check the input, make one call into loaders or k8s, convert. Helpers live
// in files other than *.resolvers.go, which gqlgen rewrites.
package resolvers

import (
	"github.com/clustergraph/clustergraph/audit"
	"github.com/clustergraph/clustergraph/k8s"
	"github.com/clustergraph/clustergraph/loaders"
	"github.com/clustergraph/clustergraph/terminal"
)

// Resolver is the root resolver: it holds the long-lived dependencies.
// Request-scoped values (loaders) travel in the context.
type Resolver struct {
	Registry *k8s.Registry
	// MaxPage bounds first/limit on every list; it is also the default.
	MaxPage int
	// Terminals holds the running terminal sessions.
	Terminals *terminal.Registry
	// Audit records mutations and terminal sessions.
	Audit *audit.Log
	// VersionsConfigMap names the ConfigMap of component versions,
	// "namespace/name"; empty for none.
	VersionsConfigMap string
	// Records is the database of metering, alerts and archived events, and
	// the alert stream, as the caller may use them (authorized in
	// loaders). Without a database (a nil Records, or one over a nil
	// handle) its calls say so. Resolvers hold no database handle of
	// their own, and internal/layers' Reserved keeps them from using one.
	Records *loaders.Records
	// Shell configures cluster shells; nil or an empty namespace: none.
	Shell *terminal.ShellConfig
}
