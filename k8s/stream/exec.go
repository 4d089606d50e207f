package stream

import (
	"context"
	"io"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/streaming/pkg/httpstream"

	"github.com/clustergraph/clustergraph/caller"
	"github.com/clustergraph/clustergraph/errkind"
	"github.com/clustergraph/clustergraph/k8s"
)

// ExecOptions describe a command to run in a container.
type ExecOptions struct {
	Namespace, Pod, Container string
	Command                   []string
	TTY                       bool
	Stdin                     io.Reader
	Stdout, Stderr            io.Writer
	// Resize delivers terminal sizes (TTY only); nil means none.
	Resize remotecommand.TerminalSizeQueue
	// AsServer execs with clustergraph's own identity instead of the
	// caller's: only for the pods clustergraph runs itself (cluster shells).
	AsServer bool
}

// MayExec reports whether the context's caller may run o: create on
// pods/exec of its pod, as the cluster's access sets evaluate RBAC. Exec
// asks it before it starts (and the apiserver asks again, for the
// impersonated caller); a terminal asks it again while its session runs,
// so a revoked right ends the session. Options run AsServer are
// authorized by whoever asked for them (a cluster shell by its own right).
func MayExec(ctx context.Context, c *k8s.Cluster, o ExecOptions) bool {
	return c.Allows(ctx, "create", schema.GroupResource{Resource: "pods/exec"}, o.Namespace, o.Pod)
}

// Exec runs a command in a container as the context's subject (the
// apiserver checks pods/exec for the impersonated caller and audits them),
// over the websocket protocol with a fallback to SPDY for older apiservers.
// It returns when the command exits or ctx ends; FORBIDDEN at once when
// the caller may not exec into the pod (see MayExec).
func Exec(ctx context.Context, c *k8s.Cluster, o ExecOptions) error {
	if !o.AsServer && !MayExec(ctx, c, o) {
		return &k8s.ClusterError{Cluster: c.Name, Err: errkind.Newf(errkind.Forbidden, "you may not exec into pod %s/%s", o.Namespace, o.Pod)}
	}
	if o.AsServer {
		ctx = caller.With(ctx, &caller.Subject{User: "clustergraph", Unrestricted: true})
	}
	cfg, err := c.ConfigFor(ctx)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	req := client.CoreV1().RESTClient().Post().Resource("pods").Namespace(o.Namespace).Name(o.Pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{
			Container: o.Container, Command: o.Command, TTY: o.TTY,
			Stdin: o.Stdin != nil, Stdout: true, Stderr: !o.TTY,
		}, scheme.ParameterCodec)
	ws, err := remotecommand.NewWebSocketExecutor(cfg, "GET", req.URL().String())
	if err != nil {
		return err
	}
	spdy, err := remotecommand.NewSPDYExecutor(cfg, "POST", req.URL())
	if err != nil {
		return err
	}
	exec, err := remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	if err != nil {
		return err
	}
	opts := remotecommand.StreamOptions{Stdin: o.Stdin, Stdout: o.Stdout, Tty: o.TTY, TerminalSizeQueue: o.Resize}
	if !o.TTY {
		opts.Stderr = o.Stderr
	}
	if err := exec.StreamWithContext(ctx, opts); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	return nil
}
