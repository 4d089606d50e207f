package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/clustergraph/clustergraph/archive"
	"github.com/clustergraph/clustergraph/db"
	"github.com/clustergraph/clustergraph/k8s"
	"github.com/clustergraph/clustergraph/k8s/lease"
	"github.com/clustergraph/clustergraph/metering"
	"github.com/clustergraph/clustergraph/metrics"
)

// storageConfig configures the database and the work that fills it.
type storageConfig struct {
	dsn            string // "none" disables storage
	dataDir        string
	meterEvery     time.Duration
	retention      db.Retention
	leaderElect    bool
	leaseNamespace string
	leaseName      string
	leaseDuration  time.Duration
	alertPoll      time.Duration
	alertToken     string
	alertBasicAuth string
	trafficSource  string // "none" or "kubelet"
	trafficPath    string
}

// openStorage connects to the database (in the background when it is down)
// and says where the data lives. The data dir holds the default SQLite
// database and, with any database, the metering outbox, so it is checked
// first: on a read-only root filesystem the server stops at once, naming
// the flag to set.
func openStorage(ctx context.Context, sc storageConfig, log *slog.Logger) (*db.Handle, error) {
	if sc.dsn == "none" {
		log.Warn("running without a database (--database=none): metering, alerts and archived events answer UNAVAILABLE")
		return nil, nil
	}
	if err := writableDir(sc.dataDir); err != nil {
		return nil, fmt.Errorf("-data-dir %q cannot be written (%w): point --data-dir (CLUSTERGRAPH_DATA_DIR) at a writable volume, or run without storage with --database=none", sc.dataDir, err)
	}
	dir, _ := filepath.Abs(sc.dataDir)
	dsn := sc.dsn
	if dsn == "" {
		dsn = "sqlite://" + filepath.Join(sc.dataDir, "clustergraph.db")
		log.Info("storage: SQLite", "file", filepath.Join(dir, "clustergraph.db"),
			"keptAcrossRestarts", "only when --data-dir is on a persistent volume, not a container's own filesystem")
	} else {
		log.Info("storage: the --database given", "kind", strings.SplitN(dsn, ":", 2)[0], "meteringOutbox", filepath.Join(dir, "spool"))
	}
	h, err := db.Connect(ctx, dsn, db.Options{Log: log}, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("-database: %w", err)
	}
	return h, nil
}

// writableDir creates dir when missing and proves a file can be written in
// it.
func writableDir(dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".write-check-*")
	if err != nil {
		return err
	}
	name := f.Name()
	err = f.Close()
	return errors.Join(err, os.Remove(name))
}

// runCollectors runs the metering collector and the event archive, on one
// replica at a time when leader election is on.
func runCollectors(ctx context.Context, reg *k8s.Registry, h *db.Handle, sc storageConfig, identity string, log *slog.Logger) error {
	if h == nil {
		return nil
	}
	dir := filepath.Join(sc.dataDir, "spool")
	spool, err := db.OpenSpool[db.Sample](filepath.Join(dir, "metering.db"), 1_000_000)
	if err != nil {
		return err
	}
	// Versions before the outbox spooled to JSON lines: their samples move in.
	moved, torn, err := spool.ImportJSONL(filepath.Join(dir, "metering.jsonl"))
	if err != nil {
		return err
	}
	if moved > 0 || torn > 0 {
		log.Info("metering samples moved from the old spool file into the outbox", "samples", moved, "tornLinesSkipped", torn)
	}
	context.AfterFunc(ctx, metrics.WatchSpool(spool))
	if n := spool.Len(); n > 0 {
		log.Info("metering samples waiting in the outbox from an earlier run", "samples", n)
	}
	var traffic *metering.Traffic
	if sc.trafficSource == "kubelet" {
		traffic = &metering.Traffic{Path: sc.trafficPath}
	}
	collector := metering.New(metering.Config{Registry: reg, Store: h.Store, Spool: spool, Traffic: traffic, Interval: sc.meterEvery, Retention: sc.retention, Log: log.With("component", "metering")})
	archiver := &archive.Archiver{Registry: reg, Store: h.Store, Log: log.With("component", "event-archive")}
	work := func(ctx context.Context) {
		done := make(chan struct{})
		go func() { collector.Run(ctx); close(done) }()
		archiver.Run(ctx)
		<-done
	}
	if !sc.leaderElect {
		log.Warn("leader election is off: run one replica only, or metering samples are taken by each")
		go work(ctx)
		return nil
	}
	c, err := reg.IdentityCluster(identity)
	if err != nil {
		return fmt.Errorf("leader election needs a cluster to hold its Lease: %w", err)
	}
	go lease.RunWhileLeader(ctx, c, lease.Options{Namespace: sc.leaseNamespace, Name: sc.leaseName, Duration: sc.leaseDuration, Log: log}, work)
	return nil
}

// parseAge reads a duration that may also be given in days ("90d").
func parseAge(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil {
			return 0, fmt.Errorf("%q: want a duration such as 90d or 36h", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}
