package lease

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/clustergraph/clustergraph/k8s"
)

// Options configure leader election through a coordination.k8s.io Lease.
type Options struct {
	Namespace, Name string
	// Identity names this replica in the Lease; default hostname and pid.
	Identity string
	// Duration is how long a lease holds without renewal (default 15s);
	// RenewDeadline (10s) and RetryPeriod (2s) follow client-go's defaults.
	Duration, RenewDeadline, RetryPeriod time.Duration
	// KeepOnStop leaves the Lease held when ctx ends, as a crashed replica
	// would (tests of failover); by default it is released at once.
	KeepOnStop bool
	Log        *slog.Logger
}

// DefaultNamespace is the namespace clustergraph runs in when in a
// cluster, else "default".
func DefaultNamespace() string {
	if b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil {
		if ns := strings.TrimSpace(string(b)); ns != "" {
			return ns
		}
	}
	return "default"
}

// RunWhileLeader runs work whenever this replica holds the Lease in c, with
// a context that ends when leadership is lost, and campaigns again after a
// loss, until ctx ends. Only one replica's work runs at a time; another
// takes over within the lease duration when this one dies.
func RunWhileLeader(ctx context.Context, c *k8s.Cluster, o Options, work func(ctx context.Context)) {
	if o.Identity == "" {
		host, _ := os.Hostname()
		o.Identity = fmt.Sprintf("%s-%d-%x", host, os.Getpid(), rand.Uint32())
	}
	if o.Duration == 0 {
		o.Duration = 15 * time.Second
	}
	if o.RenewDeadline == 0 {
		o.RenewDeadline = o.Duration * 2 / 3
	}
	if o.RetryPeriod == 0 {
		o.RetryPeriod = max(o.Duration/7, 100*time.Millisecond)
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	log := o.Log.With("lease", o.Namespace+"/"+o.Name, "cluster", c.Name, "identity", o.Identity)
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: o.Namespace, Name: o.Name},
		Client:     c.Typed.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: o.Identity},
	}
	for ctx.Err() == nil {
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock:            lock,
			LeaseDuration:   o.Duration,
			RenewDeadline:   o.RenewDeadline,
			RetryPeriod:     o.RetryPeriod,
			ReleaseOnCancel: !o.KeepOnStop,
			Name:            o.Name,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(ctx context.Context) {
					log.Info("leading: background work starts here")
					work(ctx)
				},
				OnStoppedLeading: func() { log.Info("no longer leading") },
				OnNewLeader: func(id string) {
					if id != o.Identity {
						log.Info("another replica leads", "leader", id)
					}
				},
			},
		})
		if err != nil {
			log.Error("leader election misconfigured", "err", err)
			return
		}
		le.Run(ctx)
		select {
		case <-ctx.Done():
		case <-time.After(o.RetryPeriod):
		}
	}
}
