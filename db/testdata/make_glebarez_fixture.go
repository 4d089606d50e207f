//go:build ignore

// Command make_glebarez_fixture writes glebarez-sqlite-v1.11.0.db: a
// database file as the SQLite engine clustergraph embedded until 2026
// (github.com/glebarez/sqlite v1.11.0 → glebarez/go-sqlite v1.21.2 →
// modernc.org/sqlite v1.23.1, SQLite 3.41) wrote it, so TestOldSQLiteFile
// (db/compat_test.go) can prove the current engine opens, migrates, reads
// and extends such a file. Beside it, glebarez-sqlite-v1.11.0.json holds
// what was written and what the old engine read back, as the test's oracle.
//
// The file holds the schema the db package's migrations made, metering
// samples (sub-second tick times, which the package stores as whole Unix
// seconds) over five hours across a day and a month boundary with their
// rollups, node and pod usage, alerts (one updated, one resolved, labels
// and annotations as JSON) with their change log, archived events (raw JSON),
// and a table driver_values the old gorm dialector created for a struct
// of the Go types a future model might use (time.Time, bool, []byte, JSON
// text, int64 extremes, floats, NULLs), so their stored form is pinned too.
//
// It must run where the db package still uses the old engine: the parent
// of the commit that added this file (and the engine change). From the top
// of a checkout of this repository:
//
//	git worktree add /tmp/old-sqlite "$(git log --format=%H --diff-filter=A -1 -- db/testdata/make_glebarez_fixture.go)^"
//	cd /tmp/old-sqlite && go run "$OLDPWD/db/testdata/make_glebarez_fixture.go" -dir "$OLDPWD/db/testdata"
//
// The data is fixed; only the alerts' received/updated times (the clock at
// generation) and the file's bytes differ between runs, and the test reads
// both from the JSON, so a regenerated pair passes as the checked-in one does.
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/glebarez/sqlite"
	"gorm.io/gorm"

	"github.com/clustergraph/clustergraph/db"
)

const name = "glebarez-sqlite-v1.11.0"

// driverValue must stay identical to the copy in db/compat_test.go.
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

// fixture is the JSON beside the database file.
type fixture struct {
	Engine        string
	SQLiteVersion string
	Samples       []db.Sample
	Usage         []db.UsageSample
	Alerts        []db.Alert
	AlertChanges  []db.Alert
	LastChange    uint64
	Events        []db.ArchivedEvent
	Metering      map[db.TimeUnit][]db.Record
	Values        []driverValue
	// Stored is, per driver_values row and column, typeof(col) and
	// quote(col): exactly what the old driver wrote.
	Stored []map[string]string
	// Schema is sqlite_master's type, name and sql, sorted by name.
	Schema []string
}

func main() {
	dir := flag.String("dir", "db/testdata", "where to write the .db and .json")
	flag.Parse()
	if err := run(*dir); err != nil {
		log.Fatal(err)
	}
}

