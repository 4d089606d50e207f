package terminal

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/client-go/tools/remotecommand"

	"github.com/clustergraph/clustergraph/caller"
	"github.com/clustergraph/clustergraph/errkind"
	"github.com/clustergraph/clustergraph/k8s"
	"github.com/clustergraph/clustergraph/k8s/stream"
)

// The tests of this file need no cluster: they drive the registry, the
// session's limits and its output as Start wires them, with the exec
// itself (which needs an apiserver) left to api's terminal tests.

// TestLimitsDefaults: limits left zero get their documented defaults;
// those set are kept.
func TestLimitsDefaults(t *testing.T) {
	want := Limits{Idle: 30 * time.Minute, Recheck: 10 * time.Second, MaxLength: 8 * time.Hour, MaxFrame: 32 << 10, MaxPerUser: 10}
	if diff := cmp.Diff(want, NewRegistry(Limits{}).Limits()); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	set := Limits{Idle: time.Minute, Recheck: time.Second, MaxLength: time.Hour, MaxFrame: 1024, MaxPerUser: 2}
	if diff := cmp.Diff(set, NewRegistry(set).Limits()); diff != "" {
		t.Errorf("set limits (-want +got):\n%s", diff)
	}
}

// TestStartRefusedWithoutTheRight: a caller the right refuses gets
// FORBIDDEN naming the cluster, and no session is registered.
func TestStartRefusedWithoutTheRight(t *testing.T) {
	r := NewRegistry(Limits{})
	ctx := caller.With(WithConnection(context.Background()), &caller.Subject{User: "alice"})
	_, _, err := r.Start(ctx, &k8s.Cluster{Name: "east"}, stream.ExecOptions{Namespace: "shop", Pod: "web-1"}, 80, 24, func(context.Context) bool { return false })
	var ce *k8s.ClusterError
	if !errors.Is(err, errkind.Forbidden) || !errors.As(err, &ce) || ce.Cluster != "east" {
		t.Errorf("Start = %v, want a FORBIDDEN error of cluster east", err)
	}
	if len(r.sessions) != 0 {
		t.Errorf("%d sessions registered after a refusal", len(r.sessions))
	}
}

// testSession registers a session of user, opened on the connection of
// ctx, as Start does (without an exec behind it): stdin is the returned
// reader, and the session's context ends on stop.
func testSession(ctx context.Context, t *testing.T, r *Registry, id string) (*Session, *io.PipeReader, context.Context) {
	t.Helper()
	sctx, stop := context.WithCancelCause(ctx)
	t.Cleanup(func() { stop(nil) })
	pr, pw := io.Pipe()
	s := &Session{ID: id, owner: owner(ctx), conn: connectionOf(ctx), stdin: pw,
		sizes: make(chan remotecommand.TerminalSize, 1), stop: stop, active: make(chan struct{}, 1)}
	if !r.register(s) {
		t.Fatalf("session %s not registered", id)
	}
	return s, pr, sctx
}

// TestSessionsAreTheirOwnersOnTheirConnection: input, resize and close
// reach a session from the user who opened it on the connection that
// opened it only; anything else reads as no such session (NOT_FOUND), so
// that ids cannot be probed.
func TestSessionsAreTheirOwnersOnTheirConnection(t *testing.T) {
	r := NewRegistry(Limits{})
	conn := WithConnection(context.Background())
	alice := caller.With(conn, &caller.Subject{User: "alice"})
	_, stdin, sctx := testSession(alice, t, r, "s1")

	for name, ctx := range map[string]context.Context{
		"another user on the connection":   caller.With(conn, &caller.Subject{User: "bob"}),
		"the user on another connection":   caller.With(WithConnection(context.Background()), &caller.Subject{User: "alice"}),
		"the user without a connection":    caller.With(context.Background(), &caller.Subject{User: "alice"}),
		"no user on the connection":        conn,
		"the owner asking for another one": nil,
	} {
		id := "s1"
		if ctx == nil {
			ctx, id = alice, "s2"
		}
		for op, err := range map[string]error{
			"input":  r.Input(ctx, id, []byte("ls\n")),
			"resize": r.Resize(ctx, id, 100, 40),
			"close":  r.Close(ctx, id),
		} {
			if !errors.Is(err, ErrNoSession) || !errors.Is(err, errkind.NotFound) {
				t.Errorf("%s: %s = %v, want ErrNoSession", name, op, err)
			}
		}
	}
	if sctx.Err() != nil {
		t.Fatal("a refused close ended the session")
	}

	got := make(chan string, 1)
	go func() {
		b := make([]byte, 16)
		n, _ := stdin.Read(b)
		got <- string(b[:n])
	}()
	if err := r.Input(alice, "s1", []byte("ls\n")); err != nil {
		t.Fatalf("the owner's input: %v", err)
	}
	if s := <-got; s != "ls\n" {
		t.Errorf("stdin read %q", s)
	}
	if err := r.Close(alice, "s1"); err != nil {
		t.Fatalf("the owner's close: %v", err)
	}
	if sctx.Err() == nil {
		t.Error("close did not end the session")
	}
	if err := r.Input(alice, "s1", []byte("x")); !errors.Is(err, ErrNoSession) {
		t.Errorf("input after close = %v, want ErrNoSession", err)
	}
}

