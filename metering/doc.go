// Package metering samples each namespace's resource use on a fixed tick
// and stores it through db, which rolls samples up into hour, day, month and
// year records; it also keeps recent node and pod usage for plotting.
//
// It reads the shared informer caches (no apiserver calls but one
// metrics.k8s.io list per cluster per tick) as clustergraph itself, and runs
// on one replica at a time (see lease.RunWhileLeader in k8s/lease). Samples
// taken while the database is down wait in a bounded spool on disk; samples
// it drops past its bound or removes as undecodable are logged as warnings,
// at most once a tick each, with their totals.
package metering
