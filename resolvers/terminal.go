package resolvers

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"

	corev1 "k8s.io/api/core/v1"
	utilexec "k8s.io/client-go/util/exec"

	"github.com/clustergraph/clustergraph/errkind"
	"github.com/clustergraph/clustergraph/graph/model"
	"github.com/clustergraph/clustergraph/k8s"
	"github.com/clustergraph/clustergraph/k8s/stream"
	"github.com/clustergraph/clustergraph/terminal"
)

// openTerminal starts a session and turns its output into frames. The
// session's output is read to its end whatever happens to the subscriber,
// so its end is always audited.
func (r *Resolver) openTerminal(ctx context.Context, c *k8s.Cluster, o stream.ExecOptions, cols, rows int, authorize terminal.Authorize) (<-chan *model.TerminalFrame, error) {
	s, outputs, err := r.Terminals.Start(ctx, c, o, cols, rows, authorize)
	if err != nil {
		return nil, err
	}
	object := "pods/" + o.Namespace + "/" + o.Pod + "/" + o.Container
	r.Audit.Record(ctx, "terminal.start", c.Name, object, nil, "session", s.ID, "command", o.Command, "tty", o.TTY)
	out := make(chan *model.TerminalFrame)
	go func() {
		defer close(out)
		gone := false // the subscriber left: outputs are drained, not sent
		send := func(f *model.TerminalFrame) bool {
			if gone {
				return false
			}
			f.Session = s.ID
			select {
			case out <- f:
				return true
			case <-ctx.Done():
				gone = true
				return false
			}
		}
		send(&model.TerminalFrame{Type: model.TerminalFrameTypeStarted})
		for o := range outputs {
			if o.Done {
				err := o.Err
				if err == nil && gone {
					err = errSubscriberLeft
				}
				r.Audit.Record(context.WithoutCancel(ctx), "terminal.end", c.Name, object, err, "session", s.ID)
				send(exitFrame(o.Err))
				continue
			}
			t := model.TerminalFrameTypeStdout
			if o.Stderr {
				t = model.TerminalFrameTypeStderr
			}
			if gone {
				continue
			}
			text := strings.ToValidUTF8(string(o.Data), "\uFFFD")
			b64 := base64.StdEncoding.EncodeToString(o.Data)
			send(&model.TerminalFrame{Type: t, Data: &text, DataBase64: &b64})
		}
	}()
	return out, nil
}

// execTerminal opens a terminal in a pod's container, for as long as the
// caller may exec into it.
func (r *Resolver) execTerminal(ctx context.Context, c *k8s.Cluster, o stream.ExecOptions, cols, rows int) (<-chan *model.TerminalFrame, error) {
	return r.openTerminal(ctx, c, o, cols, rows, terminal.ExecRight(c, o))
}

// errSubscriberLeft is the audited end of a session whose subscriber left.
var errSubscriberLeft = errors.New("the subscriber left")

// exitFrame says how a command ended: its exit code when it ran to an
// end, or the error that cut it short.
func exitFrame(err error) *model.TerminalFrame {
	f := &model.TerminalFrame{Type: model.TerminalFrameTypeExit}
	code := 0
	var exit utilexec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitStatus()
	default:
		msg := err.Error()
		f.Error = &msg
		return f
	}
	f.ExitCode = &code
	return f
}

// execTarget validates a terminal's container and command.
func execTarget(pod *corev1.Pod, container *string, command []string) (string, []string, error) {
	ct := ""
	var names []string
	if pod != nil {
		names = stream.ContainersOf(pod, false)
		ct = names[0]
	}
	if container != nil {
		ct = *container
		found := false
		for _, n := range names {
			found = found || n == ct
		}
		if !found {
			return "", nil, errkind.BadInputf("pod %s/%s has no container %q (it has %v)", pod.Namespace, pod.Name, ct, names)
		}
	}
	if len(command) == 0 {
		// A shell found in the container: bash when there is one, else sh.
		command = []string{"/bin/sh", "-c", "if command -v bash >/dev/null 2>&1; then exec bash; else exec sh; fi"}
	}
	return ct, command, nil
}
