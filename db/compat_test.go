package db

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"gorm.io/gorm"
)

// The fixture: a database file written by the SQLite engine clustergraph
// embedded before (glebarez/sqlite on modernc.org/sqlite v1.23.1), and what
// was written to it and read back there. testdata/make_glebarez_fixture.go
// made both and says how to make them again.
const oldFixture = "testdata/glebarez-sqlite-v1.11.0"

// driverValue must stay identical to the copy in the fixture's generator:
// a struct of the Go types the models do not use today (they keep times as
// Unix seconds and flags as integers), whose table the old gorm dialector
// created, so their stored form is pinned for a model that ever does.
type driverValue struct {
	ID      uint64 `gorm:"primaryKey;autoIncrement"`
	At      time.Time
	AtPtr   *time.Time
	Flag    bool
	FlagPtr *bool
	Blob    []byte
	JSON    string `gorm:"type:text"`
	Int     int64
	IntPtr  *int64
	Float   float64
	Text    *string
}

func (driverValue) TableName() string { return "driver_values" }

type oldFile struct {
	Engine        string
	SQLiteVersion string
	Samples       []Sample
	Usage         []UsageSample
	Alerts        []Alert
	AlertChanges  []Alert
	LastChange    uint64
	Events        []ArchivedEvent
	Metering      map[TimeUnit][]Record
	Values        []driverValue
	Stored        []map[string]string
	Schema        []string
}

