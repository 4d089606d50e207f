package model

import (
	"encoding/base64"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/clustergraph/clustergraph/db"
	"github.com/clustergraph/clustergraph/errkind"
	"github.com/clustergraph/clustergraph/k8s"
)

// Global ids. Kubernetes objects, node pools and clusters have the ids of
// package k8s (ObjectID; pools and clusters under pseudo-kinds), stored
// records have StoredIDs. Both are base64url of parts joined by NUL, told
// apart by the first part, so node(id:) knows where to look before it
// looks. Every id names where its object lives (cluster and namespace):
// who may read it is decided from the id alone, before a cache or the
// database is asked.

// StoredKind is the type of a stored record.
type StoredKind string

// The stored records with global ids.
const (
	StoredAlert    StoredKind = "Alert"
	StoredMetering StoredKind = "MeteringRecord"
)

// storedPrefix versions the stored ids' encoding, as k8s's "o1" does the
// objects'.
const storedPrefix = "s1"

// StoredID names a stored record: where it is (cluster, "" for an alert
// about no known cluster, which no one may read; and namespace, "" for a
// cluster's own) and its key, an alert's row id or a metering
// record's period (Unit and its start in Unix seconds).
type StoredID struct {
	Kind      StoredKind
	Cluster   string
	Namespace string
	Unit      db.TimeUnit // metering records only
	Key       uint64
}

// AlertID is the global id of a stored alert.
func AlertID(a db.Alert) StoredID {
	return StoredID{Kind: StoredAlert, Cluster: a.Cluster, Namespace: a.Namespace, Key: a.ID}
}

// MeteringID is the global id of a metering record (a cluster's totals
// when it has no namespace).
func MeteringID(r db.Record) StoredID {
	return StoredID{Kind: StoredMetering, Cluster: r.Cluster, Namespace: r.Namespace, Unit: r.Unit, Key: uint64(r.PeriodStart.Unix())}
}

// Encode returns the opaque id.
func (id StoredID) Encode() string {
	s := strings.Join([]string{storedPrefix, string(id.Kind), id.Cluster, id.Namespace, string(id.Unit), strconv.FormatUint(id.Key, 10)}, "\x00")
	return base64.RawURLEncoding.EncodeToString([]byte(s))
}

// NodeID is a global id taken apart: exactly one of Object and Stored is
// set.
type NodeID struct {
	Object *k8s.ObjectID
	Stored *StoredID
}

// ParseNodeID decodes any global id the API hands out. Anything else is
// errkind.BadInput.
func ParseNodeID(s string) (NodeID, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || !strings.HasPrefix(string(b), storedPrefix+"\x00") {
		id, err := k8s.ParseID(s)
		if err != nil {
			return NodeID{}, err
		}
		return NodeID{Object: &id}, nil
	}
	p := strings.Split(string(b), "\x00")
	malformed := errkind.BadInputf("malformed id %q", s)
	if len(p) != 6 {
		return NodeID{}, malformed
	}
	id := StoredID{Kind: StoredKind(p[1]), Cluster: p[2], Namespace: p[3], Unit: db.TimeUnit(p[4])}
	switch id.Kind {
	case StoredAlert:
		if id.Unit != "" {
			return NodeID{}, malformed
		}
	case StoredMetering:
		if !slices.Contains(db.Units, id.Unit) {
			return NodeID{}, malformed
		}
	default:
		return NodeID{}, malformed
	}
	// One spelling per key: no sign, no leading zeros. Keys are row ids and
	// Unix seconds, which the databases hold as signed 64-bit integers: a
	// larger one names nothing (and would fail the whole batch's query).
	if id.Key, err = strconv.ParseUint(p[5], 10, 64); err != nil || strconv.FormatUint(id.Key, 10) != p[5] || id.Key > math.MaxInt64 {
		return NodeID{}, malformed
	}
	return NodeID{Stored: &id}, nil
}
