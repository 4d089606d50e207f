package db_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	_ "github.com/ncruces/go-sqlite3/driver" // the "sqlite3" database/sql driver, for the raw peer

	"github.com/clustergraph/clustergraph/db"
	"github.com/clustergraph/clustergraph/internal/testenv"
)

const benchNamespaces = 1000

// benchDBs are the databases the benchmarks run on: SQLite and MariaDB.
func benchDBs(b *testing.B) []struct{ name, dsn string } {
	return []struct{ name, dsn string }{
		{"sqlite", "sqlite://" + filepath.Join(b.TempDir(), "bench.db")},
		{"mariadb", testenv.MySQL(b)},
	}
}

// rawDB opens the same database through database/sql alone.
func rawDB(b *testing.B, dsn string) *sql.DB {
	b.Helper()
	var d *sql.DB
	var err error
	if rest, ok := strings.CutPrefix(dsn, "mysql://"); ok {
		cfg, perr := gomysql.ParseDSN(rest)
		if perr != nil {
			b.Fatal(perr)
		}
		d, err = sql.Open("mysql", cfg.FormatDSN())
	} else {
		d, err = sql.Open("sqlite3", "file:"+strings.TrimPrefix(dsn, "sqlite://")+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
		d.SetMaxOpenConns(1)
	}
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.Close() })
	return d
}

func tickSamples(tick time.Time) []db.Sample {
	out := make([]db.Sample, benchNamespaces)
	for i := range out {
		out[i] = db.Sample{Cluster: "bench", Namespace: fmt.Sprintf("ns-%04d", i), Time: tick, CPUMillis: int64(i), MemoryBytes: int64(i) << 20, StorageBytes: 1 << 30, PrivateIPs: 3}
	}
	return out
}

// BenchmarkWriteSamples stores one tick of 1,000 namespaces per iteration,
// rollups included, next to a raw batched INSERT of the same rows through
// database/sql (no rollups): the price of idempotent rollups.
func BenchmarkWriteSamples(b *testing.B) {
	for _, d := range benchDBs(b) {
		s, err := db.Open(context.Background(), d.dsn, db.Options{})
		if err != nil {
			b.Fatal(err)
		}
		base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		b.Run(d.name+"/store", func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				if err := s.WriteSamples(context.Background(), tickSamples(base.Add(time.Duration(i)*time.Minute))); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*benchNamespaces)/b.Elapsed().Seconds(), "rows/s")
		})
		raw := rawDB(b, d.dsn)
		b.Run(d.name+"/raw-insert", func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				rows := tickSamples(base.AddDate(1, 0, 0).Add(time.Duration(i) * time.Minute))
				tx, err := raw.Begin()
				if err != nil {
					b.Fatal(err)
				}
				for start := 0; start < len(rows); start += 500 {
					batch := rows[start:min(start+500, len(rows))]
					var q strings.Builder
					q.WriteString("INSERT INTO metering_samples (cluster, namespace, time, cpu_millis, memory_bytes, storage_bytes, gpu_millis, public_ips, private_ips, traffic_in, traffic_out, from_requests) VALUES ")
					args := make([]any, 0, len(batch)*12)
					for j, r := range batch {
						if j > 0 {
							q.WriteString(", ")
						}
						q.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
						args = append(args, r.Cluster, r.Namespace, r.Time.Unix(), r.CPUMillis, r.MemoryBytes, r.StorageBytes, r.GPUMillis, r.PublicIPs, r.PrivateIPs, r.TrafficIn, r.TrafficOut, 0)
					}
					if _, err := tx.Exec(q.String(), args...); err != nil {
						b.Fatal(err)
					}
				}
				if err := tx.Commit(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*benchNamespaces)/b.Elapsed().Seconds(), "rows/s")
		})
		s.Close()
	}
}

// BenchmarkMeteringQuery reads 30 days of hourly and daily records of
// 1,000 namespaces (720,000 hour rows): one namespace's month by day, the
// first page of every namespace's days sorted by CPU, and one namespace's
// hours; it reports the p50 and p95 of single queries.
func BenchmarkMeteringQuery(b *testing.B) {
	for _, d := range benchDBs(b) {
		s, err := db.Open(context.Background(), d.dsn, db.Options{})
		if err != nil {
			b.Fatal(err)
		}
		raw := rawDB(b, d.dsn)
		start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		fill := func(table string, step time.Duration, n int) {
			tx, err := raw.Begin()
			if err != nil {
				b.Fatal(err)
			}
			for p := 0; p < n; p++ {
				at := start.Add(time.Duration(p) * step).Unix()
				for ns0 := 0; ns0 < benchNamespaces; ns0 += 250 {
					var q strings.Builder
					q.WriteString("INSERT INTO " + table + " (cluster, namespace, period_start, samples, cpu_millis, memory_bytes, storage_bytes, gpu_millis, public_ips, private_ips, traffic_in, traffic_out, from_requests) VALUES ")
					var args []any
					for i := ns0; i < ns0+250; i++ {
						if i > ns0 {
							q.WriteString(", ")
						}
						q.WriteString("(?, ?, ?, 60, ?, ?, 0, 0, 0, 0, 0, 0, 0)")
						args = append(args, "bench", fmt.Sprintf("ns-%04d", i), at, int64(i*60+p), int64(i)<<26)
					}
					if _, err := tx.Exec(q.String(), args...); err != nil {
						b.Fatal(err)
					}
				}
			}
			if err := tx.Commit(); err != nil {
				b.Fatal(err)
			}
		}
		fill("metering_hour", time.Hour, 30*24)
		fill("metering_day", 24*time.Hour, 30)
		all := db.Scope{"bench": {All: true}}
		end := start.AddDate(0, 0, 30)
		for _, q := range []struct {
			name string
			q    db.MeteringQuery
		}{
			{"namespace-month-by-day", db.MeteringQuery{Unit: db.Day, Scope: all, Namespaces: []string{"ns-0500"}, Start: start, End: end, Limit: 100}},
			{"all-days-by-cpu-first-page", db.MeteringQuery{Unit: db.Day, Scope: all, Start: start, End: end, Sort: []db.Sort{{Field: db.SortCPU, Desc: true}}, Limit: 100}},
			{"namespace-month-by-hour", db.MeteringQuery{Unit: db.Hour, Scope: all, Namespaces: []string{"ns-0500"}, Start: start, End: end, Limit: 100}},
		} {
			b.Run(d.name+"/"+q.name, func(b *testing.B) {
				var lat []time.Duration
				for b.Loop() {
					t0 := time.Now()
					if _, _, err := s.Metering(context.Background(), q.q); err != nil {
						b.Fatal(err)
					}
					lat = append(lat, time.Since(t0))
				}
				slices.Sort(lat)
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(lat[len(lat)*95/100].Microseconds())/1000, "p95-ms")
			})
		}
		s.Close()
	}
}
