// Package stream holds the long-lived conversations with a cluster as the
// caller: exec into a container (with the pods/exec check, MayExec, that
// terminals ask again while they run), container logs and the follower that
// streams the logs of pods as they come and go, and the cluster shell's pod
// and its proxy back to the apiserver.
//
// Like package write, everything here impersonates the context's caller
// (package caller); only the cluster shell's own pod is run with
// clustergraph's identity (ExecOptions.AsServer), after its caller's right
// was checked. Sessions, their limits and auditing live in package
// terminal; this package only talks to the apiserver.
package stream
