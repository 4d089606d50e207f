// Package terminal keeps the interactive terminal sessions (pod exec) that
// subscriptions open: their stdin, their window size and their end. Input
// arrives by mutations, possibly on another connection, so sessions live in
// a registry keyed by an unguessable id and bound to the user who opened
// them.
package terminal

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"

	"k8s.io/client-go/tools/remotecommand"

	"github.com/clustergraph/clustergraph/k8s"
)

// ErrNoSession means there is no such session of the caller's: unknown,
// ended, or another user's (which is not told apart, so ids cannot be probed).
var ErrNoSession = fmt.Errorf("%w: no such terminal session of yours", k8s.ErrNotFound)

// Output is one piece of a session's output, or its end.
type Output struct {
	Stderr bool
	Data   []byte
	// Done marks the end; Err says why when it was not a clean exit.
	Done bool
	Err  error
}

// Session is one running terminal.
type Session struct {
	ID    string
	owner string
	stdin *io.PipeWriter
	sizes chan remotecommand.TerminalSize
	stop  context.CancelFunc
}

// Next implements remotecommand.TerminalSizeQueue.
type sizeQueue struct {
	ctx   context.Context
	sizes chan remotecommand.TerminalSize
}

func (q sizeQueue) Next() *remotecommand.TerminalSize {
	select {
	case s := <-q.sizes:
		return &s
	case <-q.ctx.Done():
		return nil
	}
}

// Registry holds the running sessions.
type Registry struct {
	mu       sync.Mutex
	sessions map[string]*Session
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{sessions: map[string]*Session{}} }

// writer turns a stream of the command into Outputs.
type writer struct {
	ctx    context.Context
	out    chan<- Output
	stderr bool
}

func (w writer) Write(p []byte) (int, error) {
	select {
	case w.out <- Output{Stderr: w.stderr, Data: append([]byte(nil), p...)}:
		return len(p), nil
	case <-w.ctx.Done():
		return 0, w.ctx.Err()
	}
}

// Start runs the command in the container as the context's subject and
// returns its session. Output goes to out, which Start's goroutine closes
// after the final Done output; the session ends when the command exits,
// when ctx ends (the subscriber left) or on Close.
func (r *Registry) Start(ctx context.Context, c *k8s.Cluster, o k8s.ExecOptions, cols, rows int) (*Session, <-chan Output) {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	ctx, stop := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	s := &Session{ID: hex.EncodeToString(b), owner: owner(ctx), stdin: pw, sizes: make(chan remotecommand.TerminalSize, 4), stop: stop}
	if o.TTY && cols > 0 && rows > 0 {
		s.sizes <- remotecommand.TerminalSize{Width: uint16(cols), Height: uint16(rows)}
	}
	out := make(chan Output, 16)
	o.Stdin = pr
	o.Stdout = writer{ctx: ctx, out: out}
	o.Stderr = writer{ctx: ctx, out: out, stderr: true}
	if o.TTY {
		o.Resize = sizeQueue{ctx: ctx, sizes: s.sizes}
	}
	r.mu.Lock()
	r.sessions[s.ID] = s
	r.mu.Unlock()
	go func() {
		defer close(out)
		err := c.Exec(ctx, o)
		r.mu.Lock()
		delete(r.sessions, s.ID)
		r.mu.Unlock()
		stop()
		_ = pr.Close()
		// The subscriber may be gone; the final output must not block.
		select {
		case out <- Output{Done: true, Err: err}:
		default:
		}
	}()
	return s, out
}

func owner(ctx context.Context) string {
	if s := k8s.SubjectFrom(ctx); s != nil {
		return s.User
	}
	return ""
}

func (r *Registry) session(ctx context.Context, id string) (*Session, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.sessions[id]
	if !ok || s.owner != owner(ctx) {
		return nil, ErrNoSession
	}
	return s, nil
}

// Input writes to a session's stdin.
func (r *Registry) Input(ctx context.Context, id string, data []byte) error {
	s, err := r.session(ctx, id)
	if err != nil {
		return err
	}
	if _, err := s.stdin.Write(data); err != nil {
		if errors.Is(err, io.ErrClosedPipe) {
			return ErrNoSession
		}
		return err
	}
	return nil
}

// Resize changes a session's window size.
func (r *Registry) Resize(ctx context.Context, id string, cols, rows int) error {
	s, err := r.session(ctx, id)
	if err != nil {
		return err
	}
	select {
	case s.sizes <- remotecommand.TerminalSize{Width: uint16(cols), Height: uint16(rows)}:
	default: // a burst of resizes: the latest ones that fit are enough
	}
	return nil
}

// Close ends a session.
func (r *Registry) Close(ctx context.Context, id string) error {
	s, err := r.session(ctx, id)
	if err != nil {
		return err
	}
	_ = s.stdin.Close()
	s.stop()
	return nil
}
