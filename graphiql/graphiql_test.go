package graphiql

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
)

// get runs one request against h and returns the recorded response.
func get(t *testing.T, h http.Handler, target string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

var assetRef = regexp.MustCompile(`(?:src|href)="([^"]+)"`)

// checkIndexAndAssets fetches the page, then every file it refers to.
func checkIndexAndAssets(t *testing.T, h http.Handler) {
	t.Helper()
	rec := get(t, h, "/")
	if rec.Code != http.StatusOK {
		t.Fatalf("GET / = %d, want 200: %s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("index Content-Type = %q", ct)
	}
	if cc := rec.Header().Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("index Cache-Control = %q, want no-cache", cc)
	}
	etag := rec.Header().Get("ETag")
	if etag == "" {
		t.Error("index has no ETag")
	}
	if rec := get(t, h, "/", "If-None-Match", etag); rec.Code != http.StatusNotModified {
		t.Errorf("GET / with matching If-None-Match = %d, want 304", rec.Code)
	}

	html := rec.Body.String()
	// Air-gapped clusters: the page must load nothing from elsewhere.
	for _, bad := range []string{"http://", "https://", "//cdn"} {
		if strings.Contains(html, bad) {
			t.Errorf("index contains %q:\n%s", bad, html)
		}
	}
	for _, want := range []string{"GraphiQL.createFetcher", "graphqlWs.createClient", "isHeadersEditorEnabled: true"} {
		if !strings.Contains(html, want) {
			t.Errorf("index lacks %q", want)
		}
	}

	var refs [][]string
	for _, ref := range assetRef.FindAllStringSubmatch(html, -1) {
		if ref[1] != "data:," { // the empty favicon
			refs = append(refs, ref)
		}
	}
	if len(refs) != len(scripts)+len(styles) {
		t.Fatalf("index refers to %d files, want %d: %q", len(refs), len(scripts)+len(styles), refs)
	}
	wantType := map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
	for _, ref := range refs {
		u := ref[1]
		if strings.HasPrefix(u, "/") || !strings.HasPrefix("/"+u, AssetPrefix) {
			t.Errorf("asset URL %q: want relative, under %s", u, AssetPrefix)
			continue
		}
		rec := get(t, h, "/"+u)
		if rec.Code != http.StatusOK {
			t.Errorf("GET /%s = %d, want 200", u, rec.Code)
			continue
		}
		if ct := rec.Header().Get("Content-Type"); ct != wantType[path.Ext(u)] {
			t.Errorf("GET /%s Content-Type = %q, want %q", u, ct, wantType[path.Ext(u)])
		}
		if rec.Body.Len() == 0 {
			t.Errorf("GET /%s: empty body", u)
		}
		if cc := rec.Header().Get("Cache-Control"); !strings.Contains(cc, "immutable") {
			t.Errorf("GET /%s Cache-Control = %q, want long-lived immutable", u, cc)
		}

		gz := get(t, h, "/"+u, "Accept-Encoding", "gzip, br")
		if gz.Header().Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(gz.Body)
			if err != nil {
				t.Fatalf("GET /%s gzip: %v", u, err)
			}
			plain, err := io.ReadAll(zr)
			if err != nil || !bytes.Equal(plain, rec.Body.Bytes()) {
				t.Errorf("GET /%s: gzip body does not match plain body (err %v)", u, err)
			}
		}
	}
}

// TestEmbeddedAssets checks the real bundle. The assets exist only after
// `make graphiql`, so it skips without them, unless
// CLUSTERGRAPH_REQUIRE_ASSETS=1 (set it in CI after building the assets).
func TestEmbeddedAssets(t *testing.T) {
	if embedded() == nil {
		if os.Getenv("CLUSTERGRAPH_REQUIRE_ASSETS") == "1" {
			t.Fatal("graphiql/dist has no built assets but CLUSTERGRAPH_REQUIRE_ASSETS=1: run `make graphiql`")
		}
		t.Skip("graphiql/dist has no built assets (run `make graphiql`)")
	}
	checkIndexAndAssets(t, Handler("clustergraph", "/query", "/query"))
}

// fakeDist stands for a built dist/, so that the handler logic is tested on
// every checkout.
func fakeDist() fstest.MapFS {
	m := fstest.MapFS{"PLACEHOLDER.txt": {Data: []byte("placeholder")}}
	for _, name := range append(append([]string{}, scripts...), styles...) {
		m[name] = &fstest.MapFile{Data: bytes.Repeat([]byte("/* "+name+" */\n"), 200)}
	}
	return m
}

func TestFakeBundle(t *testing.T) {
	b := loadBundle(fakeDist())
	if b == nil {
		t.Fatal("loadBundle(fake dist) = nil")
	}
	h := newHandler(b, "clustergraph", "/query", "/query")
	checkIndexAndAssets(t, h)

	name := scripts[0]
	if rec := get(t, h, AssetPrefix+"0ld/"+name); rec.Code != http.StatusOK || rec.Header().Get("Cache-Control") != "no-cache" {
		t.Errorf("asset of another version: %d %q, want 200 no-cache", rec.Code, rec.Header().Get("Cache-Control"))
	}
	for _, p := range []string{AssetPrefix + b.version + "/nope.js", AssetPrefix + b.version + "/PLACEHOLDER.txt", "/index.html", "/query"} {
		if rec := get(t, h, p); rec.Code != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", p, rec.Code)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST / = %d, want 405", rec.Code)
	}
}

func TestEndpointsAreEscaped(t *testing.T) {
	h := newHandler(loadBundle(fakeDist()), `<b>t</b>`, `/q"</script><script>alert(1)//`, "")
	html := get(t, h, "/").Body.String()
	if strings.Contains(html, "<b>t</b>") || strings.Contains(html, "</script><script>alert") {
		t.Errorf("title or endpoint not escaped:\n%s", html)
	}
}

func TestNotBuilt(t *testing.T) {
	if b := loadBundle(fstest.MapFS{"PLACEHOLDER.txt": {Data: []byte("x")}}); b != nil {
		t.Fatal("loadBundle(placeholder only) != nil")
	}
	partial := fakeDist()
	delete(partial, "graphiql.min.js")
	if loadBundle(partial) != nil {
		t.Fatal("loadBundle without graphiql.min.js != nil")
	}
	h := newHandler(nil, "clustergraph", "/query", "/query")
	for _, p := range []string{"/", AssetPrefix + "x/graphiql.min.js"} {
		rec := get(t, h, p)
		if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "make graphiql") {
			t.Errorf("GET %s without assets = %d %q, want 503 mentioning make graphiql", p, rec.Code, rec.Body)
		}
	}
}

func TestAcceptsGzip(t *testing.T) {
	for in, want := range map[string]bool{
		"":                 false,
		"gzip":             true,
		"deflate, gzip":    true,
		"GZIP;q=0.5":       true,
		"gzip;q=0":         false,
		"gzip; q=0.000":    false,
		"br":               false,
		"identity, x-gzip": false,
	} {
		if got := acceptsGzip(in); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", in, got, want)
		}
	}
}