// TestResizeKeepsTheLatest: sizes not yet taken by the exec are replaced
// by newer ones, so a resize never blocks and the exec gets the last.
func TestResizeKeepsTheLatest(t *testing.T) {
	r := NewRegistry(Limits{})
	alice := caller.With(WithConnection(context.Background()), &caller.Subject{User: "alice"})
	_, _, sctx := testSession(alice, t, r, "s1")
	for _, cols := range []int{80, 100, 120} {
		if err := r.Resize(alice, "s1", cols, 40); err != nil {
			t.Fatal(err)
		}
	}
	q := sizeQueue{ctx: sctx, sizes: r.sessions["s1"].sizes}
	if got := q.Next(); got == nil || *got != (remotecommand.TerminalSize{Width: 120, Height: 40}) {
		t.Errorf("next size = %+v, want 120x40", got)
	}
	r.sessions["s1"].stop(nil)
	if got := q.Next(); got != nil {
		t.Errorf("next size of an ended session = %+v, want none", got)
	}
}

// TestSessionCapPerUser: a user runs at most MaxPerUser sessions; another
// user is not held back by them.
func TestSessionCapPerUser(t *testing.T) {
	r := NewRegistry(Limits{MaxPerUser: 2})
	conn := WithConnection(context.Background())
	alice := caller.With(conn, &caller.Subject{User: "alice"})
	testSession(alice, t, r, "a1")
	testSession(alice, t, r, "a2")
	if r.register(&Session{ID: "a3", owner: "alice"}) {
		t.Error("a third session of alice was registered")
	}
	testSession(caller.With(conn, &caller.Subject{User: "bob"}), t, r, "b1")
}

// TestOutputFrames: output is sent in pieces of at most MaxFrame bytes,
// copied (the exec reuses its buffer), marked stdout or stderr; after the
// session's end a write fails instead of sending on a closed channel, and
// a write nobody reads gives up when the session's context ends.
func TestOutputFrames(t *testing.T) {
	out := make(chan Output, 8)
	gate := &outGate{}
	w := writer{ctx: context.Background(), out: out, stderr: true, max: 4, gate: gate}
	p := []byte("hello world")
	if n, err := w.Write(p); n != len(p) || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	copy(p, "XXXXXXXXXXX")
	close(out)
	var got []Output
	for o := range out {
		got = append(got, o)
	}
	want := []Output{{Stderr: true, Data: []byte("hell")}, {Stderr: true, Data: []byte("o wo")}, {Stderr: true, Data: []byte("rld")}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("frames (-want +got):\n%s", diff)
	}

	gate.closed = true
	if _, err := w.Write([]byte("late")); !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("a write after the end = %v, want io.ErrClosedPipe", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	stalled := writer{ctx: ctx, out: make(chan Output), max: 4, gate: &outGate{}}
	if n, err := stalled.Write([]byte("hello")); n != 0 || !errors.Is(err, context.Canceled) {
		t.Errorf("a write nobody reads = %d, %v; want 0, context.Canceled", n, err)
	}
}

// TestWatchdogEndsSessions: a session ends, with its reason as the cause,
// when it idles, when it reaches its maximum length, and when its caller
// loses the right to run it.
func TestWatchdogEndsSessions(t *testing.T) {
	const short, long = 20 * time.Millisecond, time.Hour
	allowed := func(context.Context) bool { return true }
	for _, tc := range []struct {
		name      string
		limits    Limits
		authorize Authorize
		want      error
	}{
		{"idle", Limits{Idle: short, MaxLength: long, Recheck: long}, allowed, ErrIdle},
		{"too long", Limits{Idle: long, MaxLength: short, Recheck: long}, allowed, ErrTooLong},
		{"revoked", Limits{Idle: long, MaxLength: long, Recheck: short}, func(context.Context) bool { return false }, ErrRevoked},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, stop := context.WithCancelCause(context.Background())
			defer stop(nil)
			s := &Session{stop: stop, active: make(chan struct{}, 1)}
			done := make(chan struct{})
			go func() { defer close(done); s.watchdog(ctx, tc.limits, tc.authorize) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("the watchdog did not end the session")
			}
			if cause := context.Cause(ctx); !errors.Is(cause, tc.want) {
				t.Errorf("cause = %v, want %v", cause, tc.want)
			}
		})
	}
}
