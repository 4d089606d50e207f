package metering

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	_ "github.com/ncruces/go-sqlite3/driver" // the "sqlite3" database/sql driver, to write rows the spool would not

	"github.com/clustergraph/clustergraph/db"
	"github.com/clustergraph/clustergraph/k8s"
	"github.com/clustergraph/clustergraph/metrics"
)

// logRecorder is a slog.Handler keeping every record, for tests that
// check what reached the log.
type logRecorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

// Enabled takes every level.
func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

// Handle keeps r.
func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r.Clone())
	return nil
}

// WithAttrs drops attrs: the tests look at the records' own attributes.
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return h }

// WithGroup ignores the group, as WithAttrs does.
func (h *logRecorder) WithGroup(string) slog.Handler { return h }

// warnings returns the attributes of every warning logged so far that
// carries the attribute key, oldest first.
func (h *logRecorder) warnings(key string) []map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []map[string]any
	for _, r := range h.recs {
		if r.Level != slog.LevelWarn {
			continue
		}
		attrs := map[string]any{}
		r.Attrs(func(a slog.Attr) bool {
			attrs[a.Key] = a.Value.Any()
			return true
		})
		if _, ok := attrs[key]; ok {
			out = append(out, attrs)
		}
	}
	return out
}

// testSpool opens an outbox holding at most bound samples in a file of
// the test's own.
func testSpool(t *testing.T, path string, bound int) *db.Spool[db.Sample] {
	t.Helper()
	sp, err := db.OpenSpool[db.Sample](path, bound)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	return sp
}

// samples is n samples of cluster "c", namespaces "a", "b", ….
func samples(n int) []db.Sample {
	out := make([]db.Sample, n)
	for i := range out {
		out[i] = db.Sample{Cluster: "c", Namespace: string(rune('a' + i)), Time: time.Unix(3600, 0)}
	}
	return out
}

// emptyRegistry is a registry of no clusters: ticks sample nothing, so
// what the spool holds is what a test put there.
func emptyRegistry(t *testing.T) *k8s.Registry {
	t.Helper()
	reg, err := k8s.NewStaticRegistry(nil)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

// TestCollectorLogsSpoolDrops: samples the outbox dropped past its bound
// reach the log as a warning with the number since the last one, the total
// and the bound, once per tick in which the count grew, and not on ticks
// in which it did not.
func TestCollectorLogsSpoolDrops(t *testing.T) {
	const bound = 3
	sp := testSpool(t, filepath.Join(t.TempDir(), "spool.db"), bound)
	rec := &logRecorder{}
	down := errors.New("database down")
	c := New(Config{Registry: emptyRegistry(t), Store: func() (*db.Store, error) { return nil, down }, Spool: sp, Log: slog.New(rec)})
	ctx := context.Background()
	tick := time.Unix(3600, 0)

	// Ticks (or the old spool file's import at start) spooled more than
	// the bound while the database was down.
	if err := sp.Add(samples(bound + 2)); err != nil {
		t.Fatal(err)
	}
	c.Tick(ctx, tick)
	c.Tick(ctx, tick.Add(time.Minute)) // nothing more dropped: no second warning
	if err := sp.Add(samples(bound + 1)); err != nil {
		t.Fatal(err)
	}
	c.Tick(ctx, tick.Add(2*time.Minute))

	got := rec.warnings("droppedTotal")
	want := []struct{ dropped, total int64 }{{2, 2}, {bound + 1, bound + 3}}
	if len(got) != len(want) {
		t.Fatalf("%d drop warnings %v, want %d", len(got), got, len(want))
	}
	for i, w := range want {
		if got[i]["dropped"] != w.dropped || got[i]["droppedTotal"] != w.total || got[i]["bound"] != int64(bound) {
			t.Errorf("drop warning %d: %v; want dropped %d, droppedTotal %d, bound %d", i, got[i], w.dropped, w.total, bound)
		}
	}
	if sp.Dropped() != want[len(want)-1].total {
		t.Errorf("the spool counts %d dropped, the log said %d", sp.Dropped(), want[len(want)-1].total)
	}
}

// TestCollectorLogsCorruptSpoolRows: rows of the outbox that do not decode
// are removed by the tick that flushes them, which logs how many with the
// total; the good rows reach the database.
func TestCollectorLogsCorruptSpoolRows(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "spool.db")
	sp := testSpool(t, path, 100)
	good := samples(2)
	if err := sp.Add(good); err != nil {
		t.Fatal(err)
	}
	sp.Close()
	garbage := [][]byte{[]byte("not json"), []byte(`{"Cluster":`), []byte(`[1]`)}
	raw, err := sql.Open("sqlite3", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range garbage {
		if _, err := raw.Exec(`INSERT INTO outbox (rec) VALUES (?)`, g); err != nil {
			t.Fatal(err)
		}
	}
	raw.Close()
	sp = testSpool(t, path, 100)

	ctx := context.Background()
	store, err := db.Open(ctx, "sqlite://"+filepath.Join(dir, "cg.db"), db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	rec := &logRecorder{}
	c := New(Config{Registry: emptyRegistry(t), Store: func() (*db.Store, error) { return store, nil }, Spool: sp, Log: slog.New(rec)})
	tick := time.Unix(7200, 0)
	if res := c.Tick(ctx, tick); res.Flushed != len(good) {
		t.Errorf("tick flushed %d, want %d", res.Flushed, len(good))
	}
	c.Tick(ctx, tick.Add(time.Minute)) // nothing more removed: no second warning

	got := rec.warnings("corruptTotal")
	if n := int64(len(garbage)); len(got) != 1 || got[0]["corrupt"] != n || got[0]["corruptTotal"] != n {
		t.Errorf("corrupt warnings %v, want one with corrupt and corruptTotal %d", got, n)
	}
	if sp.Len() != 0 {
		t.Errorf("%d rows still in the outbox", sp.Len())
	}
}

// TestTickIsTimed: every tick is observed in the tick duration
// histogram, also one whose database is down.
func TestTickIsTimed(t *testing.T) {
	c := New(Config{Registry: emptyRegistry(t), Store: func() (*db.Store, error) { return nil, errors.New("database down") }, Log: slog.New(slog.DiscardHandler)})
	before := metrics.Sum("clustergraph_metering_tick_duration_seconds", nil)
	c.Tick(context.Background(), time.Unix(3600, 0))
	c.Tick(context.Background(), time.Unix(3660, 0))
	if got := metrics.Sum("clustergraph_metering_tick_duration_seconds", nil) - before; got != 2 {
		t.Errorf("%v ticks timed, want 2", got)
	}
}
