package db

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/clustergraph/clustergraph/errkind"
)

// Alert statuses.
const (
	Firing   = "firing"
	Resolved = "resolved"
)

// Alert is a stored alert.
type Alert struct {
	ID uint64
	// Fingerprint identifies the alert's label set; with StartsAt it is the
	// alert's identity (Alertmanager's own rule).
	Fingerprint string
	StartsAt    time.Time
	// EndsAt is zero while the alert fires.
	EndsAt    time.Time
	Status    string
	Cluster   string
	Namespace string
	// Name and ObjectKind name the Kubernetes object the alert is about.
	Name         string
	ObjectKind   string
	AlertName    string
	Severity     string
	Source       string
	Module       string
	Type         string
	Message      string
	Labels       map[string]string
	Annotations  map[string]string
	GeneratorURL string
	ReceivedAt   time.Time
	UpdatedAt    time.Time
}

func (a *Alert) row() (alertRow, error) {
	labels, err := json.Marshal(nonNil(a.Labels))
	if err != nil {
		return alertRow{}, err
	}
	ann, err := json.Marshal(nonNil(a.Annotations))
	if err != nil {
		return alertRow{}, err
	}
	return alertRow{
		ID: a.ID, Fingerprint: a.Fingerprint, StartsAt: a.StartsAt.Unix(), EndsAt: unixOrZero(a.EndsAt),
		Status: a.Status, Cluster: a.Cluster, Namespace: a.Namespace, Name: a.Name, ObjectKind: a.ObjectKind,
		AlertName: a.AlertName, Severity: a.Severity, Source: a.Source, Module: a.Module, Type: a.Type,
		Message: a.Message, Labels: string(labels), Annotations: string(ann), GeneratorURL: a.GeneratorURL,
		ReceivedAt: a.ReceivedAt.Unix(), UpdatedAt: a.UpdatedAt.Unix(),
	}, nil
}

func (r *alertRow) alert() Alert {
	a := Alert{
		ID: r.ID, Fingerprint: r.Fingerprint, StartsAt: time.Unix(r.StartsAt, 0).UTC(), Status: r.Status,
		Cluster: r.Cluster, Namespace: r.Namespace, Name: r.Name, ObjectKind: r.ObjectKind, AlertName: r.AlertName,
		Severity: r.Severity, Source: r.Source, Module: r.Module, Type: r.Type, Message: r.Message,
		GeneratorURL: r.GeneratorURL, ReceivedAt: time.Unix(r.ReceivedAt, 0).UTC(), UpdatedAt: time.Unix(r.UpdatedAt, 0).UTC(),
	}
	if r.EndsAt != 0 {
		a.EndsAt = time.Unix(r.EndsAt, 0).UTC()
	}
	_ = json.Unmarshal([]byte(r.Labels), &a.Labels)
	_ = json.Unmarshal([]byte(r.Annotations), &a.Annotations)
	return a
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// RecordAlerts stores notifications in one transaction and returns the
// alerts that changed (new, updated or resolved), as stored. It is
// idempotent: the same notification twice changes nothing the second time.
//
//   - A firing alert with StartsAt is keyed by (fingerprint, startsAt).
//   - A firing alert without StartsAt (the hypercloud list form, createAlert)
//     joins the open alert with its fingerprint, or opens one now.
//   - A resolved alert closes the matching alert (by startsAt when given,
//     else the open one); one never seen firing is stored closed.
func (s *Store) RecordAlerts(ctx context.Context, alerts []Alert) ([]Alert, error) {
	var changed []Alert
	now := time.Now().UTC().Truncate(time.Second)
	err := s.gdb.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		changed = changed[:0]
		for _, a := range alerts {
			if a.Fingerprint == "" {
				return fmt.Errorf("%w: alert without fingerprint", errkind.BadInput)
			}
			if a.Status != Firing && a.Status != Resolved {
				return fmt.Errorf("%w: alert status %q: want firing or resolved", errkind.BadInput, a.Status)
			}
			// No Kubernetes name holds a NUL, and the alert's global id
			// separates its cluster and namespace by one.
			if strings.ContainsRune(a.Cluster+a.Namespace, 0) {
				return fmt.Errorf("%w: alert %s: a NUL in its cluster or namespace", errkind.BadInput, a.AlertName)
			}
			var cur alertRow
			q := tx.Where("fingerprint = ?", a.Fingerprint)
			if a.StartsAt.IsZero() {
				q = q.Where("ends_at = 0").Order("starts_at DESC")
			} else {
				q = q.Where("starts_at = ?", a.StartsAt.Unix())
			}
			err := q.Limit(1).Take(&cur).Error
			found := err == nil
			if err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
				return err
			}
			a.ReceivedAt, a.UpdatedAt = now, now
			if a.StartsAt.IsZero() {
				a.StartsAt = now
			}
			if a.Status == Resolved && a.EndsAt.IsZero() {
				a.EndsAt = now
			}
			if a.Status == Firing {
				a.EndsAt = time.Time{}
			}
			if found {
				old := cur.alert()
				if old.Status == Resolved {
					// Closed is final: a late firing resend changes nothing.
					continue
				}
				if a.Status == Firing && sameContent(&old, &a) {
					continue
				}
				a = merge(old, a)
			}
			row, err := a.row()
			if err != nil {
				return fmt.Errorf("%w: %v", errkind.BadInput, err)
			}
			if found {
				err = tx.Model(&alertRow{}).Where("id = ?", row.ID).Select("*").Omit("id").Updates(&row).Error
			} else {
				err = tx.Create(&row).Error
			}
			if err != nil {
				return err
			}
			if err := s.setLabels(tx, row.ID, a.Labels, found); err != nil {
				return err
			}
			if err := tx.Create(&alertChange{AlertID: row.ID, At: now.Unix()}).Error; err != nil {
				return err
			}
			a.ID = row.ID
			changed = append(changed, a)
		}
		return nil
	})
	if errors.Is(err, errkind.BadInput) {
		return nil, err
	}
	return changed, s.wrap("recording alerts", err)
}

