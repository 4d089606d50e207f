package db

import (
	"fmt"
	"strings"
	"time"

	"github.com/clustergraph/clustergraph/errkind"
)

// TimeUnit is the period a metering record covers.
type TimeUnit string

// The periods, each with its own rollup table. Periods are UTC calendar units.
const (
	Hour  TimeUnit = "hour"
	Day   TimeUnit = "day"
	Month TimeUnit = "month"
	Year  TimeUnit = "year"
)

// Units lists the periods, shortest first.
var Units = []TimeUnit{Hour, Day, Month, Year}

// ParseTimeUnit accepts hour, day, month or year (any case).
func ParseTimeUnit(s string) (TimeUnit, error) {
	u := TimeUnit(strings.ToLower(s))
	for _, k := range Units {
		if u == k {
			return u, nil
		}
	}
	return "", fmt.Errorf("%w: timeUnit %q: want hour, day, month or year", errkind.BadInput, s)
}

func (u TimeUnit) table() string { return "metering_" + string(u) }

// Start is the start of the period holding t.
func (u TimeUnit) Start(t time.Time) time.Time {
	t = t.UTC()
	switch u {
	case Hour:
		return t.Truncate(time.Hour)
	case Day:
		return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	case Month:
		return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	default:
		return time.Date(t.Year(), 1, 1, 0, 0, 0, 0, time.UTC)
	}
}

// Next is the start of the period after the one starting at start.
func (u TimeUnit) Next(start time.Time) time.Time {
	switch u {
	case Hour:
		return start.Add(time.Hour)
	case Day:
		return start.AddDate(0, 0, 1)
	case Month:
		return start.AddDate(0, 1, 0)
	default:
		return start.AddDate(1, 0, 0)
	}
}
