package db_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	_ "github.com/ncruces/go-sqlite3/driver" // the "sqlite3" database/sql driver, to write rows Add would not

	"github.com/clustergraph/clustergraph/db"
)

func openSpool(t testing.TB, path string, maxRecords int) *db.Spool[db.Sample] {
	t.Helper()
	sp, err := db.OpenSpool[db.Sample](path, maxRecords)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	return sp
}

func TestSpool(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool", "samples.db")
	sp := openSpool(t, path, 5)
	mk := func(i int) db.Sample { return db.Sample{Cluster: "a", Namespace: fmt.Sprint(i)} }
	if err := sp.Add([]db.Sample{mk(1), mk(2), mk(3)}); err != nil {
		t.Fatal(err)
	}
	// Reopened (a restart): still there.
	sp.Close()
	sp = openSpool(t, path, 5)
	if err := sp.Add([]db.Sample{mk(4), mk(5), mk(6), mk(7)}); err != nil {
		t.Fatal(err)
	}
	if sp.Len() != 5 || sp.Dropped() != 2 {
		t.Errorf("len %d dropped %d, want 5 and 2 (bounded, oldest dropped)", sp.Len(), sp.Dropped())
	}
	if _, err := sp.Flush(func([]db.Sample) error { return errors.New("database down") }); err == nil || sp.Len() != 5 {
		t.Errorf("failed flush: err %v, len %d; want the error and all 5 kept", err, sp.Len())
	}
	var got []string
	n, err := sp.Flush(func(s []db.Sample) error {
		for _, x := range s {
			got = append(got, x.Namespace)
		}
		return nil
	})
	if err != nil || n != 5 || sp.Len() != 0 {
		t.Fatalf("flush: n %d err %v len %d", n, err, sp.Len())
	}
	if diff := cmp.Diff([]string{"3", "4", "5", "6", "7"}, got); diff != "" {
		t.Errorf("flushed (-want +got):\n%s", diff)
	}
}

// TestSpoolImportsOldFile: the JSON-lines spool of earlier versions moves
// into the outbox whole, but for a line torn by a crash mid-write, which
// is skipped and counted; the old file is removed.
func TestSpoolImportsOldFile(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "metering.jsonl")
	lines := `{"Cluster":"a","Namespace":"1"}
{"Cluster":"a","Namespace":"2"}
{"Cluster":"a","names
{"Cluster":"a","Namespace":"3"}
`
	if err := os.WriteFile(old, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	sp := openSpool(t, filepath.Join(dir, "metering.db"), 100)
	moved, torn, err := sp.ImportJSONL(old)
	if err != nil || moved != 3 || torn != 1 {
		t.Fatalf("import: moved %d torn %d err %v; want 3, 1", moved, torn, err)
	}
	if _, err := os.Stat(old); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the old file is still there: %v", err)
	}
	var got []string
	if _, err := sp.Flush(func(s []db.Sample) error {
		for _, x := range s {
			got = append(got, x.Namespace)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"1", "2", "3"}, got); diff != "" {
		t.Errorf("flushed (-want +got):\n%s", diff)
	}
	if moved, torn, err := sp.ImportJSONL(old); moved != 0 || torn != 0 || err != nil {
		t.Errorf("importing a missing file: %d %d %v", moved, torn, err)
	}
}

// TestSpoolFlushesInChunks: a backlog is handed on oldest first, in chunks
// of Chunk, at most ChunksPerFlush of them per flush.
func TestSpoolFlushesInChunks(t *testing.T) {
	sp := openSpool(t, filepath.Join(t.TempDir(), "spool.db"), 1_000_000)
	sp.Chunk, sp.ChunksPerFlush = 50, 4
	total := 50*4 + 7
	if err := sp.Add(manySamples(total, time.Unix(0, 0))); err != nil {
		t.Fatal(err)
	}
	var sizes []int
	next := 0
	write := func(s []db.Sample) error {
		sizes = append(sizes, len(s))
		for _, x := range s {
			if want := fmt.Sprint(next); x.Namespace != want {
				return fmt.Errorf("got namespace %s, want %s: not oldest first", x.Namespace, want)
			}
			next++
		}
		return nil
	}
	n, err := sp.Flush(write)
	if err != nil || n != 200 || len(sizes) != 4 || sizes[0] != 50 {
		t.Fatalf("first flush: %d %v, chunks %v", n, err, sizes)
	}
	if n, err := sp.Flush(write); err != nil || n != 7 || sp.Len() != 0 {
		t.Errorf("second flush: %d %v, %d left; want the last 7", n, err, sp.Len())
	}
}

