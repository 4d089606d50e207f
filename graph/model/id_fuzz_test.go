package model_test

import (
	"encoding/base64"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/clustergraph/clustergraph/db"
	"github.com/clustergraph/clustergraph/errkind"
	"github.com/clustergraph/clustergraph/graph/model"
	"github.com/clustergraph/clustergraph/k8s"
)

// FuzzParseNodeID: any string is a global id or errkind.BadInput, never a
// panic; one that parses names exactly one thing and encodes back to an id
// that parses to the same.
func FuzzParseNodeID(f *testing.F) {
	for _, id := range []string{
		model.AlertID(db.Alert{ID: 42, Cluster: "east", Namespace: "shop"}).Encode(),
		model.AlertID(db.Alert{ID: 7}).Encode(),
		model.MeteringID(db.Record{Cluster: "east", Namespace: "shop", Unit: db.Hour, PeriodStart: time.Unix(1767225600, 0)}).Encode(),
		model.MeteringID(db.Record{Cluster: "east", Unit: db.Year, PeriodStart: time.Unix(1767225600, 0)}).Encode(),
		k8s.ClusterID("east").Encode(),
		k8s.ObjectID{Cluster: "east", GVK: k8s.GVKPod, Namespace: "shop", Name: "web-0"}.Encode(),
		k8s.ObjectID{Cluster: "east", GVK: k8s.GVKNodePoolLabel, Name: "pool-a"}.Encode(),
	} {
		f.Add(id)
	}
	f.Add("")
	f.Add("czEAQWxlcnQAZWFzdAAAADA")                                                                              // "s1\x00Alert\x00east\x00\x00\x000": a zero key is fine, "00" is not
	f.Add(base64.RawURLEncoding.EncodeToString([]byte("s1\x00Alert\x00east\x00shop\x00\x009223372036854775808"))) // 2^63: refused
	f.Fuzz(func(t *testing.T, s string) {
		id, err := model.ParseNodeID(s)
		if err != nil {
			if !errors.Is(err, errkind.BadInput) {
				t.Fatalf("ParseNodeID(%q): %v is not errkind.BadInput", s, err)
			}
			return
		}
		switch {
		case (id.Object == nil) == (id.Stored == nil):
			t.Fatalf("ParseNodeID(%q) = %+v: not exactly one kind of id", s, id)
		case id.Object != nil:
			if again, err := model.ParseNodeID(id.Object.Encode()); err != nil || again.Object == nil || *again.Object != *id.Object {
				t.Fatalf("object id %q = %+v came back as %+v, %v", s, *id.Object, again, err)
			}
		default:
			if again, err := model.ParseNodeID(id.Stored.Encode()); err != nil || again.Stored == nil || *again.Stored != *id.Stored {
				t.Fatalf("stored id %q = %+v came back as %+v, %v", s, *id.Stored, again, err)
			}
		}
	})
}

// FuzzStoredIDRoundTrip: every stored record's id parses back to it, and
// never to a Kubernetes object's.
func FuzzStoredIDRoundTrip(f *testing.F) {
	f.Add(true, "east", "shop", uint64(42), 0)
	f.Add(false, "east", "", uint64(1767225600), 3)
	f.Fuzz(func(t *testing.T, alert bool, cluster, namespace string, key uint64, unit int) {
		if strings.Contains(cluster+namespace, "\x00") || key > math.MaxInt64 {
			return // never in a cluster or namespace name; keys are signed in SQL
		}
		id := model.StoredID{Kind: model.StoredAlert, Cluster: cluster, Namespace: namespace, Key: key}
		if !alert {
			id.Kind, id.Unit = model.StoredMetering, db.Units[(unit%len(db.Units)+len(db.Units))%len(db.Units)]
		}
		got, err := model.ParseNodeID(id.Encode())
		if err != nil || got.Stored == nil || *got.Stored != id || got.Object != nil {
			t.Fatalf("%+v came back as %+v, %v", id, got, err)
		}
	})
}
