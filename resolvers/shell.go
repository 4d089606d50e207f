package resolvers

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/clustergraph/clustergraph/caller"
	"github.com/clustergraph/clustergraph/errkind"
	"github.com/clustergraph/clustergraph/graph/model"
	"github.com/clustergraph/clustergraph/k8s"
	"github.com/clustergraph/clustergraph/k8s/stream"
	"github.com/clustergraph/clustergraph/terminal"
)

// clusterShell starts a shell pod, execs a shell in it (as clustergraph:
// the pod is clustergraph's), and streams the session like a terminal.
// kubectl in the pod holds only a proxy token that acts as the caller and
// dies with the session, when the pod is removed too.
func (r *Resolver) clusterShell(ctx context.Context, cluster string, cols, rows *int) (<-chan *model.TerminalFrame, error) {
	sh := r.Shell
	if sh == nil || sh.Namespace == "" || sh.ProxyURL == "" {
		return nil, fmt.Errorf("%w: cluster shells are not configured on this server (--shell-namespace, --shell-proxy-url)", errkind.Unavailable)
	}
	c, err := r.Registry.Cluster(cluster)
	if err != nil {
		return nil, err
	}
	subject := caller.From(ctx)
	if subject == nil {
		return nil, fmt.Errorf("%w: no caller", errkind.Forbidden)
	}
	authorize := terminal.ShellRight(c, sh.Namespace)
	if !authorize(ctx) {
		return nil, &k8s.ClusterError{Cluster: c.Name, Err: fmt.Errorf("%w: a cluster shell needs create on %s in namespace %s", errkind.Forbidden, terminal.ShellResource, sh.Namespace)}
	}
	token, err := sh.Tokens.Add(terminal.ShellSession{Cluster: c.Name, Subject: subject}, sh.MaxPerUser)
	if err != nil {
		return nil, err
	}
	timeout := sh.StartTimeout
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	pod, cleanup, err := stream.StartShellPod(ctx, c, stream.ShellPod{
		Namespace: sh.Namespace, Image: sh.Image, Session: terminal.NewShellID(), User: subject.User,
		Kubeconfig: stream.ShellKubeconfig(strings.TrimSuffix(sh.ProxyURL, "/")+"/shell-proxy/"+token, c.Name),
		MaxLength:  r.Terminals.Limits().MaxLength,
	}, timeout)
	r.Audit.Record(ctx, "clusterShell.start", c.Name, "pods/"+sh.Namespace+"/"+pod, err)
	if err != nil {
		sh.Tokens.Remove(token)
		return nil, err
	}
	w, h := 0, 0
	if cols != nil && rows != nil {
		w, h = *cols, *rows
	}
	_, cmd, _ := execTarget(nil, nil, nil)
	frames, err := r.openTerminal(ctx, c, stream.ExecOptions{Namespace: sh.Namespace, Pod: pod, Container: "shell", Command: cmd, TTY: true, AsServer: true}, w, h, authorize)
	if err != nil {
		sh.Tokens.Remove(token)
		cleanup()
		return nil, err
	}
	out := make(chan *model.TerminalFrame)
	go func() {
		defer close(out)
		defer func() {
			sh.Tokens.Remove(token)
			cleanup()
			r.Audit.Record(ctx, "clusterShell.end", c.Name, "pods/"+sh.Namespace+"/"+pod, nil)
		}()
		for f := range frames {
			select {
			case out <- f:
			case <-ctx.Done():
				// Drain: openTerminal ends on ctx too.
			}
		}
	}()
	return out, nil
}
