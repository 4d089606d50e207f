// Package metrics owns clustergraph's Prometheus series: one registry
// (Registry), the Go and process collectors, the vectors the rooms record
// into through this package's functions, and the collector that reads
// per-cluster and outbox state at scrape time from the sources the server
// wires in (WatchClusters, WatchSpool). Handler serves the exposition.
//
// The names follow Prometheus' conventions: the clustergraph_ prefix, base
// units (seconds, bytes), _total on counters. Every label is bounded by
// configuration or by the code: cluster names (operators configure
// clusters), the fixed set of cached resources, GraphQL error codes,
// operation types, the Subscription type's root fields, and operation
// names kept to the persisted queries or to a capped set (Names). No label
// ever carries a user name, a token, an object's or a namespace's name.
//
// It imports nothing of the project, so every room may record into it;
// the series are process-wide, as client-go's request hooks (which
// ObserveClientGo installs, once per process) are.
package metrics
