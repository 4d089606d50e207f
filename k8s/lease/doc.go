// Package lease runs work on one replica at a time: leader election over a
// coordination.k8s.io Lease in one member cluster, with clustergraph's own
// identity (never a caller's). The background work that must not run twice
// (the metering collector and the event archiver) runs inside
// RunWhileLeader.
package lease
