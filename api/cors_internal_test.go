package api

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestOriginAllowed(t *testing.T) {
	patterns := []string{"console.example.com", "https://*.corp.example", "127.0.0.1:*"}
	for origin, want := range map[string]bool{
		"https://console.example.com":  true,
		"http://console.example.com":   true, // a host pattern matches either scheme, as websockets do
		"https://CONSOLE.example.com":  true,
		"https://a.corp.example":       true,
		"http://a.corp.example":        false,
		"https://evil.example.com":     false,
		"http://127.0.0.1:3000":        true,
		"null":                         false,
		"file://console.example.com":   false,
		"https://console.example.com.": false,
	} {
		if got := originAllowed(origin, patterns); got != want {
			t.Errorf("%s: %v, want %v", origin, got, want)
		}
	}
}

// TestCORSPreflight: a preflight from an allowed origin is answered
// without credentials and allows the Authorization header; one from
// another origin gets no CORS headers; with no origins configured the
// handler is untouched.
func TestCORSPreflight(t *testing.T) {
	reached := 0
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached++ })
	h := withCORS([]string{"console.example.com"}, next)
	preflight := func(origin string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodOptions, "http://cg.example/query", nil)
		r.Header.Set("Origin", origin)
		r.Header.Set("Access-Control-Request-Method", "POST")
		r.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	w := preflight("https://console.example.com")
	if w.Header().Get("Access-Control-Allow-Origin") != "https://console.example.com" || w.Header().Get("Access-Control-Allow-Credentials") != "true" ||
		w.Header().Get("Access-Control-Allow-Headers") == "" || reached != 0 {
		t.Errorf("allowed preflight: %d %v (reached the handler %d times)", w.Code, w.Header(), reached)
	}
	if w := preflight("https://evil.example"); w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("refused preflight: %v", w.Header())
	}
	if withCORS(nil, next) == nil {
		t.Fatal("nil handler")
	}
}
