package k8s

import (
	"context"
	"io"

	"github.com/clustergraph/clustergraph/caller"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"
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

// Exec runs a command in a container as the context's subject (the
// apiserver checks pods/exec for the impersonated caller and audits them),
// over the websocket protocol with a fallback to SPDY for older apiservers.
// It returns when the command exits or ctx ends.
func (c *Cluster) Exec(ctx context.Context, o ExecOptions) error {
	if o.AsServer {
		ctx = caller.With(ctx, &caller.Subject{User: "clustergraph", Unrestricted: true})
	}
	cfg, err := c.configFor(ctx)
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
