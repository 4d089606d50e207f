package db

import (
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"gorm.io/gorm"

	"github.com/clustergraph/clustergraph/tracing"
)

// tracingPlugin gives each SQL statement run within a traced operation a
// span: its operation and statement text (placeholders, never the values
// bound to them), the rows it affected, and its error. Statements outside
// a trace (the collector's ticks) make none.
type tracingPlugin struct{ system string }

const spanKey = "clustergraph:span"

func (tracingPlugin) Name() string { return "clustergraph:tracing" }

// Initialize hooks the span around each of gorm's statement callbacks.
func (p tracingPlugin) Initialize(gdb *gorm.DB) error {
	cb := gdb.Callback()
	for _, h := range []struct {
		op       string
		register func(before, after func(*gorm.DB)) error
	}{
		{"INSERT", func(b, a func(*gorm.DB)) error {
			return errors.Join(cb.Create().Before("gorm:create").Register("tracing:before_create", b), cb.Create().After("gorm:create").Register("tracing:after_create", a))
		}},
		{"SELECT", func(b, a func(*gorm.DB)) error {
			return errors.Join(cb.Query().Before("gorm:query").Register("tracing:before_query", b), cb.Query().After("gorm:query").Register("tracing:after_query", a))
		}},
		{"UPDATE", func(b, a func(*gorm.DB)) error {
			return errors.Join(cb.Update().Before("gorm:update").Register("tracing:before_update", b), cb.Update().After("gorm:update").Register("tracing:after_update", a))
		}},
		{"DELETE", func(b, a func(*gorm.DB)) error {
			return errors.Join(cb.Delete().Before("gorm:delete").Register("tracing:before_delete", b), cb.Delete().After("gorm:delete").Register("tracing:after_delete", a))
		}},
		{"ROW", func(b, a func(*gorm.DB)) error {
			return errors.Join(cb.Row().Before("gorm:row").Register("tracing:before_row", b), cb.Row().After("gorm:row").Register("tracing:after_row", a))
		}},
		{"RAW", func(b, a func(*gorm.DB)) error {
			return errors.Join(cb.Raw().Before("gorm:raw").Register("tracing:before_raw", b), cb.Raw().After("gorm:raw").Register("tracing:after_raw", a))
		}},
	} {
		if err := h.register(p.before(h.op), p.after); err != nil {
			return err
		}
	}
	return nil
}

func (p tracingPlugin) before(op string) func(*gorm.DB) {
	return func(tx *gorm.DB) {
		ctx := tx.Statement.Context
		if ctx == nil || !trace.SpanContextFromContext(ctx).IsValid() {
			return
		}
		ctx, span := tracing.Start(ctx, "db "+op, trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(attribute.String("db.system.name", p.system), attribute.String("db.operation.name", op)))
		tx.Statement.Context = ctx
		tx.InstanceSet(spanKey, span)
	}
}

func (tracingPlugin) after(tx *gorm.DB) {
	v, ok := tx.InstanceGet(spanKey)
	if !ok {
		return
	}
	span := v.(trace.Span)
	defer span.End()
	if tx.Statement.Table != "" {
		span.SetAttributes(attribute.String("db.collection.name", tx.Statement.Table))
	}
	span.SetAttributes(attribute.String("db.query.text", tx.Statement.SQL.String()), attribute.Int64("db.rows_affected", tx.Statement.RowsAffected))
	if err := tx.Error; err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
		span.RecordError(err)
		span.SetStatus(codes.Error, "statement failed")
	}
}
