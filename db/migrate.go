package db

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// migration is one versioned schema change. Versions only grow; a released
// migration is never edited, a later one changes what it made.
type migration struct {
	version int
	name    string
	up      func(tx *gorm.DB) error
}

// Rollup tables, shortest period first.
var rollupTables = []string{"metering_hour", "metering_day", "metering_month", "metering_year"}

var migrations = []migration{
	{1, "metering, usage, alerts, events", func(tx *gorm.DB) error {
		m := tx.Migrator()
		for _, t := range []any{&meteringSample{}, &usageSample{}, &alertRow{}, &alertLabel{}, &alertChange{}, &eventRow{}} {
			if err := m.CreateTable(t); err != nil {
				return err
			}
		}
		for _, table := range rollupTables {
			if err := tx.Table(table).Migrator().CreateTable(&meteringRollup{}); err != nil {
				return err
			}
		}
		stmts := []string{
			"CREATE UNIQUE INDEX ux_metering_samples_key ON metering_samples (cluster, namespace, time)",
			"CREATE INDEX ix_metering_samples_time ON metering_samples (time)",
			"CREATE UNIQUE INDEX ux_usage_samples_key ON usage_samples (cluster, kind, namespace, name, time)",
			"CREATE INDEX ix_usage_samples_time ON usage_samples (time)",
			"CREATE UNIQUE INDEX ux_alerts_key ON alerts (fingerprint, starts_at)",
			"CREATE INDEX ix_alerts_scope ON alerts (cluster, namespace, starts_at)",
			"CREATE INDEX ix_alerts_status ON alerts (status, starts_at)",
			"CREATE INDEX ix_alerts_starts ON alerts (starts_at)",
			"CREATE INDEX ix_alerts_object ON alerts (cluster, object_kind, namespace, name)",
			"CREATE INDEX ix_alerts_fingerprint_open ON alerts (fingerprint, ends_at)",
			"CREATE INDEX ix_alert_labels_alert ON alert_labels (alert_id)",
			"CREATE INDEX ix_alert_labels_kv ON alert_labels (label_key, label_value, alert_id)",
			"CREATE INDEX ix_alert_changes_at ON alert_changes (at)",
			"CREATE UNIQUE INDEX ux_events_key ON events (cluster, uid)",
			"CREATE INDEX ix_events_scope ON events (cluster, namespace, last_seen)",
			"CREATE INDEX ix_events_involved ON events (cluster, involved_kind, involved_namespace, involved_name)",
			"CREATE INDEX ix_events_last_seen ON events (last_seen)",
		}
		for _, table := range rollupTables {
			stmts = append(stmts,
				fmt.Sprintf("CREATE UNIQUE INDEX ux_%s_key ON %s (cluster, namespace, period_start)", table, table),
				fmt.Sprintf("CREATE INDEX ix_%s_period ON %s (period_start)", table, table))
		}
		for _, s := range stmts {
			if err := tx.Exec(s).Error; err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
		}
		return nil
	}},
}

// schemaMigration records an applied migration.
type schemaMigration struct {
	Version   int    `gorm:"primaryKey;autoIncrement:false"`
	Name      string `gorm:"size:255;not null"`
	AppliedAt int64  `gorm:"not null"`
}

func (schemaMigration) TableName() string { return "schema_migrations" }

// migrate applies the migrations not yet recorded, in order. On MySQL a
// named lock serialises replicas starting at once; SQLite has one writer.
// MySQL commits DDL implicitly, so a migration that fails half way leaves
// its tables: the error says which statement, and the next start retries
// only unrecorded versions (each of which tolerates nothing pre-existing by
// design, so the operator sees the failure instead of a silent mix).
func (s *Store) migrate(ctx context.Context) error {
	return s.gdb.WithContext(ctx).Connection(func(conn *gorm.DB) error {
		// A fresh session per statement: chained calls on the pinned
		// connection would otherwise share (and leak) one statement.
		conn = conn.Session(&gorm.Session{NewDB: true})
		if s.dialect == MySQL {
			var got int
			if err := conn.Raw("SELECT GET_LOCK('clustergraph_migrate', 60)").Scan(&got).Error; err != nil || got != 1 {
				return fmt.Errorf("%w: taking the migration lock on %s: %v (got %d)", ErrUnavailable, s.where, err, got)
			}
			defer conn.Exec("SELECT RELEASE_LOCK('clustergraph_migrate')")
		}
		if err := conn.Migrator().AutoMigrate(&schemaMigration{}); err != nil {
			return s.wrap("creating schema_migrations", err)
		}
		var applied []schemaMigration
		if err := conn.Find(&applied).Error; err != nil {
			return s.wrap("reading schema_migrations", err)
		}
		done := map[int]bool{}
		for _, a := range applied {
			done[a.Version] = true
		}
		for _, m := range migrations {
			if done[m.version] {
				continue
			}
			start := time.Now()
			s.log.Info("applying database migration", "db", s.where, "version", m.version, "name", m.name)
			err := conn.Transaction(func(tx *gorm.DB) error {
				tx = tx.Session(&gorm.Session{NewDB: true})
				if err := m.up(tx); err != nil {
					return err
				}
				return tx.Create(&schemaMigration{Version: m.version, Name: m.name, AppliedAt: time.Now().Unix()}).Error
			})
			if err != nil {
				return fmt.Errorf("%w: migration %d (%s) on %s: %v", ErrUnavailable, m.version, m.name, s.where, err)
			}
			s.log.Info("applied database migration", "version", m.version, "took", time.Since(start).Round(time.Millisecond))
		}
		return nil
	})
}

// Version is the newest applied migration.
func (s *Store) Version(ctx context.Context) (int, error) {
	var v int
	err := s.gdb.WithContext(ctx).Model(&schemaMigration{}).Select("COALESCE(MAX(version), 0)").Scan(&v).Error
	return v, s.wrap("reading the schema version", err)
}
