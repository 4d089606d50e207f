package model_test

import (
	"testing"
	"time"

	"github.com/clustergraph/clustergraph/db"
	"github.com/clustergraph/clustergraph/graph/model"
)

// TestTimeUnits: every API period has a storage period and back; a
// storage period the API does not name reads as DAY.
func TestTimeUnits(t *testing.T) {
	for _, u := range model.AllTimeUnit {
		if back := model.TimeUnitOf(u.Unit()); back != u {
			t.Errorf("%s -> %s -> %s", u, u.Unit(), back)
		}
	}
	if got := model.TimeUnitOf(db.TimeUnit("fortnight")); got != model.TimeUnitDay {
		t.Errorf("an unknown period = %s, want DAY", got)
	}
}

// TestAlertView: a stored alert is FIRING until resolved, has no end
// until one is recorded, and empty label and annotation sets are {} and
// empty strings null.
func TestAlertView(t *testing.T) {
	firing := model.NewAlert(db.Alert{ID: 42, AlertName: "PodCrashLooping", Status: db.Firing})
	id, err := model.ParseNodeID(firing.ID())
	if err != nil || id.Stored == nil || *id.Stored != (model.StoredID{Kind: model.StoredAlert, Key: 42}) {
		t.Errorf("firing alert's id %s = %+v, %v", firing.ID(), id, err)
	}
	if firing.Status() != model.AlertStatusFiring || firing.EndsAt() != nil ||
		firing.Cluster() != nil || firing.Severity() != nil {
		t.Errorf("firing alert: status %s endsAt %v cluster %v severity %v", firing.Status(), firing.EndsAt(), firing.Cluster(), firing.Severity())
	}
	if got := marshal(firing.Labels()) + marshal(firing.Annotations()); got != "{}{}" {
		t.Errorf("labels and annotations = %s, want {}{}", got)
	}
	end := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	resolved := model.NewAlert(db.Alert{Status: db.Resolved, EndsAt: end, Cluster: "east", Labels: map[string]string{"team": "web"}})
	if resolved.Status() != model.AlertStatusResolved || resolved.EndsAt() == nil || !resolved.EndsAt().Equal(end) ||
		resolved.Cluster() == nil || *resolved.Cluster() != "east" || marshal(resolved.Labels()) != `{"team":"web"}` {
		t.Errorf("resolved alert: status %s endsAt %v cluster %v labels %s", resolved.Status(), resolved.EndsAt(), resolved.Cluster(), marshal(resolved.Labels()))
	}
}
