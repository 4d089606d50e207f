// Package audit records who changed what: every mutation and every
// terminal session start and end, one JSON line each, naming the caller,
// the cluster and object, and the result. Values that must never be logged
// (Secret data, stringData, last-applied-configuration) are redacted by the
// callers' Redact before they reach the log.
package audit

import (
	"context"
	"io"
	"log/slog"

	"github.com/clustergraph/clustergraph/caller"
)

// Log writes audit records.
type Log struct{ l *slog.Logger }

// New writes audit records as JSON lines to w.
func New(w io.Writer) *Log {
	return &Log{l: slog.New(slog.NewJSONHandler(w, nil))}
}

// Discard is an audit log that records nothing (tests, tools).
var Discard = New(io.Discard)

// Record writes one record: what the caller in ctx did to which object,
// and how it ended (err nil means success).
func (a *Log) Record(ctx context.Context, action, cluster, object string, err error, attrs ...any) {
	user, groups := "", []string(nil)
	if s := caller.From(ctx); s != nil {
		user, groups = s.User, s.Groups
	}
	result := "ok"
	if err != nil {
		result = err.Error()
	}
	a.l.LogAttrs(ctx, slog.LevelInfo, "audit", append([]slog.Attr{
		slog.String("action", action), slog.String("user", user), slog.Any("groups", groups),
		slog.String("cluster", cluster), slog.String("object", object), slog.String("result", result),
	}, slog.Group("details", attrs...))...)
}
