package resolvers

import (
	"context"
	"time"

	"github.com/clustergraph/clustergraph/alerting"
	"github.com/clustergraph/clustergraph/db"
	"github.com/clustergraph/clustergraph/errkind"
	"github.com/clustergraph/clustergraph/graph/model"
	"github.com/clustergraph/clustergraph/k8s"
)

// ownerOrSelf is the top workload controlling w (a ReplicaSet's
// Deployment), or w itself.
func ownerOrSelf(ctx context.Context, c *k8s.Cluster, w any) (*model.Workload, error) {
	if o, err := ownerOf(ctx, c, w); err != nil || o != nil {
		return o, err
	}
	return model.NewWorkload(c, w), nil
}

func (r *Resolver) metering(ctx context.Context, clusters []string, namespace *string, namespaces []string, timeUnit *model.TimeUnit, startTime, endTime *time.Time, sort []*model.MeteringSort, after *string, first *int, before *string, last, offset, limit *int) (*model.Connection[*model.MeteringRecord], error) {
	cs, err := r.clustersOf(clusters)
	if err != nil {
		return nil, err
	}
	if namespace != nil {
		namespaces = append(namespaces, *namespace)
	}
	got, total, off, err := storedPage(r, after, first, before, last, offset, limit, func(off, n int) ([]db.Record, int64, error) {
		return r.Records.Metering(ctx, cs, db.MeteringQuery{
			Unit: unitOf(timeUnit), Namespaces: namespaces,
			Start: timeOr(startTime), End: timeOr(endTime), Sort: meteringSort(sort), Offset: off, Limit: n,
		})
	})
	if err != nil {
		return nil, err
	}
	return offsetConn(records(got), total, off), nil
}

func (r *Resolver) alerts(ctx context.Context, clusters []string, filter *model.AlertFilter, ascending *bool, after *string, first *int, before *string, last, offset, limit *int) (*model.Connection[*model.Alert], error) {
	cs, err := r.clustersOf(clusters)
	if err != nil {
		return nil, err
	}
	q, err := alertQuery(filter)
	if err != nil {
		return nil, err
	}
	q.Ascending = ascending != nil && *ascending
	got, total, off, err := storedPage(r, after, first, before, last, offset, limit, func(off, n int) ([]db.Alert, int64, error) {
		q := q
		q.Offset, q.Limit = off, n
		return r.Records.Alerts(ctx, cs, q)
	})
	if err != nil {
		return nil, err
	}
	return offsetConn(alerts(got), total, off), nil
}

func (r *Resolver) subscribeAlerts(ctx context.Context, clusters []string, filter *model.AlertFilter) (<-chan *model.Alert, error) {
	cs, err := r.clustersOf(clusters)
	if err != nil {
		return nil, err
	}
	if err := r.Records.Available(); err != nil {
		return nil, err
	}
	match, err := alertMatcher(filter)
	if err != nil {
		return nil, err
	}
	in, err := r.Records.SubscribeAlerts(ctx, cs, match)
	if err != nil {
		return nil, err
	}
	out := make(chan *model.Alert)
	go func() {
		defer close(out)
		for a := range in {
			select {
			case out <- model.NewAlert(a):
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

func (r *Resolver) createAlert(ctx context.Context, in model.CreateAlertInput) (*model.Alert, error) {
	c, err := r.Registry.Cluster(in.Cluster)
	if err != nil {
		return nil, err
	}
	ns := str(in.Namespace)
	// Records checks create on events there before the input is read.
	got, err := r.Records.CreateAlert(ctx, c, ns, func() (db.Alert, error) { return alertOf(c.Name, ns, in) })
	if err != nil {
		return nil, err
	}
	return model.NewAlert(got), nil
}

// alertOf reads createAlert's input as an alert of namespace of cluster.
func alertOf(cluster, namespace string, in model.CreateAlertInput) (db.Alert, error) {
	labels := map[string]string{}
	if in.Labels != nil {
		m, ok := in.Labels.V.(map[string]any)
		if !ok {
			return db.Alert{}, errkind.BadInputf("labels must be a JSON object of strings")
		}
		for k, v := range m {
			s, ok := v.(string)
			if !ok {
				return db.Alert{}, errkind.BadInputf("label %q is not a string", k)
			}
			labels[k] = s
		}
	}
	a, err := alerting.FromInput(alerting.Input{
		Cluster: cluster, Namespace: namespace, Name: str(in.Name), ObjectKind: str(in.ObjectKind), AlertName: in.AlertName,
		Severity: str(in.Severity), Message: in.Message, Source: str(in.Source), Module: str(in.Module), Type: str(in.Type),
		Labels: labels, Resolved: in.Status != nil && *in.Status == model.AlertStatusResolved,
	})
	if err != nil {
		return db.Alert{}, errkind.BadInputf("%v", err)
	}
	return a, nil
}
