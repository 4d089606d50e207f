package db

import (
	"context"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/clustergraph/clustergraph/errkind"
)

// ArchivedEvent is a Kubernetes Event as archived.
type ArchivedEvent struct {
	Cluster           string
	UID               string
	Namespace         string
	Name              string
	InvolvedKind      string
	InvolvedNamespace string
	InvolvedName      string
	Type              string
	Reason            string
	Source            string
	Message           string
	Count             int64
	FirstSeen         time.Time
	LastSeen          time.Time
	// Raw is the Event as JSON.
	Raw []byte
}

var eventCols = []string{"namespace", "name", "involved_kind", "involved_namespace", "involved_name", "type", "reason", "source", "message", "count", "first_seen", "last_seen", "raw"}

// ArchiveEvents stores events, one row per cluster and uid: a repeat of an
// event (higher count, later last seen) updates its row, and a stale copy
// (an older count) never overwrites a newer one.
func (s *Store) ArchiveEvents(ctx context.Context, events []ArchivedEvent) error {
	if len(events) == 0 {
		return nil
	}
	// The newest copy of each event in the batch wins.
	latest := map[[2]string]int{}
	rows := make([]eventRow, 0, len(events))
	for _, e := range events {
		k := [2]string{e.Cluster, e.UID}
		r := eventRow{Cluster: e.Cluster, UID: e.UID, Namespace: e.Namespace, Name: truncate(e.Name, 253),
			InvolvedKind: truncate(e.InvolvedKind, 63), InvolvedNamespace: e.InvolvedNamespace, InvolvedName: truncate(e.InvolvedName, 253),
			Type: truncate(e.Type, 16), Reason: truncate(e.Reason, 128), Source: truncate(e.Source, 253), Message: e.Message,
			Count: e.Count, FirstSeen: e.FirstSeen.Unix(), LastSeen: e.LastSeen.Unix(), Raw: string(e.Raw)}
		if i, ok := latest[k]; ok {
			if rows[i].Count <= r.Count {
				rows[i] = r
			}
			continue
		}
		latest[k] = len(rows)
		rows = append(rows, r)
	}
	err := s.gdb.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		for start := 0; start < len(rows); start += 200 {
			batch := rows[start:min(start+200, len(rows))]
			var b strings.Builder
			args := make([]any, 0, len(batch)*15)
			b.WriteString("INSERT INTO events (cluster, uid, " + strings.Join(eventCols, ", ") + ") VALUES ")
			for i, r := range batch {
				if i > 0 {
					b.WriteString(", ")
				}
				b.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
				args = append(args, r.Cluster, r.UID, r.Namespace, r.Name, r.InvolvedKind, r.InvolvedNamespace, r.InvolvedName,
					r.Type, r.Reason, r.Source, r.Message, r.Count, r.FirstSeen, r.LastSeen, r.Raw)
			}
			b.WriteString(s.upsertNewer())
			if err := tx.Exec(b.String(), args...).Error; err != nil {
				return err
			}
		}
		return nil
	})
	return s.wrap("archiving events", err)
}

// upsertNewer updates an archived event's columns only when the incoming
// copy has at least its count.
func (s *Store) upsertNewer() string {
	set := make([]string, len(eventCols))
	for i, c := range eventCols {
		if s.dialect == MySQL {
			// MySQL evaluates assignments left to right, so count must
			// be compared before it is assigned: it is last in the
			// list below.
			set[i] = fmt.Sprintf("%s = IF(VALUES(count) >= count, VALUES(%s), %s)", c, c, c)
		} else {
			set[i] = fmt.Sprintf("%s = CASE WHEN excluded.count >= events.count THEN excluded.%s ELSE events.%s END", c, c, c)
		}
	}
	if s.dialect == MySQL {
		// Move count to the end (see above).
		var rest []string
		var count string
		for i, c := range eventCols {
			if c == "count" {
				count = set[i]
			} else {
				rest = append(rest, set[i])
			}
		}
		return " ON DUPLICATE KEY UPDATE " + strings.Join(append(rest, count), ", ")
	}
	return " ON CONFLICT (cluster, uid) DO UPDATE SET " + strings.Join(set, ", ")
}

// EventOrder is how archived events are sorted.
type EventOrder string

// Event orders. Each ends in cluster, namespace, name, uid for a total order.
const (
	EventsByLastSeen  EventOrder = "last_seen"
	EventsByFirstSeen EventOrder = "first_seen"
	EventsByName      EventOrder = "name"
	EventsByNamespace EventOrder = "namespace"
	EventsByType      EventOrder = "type"
	EventsByCluster   EventOrder = "cluster"
)

var eventOrderCols = map[EventOrder][]string{
	EventsByLastSeen:  {"last_seen", "cluster", "namespace", "name"},
	EventsByFirstSeen: {"first_seen", "cluster", "namespace", "name"},
	EventsByType:      {"type", "cluster", "namespace", "name"},
	EventsByName:      {"name", "namespace", "cluster"},
	EventsByNamespace: {"namespace", "name", "cluster"},
	EventsByCluster:   {"cluster", "namespace", "name"},
}

