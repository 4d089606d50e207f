package db

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/clustergraph/clustergraph/errkind"
)

// Retention says how long each table keeps its rows; zero keeps them forever.
type Retention struct {
	// Samples keeps raw namespace samples; rollups of the current hour are
	// recomputed from them, so it is at least two hours.
	Samples time.Duration
	// Hour, Day, Month and Year keep the rollup tables.
	Hour, Day, Month, Year time.Duration
	// Usage keeps node and pod usage samples.
	Usage time.Duration
	// Alerts keeps resolved alerts (by when they ended); open ones stay.
	Alerts time.Duration
	// Events keeps archived events (by last seen).
	Events time.Duration
	// AlertChanges keeps the change log replicas poll.
	AlertChanges time.Duration
}

// DefaultRetention is what the server keeps unless configured otherwise.
var DefaultRetention = Retention{
	Samples: 7 * 24 * time.Hour,
	Hour:    90 * 24 * time.Hour,
	Day:     2 * 365 * 24 * time.Hour,
	Month:   10 * 365 * 24 * time.Hour,
	Usage:   24 * time.Hour,
	Alerts:  365 * 24 * time.Hour,
	Events:  90 * 24 * time.Hour,
	// Long enough for a replica that lost its database for a while to
	// catch up on what it missed.
	AlertChanges: time.Hour,
}

// Purge deletes what retention no longer keeps, in batches of batch rows so
// no statement holds locks for long, and says how many rows each table lost.
func (s *Store) Purge(ctx context.Context, r Retention, now time.Time, batch int) (map[string]int64, error) {
	if batch <= 0 {
		batch = 5000
	}
	if r.Samples > 0 && r.Samples < 2*time.Hour {
		return nil, fmt.Errorf("%w: sample retention %s is under the 2h rollups need", errkind.BadInput, r.Samples)
	}
	type sweep struct {
		table, where string
		keep         time.Duration
	}
	sweeps := []sweep{
		{"metering_samples", "time < ?", r.Samples},
		{"metering_hour", "period_start < ?", r.Hour},
		{"metering_day", "period_start < ?", r.Day},
		{"metering_month", "period_start < ?", r.Month},
		{"metering_year", "period_start < ?", r.Year},
		{"usage_samples", "time < ?", r.Usage},
		{"events", "last_seen < ?", r.Events},
		{"alert_changes", "at < ?", r.AlertChanges},
	}
	out := map[string]int64{}
	for _, sw := range sweeps {
		if sw.keep <= 0 {
			continue
		}
		cutoff := now.Add(-sw.keep).Unix()
		for {
			n, err := s.deleteBatch(s.gdb.WithContext(ctx), sw.table, sw.where, batch, cutoff)
			if err != nil {
				return out, s.wrap("purging "+sw.table, err)
			}
			out[sw.table] += n
			if n < int64(batch) {
				break
			}
		}
	}
	if r.Alerts > 0 {
		cutoff := now.Add(-r.Alerts).Unix()
		for {
			var ids []uint64
			err := s.gdb.WithContext(ctx).Model(&alertRow{}).Where("ends_at > 0 AND ends_at < ?", cutoff).Limit(batch).Pluck("id", &ids).Error
			if err == nil && len(ids) > 0 {
				err = s.gdb.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
					if err := tx.Where("alert_id IN ?", ids).Delete(&alertLabel{}).Error; err != nil {
						return err
					}
					return tx.Where("id IN ?", ids).Delete(&alertRow{}).Error
				})
			}
			if err != nil {
				return out, s.wrap("purging alerts", err)
			}
			out["alerts"] += int64(len(ids))
			if len(ids) < batch {
				break
			}
		}
	}
	return out, nil
}
