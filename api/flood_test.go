package api_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clustergraph/clustergraph/internal/testenv"
)

// clientFrom is an HTTP client whose connections come from a loopback
// source address of its own (the whole of 127/8 is loopback on Linux), so
// the server tells it apart from other local clients as it would tell
// remote addresses apart.
func clientFrom(t *testing.T, ip string) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 16}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// TestBadTokenFloodBesideRealUser: while one address floods /query with
// made-up tokens as fast as it can, a real user at another address whose
// token review has expired (the cache keeps it 300 ms here) is reviewed
// again and served every time. With one review budget for everyone, the
// flood used it up and the user's requests failed.
func TestBadTokenFloodBesideRealUser(t *testing.T) {
	cs := testenv.Clusters(t)
	u := makeUser(t, cs[:1], "cg-flood-user", nil)
	s := startServer(t, serverOpts{kubeconfigs: kubeconfigs(cs[:1]), waitReady: true, auth: true, authTTL: 300 * time.Millisecond})

	post := func(c *http.Client, token string) (int, string, error) {
		req, _ := http.NewRequest("POST", s.URL+"/query", strings.NewReader(`{"query":"{ viewer { username } }"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := c.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}

	flooder := clientFrom(t, "127.0.0.2")
	ctx, stop := context.WithCancel(context.Background())
	var flood sync.WaitGroup
	var sent, limited atomic.Int64
	for w := range 8 {
		flood.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				code, _, err := post(flooder, fmt.Sprintf("made-up-%d-%d", w, i))
				if err != nil {
					continue
				}
				sent.Add(1)
				if code == http.StatusServiceUnavailable {
					limited.Add(1)
				}
			}
		})
	}
	// The flood is under way before the user's first request.
	eventually(t, 10*time.Second, "the flood to be held back", func() bool { return limited.Load() > 0 })

	user := clientFrom(t, "127.0.0.1")
	failed := 0
	for i := range 10 {
		time.Sleep(400 * time.Millisecond) // past the cache: a fresh review each time
		code, body, err := post(user, u.token)
		if err != nil || code != 200 || !strings.Contains(body, u.user) {
			failed++
			t.Logf("request %d of the real user: %d %v %.200s", i, code, err, body)
		}
	}
	stop()
	flood.Wait()
	if failed > 0 {
		t.Errorf("%d of 10 requests of the real user failed during the flood", failed)
	}
	t.Logf("the flood sent %d requests; %d were held back (503)", sent.Load(), limited.Load())
	if limited.Load() == 0 {
		t.Error("the flood was never held back: the per-address review limit did not apply")
	}
}
