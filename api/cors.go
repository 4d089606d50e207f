package api

import (
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/rs/cors"

	"github.com/clustergraph/clustergraph/reqlog"
)

// withCORS lets browser pages of the allowed origins call the HTTP
// endpoints (GraphQL over POST and GET, the SDL) from another origin, the
// same list that may open websockets (Config.AllowedOrigins, host patterns
// matched as the websocket accept matches them). A preflight is answered
// here, before authentication, as browsers send it without credentials;
// the request that follows carries its token as usual. Credentials are
// allowed (an origin is echoed, never "*"), and the request id header is
// readable by the page. With no origin allowed, cross-origin browser
// calls get no CORS headers at all and the browser refuses them.
func withCORS(patterns []string, next http.Handler) http.Handler {
	if len(patterns) == 0 {
		return next
	}
	return cors.New(cors.Options{
		AllowOriginFunc:  func(origin string) bool { return originAllowed(origin, patterns) },
		AllowedMethods:   []string{http.MethodGet, http.MethodPost},
		AllowedHeaders:   []string{"Authorization", "Content-Type", "Accept", reqlog.Header},
		ExposedHeaders:   []string{reqlog.Header},
		AllowCredentials: true,
		MaxAge:           600,
	}).Handler(next)
}

// originAllowed reports whether a browser Origin matches one of patterns
// exactly as websocket upgrades are checked (coder/websocket's rule): its
// host, or with a pattern that has a scheme its scheme://host, by
// path.Match, case-insensitive.
func originAllowed(origin string, patterns []string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	for _, p := range patterns {
		target := u.Host
		if strings.Contains(p, "://") {
			target = u.Scheme + "://" + u.Host
		}
		if ok, err := path.Match(strings.ToLower(p), strings.ToLower(target)); err == nil && ok {
			return true
		}
	}
	return false
}
