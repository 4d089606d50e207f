package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/clustergraph/clustergraph/internal/testenv"
)

// initFrames opens a socket with the protocol, sends connection_init with
// the payload, and returns the server's frames up to the acknowledgement or
// refusal (each also checked for leaks, see leak_test.go).
func initFrames(t *testing.T, s *server, protocol string, payload map[string]any) []wsMessage {
	t.Helper()
	c, err := wsDialProtocol(t, s, "", protocol)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	wsSend(t, c, map[string]any{"type": "connection_init", "payload": payload})
	var frames []wsMessage
	rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		_, b, err := c.Read(rctx)
		if err != nil {
			return frames // closed: refused
		}
		leaks.check(protocol+" frame", b)
		var m wsMessage
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		frames = append(frames, m)
		if m.Type == "connection_ack" || m.Type == "connection_error" {
			return frames
		}
	}
}

// TestNoCredentialReflected: the server never sends back a credential the
// caller sent: not in the websocket acknowledgement (both protocols, with
// authentication on and off), not in the refusal of a bad token, not in an
// HTTP answer. The tokens are watched for in everything the run reads and
// in the server log (see leak_test.go).
func TestNoCredentialReflected(t *testing.T) {
	cs := testenv.Clusters(t)
	u := makeUser(t, cs, "cg-reflect", nil)
	watchFor(u.token)
	bogus := leakMarker + "not-a-token"
	authed := startServer(t, serverOpts{kubeconfigs: kubeconfigs(cs[:1]), waitReady: true, auth: true})
	open := startServer(t, serverOpts{kubeconfigs: kubeconfigs(cs[:1]), waitReady: true})

	for _, protocol := range []string{"graphql-transport-ws", "graphql-ws"} {
		for name, c := range map[string]struct {
			s     *server
			token string
			ack   bool
		}{
			"accepted token":         {authed, u.token, true},
			"refused token":          {authed, bogus, false},
			"authentication off":     {open, bogus, true},
			"accepted token, extras": {authed, u.token, true},
		} {
			payload := map[string]any{"Authorization": "Bearer " + c.token}
			if strings.HasSuffix(name, "extras") {
				payload["X-Api-Key"] = leakMarker + "api-key"
			}
			frames := initFrames(t, c.s, protocol, payload)
			var ack *wsMessage
			for i := range frames {
				raw, _ := json.Marshal(frames[i])
				if bytes.Contains(raw, []byte(c.token)) || bytes.Contains(raw, []byte(leakMarker)) {
					t.Errorf("%s, %s: the server sent back a credential: %s", protocol, name, raw)
				}
				if frames[i].Type == "connection_ack" {
					ack = &frames[i]
				}
			}
			switch {
			case c.ack && ack == nil:
				t.Errorf("%s, %s: no acknowledgement: %+v", protocol, name, frames)
			case c.ack && len(ack.Payload) > 0 && string(ack.Payload) != "null" && string(ack.Payload) != "{}":
				t.Errorf("%s, %s: the acknowledgement carries %s, want no payload", protocol, name, ack.Payload)
			case !c.ack && ack != nil:
				t.Errorf("%s, %s: a refused token was acknowledged", protocol, name)
			}
		}
	}

	// HTTP: an accepted token's answer, a refused token's 401, a malformed
	// header's 401, the shell proxy with a made-up session token.
	for name, h := range map[string]string{
		"accepted":  "Bearer " + u.token,
		"refused":   "Bearer " + bogus,
		"malformed": "Token " + bogus,
	} {
		req, _ := http.NewRequest(http.MethodPost, authed.URL+"/query", strings.NewReader(`{"query":"{ viewer { username } }"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", h)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var hdr bytes.Buffer
		_ = resp.Header.Write(&hdr)
		if bytes.Contains(append(raw, hdr.Bytes()...), []byte(strings.TrimPrefix(strings.TrimPrefix(h, "Bearer "), "Token "))) {
			t.Errorf("%s: the answer carries the credential: %s %s", name, hdr.Bytes(), raw)
		}
		if name == "accepted" && !bytes.Contains(raw, []byte(u.user)) {
			t.Errorf("accepted token: %s", raw)
		}
	}
	resp, err := http.Get(authed.URL + "/shell-proxy/" + bogus + "/api")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if bytes.Contains(raw, []byte(bogus)) {
		t.Errorf("the shell proxy's refusal quotes the token: %s", raw)
	}
}
