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
	"time"

	"k8s.io/client-go/tools/remotecommand"

	"github.com/clustergraph/clustergraph/k8s"
)

// ErrNoSession means there is no such session of the caller's: unknown,
// ended, or another user's (which is not told apart, so ids cannot be probed).
var ErrNoSession = fmt.Errorf("%w: no such terminal session of yours on this connection", k8s.ErrNotFound)

// Limits bound sessions.
type Limits struct {
	// Idle ends a session after this long without input or output
	// (default 30 minutes).
	Idle time.Duration
	// MaxLength ends a session after this long in any case (default 8 h).
	MaxLength time.Duration
	// MaxFrame bounds one output piece; larger writes are split (default
	// 32 KiB).
	MaxFrame int
}

// ErrIdle and ErrTooLong say why a session was ended by its limits.
var (
	ErrIdle    = errors.New("ended after being idle too long")
	ErrTooLong = errors.New("ended at the maximum session length")
)

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
	// conn is the websocket connection that opened it: input, resize and
	// close are taken on that connection only.
	conn  string
	stdin *io.PipeWriter
	sizes chan remotecommand.TerminalSize
	stop  context.CancelCauseFunc
	// active is signalled on input and output; the idle timer restarts.
	active chan struct{}
}

func (s *Session) touch() {
	select {
	case s.active <- struct{}{}:
	default:
	}
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
	limits   Limits
	mu       sync.Mutex
	sessions map[string]*Session
}

// NewRegistry returns an empty registry.
func NewRegistry(l Limits) *Registry {
	if l.Idle <= 0 {
		l.Idle = 30 * time.Minute
	}
	if l.MaxLength <= 0 {
		l.MaxLength = 8 * time.Hour
	}
	if l.MaxFrame <= 0 {
		l.MaxFrame = 32 << 10
	}
	return &Registry{limits: l, sessions: map[string]*Session{}}
}

// writer turns a stream of the command into Outputs of at most max bytes.
type writer struct {
	ctx    context.Context
	s      *Session
	out    chan<- Output
	stderr bool
	max    int
}

func (w writer) Write(p []byte) (int, error) {
	w.s.touch()
	for written := 0; written < len(p); {
		n := min(len(p)-written, w.max)
		select {
		case w.out <- Output{Stderr: w.stderr, Data: append([]byte(nil), p[written:written+n]...)}:
			written += n
		case <-w.ctx.Done():
			return written, w.ctx.Err()
		}
	}
	return len(p), nil
}

// Start runs the command in the container as the context's subject and
// returns its session. Output goes to out, which Start's goroutine closes
// after the final Done output; the session ends when the command exits,
// when ctx ends (the subscriber left) or on Close.
func (r *Registry) Start(ctx context.Context, c *k8s.Cluster, o k8s.ExecOptions, cols, rows int) (*Session, <-chan Output) {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	ctx, stop := context.WithCancelCause(ctx)
	pr, pw := io.Pipe()
	s := &Session{ID: hex.EncodeToString(b), owner: owner(ctx), conn: connectionOf(ctx), stdin: pw, sizes: make(chan remotecommand.TerminalSize, 1), stop: stop, active: make(chan struct{}, 1)}
	if o.TTY && cols > 0 && rows > 0 {
		s.sizes <- remotecommand.TerminalSize{Width: uint16(cols), Height: uint16(rows)}
	}
	out := make(chan Output, 16)
	o.Stdin = pr
	o.Stdout = writer{ctx: ctx, s: s, out: out, max: r.limits.MaxFrame}
	o.Stderr = writer{ctx: ctx, s: s, out: out, stderr: true, max: r.limits.MaxFrame}
	if o.TTY {
		o.Resize = sizeQueue{ctx: ctx, sizes: s.sizes}
	}
	r.mu.Lock()
	r.sessions[s.ID] = s
	r.mu.Unlock()
	go s.watchdog(ctx, r.limits)
	go func() {
		defer close(out)
		err := c.Exec(ctx, o)
		if cause := context.Cause(ctx); errors.Is(cause, ErrIdle) || errors.Is(cause, ErrTooLong) {
			err = cause
		}
		r.mu.Lock()
		delete(r.sessions, s.ID)
		r.mu.Unlock()
		stop(nil)
		_ = pr.Close()
		// The subscriber may be gone; the final output must not block.
		select {
		case out <- Output{Done: true, Err: err}:
		default:
		}
	}()
	return s, out
}

// watchdog ends the session when it idles or runs too long.
func (s *Session) watchdog(ctx context.Context, l Limits) {
	idle := time.NewTimer(l.Idle)
	defer idle.Stop()
	deadline := time.NewTimer(l.MaxLength)
	defer deadline.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.active:
			idle.Reset(l.Idle)
		case <-idle.C:
			s.stop(ErrIdle)
			return
		case <-deadline.C:
			s.stop(ErrTooLong)
			return
		}
	}
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
	if !ok || s.owner != owner(ctx) || s.conn == "" || s.conn != connectionOf(ctx) {
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
	s.touch()
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
	// Coalesce: a size not yet taken is replaced by the newer one.
	size := remotecommand.TerminalSize{Width: uint16(cols), Height: uint16(rows)}
	for {
		select {
		case s.sizes <- size:
			return nil
		default:
		}
		select {
		case <-s.sizes:
		default:
		}
	}
}

// Close ends a session.
func (r *Registry) Close(ctx context.Context, id string) error {
	s, err := r.session(ctx, id)
	if err != nil {
		return err
	}
	_ = s.stdin.Close()
	s.stop(nil)
	return nil
}

// Limits are the registry's session bounds.
func (r *Registry) Limits() Limits { return r.limits }

type connKey struct{}

// WithConnection marks a context as one websocket connection's: every
// operation on the connection inherits it. Sessions are bound to the
// connection that opened them, so a session id that leaks (a log, another
// tab) is useless anywhere else, even with the same user's token.
func WithConnection(ctx context.Context) context.Context {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return context.WithValue(ctx, connKey{}, hex.EncodeToString(b))
}

func connectionOf(ctx context.Context) string {
	c, _ := ctx.Value(connKey{}).(string)
	return c
}
