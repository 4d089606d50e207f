package db

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"

	"github.com/clustergraph/clustergraph/metrics"
)

// statementMetrics is a gorm plugin that times every statement and counts
// the ones that fail (metrics.DBOperation), by gorm's operation and the
// statement's table: every Store method is covered, and no method needs to
// remember it.
type statementMetrics struct{}

// Name names the plugin to gorm.
func (statementMetrics) Name() string { return "clustergraph:metrics" }

// startKey is where a statement's start time waits for its end.
const startKey = "clustergraph:metrics:start"

// Initialize registers a callback before and after each of gorm's
// operations.
func (statementMetrics) Initialize(gdb *gorm.DB) error {
	cb := gdb.Callback()
	return errors.Join(
		timeOperation(cb.Create(), "create"), timeOperation(cb.Query(), "query"), timeOperation(cb.Update(), "update"),
		timeOperation(cb.Delete(), "delete"), timeOperation(cb.Row(), "row"), timeOperation(cb.Raw(), "raw"),
	)
}

// timeOperation registers the plugin's callbacks around gorm's own
// callback of operation op in its processor p (gorm's processor and
// callback types are unexported: the type parameter names the latter).
func timeOperation[C interface {
	Register(string, func(*gorm.DB)) error
}](p interface {
	Before(string) C
	After(string) C
}, op string) error {
	return errors.Join(
		p.Before("gorm:"+op).Register("clustergraph:metrics:before_"+op, started),
		p.After("gorm:"+op).Register("clustergraph:metrics:after_"+op, ended(op)),
	)
}

// started notes when a statement started.
func started(tx *gorm.DB) { tx.InstanceSet(startKey, time.Now()) }

// ended records a statement of operation op. A record not found is an
// answer, not a failure; a caller who went away is not the database's.
func ended(op string) func(*gorm.DB) {
	return func(tx *gorm.DB) {
		v, ok := tx.InstanceGet(startKey)
		start, _ := v.(time.Time)
		if !ok || start.IsZero() {
			return
		}
		err := tx.Error
		failed := err != nil && !errors.Is(err, gorm.ErrRecordNotFound) && !errors.Is(err, context.Canceled)
		metrics.DBOperation(op, tx.Statement.Table, time.Since(start), failed)
	}
}