// manySamples is n samples of one tick, namespaces "0", "1", ….
func manySamples(n int, at time.Time) []db.Sample {
	out := make([]db.Sample, n)
	for i := range out {
		out[i] = db.Sample{Cluster: "c", Namespace: fmt.Sprint(i), Time: at, CPUMillis: int64(i % 1000)}
	}
	return out
}

// TestSpoolCrashMidFlush: a crash after a chunk reached the database but
// before it left the outbox (here: the process stops there, the outbox is
// reopened) hands the chunk on again, and the database counts it once:
// nothing lost, nothing twice, on SQLite and MariaDB.
func TestSpoolCrashMidFlush(t *testing.T) {
	eachDB(t, func(t *testing.T, store *db.Store) {
		ctx := context.Background()
		path := filepath.Join(t.TempDir(), "spool.db")
		sp := openSpool(t, path, 1_000_000)
		sp.Chunk = 150
		hour := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
		// Five ticks of 100 namespaces: more than three chunks.
		const namespaces = 100
		var all []db.Sample
		for i := range 5 {
			all = append(all, manySamples(namespaces, hour.Add(time.Duration(i)*time.Minute))...)
		}
		if err := sp.Add(all); err != nil {
			t.Fatal(err)
		}
		crash := errors.New("the process died here")
		chunks := 0
		_, err := sp.Flush(func(s []db.Sample) error {
			if err := store.WriteSamples(ctx, s); err != nil {
				return err
			}
			if chunks++; chunks == 2 {
				return crash // written, never removed from the outbox
			}
			return nil
		})
		if !errors.Is(err, crash) {
			t.Fatalf("flush: %v", err)
		}
		sp.Close()
		sp = openSpool(t, path, 1_000_000)
		sp.Chunk = 150
		if want := len(all) - 150; sp.Len() != want {
			t.Fatalf("after the crash %d wait, want %d (the first chunk left, the second not)", sp.Len(), want)
		}
		for sp.Len() > 0 {
			if _, err := sp.Flush(func(s []db.Sample) error { return store.WriteSamples(ctx, s) }); err != nil {
				t.Fatal(err)
			}
		}
		recs, _, err := store.Metering(ctx, db.MeteringQuery{Unit: db.Hour, Scope: db.Scope{"c": {All: true}}})
		if err != nil {
			t.Fatal(err)
		}
		var samples int64
		for _, r := range recs {
			samples += r.Samples
			if r.Samples != int64(len(all)/namespaces) {
				t.Errorf("namespace %s: %d samples in the hour, want %d", r.Namespace, r.Samples, len(all)/namespaces)
				break
			}
		}
		if samples != int64(len(all)) || len(recs) != namespaces {
			t.Errorf("%d records holding %d samples, want %d holding %d", len(recs), samples, namespaces, len(all))
		}
	})
}

// BenchmarkSpoolTickWithBacklog: a tick during an outage (Add 1,000
// samples, then a Flush whose write fails, as it does while the database
// is down) costs the same with a million samples waiting as with none.
func BenchmarkSpoolTickWithBacklog(b *testing.B) {
	down := errors.New("database down")
	for _, backlog := range []int{0, 1_000_000} {
		b.Run(fmt.Sprintf("backlog=%d", backlog), func(b *testing.B) {
			sp := openSpool(b, filepath.Join(b.TempDir(), "spool.db"), 2_000_000)
			for done := 0; done < backlog; done += 100_000 {
				if err := sp.Add(manySamples(100_000, time.Unix(int64(done), 0))); err != nil {
					b.Fatal(err)
				}
			}
			tick := manySamples(1000, time.Unix(0, 0))
			b.ResetTimer()
			for range b.N {
				if err := sp.Add(tick); err != nil {
					b.Fatal(err)
				}
				if _, err := sp.Flush(func([]db.Sample) error { return down }); !errors.Is(err, down) {
					b.Fatal(err)
				}
			}
		})
	}
}

