package api_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
)

// What must never leave the server is watched for during the whole run of
// this package's tests: every HTTP response (headers and body) any test
// reads through the default transport, every websocket frame wsRead reads,
// and the server log (all servers of the run write it to one file). A test
// puts leakMarker at the start of every secret value it plants (Secret
// data, passwords in variables, manifests); tests that hold a real
// credential add it with watchFor. TestMain fails the run when any is
// seen, naming where.
const leakMarker = "cg-leak-marker-"

var leaks = &leakWatch{markers: []string{
	leakMarker,
	// Base64 of a value that starts with the marker starts with this
	// (the marker is 15 bytes: a whole number of base64 groups).
	base64.StdEncoding.EncodeToString([]byte(leakMarker)),
}}

type leakWatch struct {
	mu      sync.Mutex
	markers []string
	found   []string
}

// watchFor adds a secret (a bearer token) to what must never be seen.
func watchFor(secret string) {
	leaks.mu.Lock()
	defer leaks.mu.Unlock()
	leaks.markers = append(leaks.markers, secret)
}

// check records where a marker was seen in b, and reports whether one was.
func (l *leakWatch) check(where string, b []byte) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	seen := false
	for _, m := range l.markers {
		if i := bytes.Index(b, []byte(m)); i >= 0 {
			lo, hi := max(0, i-80), min(len(b), i+len(m)+40)
			l.found = append(l.found, fmt.Sprintf("%s: …%s…", where, b[lo:hi]))
			seen = true
		}
	}
	return seen
}

// leaked returns what was seen, and forgets it.
func (l *leakWatch) leaked() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.found
	l.found = nil
	return f
}

// recordingTransport checks every response it carries.
type recordingTransport struct{ next http.RoundTripper }

func (t recordingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	if err != nil || resp.Header.Get("Upgrade") != "" {
		return resp, err
	}
	var h bytes.Buffer
	_ = resp.Header.Write(&h)
	leaks.check("headers of "+r.Method+" "+r.URL.Path, h.Bytes())
	// Streams are not read whole here (none of the API's answers is one).
	if ct := resp.Header.Get("Content-Type"); strings.Contains(ct, "event-stream") || strings.HasPrefix(ct, "multipart/") {
		return resp, nil
	}
	body, rerr := io.ReadAll(resp.Body)
	resp.Body.Close()
	leaks.check("body of "+r.Method+" "+r.URL.Path, body)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if rerr != nil {
		return nil, rerr
	}
	return resp, nil
}

// logFile is where every server of the run logs; TestMain reads it back.
var logFile = func() *os.File {
	f, err := os.CreateTemp("", "clustergraph-api-test-*.log")
	if err != nil {
		panic(err)
	}
	return f
}()

// checkRunForLeaks is the run's last check: the server log, and every
// response and frame seen. It returns false (after printing each) when a
// secret was seen.
func checkRunForLeaks() bool {
	defer os.Remove(logFile.Name())
	b, err := os.ReadFile(logFile.Name())
	if err != nil {
		fmt.Fprintln(os.Stderr, "reading the server log:", err)
		return false
	}
	leaks.check("the server log", b)
	found := leaks.leaked()
	for _, f := range found {
		fmt.Fprintln(os.Stderr, "SECRET LEAKED in", f)
	}
	return len(found) == 0
}
