package graphiql

import (
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"regexp"
	"slices"
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

// TestEmbeddedAssets checks the bundle the binary carries: the page and
// every file it loads. graphiql/dist is committed, so this runs on every
// checkout; `graphiql/build.sh --check` (in make test) holds those files to
// package-lock.json.
func TestEmbeddedAssets(t *testing.T) {
	checkIndexAndAssets(t, Handler("clustergraph", "/query", "/query"))
}

// TestDistIsEmbedded: the go:embed lines name every file build.sh writes
// (one it adds would otherwise be left out of the binary unnoticed), and
// each is in the bundle.
func TestDistIsEmbedded(t *testing.T) {
	onDisk, err := os.ReadDir("dist")
	if err != nil {
		t.Fatal(err)
	}
	embeddedNames, err := fs.ReadDir(dist, "dist")
	if err != nil {
		t.Fatal(err)
	}
	var disk, emb []string
	for _, e := range onDisk {
		disk = append(disk, e.Name())
	}
	for _, e := range embeddedNames {
		emb = append(emb, e.Name())
	}
	if !slices.Equal(disk, emb) {
		t.Errorf("graphiql/dist holds %q, go:embed embeds %q", disk, emb)
	}
	want := append(append([]string{licenses}, scripts...), styles...)
	slices.Sort(want)
	if !slices.Equal(emb, want) {
		t.Errorf("embedded %q, want the page's scripts and styles and %s: %q", emb, licenses, want)
	}
	for _, name := range emb {
		if a := embedded().files[name]; a == nil || len(a.body) == 0 {
			t.Errorf("%s is not in the bundle or empty", name)
		}
	}
}

// licenses is the license file build.sh writes and the handler serves.
const licenses = "THIRD_PARTY_LICENSES.txt"

func TestHandler(t *testing.T) {
	h := newHandler(embedded(), "clustergraph", "/query", "/query")
	v := h.b.version

	name := scripts[0]
	if rec := get(t, h, AssetPrefix+"0ld/"+name); rec.Code != http.StatusOK || rec.Header().Get("Cache-Control") != "no-cache" {
		t.Errorf("asset of another version: %d %q, want 200 no-cache", rec.Code, rec.Header().Get("Cache-Control"))
	}
	// We redistribute the bundle: its licenses are served beside it.
	rec := get(t, h, AssetPrefix+v+"/"+licenses)
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "text/plain; charset=utf-8" ||
		!strings.Contains(rec.Body.String(), "==== graphiql@") {
		t.Errorf("GET %s = %d %q, want the license texts", licenses, rec.Code, rec.Header().Get("Content-Type"))
	}
	for _, p := range []string{AssetPrefix + v + "/nope.js", AssetPrefix + v + "/../graphiql.go", "/index.html", "/query"} {
		if rec := get(t, h, p); rec.Code != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", p, rec.Code)
		}
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST / = %d, want 405", rec.Code)
	}
}

func TestEndpointsAreEscaped(t *testing.T) {
	h := newHandler(embedded(), `<b>t</b>`, `/q"</script><script>alert(1)//`, "")
	html := get(t, h, "/").Body.String()
	if strings.Contains(html, "<b>t</b>") || strings.Contains(html, "</script><script>alert") {
		t.Errorf("title or endpoint not escaped:\n%s", html)
	}
}

// TestIncompleteBundle: a bundle without a file the page loads is refused
// (embedded then panics at start rather than serve a page that cannot load).
func TestIncompleteBundle(t *testing.T) {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := loadBundle(sub); err != nil {
		t.Fatalf("loadBundle(dist) = %v", err)
	}
	for _, missing := range append(append([]string{}, scripts...), styles...) {
		// Stand-in contents: loadBundle checks presence, not content.
		partial := fstest.MapFS{}
		for name := range embedded().files {
			if name != missing {
				partial[name] = &fstest.MapFile{Data: []byte("/* " + name + " */")}
			}
		}
		if _, err := loadBundle(partial); err == nil || !strings.Contains(err.Error(), missing) {
			t.Errorf("loadBundle without %s: err %v, want one naming it", missing, err)
		}
		partial[missing] = &fstest.MapFile{}
		if _, err := loadBundle(partial); err == nil {
			t.Errorf("loadBundle with an empty %s: no error", missing)
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
