package metering

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/clustergraph/clustergraph/db"
	"github.com/clustergraph/clustergraph/k8s"
	"github.com/clustergraph/clustergraph/metrics"
)

// Config configures a Collector.
type Config struct {
	Registry *k8s.Registry
	// Store returns the database, or an error while it is unavailable.
	Store func() (*db.Store, error)
	// Traffic, when set, fills the samples' traffic in and out.
	Traffic *Traffic
	// Spool holds samples the database could not take.
	Spool *db.Spool[db.Sample]
	// Interval between ticks (default 1m).
	Interval time.Duration
	// Retention is enforced every PurgeEvery (default 1h).
	Retention  db.Retention
	PurgeEvery time.Duration
	Log        *slog.Logger
}

// Collector samples every cluster on each tick.
type Collector struct {
	cfg       Config
	lastPurge time.Time
	ticks     atomic.Int64
	// dropped and corrupt are the spool's counts as last logged.
	dropped, corrupt int64
}

// New returns a collector; Run starts it.
func New(cfg Config) *Collector {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Minute
	}
	if cfg.PurgeEvery <= 0 {
		cfg.PurgeEvery = time.Hour
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Collector{cfg: cfg}
}

// Ticks is how many ticks have completed.
func (c *Collector) Ticks() int64 { return c.ticks.Load() }

// Run ticks on interval boundaries until ctx ends.
func (c *Collector) Run(ctx context.Context) {
	c.cfg.Log.Info("metering collector started", "interval", c.cfg.Interval)
	for {
		next := time.Now().Truncate(c.cfg.Interval).Add(c.cfg.Interval)
		select {
		case <-ctx.Done():
			c.cfg.Log.Info("metering collector stopped")
			return
		case <-time.After(time.Until(next)):
		}
		c.Tick(ctx, next)
	}
}

// TickResult says what one tick did.
type TickResult struct {
	Samples, Usage int
	// Spooled is how many samples went to the spool (database down).
	Spooled int
	// Flushed is how many spooled samples reached the database.
	Flushed int
	// Failed names clusters that could not be sampled.
	Failed []string
}

// Tick samples every cluster at tick, first writing what the spool holds.
func (c *Collector) Tick(ctx context.Context, tick time.Time) TickResult {
	defer c.ticks.Add(1)
	defer func(start time.Time) { metrics.MeteringTick(time.Since(start)) }(time.Now())
	defer c.logSpoolLosses()
	var res TickResult
	var samples []db.Sample
	var usage []db.UsageSample
	for _, cl := range c.cfg.Registry.Clusters() {
		s, u, err := Sample(ctx, cl, tick)
		if err != nil {
			c.cfg.Log.Warn("metering: cluster not sampled", "cluster", cl.Name, "err", err)
			res.Failed = append(res.Failed, cl.Name)
			continue
		}
		if c.cfg.Traffic != nil {
			c.addTraffic(ctx, cl, s)
		}
		samples = append(samples, s...)
		usage = append(usage, u...)
	}
	res.Samples, res.Usage = len(samples), len(usage)
	store, err := c.cfg.Store()
	if err == nil && c.cfg.Spool != nil {
		res.Flushed, err = c.cfg.Spool.Flush(func(spooled []db.Sample) error { return store.WriteSamples(ctx, spooled) })
		if res.Flushed > 0 {
			c.cfg.Log.Info("metering: spooled samples written", "samples", res.Flushed)
		}
	}
	if err == nil {
		err = store.WriteSamples(ctx, samples)
	}
	if err != nil {
		if c.cfg.Spool == nil {
			c.cfg.Log.Error("metering: samples lost, no spool", "samples", len(samples), "err", err)
			return res
		}
		if serr := c.cfg.Spool.Add(samples); serr != nil {
			c.cfg.Log.Error("metering: samples lost, spool failed", "samples", len(samples), "err", serr)
			return res
		}
		res.Spooled = len(samples)
		c.cfg.Log.Warn("metering: database unavailable, samples spooled", "samples", len(samples), "waiting", c.cfg.Spool.Len(), "err", err)
		return res
	}
	// Usage history is for plotting the last hours: it is not spooled.
	if err := store.WriteUsage(ctx, usage); err != nil {
		c.cfg.Log.Warn("metering: usage samples not stored", "err", err)
	}
	if time.Since(c.lastPurge) >= c.cfg.PurgeEvery {
		c.lastPurge = time.Now()
		if gone, err := store.Purge(ctx, c.cfg.Retention, time.Now(), 5000); err != nil {
			c.cfg.Log.Warn("retention sweep failed", "err", err)
		} else {
			c.cfg.Log.Info("retention sweep", "deleted", gone)
		}
	}
	return res
}

// logSpoolLosses warns, at most once a tick, of samples the spool lost
// since the last warning: dropped past its bound, or removed because they
// did not decode. Each warning gives the number since the last one and the
// total since start. Losses from before the first tick (the old spool
// file's import) are logged by the first tick.
func (c *Collector) logSpoolLosses() {
	sp := c.cfg.Spool
	if sp == nil {
		return
	}
	if n := sp.Dropped(); n > c.dropped {
		c.cfg.Log.Warn("metering: outbox full, its oldest samples dropped", "dropped", n-c.dropped, "droppedTotal", n, "bound", sp.Bound())
		c.dropped = n
	}
	if n := sp.Corrupt(); n > c.corrupt {
		c.cfg.Log.Warn("metering: samples in the outbox did not decode and were removed", "corrupt", n-c.corrupt, "corruptTotal", n)
		c.corrupt = n
	}
}

// addTraffic fills the traffic of cl's samples from the traffic source. A
// cluster whose nodes cannot be read keeps zero traffic for the tick; its
// bytes count at the next read that reaches them.
func (c *Collector) addTraffic(ctx context.Context, cl *k8s.Cluster, samples []db.Sample) {
	rep, err := c.cfg.Traffic.Read(ctx, cl)
	if err != nil {
		c.cfg.Log.Warn("metering: traffic not read", "cluster", cl.Name, "err", err)
		return
	}
	if len(rep.Failed) > 0 {
		c.cfg.Log.Warn("metering: traffic of some nodes not read, counted at their next read", "cluster", cl.Name, "nodes", len(rep.Failed), "first", rep.Failed[0])
	}
	if rep.Baseline {
		c.cfg.Log.Info("metering: traffic baseline read, counted from the next tick", "cluster", cl.Name, "nodes", rep.Nodes)
	}
	for i := range samples {
		if t, ok := rep.Namespaces[samples[i].Namespace]; ok {
			samples[i].TrafficIn, samples[i].TrafficOut = t.In, t.Out
		}
	}
}
