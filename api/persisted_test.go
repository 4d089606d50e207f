package api_test

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clustergraph/clustergraph/api"
	"github.com/clustergraph/clustergraph/internal/testenv"
)

func sha(q string) string {
	sum := sha256.Sum256([]byte(q))
	return hex.EncodeToString(sum[:])
}

// TestLoadPersistedQueries: a key must be its query's SHA-256, so the file
// cannot allow something else than it shows.
func TestLoadPersistedQueries(t *testing.T) {
	q := `{ clusters { name } }`
	write := func(m map[string]string) string {
		p := filepath.Join(t.TempDir(), "queries.json")
		b, _ := json.Marshal(m)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if got, err := api.LoadPersistedQueries(write(map[string]string{strings.ToUpper(sha(q)): q})); err != nil || len(got) != 1 {
		t.Errorf("valid file: %v %v", got, err)
	}
	for name, m := range map[string]map[string]string{
		"wrong hash": {sha(q): q + " "},
		"empty":      {},
	} {
		if _, err := api.LoadPersistedQueries(write(m)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestPersistedQueries: with an allowlist, a listed query runs by hash (the
// APQ extension, over POST, GET and the websocket) or by exact text, and
// anything else is refused before it runs: an unknown hash with
// PERSISTED_QUERY_NOT_FOUND, unlisted text (introspection too) with
// FORBIDDEN.
func TestPersistedQueries(t *testing.T) {
	cs := testenv.Clusters(t)
	list := `{ clusters { name } }`
	watch := `subscription($ns: String) { watch(kind: "Pod", namespace: $ns) { type } }`
	s := startServerWith(t, serverOpts{kubeconfigs: kubeconfigs(cs[:1]), waitReady: true}, func(cfg *api.Config) {
		cfg.PersistedQueries = map[string]string{sha(list): list, sha(watch): watch}
	})
	apq := func(hash string) map[string]any {
		return map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hash}}
	}
	post := func(body map[string]any) response { return postJSON(t, s, body) }
	code, served := errCode, servesOneCluster
	if r := post(map[string]any{"query": list}); !served(r) {
		t.Errorf("listed text: %s %+v", r.Data, r.Errors)
	}
	if r := post(map[string]any{"extensions": apq(sha(list))}); !served(r) {
		t.Errorf("listed hash: %s %+v", r.Data, r.Errors)
	}
	ext, _ := json.Marshal(apq(sha(list)))
	if got := getQuery(t, s, "extensions="+url.QueryEscape(string(ext))); !served(got) {
		t.Errorf("listed hash over GET: %s %+v", got.Data, got.Errors)
	}
	for name, tc := range map[string]struct {
		body map[string]any
		code string
	}{
		"unlisted text":          {map[string]any{"query": `{ clusters { name status { state } } }`}, "FORBIDDEN"},
		"listed text, reworded":  {map[string]any{"query": `{clusters{name}}`}, "FORBIDDEN"},
		"introspection":          {map[string]any{"query": `{ __schema { types { name } } }`}, "FORBIDDEN"},
		"unknown hash":           {map[string]any{"extensions": apq(sha("{ pods { totalCount } }"))}, "PERSISTED_QUERY_NOT_FOUND"},
		"registering a new one":  {map[string]any{"query": "{ pods { totalCount } }", "extensions": apq(sha("{ pods { totalCount } }"))}, "PERSISTED_QUERY_NOT_FOUND"},
		"hash with another text": {map[string]any{"query": "{ pods { totalCount } }", "extensions": apq(sha(list))}, "BAD_USER_INPUT"},
	} {
		if r := post(tc.body); code(r) != tc.code || r.Data != nil && string(r.Data) != "null" {
			t.Errorf("%s: %s %+v, want %s and no data", name, r.Data, r.Errors, tc.code)
		}
	}

	// The websocket: the same rules for subscriptions.
	subscribe := func(payload map[string]any) *stream {
		t.Helper()
		c, err := wsDial(t, s, "")
		if err != nil {
			t.Fatal(err)
		}
		wsSend(t, c, map[string]any{"type": "connection_init", "payload": map[string]any{}})
		if m, err := wsRead(c); err != nil || m.Type != "connection_ack" {
			t.Fatalf("init: %+v %v", m, err)
		}
		wsSend(t, c, map[string]any{"id": "p", "type": "subscribe", "payload": payload})
		return &stream{t: t, c: c}
	}
	var ev struct{ Watch struct{ Type string } }
	if st := subscribe(map[string]any{"extensions": apq(sha(watch)), "variables": map[string]any{"ns": "shop"}}); !st.next(&ev) || ev.Watch.Type == "" {
		t.Errorf("listed subscription by hash: %+v", ev)
	}
	if c := subscribe(map[string]any{"query": `subscription { watch(kind: "Secret") { type } }`}).errorCode(); c != "FORBIDDEN" {
		t.Errorf("unlisted subscription: %q, want FORBIDDEN", c)
	}
	if c := subscribe(map[string]any{"extensions": apq(sha("subscription { x }"))}).errorCode(); c != "PERSISTED_QUERY_NOT_FOUND" {
		t.Errorf("unknown hash over the websocket: %q, want PERSISTED_QUERY_NOT_FOUND", c)
	}
}

// TestPersistedDocumentFormats: the allowlist files graphql-codegen's
// client preset (hex SHA-256, or sha256:-prefixed ids) and relay-compiler
// (MD5 by default, SHA-1) write load, each id checked against its text;
// and requests name a document by documentId (GraphQL over HTTP) or
// doc_id (Relay), over POST and GET.
func TestPersistedDocumentFormats(t *testing.T) {
	cs := testenv.Clusters(t)
	list := `query Clusters { clusters { name } }`
	md5sum := md5.Sum([]byte(list))
	sha1sum := sha1.Sum([]byte(list))
	relay, codegenSHA1 := hex.EncodeToString(md5sum[:]), hex.EncodeToString(sha1sum[:])
	write := func(m map[string]string) string {
		p := filepath.Join(t.TempDir(), "documents.json")
		b, _ := json.Marshal(m)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for name, m := range map[string]map[string]string{
		"codegen sha256":   {sha(list): list},
		"sha256: prefixed": {"sha256:" + sha(list): list},
		"relay md5":        {relay: list},
		"sha1":             {codegenSHA1: list},
	} {
		if _, err := api.LoadPersistedQueries(write(m)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, m := range map[string]map[string]string{
		"md5 of another text": {relay: list + " "},
		"not a hash":          {"my-query": list},
		"odd length":          {"abc": list},
	} {
		if _, err := api.LoadPersistedQueries(write(m)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}

	docs, err := api.LoadPersistedQueries(write(map[string]string{relay: list}))
	if err != nil {
		t.Fatal(err)
	}
	s := startServerWith(t, serverOpts{kubeconfigs: kubeconfigs(cs[:1]), waitReady: true}, func(cfg *api.Config) { cfg.PersistedQueries = docs })
	plain := startServer(t, serverOpts{kubeconfigs: kubeconfigs(cs[:1]), waitReady: true})
	for name, r := range map[string]response{
		"documentId, relay's id":       postJSON(t, s, map[string]any{"documentId": relay}),
		"documentId, sha256: form":     postJSON(t, s, map[string]any{"documentId": "sha256:" + sha(list)}),
		"doc_id":                       postJSON(t, s, map[string]any{"doc_id": relay, "variables": map[string]any{}}),
		"documentId over GET":          getQuery(t, s, "documentId="+url.QueryEscape("sha256:"+sha(list))),
		"doc_id over GET":              getQuery(t, s, "doc_id="+relay),
		"the text itself":              postJSON(t, s, map[string]any{"query": list}),
		"the APQ extension, unchanged": postJSON(t, s, map[string]any{"extensions": map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": sha(list)}}}),
	} {
		if !servesOneCluster(r) {
			t.Errorf("%s: %s %+v", name, r.Data, r.Errors)
		}
	}
	for name, tc := range map[string]struct {
		r    response
		code string
	}{
		"unknown documentId":           {postJSON(t, s, map[string]any{"documentId": "sha256:" + sha("{ pods { totalCount } }")}), "PERSISTED_QUERY_NOT_FOUND"},
		"documentId with another text": {postJSON(t, s, map[string]any{"documentId": relay, "query": "{ pods { totalCount } }"}), "BAD_USER_INPUT"},
		"documentId and the extension": {postJSON(t, s, map[string]any{"documentId": relay, "extensions": map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": sha(list)}}}), "BAD_USER_INPUT"},
		"documentId, no allowlist":     {postJSON(t, plain, map[string]any{"documentId": relay}), "PERSISTED_QUERY_NOT_FOUND"},
	} {
		if errCode(tc.r) != tc.code {
			t.Errorf("%s: %s %+v, want %s", name, tc.r.Data, tc.r.Errors, tc.code)
		}
	}
}

// postJSON posts body to s's /query and decodes the answer.
func postJSON(t *testing.T, s *server, body map[string]any) response {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(s.URL+"/query", "application/json", strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return decodeResponse(t, resp)
}

// getQuery asks s's /query over GET with the URL-encoded params.
func getQuery(t *testing.T, s *server, params string) response {
	t.Helper()
	resp, err := http.Get(s.URL + "/query?" + params)
	if err != nil {
		t.Fatal(err)
	}
	return decodeResponse(t, resp)
}

func decodeResponse(t *testing.T, resp *http.Response) response {
	t.Helper()
	defer resp.Body.Close()
	var r response
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	return r
}

// errCode is the code of a response's first error, or "".
func errCode(r response) string {
	if len(r.Errors) == 0 {
		return ""
	}
	c, _ := r.Errors[0].Extensions["code"].(string)
	return c
}

// servesOneCluster reports whether r answers { clusters { name } } over
// one cluster, without errors.
func servesOneCluster(r response) bool {
	var out struct{ Clusters []struct{ Name string } }
	return len(r.Errors) == 0 && json.Unmarshal(r.Data, &out) == nil && len(out.Clusters) == 1
}
