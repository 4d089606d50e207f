package loaders

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/clustergraph/clustergraph/caller"
	"github.com/clustergraph/clustergraph/db"
	"github.com/clustergraph/clustergraph/errkind"
	"github.com/clustergraph/clustergraph/k8s"
	"github.com/clustergraph/clustergraph/metrics"
)

// Records is the database as the caller may use it: the queries over many
// stored records, the alert stream and createAlert. Each method decides by
// the caller's access sets (access.go) before the database hears of the
// query, as the stored loaders do per key; a resolver holds Records, never
// the database handle, so a new field cannot skip the check. A nil Records
// is a server without a database: every call says so, as db.Handle does.
type Records struct {
	db     *db.Handle
	alerts AlertStream
}

// AlertStream is the alert change stream (alerting.Hub, on the same floor
// as this package, so named here by what it does): subscriptions filtered
// per alert at delivery, and a nudge after a local write.
type AlertStream interface {
	Subscribe(ctx context.Context, match func(db.Alert) bool) <-chan db.Alert
	Poke()
}

// NewRecords serves the caller's stored records from h (nil: no database)
// and its alert changes from alerts (nil: none).
func NewRecords(h *db.Handle, alerts AlertStream) *Records {
	return &Records{db: h, alerts: alerts}
}

// Enabled reports whether the server has a database at all (reachable or
// not yet): without one, storage fields answer from live data alone.
func (rs *Records) Enabled() bool { return rs != nil && rs.db != nil }

// Available is nil once the database answers, else why it does not.
func (rs *Records) Available() error {
	_, err := rs.store()
	return err
}

func (rs *Records) store() (*db.Store, error) {
	var h *db.Handle
	if rs != nil {
		h = rs.db
	}
	return h.Store() // a nil Handle says the server runs without a database
}

// ClusterMetering is c's own metering (records without a namespace), for a
// caller who may list pods cluster-wide in c; anyone else gets Forbidden.
func (rs *Records) ClusterMetering(ctx context.Context, c *k8s.Cluster, unit db.TimeUnit, start, end time.Time, limit int) ([]db.Record, error) {
	s, err := rs.store()
	if err != nil {
		return nil, err
	}
	if !mayList(ctx, c, podsGR, "") {
		return nil, fmt.Errorf("%w: cluster metering needs list on pods cluster-wide in %s", errkind.Forbidden, c.Name)
	}
	got, err := s.ClusterMetering(ctx, unit, []string{c.Name}, start, end, limit)
	if err != nil {
		return nil, err
	}
	return got[c.Name], nil
}

// Metering runs q over the namespaces of cs where the caller may list pods
// (q.Scope is set here, whatever it held).
func (rs *Records) Metering(ctx context.Context, cs []*k8s.Cluster, q db.MeteringQuery) ([]db.Record, int64, error) {
	s, err := rs.store()
	if err != nil {
		return nil, 0, err
	}
	q.Scope = scope(ctx, cs, podsGR)
	return s.Metering(ctx, q)
}

// Alerts runs q over the namespaces of cs where the caller may list events
// (q.Scope is set here, whatever it held).
func (rs *Records) Alerts(ctx context.Context, cs []*k8s.Cluster, q db.AlertQuery) ([]db.Alert, int64, error) {
	s, err := rs.store()
	if err != nil {
		return nil, 0, err
	}
	q.Scope = scope(ctx, cs, eventsGR)
	return s.Alerts(ctx, q)
}

// Events runs q over the archived events of the namespaces of cs where the
// caller may list events (q.Scope is set here, whatever it held).
func (rs *Records) Events(ctx context.Context, cs []*k8s.Cluster, q db.EventQuery) ([]db.ArchivedEvent, int64, error) {
	s, err := rs.store()
	if err != nil {
		return nil, 0, err
	}
	q.Scope = scope(ctx, cs, eventsGR)
	return s.Events(ctx, q)
}

// SubscribeAlerts streams the changed alerts of cs that match accepts and
// the caller may read. Both are asked per alert at delivery time, the
// caller's right first, so a revoked grant stops delivery at once.
func (rs *Records) SubscribeAlerts(ctx context.Context, cs []*k8s.Cluster, match func(db.Alert) bool) (<-chan db.Alert, error) {
	if rs == nil || rs.alerts == nil {
		return nil, fmt.Errorf("%w: this server streams no alerts", errkind.Unavailable)
	}
	readable := mayReadAlert(ctx, cs)
	return rs.alerts.Subscribe(ctx, func(a db.Alert) bool { return readable(a) && match(a) }), nil
}

// mayReadAlert is the stream's check: the alert's cluster is one of cs and
// the caller may list events in its namespace (cluster-wide for an alert
// without one), decided when it is called.
func mayReadAlert(ctx context.Context, cs []*k8s.Cluster) func(db.Alert) bool {
	byName := map[string]*k8s.Cluster{}
	for _, c := range cs {
		byName[c.Name] = c
	}
	return func(a db.Alert) bool {
		c, ok := byName[a.Cluster]
		return ok && mayList(ctx, c, eventsGR, a.Namespace)
	}
}

// CreateAlert stores the alert build makes, for a caller who may create
// events in namespace of c ("" is cluster-wide); anyone else gets
// Forbidden before build runs, so a refused caller learns nothing of its
// input. The alert must be of c and namespace. It returns the stored alert
// (an existing one when this repeats it).
func (rs *Records) CreateAlert(ctx context.Context, c *k8s.Cluster, namespace string, build func() (db.Alert, error)) (db.Alert, error) {
	if !c.AccessFor(caller.From(ctx)).Allows("create", eventsGR, namespace, "") {
		metrics.AlertRejected(metrics.AlertsFromMutation, "forbidden")
		return db.Alert{}, fmt.Errorf("%w: creating an alert needs create on events %s of %s", errkind.Forbidden, where(namespace), c.Name)
	}
	a, err := build()
	if err != nil {
		metrics.AlertRejected(metrics.AlertsFromMutation, "malformed")
		return db.Alert{}, err
	}
	if a.Cluster != c.Name || a.Namespace != namespace {
		// The check above was for another place: a programming error.
		return db.Alert{}, fmt.Errorf("alert of %s/%s built for a check on %s/%s", a.Cluster, a.Namespace, c.Name, namespace)
	}
	s, err := rs.store()
	if err == nil {
		_, err = s.RecordAlerts(ctx, []db.Alert{a})
	}
	if err != nil {
		reason := "unavailable"
		if errors.Is(err, errkind.BadInput) {
			reason = "malformed"
		}
		metrics.AlertRejected(metrics.AlertsFromMutation, reason)
		return db.Alert{}, err
	}
	metrics.AlertsReceived(metrics.AlertsFromMutation, 1)
	if rs.alerts != nil {
		rs.alerts.Poke()
	}
	// Read back the stored alert (a repeat returns the existing one).
	return s.LatestAlert(ctx, a.Fingerprint)
}