func run(dir string) error {
	ctx := context.Background()
	path := filepath.Join(dir, name+".db")
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(path + suffix); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	s, err := db.Open(ctx, "sqlite://"+path, db.Options{})
	if err != nil {
		return err
	}
	var fx fixture
	fx.Engine = "github.com/glebarez/sqlite v1.11.0, github.com/glebarez/go-sqlite v1.21.2, modernc.org/sqlite v1.23.1"

	// Metering: two clusters, two namespaces, a tick every 30 minutes
	// (at a sub-second offset) from 2026-02-28 21:00 to 2026-03-01 01:30 UTC.
	start := time.Date(2026, 2, 28, 21, 0, 0, 0, time.UTC)
	for i := 0; i < 10; i++ {
		tick := start.Add(time.Duration(i)*30*time.Minute + 123456789*time.Nanosecond)
		for c, cluster := range []string{"east", "west"} {
			for n, ns := range []string{"shop", "ops"} {
				k := int64(1 + i + 10*c + 100*n)
				fx.Samples = append(fx.Samples, db.Sample{
					Cluster: cluster, Namespace: ns, Time: tick,
					CPUMillis: 10 * k, MemoryBytes: k << 20, StorageBytes: k << 30, GPUMillis: (k % 3) * 1000,
					PublicIPs: k % 2, PrivateIPs: k % 5, TrafficIn: k * 7, TrafficOut: k * 11,
					FromRequests: i%4 == 0,
				})
			}
		}
	}
	if err := s.WriteSamples(ctx, fx.Samples); err != nil {
		return err
	}
	all := db.Scope{"east": {All: true}, "west": {All: true}}
	fx.Metering = map[db.TimeUnit][]db.Record{}
	for _, u := range db.Units {
		recs, _, err := s.Metering(ctx, db.MeteringQuery{Unit: u, Scope: all})
		if err != nil {
			return err
		}
		fx.Metering[u] = recs
	}

	// Usage of a node and a pod, every minute for five minutes.
	for i := 0; i < 5; i++ {
		tick := start.Add(time.Duration(i)*time.Minute + 500*time.Millisecond)
		fx.Usage = append(fx.Usage,
			db.UsageSample{Cluster: "east", Kind: "node", Name: "node-1", Time: tick, CPUMillis: int64(100 + i), MemoryBytes: int64(i) << 30},
			db.UsageSample{Cluster: "east", Kind: "pod", Namespace: "shop", Name: "web-0", Time: tick, CPUMillis: int64(5 * i), MemoryBytes: int64(i) << 20})
	}
	if err := s.WriteUsage(ctx, fx.Usage); err != nil {
		return err
	}

	// Alerts: one firing then updated, one firing then resolved, one
	// created resolved; labels and annotations with non-ASCII text.
	firing := []db.Alert{
		{Fingerprint: "fp-cpu", StartsAt: start.Add(10*time.Minute + 250*time.Millisecond), Status: db.Firing, Cluster: "east", Namespace: "shop",
			Name: "web-0", ObjectKind: "Pod", AlertName: "HighCPU", Severity: "warning", Source: "alertmanager", Module: "metering", Type: "resource",
			Message: "CPU über 90 %\n\"quoted\"", Labels: map[string]string{"alertname": "HighCPU", "pod": "web-0", "team": "🛒"},
			Annotations: map[string]string{"summary": "hot", "runbook": "https://example.com/rb?a=1&b=2"}, GeneratorURL: "http://prom/graph?g0.expr=up"},
		{Fingerprint: "fp-disk", StartsAt: start.Add(70 * time.Minute), Status: db.Firing, Cluster: "west", Namespace: "ops",
			Name: "db-0", ObjectKind: "Pod", AlertName: "DiskFull", Severity: "critical", Source: "alertmanager",
			Labels: map[string]string{"alertname": "DiskFull"}, Annotations: map[string]string{}},
	}
	if _, err := s.RecordAlerts(ctx, firing); err != nil {
		return err
	}
	later := []db.Alert{
		{Fingerprint: "fp-cpu", StartsAt: firing[0].StartsAt, Status: db.Firing, Message: "CPU über 95 %", Labels: firing[0].Labels, Annotations: firing[0].Annotations},
		{Fingerprint: "fp-disk", StartsAt: firing[1].StartsAt, Status: db.Resolved, EndsAt: start.Add(130*time.Minute + 999*time.Millisecond)},
		{Fingerprint: "fp-node", StartsAt: start.Add(200 * time.Minute), EndsAt: start.Add(230 * time.Minute), Status: db.Resolved, Cluster: "east",
			Name: "node-1", ObjectKind: "Node", AlertName: "NodeNotReady", Severity: "critical", Source: "hypercloud"},
	}
	if _, err := s.RecordAlerts(ctx, later); err != nil {
		return err
	}
	if fx.Alerts, _, err = s.Alerts(ctx, db.AlertQuery{Scope: all, Ascending: true, Limit: 100}); err != nil {
		return err
	}
	if fx.AlertChanges, fx.LastChange, err = s.AlertChanges(ctx, 0, 100); err != nil {
		return err
	}

	// Events: one repeated (the higher count wins), raw JSON kept as is.
	ev := func(uid, name string, count int64, first, last time.Duration) db.ArchivedEvent {
		raw := fmt.Sprintf(`{"kind":"Event","metadata":{"name":%q,"uid":%q},"count":%d,"message":"Back-off ✗"}`, name, uid, count)
		return db.ArchivedEvent{Cluster: "east", UID: uid, Namespace: "shop", Name: name, InvolvedKind: "Pod", InvolvedNamespace: "shop",
			InvolvedName: "web-0", Type: "Warning", Reason: "BackOff", Source: "kubelet", Message: "Back-off ✗", Count: count,
			FirstSeen: start.Add(first), LastSeen: start.Add(last), Raw: []byte(raw)}
	}
	fx.Events = []db.ArchivedEvent{
		ev("0b9d7c8e-0000-4000-8000-000000000001", "web-0.a", 1, 5*time.Minute, 5*time.Minute+100*time.Millisecond),
		ev("0b9d7c8e-0000-4000-8000-000000000002", "web-0.b", 7, 30*time.Minute, 150*time.Minute+900*time.Millisecond),
		ev("0b9d7c8e-0000-4000-8000-000000000003", "web-0.c", 2, 250*time.Minute, 299*time.Minute),
	}
	if err := s.ArchiveEvents(ctx, fx.Events); err != nil {
		return err
	}
	got, _, err := s.Events(ctx, db.EventQuery{Scope: all, Order: db.EventsByFirstSeen, Limit: 100})
	if err != nil {
		return err
	}
	fx.Events = got
	if err := s.Close(); err != nil {
		return err
	}

	// driver_values, created by the old gorm dialector.
	gdb, err := gorm.Open(sqlite.Open("file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)"), &gorm.Config{})
	if err != nil {
		return err
	}
	if err := gdb.AutoMigrate(&driverValue{}); err != nil {
		return err
	}
	ist := time.FixedZone("IST", 5*3600+1800)
	pdt := time.FixedZone("PDT", -7*3600)
	f, t := false, true
	zero, answer := int64(0), int64(42)
	empty, timeish := "", "2026-03-01 00:00:00+00:00"
	at2 := time.Date(2026, 3, 1, 1, 2, 3, 0, pdt)
	at3 := time.Date(2026, 2, 28, 23, 59, 59, 999999999, time.UTC)
	fx.Values = []driverValue{
		{At: time.Date(2026, 2, 28, 23, 59, 59, 123456789, time.UTC), Flag: true, Blob: []byte{0, 0xff, 0xfe, 'a'},
			JSON: `{"a":[1,2],"ü":"✓"}`, Int: math.MaxInt64, Float: 0.1},
		{At: time.Date(2026, 3, 1, 5, 30, 0, 500000000, ist), AtPtr: &at2, Flag: false, FlagPtr: &f, Blob: []byte{},
			JSON: "null", Int: math.MinInt64, IntPtr: &zero, Float: -1e300, Text: &empty},
		{At: time.Time{}, AtPtr: &at3, Flag: true, FlagPtr: &t, JSON: "", Int: 0, IntPtr: &answer, Float: 0, Text: &timeish},
	}
	if err := gdb.Create(&fx.Values).Error; err != nil {
		return err
	}
	sqlDB, err := gdb.DB()
	if err != nil {
		return err
	}
	if fx.Stored, err = stored(sqlDB); err != nil {
		return err
	}
	if err := sqlDB.QueryRow("SELECT sqlite_version()").Scan(&fx.SQLiteVersion); err != nil {
		return err
	}
	// Compact the file, then record the schema as the old engine left it.
	if _, err := sqlDB.Exec("VACUUM"); err != nil {
		return err
	}
	rows, err := sqlDB.Query("SELECT type || ' ' || name || ': ' || COALESCE(sql, '') FROM sqlite_master ORDER BY name")
	if err != nil {
		return err
	}
	for rows.Next() {
		var l string
		if err := rows.Scan(&l); err != nil {
			return err
		}
		fx.Schema = append(fx.Schema, l)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if err := sqlDB.Close(); err != nil {
		return err
	}
	out, err := json.MarshalIndent(fx, "", "\t")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name+".json"), append(out, '\n'), 0o644)
}

// stored reads each driver_values cell's storage class and SQL literal.
func stored(d *sql.DB) ([]map[string]string, error) {
	cols := []string{"at", "at_ptr", "flag", "flag_ptr", "blob", "json", "int", "int_ptr", "float", "text"}
	var out []map[string]string
	rows, err := d.Query("SELECT id FROM driver_values ORDER BY id")
	if err != nil {
		return nil, err
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, id := range ids {
		m := map[string]string{}
		for _, c := range cols {
			var v string
			if err := d.QueryRow(fmt.Sprintf("SELECT typeof(`%s`) || ' ' || quote(`%s`) FROM driver_values WHERE id = ?", c, c), id).Scan(&v); err != nil {
				return nil, err
			}
			m[c] = v
		}
		out = append(out, m)
	}
	return out, nil
}
