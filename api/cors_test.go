package api_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/clustergraph/clustergraph/api"
	"github.com/clustergraph/clustergraph/internal/testenv"
)

// chromium is Debian's headless Chromium, which make test installs.
func chromium(t *testing.T) string {
	t.Helper()
	path := os.Getenv("CHROMIUM")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("Chromium is needed for the browser tests (make test installs Debian's; set CHROMIUM to another): %v", err)
	}
	return path
}

// corsPage is a page that calls clustergraph's /query with a bearer token
// from its own origin and writes what happened into its body.
const corsPage = `<!doctype html><html><body>pending<script>
fetch(%q, {method: "POST", credentials: "include",
  headers: {"Authorization": "Bearer %s", "Content-Type": "application/json"},
  body: JSON.stringify({query: "{ clusters { name } }"})})
  .then(r => r.text().then(b => { document.body.textContent = "STATUS " + r.status + " ID " + r.headers.get("X-Request-Id") + " BODY " + b; }))
  .catch(e => { document.body.textContent = "FAILED " + e; });
</script></body></html>`

// TestCORSFromABrowser: a page of an allowed origin calls /query with a
// token from headless Chromium (a real preflight, then the POST) and reads
// the answer and the request id; a page of another origin is refused by
// the browser.
func TestCORSFromABrowser(t *testing.T) {
	browser := chromium(t)
	cs := testenv.Clusters(t)
	u := makeUser(t, cs[:1], "cg-cors", func(c testenv.Cluster, user string) { clusterBinding(t, c, "cg-cors", "view", user) })
	// Two pages on two origins (ports); only the first is allowed. Its
	// address is taken first: the server's configuration names it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := startServerWith(t, serverOpts{kubeconfigs: kubeconfigs(cs[:1]), waitReady: true, auth: true}, func(cfg *api.Config) {
		cfg.AllowedOrigins = []string{ln.Addr().String()}
	})
	pageHandler := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, corsPage, s.URL+"/query", u.token)
	})
	allowedPage := httptest.NewUnstartedServer(pageHandler)
	_ = allowedPage.Listener.Close()
	allowedPage.Listener = ln
	allowedPage.Start()
	t.Cleanup(allowedPage.Close)
	otherPage := httptest.NewServer(pageHandler)
	t.Cleanup(otherPage.Close)

	dump := func(url string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
			"--disable-background-networking", "--user-data-dir="+t.TempDir(), "--virtual-time-budget=10000", "--dump-dom", url).Output()
		if err != nil {
			t.Fatalf("chromium %s: %v", url, err)
		}
		return string(out)
	}
	got := dump(allowedPage.URL)
	if !strings.Contains(got, "STATUS 200") || !strings.Contains(got, cs[0].Context) || strings.Contains(got, "ID null") {
		t.Errorf("from the allowed origin: %s\nwant status 200, the clusters and a readable request id", got)
	}
	if got := dump(otherPage.URL); !strings.Contains(got, "FAILED") {
		t.Errorf("from another origin: %s\nwant the browser to refuse it", got)
	}
}
