// Package reqlog carries a request's id and its GraphQL operation in the
// request's context, and is the slog.Handler that adds them to every line
// logged with that context (slog's *Context methods): a request's lines can
// be found by its id, which the client also gets in the X-Request-Id
// header. It imports nothing of the project, so every room may log with
// it.
package reqlog

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
)

// Header is the HTTP header that carries a request id both ways: a valid
// one the client sends is kept (a proxy's id joins the two logs), else
// the server makes one.
const Header = "X-Request-Id"

type key struct{}

// info is what a context says of its request.
type info struct{ id, operation string }

// WithID returns ctx carrying the request id.
func WithID(ctx context.Context, id string) context.Context {
	in, _ := ctx.Value(key{}).(info)
	in.id = id
	return context.WithValue(ctx, key{}, in)
}

// WithOperation returns ctx carrying the GraphQL operation's name (each
// operation of a websocket gets its own context).
func WithOperation(ctx context.Context, name string) context.Context {
	in, _ := ctx.Value(key{}).(info)
	in.operation = name
	return context.WithValue(ctx, key{}, in)
}

// ID is the context's request id, or "".
func ID(ctx context.Context) string {
	in, _ := ctx.Value(key{}).(info)
	return in.id
}

// NewID makes a request id: 16 random hex digits.
func NewID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand panics instead)
	return hex.EncodeToString(b[:])
}

// ValidID reports whether a client's id may be kept: 1 to 64 letters,
// digits, '-', '_' or '.', so a log line cannot be forged through it.
func ValidID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

// Handler adds the request id ("request") and operation ("operation") of
// the context a line is logged with.
type Handler struct{ slog.Handler }

// Handle adds the context's request attributes to the record.
func (h Handler) Handle(ctx context.Context, r slog.Record) error {
	if in, ok := ctx.Value(key{}).(info); ok {
		if in.id != "" {
			r.AddAttrs(slog.String("request", in.id))
		}
		if in.operation != "" {
			r.AddAttrs(slog.String("operation", in.operation))
		}
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs keeps the handler a Handler.
func (h Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return Handler{h.Handler.WithAttrs(attrs)}
}

// WithGroup keeps the handler a Handler.
func (h Handler) WithGroup(name string) slog.Handler { return Handler{h.Handler.WithGroup(name)} }
