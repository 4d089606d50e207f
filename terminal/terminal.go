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

	"github.com/clustergraph/clustergraph/caller"
	"github.com/clustergraph/clustergraph/errkind"
	"github.com/clustergraph/clustergraph/k8s"
	"github.com/clustergraph/clustergraph/k8s/stream"
)

// ErrNoSession means there is no such session of the caller's: unknown,
// ended, or another user's (which is not told apart, so ids cannot be probed).
var ErrNoSession = fmt.Errorf("%w: no such terminal session of yours on this connection", errkind.NotFound)

// Limits bound sessions.
type Limits struct {
	// Idle ends a session after this long without input (default 30
	// minutes). Output does not count: a command that prints forever
	// (top, tail -f) keeps nobody at the keyboard.
	Idle time.Duration
	// Recheck is how often a running session's right to exec is checked
	// again (default 10 s): a session whose caller lost it ends.
	Recheck time.Duration
	// MaxLength ends a session after this long in any case (default 8 h).
	MaxLength time.Duration
	// MaxFrame bounds one output piece; larger writes are split (default
	// 32 KiB).
	MaxFrame int
	// MaxPerUser bounds one user's sessions running at once, on all their
	// sockets (default 10): each holds an exec stream to an apiserver.
	MaxPerUser int
}

// ErrIdle and ErrTooLong say why a session was ended by its limits.
var (
	ErrIdle    = errors.New("ended after being idle too long")
	ErrTooLong = errors.New("ended at the maximum session length")
	// ErrRevoked ends a session whose caller may no longer exec into its
	// container.
	ErrRevoked = fmt.Errorf("%w: ended: you may no longer exec into this container", errkind.Forbidden)
)

// ErrTooManySessions refuses a session past Limits.MaxPerUser.
var ErrTooManySessions = fmt.Errorf("%w: too many terminal sessions", errkind.BadInput)

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
	// active is signalled on input; the idle timer restarts.
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
	if l.Recheck <= 0 {
		l.Recheck = 10 * time.Second
	}
	if l.MaxPerUser <= 0 {
		l.MaxPerUser = 10
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
	gate   *outGate
}

// outGate keeps out open while a writer may send to it: the exec's copy
// goroutines can still be writing when Exec returns, and a send on the
// closed channel would panic.
type outGate struct {
	mu     sync.RWMutex
	closed bool
}

func (w writer) Write(p []byte) (int, error) {
	w.gate.mu.RLock()
	defer w.gate.mu.RUnlock()
	if w.gate.closed {
		return 0, io.ErrClosedPipe
	}
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

// Authorize reports whether the context's caller may (still) run the
// session: checked before it starts and every Limits.Recheck while it runs.
type Authorize func(ctx context.Context) bool

// ExecRight is the right to exec into the options' container, as the
// stream package defines it (stream.MayExec).
func ExecRight(c *k8s.Cluster, o stream.ExecOptions) Authorize {
	return func(ctx context.Context) bool { return stream.MayExec(ctx, c, o) }
}

// Start runs the command in the container as the context's subject and
// returns its session, or a refusal: FORBIDDEN when authorize says no,
// ErrTooManySessions when the caller already runs Limits.MaxPerUser.
// Output goes to out, which Start's goroutine closes after the final Done
// output (every output is delivered: the reader must drain out); the
// session ends when the command exits, when ctx ends (the subscriber left),
// on Close, at its limits, or once authorize says no.
func (r *Registry) Start(ctx context.Context, c *k8s.Cluster, o stream.ExecOptions, cols, rows int, authorize Authorize) (*Session, <-chan Output, error) {
	if !authorize(ctx) {
		return nil, nil, &k8s.ClusterError{Cluster: c.Name, Err: fmt.Errorf("%w: you may not exec into pod %s/%s", errkind.Forbidden, o.Namespace, o.Pod)}
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	ctx, stop := context.WithCancelCause(ctx)
	pr, pw := io.Pipe()
	s := &Session{ID: hex.EncodeToString(b), owner: owner(ctx), conn: connectionOf(ctx), stdin: pw, sizes: make(chan remotecommand.TerminalSize, 1), stop: stop, active: make(chan struct{}, 1)}
	if !r.register(s) {
		stop(nil)
		return nil, nil, fmt.Errorf("%w: you already run %d, the most one user may; close one first", ErrTooManySessions, r.limits.MaxPerUser)
	}
	if o.TTY && cols > 0 && rows > 0 {
		s.sizes <- remotecommand.TerminalSize{Width: uint16(cols), Height: uint16(rows)}
	}
	out := make(chan Output, 16)
	gate := &outGate{}
	o.Stdin = pr
	o.Stdout = writer{ctx: ctx, s: s, out: out, max: r.limits.MaxFrame, gate: gate}
	o.Stderr = writer{ctx: ctx, s: s, out: out, stderr: true, max: r.limits.MaxFrame, gate: gate}
	if o.TTY {
		o.Resize = sizeQueue{ctx: ctx, sizes: s.sizes}
	}
	go s.watchdog(ctx, r.limits, authorize)
	go func() {
		defer close(out)
		err := stream.Exec(ctx, c, o)
		if cause := context.Cause(ctx); errors.Is(cause, ErrIdle) || errors.Is(cause, ErrTooLong) || errors.Is(cause, ErrRevoked) {
			err = cause
		}
		r.mu.Lock()
		delete(r.sessions, s.ID)
		r.mu.Unlock()
		// Close stdin from the writer's side: client-go's copy, still
		// reading it, ends at EOF as after the last input (a reader closed
		// under it logged "Copying stdin failed" at every exit), and an
		// Input still under way gets ErrClosedPipe all the same.
		_ = pw.Close()
		// Output still on its way is delivered before the gate closes:
		// Lock waits for every Write under way, and each finishes because
		// the reader drains out. (Canceling the writers first dropped the
		// command's last output whenever out was full at its exit, as a
		// slow reader under load made it.) A session that was cut (idle,
		// too long, revoked, its subscriber gone) has its context done
		// already, so its writers give up at once.
		gate.mu.Lock()
		gate.closed = true
		gate.mu.Unlock()
		stop(nil)
		// The reader drains out to its end (see openTerminal), so the
		// final output is never lost, and the audit's end record with it.
		out <- Output{Done: true, Err: err}
	}()
	return s, out, nil
}

// watchdog ends the session when it idles, runs too long, or its caller
// loses the right to run it.
func (s *Session) watchdog(ctx context.Context, l Limits, authorize Authorize) {
	idle := time.NewTimer(l.Idle)
	defer idle.Stop()
	deadline := time.NewTimer(l.MaxLength)
	defer deadline.Stop()
	recheck := time.NewTicker(l.Recheck)
	defer recheck.Stop()
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
		case <-recheck.C:
			if !authorize(ctx) {
				s.stop(ErrRevoked)
				return
			}
		}
	}
}

// register adds a session unless its owner already runs MaxPerUser.
func (r *Registry) register(s *Session) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, other := range r.sessions {
		if other.owner == s.owner {
			n++
		}
	}
	if n >= r.limits.MaxPerUser {
		return false
	}
	r.sessions[s.ID] = s
	return true
}

func owner(ctx context.Context) string {
	if s := caller.From(ctx); s != nil {
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
