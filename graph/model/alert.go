package model

import (
	"time"

	"github.com/clustergraph/clustergraph/db"
)

// Alert is a view over a stored alert; its object and workload are resolved
// from the caches.
type Alert struct{ A db.Alert }

// NewAlert wraps a stored alert.
func NewAlert(a db.Alert) *Alert { return &Alert{A: a} }

// ID is the alert's global id.
func (a *Alert) ID() string { return AlertID(a.A).Encode() }

// IsNode marks the Node interface.
func (*Alert) IsNode() {}

// Cluster is the cluster it is about.
func (a *Alert) Cluster() *string { return optional(a.A.Cluster) }

// Namespace is its namespace.
func (a *Alert) Namespace() *string { return optional(a.A.Namespace) }

// Name is the name of the object it is about.
func (a *Alert) Name() *string { return optional(a.A.Name) }

// ObjectKind is that object's kind.
func (a *Alert) ObjectKind() *string { return optional(a.A.ObjectKind) }

// AlertName is the alert's name.
func (a *Alert) AlertName() string { return a.A.AlertName }

// Severity is its severity.
func (a *Alert) Severity() *string { return optional(a.A.Severity) }

// Status is FIRING or RESOLVED.
func (a *Alert) Status() AlertStatus {
	if a.A.Status == db.Resolved {
		return AlertStatusResolved
	}
	return AlertStatusFiring
}

// Message is its message.
func (a *Alert) Message() string { return a.A.Message }

// Source is where it came from.
func (a *Alert) Source() string { return a.A.Source }

// Module is the bcs module.
func (a *Alert) Module() *string { return optional(a.A.Module) }

// Type is the bcs type.
func (a *Alert) Type() *string { return optional(a.A.Type) }

// Labels are its labels.
func (a *Alert) Labels() JSON { return JSON{V: nonNilMap(a.A.Labels)} }

// Annotations are its annotations.
func (a *Alert) Annotations() JSON { return JSON{V: nonNilMap(a.A.Annotations)} }

// Fingerprint identifies its label set.
func (a *Alert) Fingerprint() string { return a.A.Fingerprint }

// StartsAt is when it started.
func (a *Alert) StartsAt() time.Time { return a.A.StartsAt }

// EndsAt is when it was resolved.
func (a *Alert) EndsAt() *time.Time {
	if a.A.EndsAt.IsZero() {
		return nil
	}
	return &a.A.EndsAt
}

// GeneratorURL links to the rule.
func (a *Alert) GeneratorURL() *string { return optional(a.A.GeneratorURL) }

// ReceivedAt is when clustergraph first received it.
func (a *Alert) ReceivedAt() time.Time { return a.A.ReceivedAt }

// UpdatedAt is when it last changed.
func (a *Alert) UpdatedAt() time.Time { return a.A.UpdatedAt }

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// MeteringRecord is a view over a stored metering record.
type MeteringRecord struct{ R db.Record }

// ID is the record's global id.
func (m *MeteringRecord) ID() string { return MeteringID(m.R).Encode() }

// IsNode marks the Node interface.
func (*MeteringRecord) IsNode() {}

// Cluster is its cluster.
func (m *MeteringRecord) Cluster() string { return m.R.Cluster }

// Namespace is its namespace; nil for a cluster's totals.
func (m *MeteringRecord) Namespace() *string { return optional(m.R.Namespace) }

// TimeUnit is the period's length.
func (m *MeteringRecord) TimeUnit() TimeUnit { return TimeUnitOf(m.R.Unit) }

// MeteringTime is the period's start.
func (m *MeteringRecord) MeteringTime() time.Time { return m.R.PeriodStart }

// Samples is how many samples the period holds.
func (m *MeteringRecord) Samples() int { return int(m.R.Samples) }

// CPU is the average in cores.
func (m *MeteringRecord) CPU() float64 { return m.R.CPUMillis / 1000 }

// CPUMillis is the average in millicores.
func (m *MeteringRecord) CPUMillis() float64 { return m.R.CPUMillis }

// Memory is the average in bytes.
func (m *MeteringRecord) Memory() float64 { return m.R.MemoryBytes }

// Storage is the average in bytes.
func (m *MeteringRecord) Storage() float64 { return m.R.StorageBytes }

// Gpu is the average GPU count.
func (m *MeteringRecord) Gpu() float64 { return m.R.GPU }

// PublicIP is the average public IP count.
func (m *MeteringRecord) PublicIP() float64 { return m.R.PublicIPs }

// PrivateIP is the average private IP count.
func (m *MeteringRecord) PrivateIP() float64 { return m.R.PrivateIPs }

// TrafficIn is the bytes received.
func (m *MeteringRecord) TrafficIn() int64 { return m.R.TrafficIn }

// TrafficOut is the bytes sent.
func (m *MeteringRecord) TrafficOut() int64 { return m.R.TrafficOut }

// RequestsSamples counts samples taken from requests.
func (m *MeteringRecord) RequestsSamples() int { return int(m.R.RequestsSamples) }

// TimeUnitOf is the API form of a storage period.
func TimeUnitOf(u db.TimeUnit) TimeUnit {
	switch u {
	case db.Hour:
		return TimeUnitHour
	case db.Month:
		return TimeUnitMonth
	case db.Year:
		return TimeUnitYear
	}
	return TimeUnitDay
}

// Unit is the storage form of an API period.
func (t TimeUnit) Unit() db.TimeUnit {
	switch t {
	case TimeUnitHour:
		return db.Hour
	case TimeUnitMonth:
		return db.Month
	case TimeUnitYear:
		return db.Year
	}
	return db.Day
}

// The connection and edge types of the stored records.
type (
	// MeteringConnection is a page of MeteringRecords.
	MeteringConnection = Connection[*MeteringRecord]
	// MeteringEdge is one MeteringRecord of a page, with its cursor.
	MeteringEdge = Edge[*MeteringRecord]
	// AlertConnection is a page of Alerts.
	AlertConnection = Connection[*Alert]
	// AlertEdge is one Alert of a page, with its cursor.
	AlertEdge = Edge[*Alert]
)
