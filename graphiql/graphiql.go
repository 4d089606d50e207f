package graphiql

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
)

// dist is the committed output of build.sh (see the package documentation).
// Each file is named, so a checkout missing one fails to compile rather than
// serve a broken page; TestDistIsEmbedded fails when build.sh writes a file
// not listed here.
//
//go:embed dist/react.production.min.js dist/react-dom.production.min.js
//go:embed dist/graphql-ws.min.js dist/graphiql.min.js dist/graphiql.min.css
//go:embed dist/THIRD_PARTY_LICENSES.txt
var dist embed.FS

// AssetPrefix is the path under which the handler serves its bundled
// JavaScript and CSS files, as "AssetPrefix{version}/{file}".
const AssetPrefix = "/graphiql/assets/"

// Files the page loads, in load order: React before ReactDOM before GraphiQL,
// because the UMD bundles find each other through browser globals. build.sh
// produces exactly these names, and the go:embed lines above name them.
var (
	scripts = []string{
		"react.production.min.js",
		"react-dom.production.min.js",
		"graphql-ws.min.js",
		"graphiql.min.js",
	}
	styles = []string{"graphiql.min.css"}
)

// contentTypes is set explicitly rather than taken from mime.TypeByExtension,
// whose answer depends on the host's /etc/mime.types.
var contentTypes = map[string]string{
	".js":  "text/javascript; charset=utf-8",
	".css": "text/css; charset=utf-8",
	".txt": "text/plain; charset=utf-8",
}

// asset is one file ready to send: its bytes, a gzip copy when that is
// smaller (the GraphiQL bundle shrinks about 4x, which matters over
// kubectl port-forward), and its validators.
type asset struct {
	body, gzipped []byte
	contentType   string
	etag          string
}

// bundle is every file of dist, keyed by name, plus a version hash of them
// all that goes into the asset URLs for cache busting.
type bundle struct {
	version string
	files   map[string]*asset
}

// embedded is loaded once per process: hashing and gzipping about 1.5 MB
// (about 70 ms) should not be repeated for each Handler call.
var embedded = sync.OnceValue(func() *bundle {
	sub, err := fs.Sub(dist, "dist")
	if err == nil {
		var b *bundle
		if b, err = loadBundle(sub); err == nil {
			return b
		}
	}
	// Every file is embedded by name, so this is a programming error
	// (scripts or styles name a file go:embed does not), caught by the
	// tests.
	panic("graphiql: " + err.Error())
})

// loadBundle reads the assets from fsys, failing when a file the page needs
// is missing or empty.
func loadBundle(fsys fs.FS) (*bundle, error) {
	b := &bundle{files: map[string]*asset{}}
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, err
	}
	version := sha256.New()
	for _, e := range entries {
		name := e.Name()
		ctype, ok := contentTypes[path.Ext(name)]
		if !e.Type().IsRegular() || !ok {
			continue
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(body)
		version.Write([]byte(name))
		version.Write(sum[:])
		b.files[name] = &asset{
			body:        body,
			gzipped:     gzipIfSmaller(body),
			contentType: ctype,
			etag:        `"` + hex.EncodeToString(sum[:8]) + `"`,
		}
	}
	for _, name := range append(append([]string{}, scripts...), styles...) {
		if a := b.files[name]; a == nil || len(a.body) == 0 {
			return nil, fmt.Errorf("bundle has no %s, or it is empty (graphiql/build.sh writes it)", name)
		}
	}
	b.version = hex.EncodeToString(version.Sum(nil)[:6])
	return b, nil
}

// gzipIfSmaller compresses once at load time, so serving costs nothing; it
// returns nil when gzip would not help (tiny files) or fails, and the file
// is then served as it is.
func gzipIfSmaller(body []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if _, err := zw.Write(body); err != nil {
		return nil
	}
	// Close writes gzip's trailer: without it the stream is cut short.
	if err := zw.Close(); err != nil || buf.Len() >= len(body) {
		return nil
	}
	return buf.Bytes()
}

// Handler returns the GraphiQL IDE handler; see the package documentation for
// the paths it serves. title is the page title; endpoint is the GraphQL HTTP
// endpoint and subscriptionEndpoint the graphql-ws websocket endpoint, both
// usually paths such as "/query". An empty subscriptionEndpoint disables
// subscriptions.
func Handler(title, endpoint, subscriptionEndpoint string) http.Handler {
	return newHandler(embedded(), title, endpoint, subscriptionEndpoint)
}

// handler serves one rendered page and the bundle it refers to.
type handler struct {
	b     *bundle
	index *asset
}

func newHandler(b *bundle, title, endpoint, subscriptionEndpoint string) *handler {
	h := &handler{b: b}
	// The page only depends on the arguments and the bundle version, so it
	// is rendered once and its ETag computed once.
	var buf bytes.Buffer
	err := indexTemplate.Execute(&buf, map[string]any{
		"Title":                title,
		"Endpoint":             endpoint,
		"SubscriptionEndpoint": subscriptionEndpoint,
		"Assets":               strings.TrimPrefix(AssetPrefix, "/") + b.version + "/",
		"Scripts":              scripts,
		"Styles":               styles,
	})
	if err != nil {
		// The template is a constant and its data are strings: this is
		// a programming error, caught by the tests.
		panic("graphiql: rendering index.html: " + err.Error())
	}
	sum := sha256.Sum256(buf.Bytes())
	h.index = &asset{
		body:        buf.Bytes(),
		contentType: "text/html; charset=utf-8",
		etag:        `"` + hex.EncodeToString(sum[:8]) + `"`,
	}
	return h
}