// openOldFixture copies the fixture to a temporary directory (opening
// migrates and writes) and opens it with the current engine.
func openOldFixture(t *testing.T) (*Store, oldFile) {
	t.Helper()
	var fx oldFile
	b, err := os.ReadFile(oldFixture + ".json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &fx); err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile(oldFixture + ".db")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "clustergraph.db")
	if err := os.WriteFile(path, file, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(context.Background(), "sqlite://"+path, Options{})
	if err != nil {
		t.Fatalf("opening a file the old engine wrote: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, fx
}

// TestOldSQLiteFile opens a file the previous SQLite engine wrote: it must
// migrate without touching the schema, read back exactly what the old
// engine read, write new rows in the old rows' stored form, and answer
// range queries and rollups over old and new rows together.
func TestOldSQLiteFile(t *testing.T) {
	s, fx := openOldFixture(t)
	ctx := context.Background()
	t.Logf("fixture by %s (SQLite %s); engine now SQLite %s", fx.Engine, fx.SQLiteVersion, sqliteVersion(t, s))

	// Migrating changed nothing: same schema, no migration re-applied.
	// (schema_migrations goes through AutoMigrate on every start, which
	// would rebuild the table if the dialectors' column types differed.)
	if diff := cmp.Diff(fx.Schema, schemaOf(t, s.gdb)); diff != "" {
		t.Errorf("schema after migrating (-old engine +now):\n%s", diff)
	}
	if v, err := s.Version(ctx); err != nil || v != len(migrations) {
		t.Errorf("Version = %d, %v; want %d", v, err, len(migrations))
	}
	var applied int64
	if err := s.gdb.Model(&schemaMigration{}).Count(&applied).Error; err != nil || applied != int64(len(migrations)) {
		t.Errorf("schema_migrations holds %d rows (%v), want %d", applied, err, len(migrations))
	}

	everyone := Scope{"east": {All: true}, "west": {All: true}}
	t.Run("reads what the old engine read", func(t *testing.T) {
		for _, u := range Units {
			got, _, err := s.Metering(ctx, MeteringQuery{Unit: u, Scope: everyone})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(fx.Metering[u], got); diff != "" {
				t.Errorf("%s records (-old engine +now):\n%s", u, diff)
			}
			// And the old engine's rollups were right: the samples, as
			// written, summed by hand.
			if diff := cmp.Diff(rollupsOf(fx.Samples, u), got); diff != "" {
				t.Errorf("%s records (-from the samples +stored):\n%s", u, diff)
			}
		}
		alerts, _, err := s.Alerts(ctx, AlertQuery{Scope: everyone, Ascending: true, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(fx.Alerts, alerts); diff != "" {
			t.Errorf("alerts (-old engine +now):\n%s", diff)
		}
		changes, last, err := s.AlertChanges(ctx, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(fx.AlertChanges, changes); diff != "" || last != fx.LastChange {
			t.Errorf("alert changes up to %d, want %d (-old engine +now):\n%s", last, fx.LastChange, diff)
		}
		events, _, err := s.Events(ctx, EventQuery{Scope: everyone, Order: EventsByFirstSeen, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(fx.Events, events); diff != "" {
			t.Errorf("events (-old engine +now):\n%s", diff)
		}
		usage, err := s.UsageHistory(ctx, usageKeys(fx.Usage), time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(usageOf(fx.Usage), usage); diff != "" {
			t.Errorf("usage (-written +read):\n%s", diff)
		}
	})

	t.Run("driver values", func(t *testing.T) {
		// The current dialector migrates the old dialector's table to nothing new.
		if err := s.gdb.AutoMigrate(&driverValue{}); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(fx.Schema, schemaOf(t, s.gdb)); diff != "" {
			t.Errorf("schema after AutoMigrate(driverValue) (-old +now):\n%s", diff)
		}
		var got []driverValue
		if err := s.gdb.Order("id").Find(&got).Error; err != nil {
			t.Fatal(err)
		}
		// Times compare as instants and by their stored UTC offset.
		sameTime := cmp.Comparer(func(a, b time.Time) bool {
			_, ao := a.Zone()
			_, bo := b.Zone()
			return a.Equal(b) && ao == bo
		})
		if diff := cmp.Diff(fx.Values, got, sameTime); diff != "" {
			t.Errorf("driver_values read back (-written by the old engine +read now):\n%s", diff)
		}
		// Written again by the current engine, each value is stored as
		// the old one wrote it: same storage class, same bytes.
		again := make([]driverValue, len(fx.Values))
		for i, v := range fx.Values {
			v.ID = 0
			again[i] = v
		}
		if err := s.gdb.Create(&again).Error; err != nil {
			t.Fatal(err)
		}
		stored := storedValues(t, s.gdb)
		if len(stored) != 2*len(fx.Stored) {
			t.Fatalf("%d driver_values rows, want %d", len(stored), 2*len(fx.Stored))
		}
		if diff := cmp.Diff(fx.Stored, stored[len(fx.Stored):]); diff != "" {
			t.Errorf("stored form (-old engine +now):\n%s", diff)
		}
		// A bound time.Time compares with old and new rows alike.
		var n int64
		cut := time.Date(2026, 2, 28, 23, 59, 59, 500000000, time.UTC)
		if err := s.gdb.Model(&driverValue{}).Where("at_ptr >= ?", cut).Count(&n).Error; err != nil {
			t.Fatal(err)
		}
		// Rows 2 (01:02:03-07:00) and 3 (23:59:59.999999999+00:00), old and new.
		if n != 4 {
			t.Errorf("%d rows with at_ptr >= %s, want 4", n, cut)
		}
	})

	t.Run("old and new rows together", func(t *testing.T) {
		// New samples: in the old hours (other minutes, a new namespace),
		// in a new hour, and a repeat of an old sample with other values,
		// which must be ignored as on one engine.
		old := fx.Samples[0]
		dup := old
		dup.CPUMillis, dup.TrafficIn = 999999, 999999
		fresh := []Sample{
			dup,
			{Cluster: "east", Namespace: "shop", Time: at(t, "2026-02-28T21:45:30.75Z"), CPUMillis: 33, MemoryBytes: 44, TrafficIn: 5, FromRequests: true},
			{Cluster: "east", Namespace: "batch", Time: at(t, "2026-02-28T23:10:00.5Z"), CPUMillis: 7, GPUMillis: 2000, PublicIPs: 1},
			{Cluster: "west", Namespace: "ops", Time: at(t, "2026-03-01T02:15:00Z"), CPUMillis: 8, StorageBytes: 1 << 40, TrafficOut: 3},
			{Cluster: "west", Namespace: "ops", Time: at(t, "2026-03-01T02:45:00.999Z"), CPUMillis: 10, StorageBytes: 1 << 40, TrafficOut: 4},
		}
		if err := s.WriteSamples(ctx, fresh); err != nil {
			t.Fatal(err)
		}
		union := append(append([]Sample{}, fx.Samples...), fresh...)
		for _, u := range Units {
			got, total, err := s.Metering(ctx, MeteringQuery{Unit: u, Scope: everyone})
			if err != nil {
				t.Fatal(err)
			}
			want := rollupsOf(union, u)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s records (-from all samples +stored):\n%s", u, diff)
			}
			if total != int64(len(want)) {
				t.Errorf("%s total = %d, want %d", u, total, len(want))
			}
		}
		// A range over old and new hours: [22:00, 02:00) holds old hours
		// 22, 23, 00, 01 (23 with a new namespace) and no new 02.
		from, to := at(t, "2026-02-28T22:00:00Z"), at(t, "2026-03-01T02:00:00Z")
		got, _, err := s.Metering(ctx, MeteringQuery{Unit: Hour, Scope: everyone, Start: from, End: to})
		if err != nil {
			t.Fatal(err)
		}
		var want []Record
		for _, r := range rollupsOf(union, Hour) {
			if !r.PeriodStart.Before(from) && r.PeriodStart.Before(to) {
				want = append(want, r)
			}
		}
		if diff := cmp.Diff(want, got); diff != "" || len(want) != 17 {
			t.Errorf("%d hour records in [%s, %s), want 17 (-want +got):\n%s", len(got), from, to, diff)
		}
		// Sorted by average CPU across old and new rows.
		top, _, err := s.Metering(ctx, MeteringQuery{Unit: Day, Scope: everyone, Sort: []Sort{{Field: SortCPU, Desc: true}}, Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(top) != 1 || top[0].Cluster != "west" || top[0].Namespace != "ops" || !top[0].PeriodStart.Equal(at(t, "2026-02-28T00:00:00Z")) {
			t.Errorf("top day by CPU = %+v, want west/ops on 2026-02-28", top)
		}
		cl, err := s.ClusterMetering(ctx, Month, []string{"west"}, time.Time{}, time.Time{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(cl["west"]) != 2 {
			t.Errorf("west's months = %+v, want February and March", cl["west"])
		}

		// Usage: new points after the old ones, read back in time order.
		newUsage := []UsageSample{
			{Cluster: "east", Kind: "node", Name: "node-1", Time: at(t, "2026-02-28T21:02:00.5Z"), CPUMillis: 1}, // a repeat: ignored
			{Cluster: "east", Kind: "node", Name: "node-1", Time: at(t, "2026-02-28T21:10:00.25Z"), CPUMillis: 150, MemoryBytes: 1},
		}
		if err := s.WriteUsage(ctx, newUsage); err != nil {
			t.Fatal(err)
		}
		hist, err := s.UsageHistory(ctx, []ObjectKey{{"east", "node", "", "node-1"}}, at(t, "2026-02-28T21:03:00Z"))
		if err != nil {
			t.Fatal(err)
		}
		wantHist := []UsagePoint{
			{at(t, "2026-02-28T21:03:00Z"), 103, 3 << 30},
			{at(t, "2026-02-28T21:04:00Z"), 104, 4 << 30},
			{at(t, "2026-02-28T21:10:00Z"), 150, 1},
		}
		if diff := cmp.Diff(wantHist, hist[ObjectKey{"east", "node", "", "node-1"}]); diff != "" {
			t.Errorf("node-1 since 21:03 (-want +got):\n%s", diff)
		}

		// Alerts: resolve the old firing one, open a new one; a range
		// over startsAt picks old and new.
		changed, err := s.RecordAlerts(ctx, []Alert{
			{Fingerprint: "fp-cpu", StartsAt: fx.Alerts[0].StartsAt, Status: Resolved, EndsAt: at(t, "2026-03-01T03:00:00Z")},
			{Fingerprint: "fp-mem", StartsAt: at(t, "2026-03-01T00:30:00.9Z"), Status: Firing, Cluster: "west", Namespace: "ops", Name: "db-0",
				ObjectKind: "Pod", AlertName: "HighMemory", Severity: "warning", Labels: map[string]string{"alertname": "HighMemory"}},
		})
		if err != nil || len(changed) != 2 {
			t.Fatalf("RecordAlerts changed %d, %v; want 2", len(changed), err)
		}
		inRange, total, err := s.Alerts(ctx, AlertQuery{Scope: everyone, Start: at(t, "2026-02-28T22:00:00Z"), End: at(t, "2026-03-01T00:30:01Z"), Ascending: true, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		var fps []string
		for _, a := range inRange {
			fps = append(fps, a.Fingerprint+"@"+a.StartsAt.Format("15:04:05"))
		}
		if diff := cmp.Diff([]string{"fp-disk@22:10:00", "fp-node@00:20:00", "fp-mem@00:30:00"}, fps); diff != "" || total != 3 {
			t.Errorf("alerts starting in [22:00, 00:30:01): %d (-want +got):\n%s", total, diff)
		}
		byID, err := s.AlertsByID(ctx, []uint64{fx.Alerts[0].ID, 1 << 40})
		if err != nil {
			t.Fatal(err)
		}
		cpu := byID[fx.Alerts[0].ID]
		if len(byID) != 1 {
			t.Errorf("AlertsByID of one stored and one missing id: %d alerts", len(byID))
		}
		if cpu.Status != Resolved || !cpu.EndsAt.Equal(at(t, "2026-03-01T03:00:00Z")) || cpu.Message != fx.Alerts[0].Message || !cpu.ReceivedAt.Equal(fx.Alerts[0].ReceivedAt) {
			t.Errorf("old alert after resolving = %+v", cpu)
		}
		newChanges, last, err := s.AlertChanges(ctx, fx.LastChange, 100)
		if err != nil || len(newChanges) != 2 || last != fx.LastChange+2 {
			t.Errorf("changes after %d: %d up to %d (%v), want 2 up to %d", fx.LastChange, len(newChanges), last, err, fx.LastChange+2)
		}

		// Events: an old one seen again (higher count), a stale copy of
		// another (lower count: ignored), a new one; a lastSeen range.
		e0, e1 := fx.Events[0], fx.Events[1]
		e0.Count, e0.LastSeen, e0.Raw = 3, at(t, "2026-03-01T04:00:00.5Z"), []byte(`{"count":3}`)
		e1.Count, e1.Message = 1, "stale"
		e2 := fx.Events[2]
		e2.UID, e2.Name, e2.FirstSeen, e2.LastSeen, e2.Raw = "0b9d7c8e-0000-4000-8000-000000000004", "web-0.d", at(t, "2026-02-28T23:00:00Z"), at(t, "2026-02-28T23:30:00Z"), []byte(`{}`)
		if err := s.ArchiveEvents(ctx, []ArchivedEvent{e0, e1, e2}); err != nil {
			t.Fatal(err)
		}
		evs, total, err := s.Events(ctx, EventQuery{Scope: everyone, Since: at(t, "2026-02-28T23:00:00Z"), Until: at(t, "2026-03-01T04:00:00Z"), Order: EventsByLastSeen, Desc: true, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range evs {
			names = append(names, fmt.Sprintf("%s×%d@%s", e.Name, e.Count, e.LastSeen.Format("15:04:05")))
		}
		// Newest first; web-0.a moved to 04:00, outside the range.
		want2 := []string{"web-0.c×2@01:59:00", "web-0.d×2@23:30:00", "web-0.b×7@23:30:00"}
		if diff := cmp.Diff(want2, names); diff != "" || total != 3 {
			t.Errorf("events last seen in [23:00, 04:00): %d (-want +got):\n%s", total, diff)
		}
	})

	t.Run("reopens", func(t *testing.T) {
		path := s.where[len("sqlite:"):]
		s2, err := Open(ctx, "sqlite://"+path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer s2.Close()
		if v, err := s2.Version(ctx); err != nil || v != len(migrations) {
			t.Errorf("Version after reopening = %d, %v", v, err)
		}
	})
}

// TestSQLiteConnection checks the file lands where the DSN says (URI
// characters in its path included), what the DSN asks of each new
// connection took effect, and that an in-memory database is one per Store.
func TestSQLiteConnection(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "data 100%25 #1?x", "cg.db")
	s, err := Open(ctx, "sqlite://"+path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := os.Stat(path); err != nil {
		t.Errorf("the database file is not where the DSN names it: %v", err)
	}
	for pragma, want := range map[string]string{"journal_mode": "wal", "busy_timeout": "10000", "synchronous": "1"} {
		var got string
		if err := s.gdb.Raw("PRAGMA " + pragma).Scan(&got).Error; err != nil || got != want {
			t.Errorf("PRAGMA %s = %q (%v), want %q", pragma, got, err, want)
		}
	}
	// A time.Time reaching SQLite is written as the old engine wrote it.
	var text string
	when := time.Date(2026, 3, 1, 0, 0, 0, 120000000, time.UTC)
	if err := s.gdb.Raw("SELECT CAST(? AS TEXT)", when).Scan(&text).Error; err != nil || text != "2026-03-01 00:00:00.12+00:00" {
		t.Errorf("a bound time is stored as %q (%v), want %q", text, err, "2026-03-01 00:00:00.12+00:00")
	}

	a, err := Open(ctx, "sqlite::memory:", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(ctx, "sqlite::memory:", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	sample := []Sample{{Cluster: "a", Namespace: "n", Time: time.Unix(3600, 0), CPUMillis: 1}}
	if err := a.WriteSamples(ctx, sample); err != nil {
		t.Fatal(err)
	}
	// Many calls, one database: the Store's single connection holds it.
	for range 3 {
		got, _, err := a.Metering(ctx, MeteringQuery{Unit: Hour, Scope: Scope{"a": {All: true}}})
		if err != nil || len(got) != 1 {
			t.Fatalf("the in-memory store's own rows: %d (%v), want 1", len(got), err)
		}
	}
	got, _, err := b.Metering(ctx, MeteringQuery{Unit: Hour, Scope: Scope{"a": {All: true}}})
	if err != nil || len(got) != 0 {
		t.Errorf("another in-memory store sees %d rows (%v), want 0", len(got), err)
	}
}

func at(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func sqliteVersion(t *testing.T, s *Store) string {
	var v string
	if err := s.gdb.Raw("SELECT sqlite_version()").Scan(&v).Error; err != nil {
		t.Fatal(err)
	}
	return v
}

// schemaOf lists sqlite_master as the fixture's generator does.
func schemaOf(t *testing.T, g *gorm.DB) []string {
	t.Helper()
	var out []string
	if err := g.Raw("SELECT type || ' ' || name || ': ' || COALESCE(sql, '') FROM sqlite_master ORDER BY name").Scan(&out).Error; err != nil {
		t.Fatal(err)
	}
	return out
}

// storedValues reads each driver_values cell's storage class and SQL
// literal, as the fixture's generator does.
func storedValues(t *testing.T, g *gorm.DB) []map[string]string {
	t.Helper()
	cols := []string{"at", "at_ptr", "flag", "flag_ptr", "blob", "json", "int", "int_ptr", "float", "text"}
	var ids []int64
	if err := g.Raw("SELECT id FROM driver_values ORDER BY id").Scan(&ids).Error; err != nil {
		t.Fatal(err)
	}
	var out []map[string]string
	for _, id := range ids {
		m := map[string]string{}
		for _, c := range cols {
			var v string
			if err := g.Raw(fmt.Sprintf("SELECT typeof(`%s`) || ' ' || quote(`%s`) FROM driver_values WHERE id = ?", c, c), id).Scan(&v).Error; err != nil {
				t.Fatal(err)
			}
			m[c] = v
		}
		out = append(out, m)
	}
	return out
}

// rollupsOf computes by hand what Metering returns for samples in unit u
// (every namespace, default order): the first sample of a namespace at a
// tick (whole Unix second) counts, later ones are ignored.
func rollupsOf(samples []Sample, u TimeUnit) []Record {
	type key struct {
		cluster, ns string
		start       int64
	}
	seen := map[[3]any]bool{}
	sums := map[key]*MeteringColumns{}
	counts := map[key]int64{}
	for _, x := range samples {
		id := [3]any{x.Cluster, x.Namespace, x.Time.Unix()}
		if seen[id] {
			continue
		}
		seen[id] = true
		k := key{x.Cluster, x.Namespace, u.Start(x.Time).Unix()}
		c := sums[k]
		if c == nil {
			c = &MeteringColumns{}
			sums[k] = c
		}
		c.CPUMillis += x.CPUMillis
		c.MemoryBytes += x.MemoryBytes
		c.StorageBytes += x.StorageBytes
		c.GPUMillis += x.GPUMillis
		c.PublicIPs += x.PublicIPs
		c.PrivateIPs += x.PrivateIPs
		c.TrafficIn += x.TrafficIn
		c.TrafficOut += x.TrafficOut
		c.FromRequests += b2i(x.FromRequests)
		counts[k]++
	}
	out := make([]Record, 0, len(sums))
	for k, c := range sums {
		r := meteringRollup{Cluster: k.cluster, Namespace: k.ns, PeriodStart: k.start, Samples: counts[k], MeteringColumns: *c}
		out = append(out, r.record(u))
	}
	// Metering's default order: newest first, then cluster, namespace.
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if !a.PeriodStart.Equal(b.PeriodStart) {
			return a.PeriodStart.After(b.PeriodStart)
		}
		if a.Cluster != b.Cluster {
			return a.Cluster < b.Cluster
		}
		return a.Namespace < b.Namespace
	})
	return out
}

func usageKeys(samples []UsageSample) []ObjectKey {
	seen := map[ObjectKey]bool{}
	var out []ObjectKey
	for _, x := range samples {
		k := ObjectKey{x.Cluster, x.Kind, x.Namespace, x.Name}
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}

// usageOf is what UsageHistory returns for samples: whole seconds, oldest first.
func usageOf(samples []UsageSample) map[ObjectKey][]UsagePoint {
	out := map[ObjectKey][]UsagePoint{}
	for _, x := range samples {
		k := ObjectKey{x.Cluster, x.Kind, x.Namespace, x.Name}
		out[k] = append(out[k], UsagePoint{Time: time.Unix(x.Time.Unix(), 0).UTC(), CPUMillis: x.CPUMillis, MemoryBytes: x.MemoryBytes})
	}
	for _, pts := range out {
		sort.Slice(pts, func(i, j int) bool { return pts[i].Time.Before(pts[j].Time) })
	}
	return out
}