// insertRaw appends recs to the outbox table of the spool file at path as
// they are, bypassing Add: rows another version (or a damaged disk) could
// have left. The spool must be closed meanwhile.
func insertRaw(t *testing.T, path string, recs ...[]byte) {
	t.Helper()
	d, err := sql.Open("sqlite3", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, r := range recs {
		if _, err := d.Exec(`INSERT INTO outbox (rec) VALUES (?)`, r); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSpoolRemovesCorruptRows: rows of the outbox that do not decode, alone
// or a whole chunk of them, leave the outbox and are counted once each;
// the good rows around them reach the database oldest first, each once,
// and the outbox ends empty instead of stalling behind them.
func TestSpoolRemovesCorruptRows(t *testing.T) {
	eachDB(t, func(t *testing.T, store *db.Store) {
		ctx := context.Background()
		path := filepath.Join(t.TempDir(), "spool.db")
		const chunk = 10
		reopen := func() *db.Spool[db.Sample] {
			sp := openSpool(t, path, 1_000_000)
			sp.Chunk, sp.ChunksPerFlush = chunk, 3
			return sp
		}
		garbage := func(n int) [][]byte {
			kinds := [][]byte{[]byte("not json"), []byte(`{"Cluster":`), []byte(`[1,2,3]`), []byte(`{"CPUMillis":"lots"}`), {}, {0xff, 0xfe, 0x00}}
			out := make([][]byte, n)
			for i := range out {
				out[i] = kinds[i%len(kinds)]
			}
			return out
		}
		good := manySamples(20, time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
		// Garbage first, between good rows, more than a whole chunk of
		// it (whatever the chunks' alignment), and last.
		layout := []any{garbage(2), good[:5], garbage(3), good[5:15], garbage(2*chunk + 5), good[15:], garbage(4)}
		corrupt := 0
		sp := reopen()
		for _, part := range layout {
			switch p := part.(type) {
			case []db.Sample:
				if err := sp.Add(p); err != nil {
					t.Fatal(err)
				}
			case [][]byte:
				sp.Close()
				insertRaw(t, path, p...)
				corrupt += len(p)
				sp = reopen()
			}
		}
		if want := len(good) + corrupt; sp.Len() != want {
			t.Fatalf("%d rows wait, want %d", sp.Len(), want)
		}

		// A failed write keeps the chunk, its corrupt rows too, and
		// counts none of them yet.
		down := errors.New("database down")
		if _, err := sp.Flush(func([]db.Sample) error { return down }); !errors.Is(err, down) {
			t.Fatalf("flush with the database down: %v", err)
		}
		if sp.Corrupt() != 0 || sp.Len() != len(good)+corrupt {
			t.Fatalf("after a failed flush: corrupt %d, %d wait; want 0 and %d", sp.Corrupt(), sp.Len(), len(good)+corrupt)
		}

		var got []string
		flushed := 0
		for flushes := 0; sp.Len() > 0; flushes++ {
			if flushes == 10 {
				t.Fatalf("the outbox stalls: %d rows still wait after %d flushes", sp.Len(), flushes)
			}
			n, err := sp.Flush(func(s []db.Sample) error {
				for _, x := range s {
					got = append(got, x.Namespace)
				}
				return store.WriteSamples(ctx, s)
			})
			if err != nil {
				t.Fatal(err)
			}
			flushed += n
		}
		var want []string
		for _, s := range good {
			want = append(want, s.Namespace)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("handed on (-want +got):\n%s", diff)
		}
		if flushed != len(good) || sp.Corrupt() != int64(corrupt) {
			t.Errorf("flushed %d, corrupt %d; want %d and %d", flushed, sp.Corrupt(), len(good), corrupt)
		}
		recs, _, err := store.Metering(ctx, db.MeteringQuery{Unit: db.Hour, Scope: db.Scope{"c": {All: true}}})
		if err != nil {
			t.Fatal(err)
		}
		var samples int64
		for _, r := range recs {
			samples += r.Samples
		}
		if samples != int64(len(good)) {
			t.Errorf("the database holds %d samples, want %d", samples, len(good))
		}
		// Reopened, the outbox counts what its file holds: nothing.
		sp.Close()
		if sp = reopen(); sp.Len() != 0 {
			t.Errorf("the outbox file still holds %d rows", sp.Len())
		}
	})
}
