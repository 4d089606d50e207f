package alerting

import (
	"testing"

	"github.com/clustergraph/clustergraph/db"
)

// FuzzParse: any webhook body is either refused with an error or read
// into alerts that each have a name, a known status and an identity, the
// same identity every time the same body is read.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		`{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"A","pod":"p","namespace":"shop"},"startsAt":"2026-11-20T10:00:00Z","fingerprint":"f1"}]}`,
		`{"alerts":[{"status":"resolved","labels":{"alertname":"B","cluster":"east"},"startsAt":"2026-11-20T10:00:00Z","endsAt":"2026-11-20T11:00:00Z"}]}`,
		`[{"name":"pod-1","alert":"CPU_noti","namespace":"default","message":"cpu 20%"}]`,
		``, `null`, `[1]`, `{"version":"5","alerts":[]}`, `[{"alert":"A","status":"gone"}]`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		alerts, err := Parse(body, "c")
		if err != nil {
			return
		}
		again, _ := Parse(body, "c")
		for i, a := range alerts {
			if a.AlertName == "" || a.Fingerprint == "" || (a.Status != db.Firing && a.Status != db.Resolved) {
				t.Fatalf("alert %d of %q: %+v", i, body, a)
			}
			if again[i].Fingerprint != a.Fingerprint {
				t.Fatalf("alert %d of %q has a new identity on a second read", i, body)
			}
		}
	})
}