// merge applies a notification to the stored alert: identity and first
// receipt stay, status and end come from the notification, and other
// fields change only where the notification says something.
func merge(old, n Alert) Alert {
	out := old
	out.Status, out.EndsAt, out.UpdatedAt = n.Status, n.EndsAt, n.UpdatedAt
	for _, f := range []struct {
		dst *string
		src string
	}{
		{&out.Cluster, n.Cluster}, {&out.Namespace, n.Namespace}, {&out.Name, n.Name}, {&out.ObjectKind, n.ObjectKind},
		{&out.AlertName, n.AlertName}, {&out.Severity, n.Severity}, {&out.Source, n.Source}, {&out.Module, n.Module},
		{&out.Type, n.Type}, {&out.Message, n.Message}, {&out.GeneratorURL, n.GeneratorURL},
	} {
		if f.src != "" {
			*f.dst = f.src
		}
	}
	if len(n.Labels) > 0 {
		out.Labels = n.Labels
	}
	if len(n.Annotations) > 0 {
		out.Annotations = n.Annotations
	}
	return out
}

func sameContent(a, b *Alert) bool {
	return a.Message == b.Message && a.Severity == b.Severity && mapsEqual(a.Labels, b.Labels) && mapsEqual(a.Annotations, b.Annotations)
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func (s *Store) setLabels(tx *gorm.DB, id uint64, labels map[string]string, replace bool) error {
	if replace {
		if err := tx.Where("alert_id = ?", id).Delete(&alertLabel{}).Error; err != nil {
			return err
		}
	}
	if len(labels) == 0 {
		return nil
	}
	rows := make([]alertLabel, 0, len(labels))
	for k, v := range labels {
		rows = append(rows, alertLabel{AlertID: id, Key: truncate(k, 255), Value: truncate(v, 255)})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Key < rows[j].Key })
	return tx.Create(&rows).Error
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// LabelRequirement is one term of a label selector.
type LabelRequirement struct {
	Key string
	// Op is one of =, !=, in, notin, exists, !.
	Op     string
	Values []string
}

// AlertQuery selects alerts. Empty lists do not filter.
type AlertQuery struct {
	// Scope limits namespaced alerts to what the caller may read; alerts
	// without a namespace need ClusterScope.All.
	Scope                                          Scope
	Namespaces, Names, AlertNames, Severities      []string
	Statuses, Sources, Modules, Types, ObjectKinds []string
	Labels                                         []LabelRequirement
	// Start and End bound startsAt: Start <= startsAt < End; zero is open.
	Start, End time.Time
	// Ascending orders oldest first; default newest first.
	Ascending     bool
	Offset, Limit int
}

// Alerts returns a page of alerts and how many match in all.
func (s *Store) Alerts(ctx context.Context, q AlertQuery) ([]Alert, int64, error) {
	if !q.Start.IsZero() && !q.End.IsZero() && !q.Start.Before(q.End) {
		return nil, 0, fmt.Errorf("%w: the time range starts at or after its end", errkind.BadInput)
	}
	tx := q.Scope.where(s.gdb.WithContext(ctx).Model(&alertRow{}))
	for col, vals := range map[string][]string{
		"namespace": q.Namespaces, "name": q.Names, "alert_name": q.AlertNames, "severity": q.Severities,
		"status": q.Statuses, "source": q.Sources, "module": q.Modules, "type": q.Types, "object_kind": q.ObjectKinds,
	} {
		if len(vals) > 0 {
			tx = tx.Where(col+" IN ?", vals)
		}
	}
	for _, r := range q.Labels {
		sub := "SELECT 1 FROM alert_labels l WHERE l.alert_id = alerts.id AND l.label_key = ?"
		switch r.Op {
		case "=", "==", "in":
			tx = tx.Where("EXISTS ("+sub+" AND l.label_value IN ?)", r.Key, r.Values)
		case "!=", "notin":
			tx = tx.Where("NOT EXISTS ("+sub+" AND l.label_value IN ?)", r.Key, r.Values)
		case "exists":
			tx = tx.Where("EXISTS ("+sub+")", r.Key)
		case "!":
			tx = tx.Where("NOT EXISTS ("+sub+")", r.Key)
		default:
			return nil, 0, fmt.Errorf("%w: label operator %q", errkind.BadInput, r.Op)
		}
	}
	if !q.Start.IsZero() {
		tx = tx.Where("starts_at >= ?", q.Start.Unix())
	}
	if !q.End.IsZero() {
		tx = tx.Where("starts_at < ?", q.End.Unix())
	}
	var total int64
	if err := tx.Session(&gorm.Session{}).Count(&total).Error; err != nil {
		return nil, 0, s.wrap("counting alerts", err)
	}
	order := "starts_at DESC, id DESC"
	if q.Ascending {
		order = "starts_at, id"
	}
	var rows []alertRow
	if err := tx.Order(order).Offset(q.Offset).Limit(q.Limit).Find(&rows).Error; err != nil {
		return nil, 0, s.wrap("reading alerts", err)
	}
	out := make([]Alert, len(rows))
	for i := range rows {
		out[i] = rows[i].alert()
	}
	return out, total, nil
}

// AlertRef names what alerts to fetch for one object: a namespace (Kind
// "Namespace": every alert in it), or an object by kind and name.
type AlertRef struct{ Cluster, Kind, Namespace, Name string }

// AlertsOf returns the alerts of each object asked, newest first, with one
// query for the whole batch; onlyOpen leaves resolved ones out.
func (s *Store) AlertsOf(ctx context.Context, refs []AlertRef, onlyOpen bool, limit int) (map[AlertRef][]Alert, error) {
	out := map[AlertRef][]Alert{}
	if len(refs) == 0 {
		return out, nil
	}
	var objects []objectRef
	var nsByCluster = map[string][]string{}
	for _, r := range refs {
		if r.Kind == "Namespace" {
			nsByCluster[r.Cluster] = append(nsByCluster[r.Cluster], r.Name)
			continue
		}
		objects = append(objects, objectRef(r))
	}
	conds, args := objectConds("object_kind", "namespace", "name", objects)
	for c, ns := range nsByCluster {
		conds = append(conds, "(cluster = ? AND namespace IN ?)")
		args = append(args, c, ns)
	}
	tx := s.gdb.WithContext(ctx).Where(strings.Join(conds, " OR "), args...)
	if onlyOpen {
		tx = tx.Where("ends_at = 0")
	}
	var rows []alertRow
	if err := tx.Order("starts_at DESC, id DESC").Find(&rows).Error; err != nil {
		return nil, s.wrap("reading alerts", err)
	}
	want := map[AlertRef]bool{}
	for _, r := range refs {
		want[r] = true
	}
	add := func(k AlertRef, a Alert) {
		if want[k] && (limit <= 0 || len(out[k]) < limit) {
			out[k] = append(out[k], a)
		}
	}
	for i := range rows {
		a := rows[i].alert()
		add(AlertRef{a.Cluster, a.ObjectKind, a.Namespace, a.Name}, a)
		add(AlertRef{a.Cluster, "Namespace", "", a.Namespace}, a)
	}
	return out, nil
}

// AlertChanges returns alerts changed after the change numbered after (0:
// from the oldest kept), oldest change first, at most limit, with the
// number of the last change returned (after when none).
func (s *Store) AlertChanges(ctx context.Context, after uint64, limit int) ([]Alert, uint64, error) {
	var changes []alertChange
	if err := s.gdb.WithContext(ctx).Where("id > ?", after).Order("id").Limit(limit).Find(&changes).Error; err != nil {
		return nil, after, s.wrap("reading alert changes", err)
	}
	if len(changes) == 0 {
		return nil, after, nil
	}
	ids := make([]uint64, len(changes))
	for i, c := range changes {
		ids[i] = c.AlertID
	}
	byID, err := s.AlertsByID(ctx, ids)
	if err != nil {
		return nil, after, err
	}
	out := make([]Alert, 0, len(changes))
	for _, c := range changes {
		if a, ok := byID[c.AlertID]; ok {
			out = append(out, a)
		}
	}
	return out, changes[len(changes)-1].ID, nil
}

// LastAlertChange is the number of the newest change, where a new
// subscriber starts.
func (s *Store) LastAlertChange(ctx context.Context) (uint64, error) {
	var id uint64
	err := s.gdb.WithContext(ctx).Model(&alertChange{}).Select("COALESCE(MAX(id), 0)").Scan(&id).Error
	return id, s.wrap("reading the last alert change", err)
}

// AlertsByID returns the alerts with these ids that exist, by id.
func (s *Store) AlertsByID(ctx context.Context, ids []uint64) (map[uint64]Alert, error) {
	out := make(map[uint64]Alert, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	var rows []alertRow
	if err := s.gdb.WithContext(ctx).Where("id IN ?", ids).Find(&rows).Error; err != nil {
		return nil, s.wrap("reading alerts by id", err)
	}
	for i := range rows {
		out[rows[i].ID] = rows[i].alert()
	}
	return out, nil
}

// LatestAlert returns the newest alert with a fingerprint.
func (s *Store) LatestAlert(ctx context.Context, fingerprint string) (Alert, error) {
	var r alertRow
	err := s.gdb.WithContext(ctx).Where("fingerprint = ?", fingerprint).Order("starts_at DESC, id DESC").Take(&r).Error
	if err != nil {
		return Alert{}, s.wrap("reading alert "+fingerprint, err)
	}
	return r.alert(), nil
}

// objectRef names an object of a cluster by kind, namespace and name.
type objectRef struct{ Cluster, Kind, Namespace, Name string }

// objectConds renders objects as OR-able conditions, one per cluster, kind
// and namespace with the names in one IN list, on the given columns.
func objectConds(kindCol, nsCol, nameCol string, objects []objectRef) ([]string, []any) {
	type group struct{ cluster, kind, namespace string }
	names := map[group][]string{}
	var order []group
	for _, o := range objects {
		g := group{o.Cluster, o.Kind, o.Namespace}
		if _, ok := names[g]; !ok {
			order = append(order, g)
		}
		names[g] = append(names[g], o.Name)
	}
	conds := make([]string, 0, len(order))
	args := make([]any, 0, 4*len(order))
	for _, g := range order {
		conds = append(conds, fmt.Sprintf("(cluster = ? AND %s = ? AND %s = ? AND %s IN ?)", kindCol, nsCol, nameCol))
		args = append(args, g.cluster, g.kind, g.namespace, names[g])
	}
	return conds, args
}
