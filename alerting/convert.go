package alerting

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/clustergraph/clustergraph/db"
)

// amPayload is Alertmanager's webhook body (version 4).
type amPayload struct {
	Version           string            `json:"version"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            *[]amAlert        `json:"alerts"`
}

type amAlert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// hcAlert is the hypercloud list form: [{name, alert, namespace, message}],
// with an optional cluster and status.
type hcAlert struct {
	Name      string `json:"name"`
	Alert     string `json:"alert"`
	Namespace string `json:"namespace"`
	Message   string `json:"message"`
	Cluster   string `json:"cluster"`
	Status    string `json:"status"`
}

// Workload kinds an alert's labels may name, in the order they are tried
// (kube-state-metrics label names).
var workloadLabels = []struct{ label, kind string }{
	{"deployment", "Deployment"}, {"statefulset", "StatefulSet"}, {"daemonset", "DaemonSet"},
	{"cronjob", "CronJob"}, {"job_name", "Job"}, {"job", "Job"}, {"replicaset", "ReplicaSet"},
}

// Parse reads a webhook body: Alertmanager's payload (an object) or the
// hypercloud list (an array). defaultCluster names the cluster of alerts
// that carry no cluster label (empty: unknown). Nothing is returned unless
// every alert in the body is valid.
func Parse(body []byte, defaultCluster string) ([]db.Alert, error) {
	trimmed := strings.TrimLeft(string(body), " \t\r\n")
	switch {
	case strings.HasPrefix(trimmed, "["):
		var list []hcAlert
		if err := json.Unmarshal(body, &list); err != nil {
			return nil, fmt.Errorf("the alert list is not valid JSON: %w", err)
		}
		out := make([]db.Alert, 0, len(list))
		for i, h := range list {
			a, err := fromHypercloud(h, defaultCluster)
			if err != nil {
				return nil, fmt.Errorf("alert %d: %w", i, err)
			}
			out = append(out, a)
		}
		return out, nil
	case strings.HasPrefix(trimmed, "{"):
		var p amPayload
		if err := json.Unmarshal(body, &p); err != nil {
			return nil, fmt.Errorf("the Alertmanager payload is not valid JSON: %w", err)
		}
		if p.Alerts == nil {
			return nil, fmt.Errorf("the Alertmanager payload has no alerts field")
		}
		if p.Version != "" && p.Version != "4" {
			return nil, fmt.Errorf("webhook version %q: only version 4 of the Alertmanager payload is understood", p.Version)
		}
		out := make([]db.Alert, 0, len(*p.Alerts))
		for i, am := range *p.Alerts {
			a, err := fromAlertmanager(am, defaultCluster)
			if err != nil {
				return nil, fmt.Errorf("alert %d: %w", i, err)
			}
			out = append(out, a)
		}
		return out, nil
	}
	return nil, fmt.Errorf("the body is neither an Alertmanager payload (a JSON object) nor an alert list (a JSON array)")
}

func fromAlertmanager(am amAlert, defaultCluster string) (db.Alert, error) {
	l := am.Labels
	if l["alertname"] == "" {
		return db.Alert{}, fmt.Errorf("no alertname label")
	}
	if am.StartsAt.IsZero() {
		return db.Alert{}, fmt.Errorf("no startsAt")
	}
	status := am.Status
	if status != db.Firing && status != db.Resolved {
		return db.Alert{}, fmt.Errorf("status %q: want firing or resolved", am.Status)
	}
	a := db.Alert{
		Fingerprint: am.Fingerprint, StartsAt: am.StartsAt.UTC(), Status: status,
		Cluster: first(l["cluster"], defaultCluster), Namespace: l["namespace"],
		AlertName: l["alertname"], Severity: l["severity"], Source: "alertmanager",
		Message: first(am.Annotations["summary"], am.Annotations["description"], am.Annotations["message"]),
		Labels:  l, Annotations: am.Annotations, GeneratorURL: am.GeneratorURL,
	}
	if status == db.Resolved && !am.EndsAt.IsZero() {
		a.EndsAt = am.EndsAt.UTC()
	}
	a.ObjectKind, a.Name = objectOf(l)
	if a.Fingerprint == "" {
		a.Fingerprint = fingerprint(l)
	}
	return a, nil
}

// objectOf names the object an alert's labels point at: a pod, else a
// workload, else a node, else the namespace.
func objectOf(l map[string]string) (kind, name string) {
	if l["pod"] != "" {
		return "Pod", l["pod"]
	}
	for _, w := range workloadLabels {
		if l[w.label] != "" && (w.label != "job" || l["namespace"] != "") {
			return w.kind, l[w.label]
		}
	}
	if l["node"] != "" {
		return "Node", l["node"]
	}
	if l["namespace"] != "" {
		return "Namespace", l["namespace"]
	}
	return "", ""
}

func fromHypercloud(h hcAlert, defaultCluster string) (db.Alert, error) {
	if h.Alert == "" {
		return db.Alert{}, fmt.Errorf("no alert name (field alert)")
	}
	status := first(h.Status, db.Firing)
	if status != db.Firing && status != db.Resolved {
		return db.Alert{}, fmt.Errorf("status %q: want firing or resolved", h.Status)
	}
	cluster := first(h.Cluster, defaultCluster)
	labels := map[string]string{"alertname": h.Alert}
	if h.Namespace != "" {
		labels["namespace"] = h.Namespace
	}
	kind := ""
	if h.Name != "" {
		// hypercloud's console names pods here.
		kind = "Pod"
		labels["pod"] = h.Name
	}
	return db.Alert{
		Fingerprint: fingerprint(map[string]string{"source": "hypercloud", "cluster": cluster, "namespace": h.Namespace, "name": h.Name, "alert": h.Alert}),
		Status:      status, Cluster: cluster, Namespace: h.Namespace, Name: h.Name, ObjectKind: kind,
		AlertName: h.Alert, Source: "hypercloud", Message: h.Message, Labels: labels,
	}, nil
}

// Input is an alert from the createAlert mutation.
type Input struct {
	Cluster, Namespace, Name, ObjectKind, AlertName, Severity, Message string
	Source, Module, Type                                               string
	Labels                                                             map[string]string
	Resolved                                                           bool
}

// FromInput builds the stored form of an API-created alert; its identity is
// everything but the message, so posting it again updates it.
func FromInput(in Input) (db.Alert, error) {
	if in.AlertName == "" {
		return db.Alert{}, fmt.Errorf("alertName is empty")
	}
	source := first(in.Source, "api")
	labels := map[string]string{}
	for k, v := range in.Labels {
		labels[k] = v
	}
	labels["alertname"] = in.AlertName
	status := db.Firing
	if in.Resolved {
		status = db.Resolved
	}
	return db.Alert{
		Fingerprint: fingerprint(map[string]string{"source": source, "module": in.Module, "type": in.Type, "cluster": in.Cluster,
			"namespace": in.Namespace, "kind": in.ObjectKind, "name": in.Name, "alert": in.AlertName}),
		Status: status, Cluster: in.Cluster, Namespace: in.Namespace, Name: in.Name, ObjectKind: in.ObjectKind,
		AlertName: in.AlertName, Severity: in.Severity, Source: source, Module: in.Module, Type: in.Type,
		Message: in.Message, Labels: labels,
	}, nil
}

// fingerprint hashes a label set in a stable order.
func fingerprint(l map[string]string) string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%d:%s=%d:%s;", len(k), k, len(l[k]), l[k])
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

func first(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
