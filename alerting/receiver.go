package alerting

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/clustergraph/clustergraph/db"
	"github.com/clustergraph/clustergraph/errkind"
	"github.com/clustergraph/clustergraph/metrics"
)

// Receiver is the POST /alert endpoint.
type Receiver struct {
	// Store returns the database, or an error while it is unavailable.
	Store func() (*db.Store, error)
	// Hub is told about stored changes so local subscribers hear at once.
	Hub *Hub
	// Token and BasicAuth ("user:password") are the accepted credentials;
	// with neither set, every request is refused unless Insecure.
	Token, BasicAuth string
	Insecure         bool
	// MaxBody caps the body in bytes (default 1 MiB).
	MaxBody int64
	// DefaultCluster names the cluster of alerts without a cluster label.
	DefaultCluster func() string
	Log            *slog.Logger
}

type reply struct {
	Stored  int    `json:"stored,omitempty"`
	Changed int    `json:"changed,omitempty"`
	Error   string `json:"error,omitempty"`
	Code    string `json:"code,omitempty"`
}

func (rc *Receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		metrics.AlertRejected(metrics.AlertsFromWebhook, "method")
		respond(w, http.StatusMethodNotAllowed, reply{Error: "POST an Alertmanager webhook payload or an alert list", Code: errkind.CodeBadUserInput})
		return
	}
	if !rc.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="clustergraph-alert"`)
		msg := "missing or wrong credentials for POST /alert"
		if rc.Token == "" && rc.BasicAuth == "" {
			msg = "POST /alert is closed: the server has no --alert-token or --alert-basic-auth configured"
		}
		metrics.AlertRejected(metrics.AlertsFromWebhook, "unauthorized")
		respond(w, http.StatusUnauthorized, reply{Error: msg, Code: errkind.CodeUnauthenticated})
		return
	}
	limit := rc.MaxBody
	if limit <= 0 {
		limit = 1 << 20
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			metrics.AlertRejected(metrics.AlertsFromWebhook, "too_large")
			respond(w, http.StatusRequestEntityTooLarge, reply{Error: "the body is over the server's limit", Code: errkind.CodeBadUserInput})
			return
		}
		metrics.AlertRejected(metrics.AlertsFromWebhook, "malformed")
		respond(w, http.StatusBadRequest, reply{Error: "reading the body: " + err.Error(), Code: errkind.CodeBadUserInput})
		return
	}
	def := ""
	if rc.DefaultCluster != nil {
		def = rc.DefaultCluster()
	}
	alerts, err := Parse(body, def)
	if err != nil {
		metrics.AlertRejected(metrics.AlertsFromWebhook, "malformed")
		respond(w, http.StatusBadRequest, reply{Error: err.Error(), Code: errkind.CodeBadUserInput})
		return
	}
	store, err := rc.Store()
	if err != nil {
		// 5xx: Alertmanager retries what was not stored.
		rc.Log.Warn("alert not stored: no database", "err", err)
		metrics.AlertRejected(metrics.AlertsFromWebhook, "unavailable")
		respond(w, http.StatusServiceUnavailable, reply{Error: "the alert database is unavailable; retry", Code: errkind.CodeUnavailable})
		return
	}
	changed, err := store.RecordAlerts(r.Context(), alerts)
	if err != nil {
		if errors.Is(err, errkind.BadInput) {
			metrics.AlertRejected(metrics.AlertsFromWebhook, "malformed")
			respond(w, http.StatusBadRequest, reply{Error: err.Error(), Code: errkind.CodeBadUserInput})
			return
		}
		rc.Log.Warn("alert not stored", "err", err)
		metrics.AlertRejected(metrics.AlertsFromWebhook, "unavailable")
		respond(w, http.StatusServiceUnavailable, reply{Error: "the alert database is unavailable; retry", Code: errkind.CodeUnavailable})
		return
	}
	metrics.AlertsReceived(metrics.AlertsFromWebhook, len(alerts))
	if len(changed) > 0 && rc.Hub != nil {
		rc.Hub.Poke()
	}
	respond(w, http.StatusOK, reply{Stored: len(alerts), Changed: len(changed)})
}

func (rc *Receiver) authorized(r *http.Request) bool {
	if rc.Token == "" && rc.BasicAuth == "" {
		return rc.Insecure
	}
	h := r.Header.Get("Authorization")
	if rc.Token != "" {
		if tok, ok := strings.CutPrefix(h, "Bearer "); ok && subtle.ConstantTimeCompare([]byte(tok), []byte(rc.Token)) == 1 {
			return true
		}
	}
	if rc.BasicAuth != "" {
		if u, p, ok := r.BasicAuth(); ok && subtle.ConstantTimeCompare([]byte(u+":"+p), []byte(rc.BasicAuth)) == 1 {
			return true
		}
	}
	return false
}

func respond(w http.ResponseWriter, code int, body reply) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
}