// EventQuery selects archived events. Empty fields do not filter.
type EventQuery struct {
	Scope                                                       Scope
	Namespace, Type, Reason, Source, InvolvedKind, InvolvedName string
	// NameContains matches a substring of the event's name.
	NameContains string
	// Since and Until bound last seen: Since <= lastSeen < Until.
	Since, Until  time.Time
	Order         EventOrder
	Desc          bool
	Offset, Limit int
	// ExcludeUIDs leaves these events out (per cluster): the live ones the
	// caller merges in itself.
	ExcludeUIDs map[string][]string
}

func (q *EventQuery) apply(tx *gorm.DB) (*gorm.DB, error) {
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
		return nil, fmt.Errorf("%w: since is not before until", errkind.BadInput)
	}
	tx = q.Scope.where(tx)
	for col, v := range map[string]string{"namespace": q.Namespace, "type": q.Type, "reason": q.Reason,
		"source": q.Source, "involved_kind": q.InvolvedKind, "involved_name": q.InvolvedName} {
		if v != "" {
			tx = tx.Where(col+" = ?", v)
		}
	}
	if q.NameContains != "" {
		tx = tx.Where("LOWER(name) LIKE ? ESCAPE '!'", "%"+strings.ToLower(escapeLike(q.NameContains))+"%")
	}
	if !q.Since.IsZero() {
		tx = tx.Where("last_seen >= ?", q.Since.Unix())
	}
	if !q.Until.IsZero() {
		tx = tx.Where("last_seen < ?", q.Until.Unix())
	}
	for c, uids := range q.ExcludeUIDs {
		for start := 0; start < len(uids); start += 500 {
			tx = tx.Where("NOT (cluster = ? AND uid IN ?)", c, uids[start:min(start+500, len(uids))])
		}
	}
	return tx, nil
}

// escapeLike makes LIKE's wildcards in s literal, with '!' as the escape
// character: SQLite has no default escape and MySQL's default (a
// backslash) would need writing differently in each dialect's literal.
func escapeLike(s string) string {
	return strings.NewReplacer(`!`, `!!`, `%`, `!%`, `_`, `!_`).Replace(s)
}

// Events returns a page of archived events (their raw JSON) and how many
// match in all.
func (s *Store) Events(ctx context.Context, q EventQuery) ([]ArchivedEvent, int64, error) {
	tx, err := q.apply(s.gdb.WithContext(ctx).Model(&eventRow{}))
	if err != nil {
		return nil, 0, err
	}
	var total int64
	if err := tx.Session(&gorm.Session{}).Count(&total).Error; err != nil {
		return nil, 0, s.wrap("counting archived events", err)
	}
	if q.Order == "" {
		q.Order, q.Desc = EventsByLastSeen, true
	}
	dir := ""
	if q.Desc {
		dir = " DESC"
	}
	// The same keys, in the same order, as the API sorts live objects by
	// (k8s.keyOf), so live and archived events interleave exactly.
	cols, ok := eventOrderCols[q.Order]
	if !ok {
		return nil, 0, fmt.Errorf("%w: cannot order events by %q", errkind.BadInput, q.Order)
	}
	parts := make([]string, 0, len(cols)+1)
	for _, c := range append(cols, "uid") {
		parts = append(parts, c+dir)
	}
	order := strings.Join(parts, ", ")
	var rows []eventRow
	if err := tx.Order(order).Offset(q.Offset).Limit(q.Limit).Find(&rows).Error; err != nil {
		return nil, 0, s.wrap("reading archived events", err)
	}
	return eventsOf(rows), total, nil
}

func eventsOf(rows []eventRow) []ArchivedEvent {
	out := make([]ArchivedEvent, len(rows))
	for i, r := range rows {
		out[i] = ArchivedEvent{Cluster: r.Cluster, UID: r.UID, Namespace: r.Namespace, Name: r.Name,
			InvolvedKind: r.InvolvedKind, InvolvedNamespace: r.InvolvedNamespace, InvolvedName: r.InvolvedName,
			Type: r.Type, Reason: r.Reason, Source: r.Source, Message: r.Message, Count: r.Count,
			FirstSeen: time.Unix(r.FirstSeen, 0).UTC(), LastSeen: time.Unix(r.LastSeen, 0).UTC(), Raw: []byte(r.Raw)}
	}
	return out
}

// InvolvedRef names the object events are about.
type InvolvedRef struct{ Cluster, Kind, Namespace, Name string }

// EventsOf returns the archived events of each object asked, newest first,
// with one query for the batch.
func (s *Store) EventsOf(ctx context.Context, refs []InvolvedRef, limit int) (map[InvolvedRef][]ArchivedEvent, error) {
	out := map[InvolvedRef][]ArchivedEvent{}
	if len(refs) == 0 {
		return out, nil
	}
	objects := make([]objectRef, len(refs))
	for i, r := range refs {
		objects[i] = objectRef(r)
	}
	conds, args := objectConds("involved_kind", "involved_namespace", "involved_name", objects)
	var rows []eventRow
	err := s.gdb.WithContext(ctx).Where(strings.Join(conds, " OR "), args...).Order("last_seen DESC, uid").Find(&rows).Error
	if err != nil {
		return nil, s.wrap("reading archived events", err)
	}
	for _, e := range eventsOf(rows) {
		k := InvolvedRef{e.Cluster, e.InvolvedKind, e.InvolvedNamespace, e.InvolvedName}
		if limit <= 0 || len(out[k]) < limit {
			out[k] = append(out[k], e)
		}
	}
	return out, nil
}