// ServeHTTP serves the page at "/" and the assets under AssetPrefix.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if p != "/" && !strings.HasPrefix(p, AssetPrefix) {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if p == "/" {
		// no-cache: browsers revalidate the page with its ETag, so a new
		// deployment (new asset version) is picked up at once.
		serve(w, r, h.index, "no-cache")
		return
	}
	version, name, _ := strings.Cut(strings.TrimPrefix(p, AssetPrefix), "/")
	a := h.b.files[name]
	if a == nil {
		http.NotFound(w, r)
		return
	}
	if version != h.b.version {
		// A page from another build (say, during a rolling update) asks
		// for its version: send what we have, but do not let it be
		// cached under that URL.
		serve(w, r, a, "no-cache")
		return
	}
	serve(w, r, a, "public, max-age=31536000, immutable")
}

// serve writes a with the given Cache-Control, answering conditional
// requests with 304 and gzip-capable clients with the gzip copy.
func serve(w http.ResponseWriter, r *http.Request, a *asset, cacheControl string) {
	hdr := w.Header()
	hdr.Set("Cache-Control", cacheControl)
	hdr.Set("ETag", a.etag)
	hdr.Set("X-Content-Type-Options", "nosniff")
	if a.gzipped != nil {
		hdr.Set("Vary", "Accept-Encoding")
	}
	if etagMatch(r.Header.Get("If-None-Match"), a.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hdr.Set("Content-Type", a.contentType)
	body := a.body
	if a.gzipped != nil && acceptsGzip(r.Header.Get("Accept-Encoding")) {
		body = a.gzipped
		hdr.Set("Content-Encoding", "gzip")
	}
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		// An error means the client went away: there is no one to tell.
		_, _ = w.Write(body)
	}
}

func etagMatch(ifNoneMatch, etag string) bool {
	for _, t := range strings.Split(ifNoneMatch, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}

// acceptsGzip reports whether an Accept-Encoding value allows gzip, honouring
// an explicit "gzip;q=0".
func acceptsGzip(acceptEncoding string) bool {
	for _, part := range strings.Split(acceptEncoding, ",") {
		coding, params, _ := strings.Cut(part, ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		q, ok := strings.CutPrefix(strings.ReplaceAll(params, " ", ""), "q=")
		if !ok {
			return true
		}
		f, err := strconv.ParseFloat(q, 64)
		return err == nil && f > 0
	}
	return false
}

// indexTemplate is the IDE page. It must load nothing from outside the
// handler (air-gapped clusters), so every URL in it is relative; the empty
// data: icon stops browsers asking for /favicon.ico, which would 404. html/template
// escapes the endpoints for the JavaScript context (they become JS strings).
var indexTemplate = template.Must(template.New("index.html").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<link rel="icon" href="data:,">
{{- range .Styles}}
<link rel="stylesheet" href="{{$.Assets}}{{.}}">
{{- end}}
<style>html, body, #graphiql { height: 100%; margin: 0; }</style>
</head>
<body>
<div id="graphiql">Loading GraphiQL…</div>
{{- range .Scripts}}
<script src="{{$.Assets}}{{.}}"></script>
{{- end}}
<script>
(function () {
  "use strict";
  // Resolve the endpoints against the page URL so the IDE works behind any
  // host, port, path prefix or TLS terminator.
  var url = new URL({{.Endpoint}}, window.location.href).href;
  var subscriptionEndpoint = {{.SubscriptionEndpoint}};
  var wsClient;
  // Headers from the GraphiQL headers editor, as last passed to the fetcher.
  var headers = {};
  if (subscriptionEndpoint) {
    var ws = new URL(subscriptionEndpoint, window.location.href);
    if (ws.protocol === "https:") ws.protocol = "wss:";
    if (ws.protocol === "http:") ws.protocol = "ws:";
    // The default lazy client opens the socket for the first subscription
    // and closes it after the last, calling connectionParams on each
    // connect: so connection_init carries the headers current at that time.
    wsClient = graphqlWs.createClient({
      url: ws.href,
      connectionParams: function () { return headers; }
    });
  }
  var base = GraphiQL.createFetcher({ url: url, wsClient: wsClient });
  // GraphiQL passes the parsed headers editor to every fetcher call; the
  // HTTP fetcher adds them to the request, and we keep them for the socket.
  function fetcher(params, opts) {
    headers = (opts && opts.headers) || {};
    return base(params, opts);
  }
  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      isHeadersEditorEnabled: true,
      // Keep tokens typed into the headers editor out of localStorage.
      shouldPersistHeaders: false
    })
  );
})();
</script>
</body>
</html>
`))
