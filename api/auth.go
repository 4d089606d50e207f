package api

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"

	"github.com/clustergraph/clustergraph/auth"
	"github.com/clustergraph/clustergraph/caller"
	"github.com/clustergraph/clustergraph/errkind"
	"github.com/clustergraph/clustergraph/metrics"
	"github.com/clustergraph/clustergraph/terminal"
)

// devSubject is the identity of every request when authentication is off
// (--insecure-disable-auth, for a local demo only).
var devSubject = &caller.Subject{User: "clustergraph:insecure-dev", Unrestricted: true}

// stripSmuggledHeaders removes what a client must never be able to pass on
// to an apiserver: Impersonate-* headers, and the headers a Connection
// header lists (hop-by-hop; a proxy would drop them after reading them).
func stripSmuggledHeaders(h http.Header) {
	for name := range h {
		if strings.HasPrefix(strings.ToLower(name), "impersonate-") {
			h.Del(name)
		}
	}
	for _, v := range h.Values("Connection") {
		for _, name := range strings.Split(v, ",") {
			name = strings.TrimSpace(name)
			// Upgrade is how a websocket starts; it is never forwarded.
			if name != "" && !strings.EqualFold(name, "upgrade") {
				h.Del(name)
			}
		}
	}
}

// authenticate puts the caller's subject in the request context. A request
// without a valid bearer token is refused with 401 UNAUTHENTICATED; a
// websocket upgrade is let through and authenticated by its connection_init
// payload (wsInit), where browsers can put a token.
func authenticate(authn *auth.Authenticator, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		stripSmuggledHeaders(r.Header)
		// New tokens are reviewed within a budget per client address (see
		// auth.Config), sockets' included.
		r = r.WithContext(auth.WithClient(r.Context(), clientIP(r.RemoteAddr)))
		if authn == nil {
			next.ServeHTTP(w, r.WithContext(caller.With(r.Context(), devSubject)))
			return
		}
		if isUpgrade(r) {
			next.ServeHTTP(w, r)
			return
		}
		s, err := bearer(r.Context(), authn, r.Header.Get("Authorization"))
		if err != nil {
			status, code := http.StatusUnauthorized, errkind.CodeUnauthenticated
			if !errors.Is(err, errkind.Unauthenticated) {
				status, code = http.StatusServiceUnavailable, errkind.CodeUnavailable
			}
			writeError(w, status, code, err.Error())
			return
		}
		next.ServeHTTP(w, r.WithContext(caller.With(r.Context(), s)))
	})
}

func bearer(ctx context.Context, authn *auth.Authenticator, header string) (*caller.Subject, error) {
	token, err := auth.BearerToken(header)
	if err != nil {
		return nil, err
	}
	return authn.Authenticate(ctx, token)
}

// clientIP is the address part of a remote address.
func clientIP(remoteAddr string) string { return hostOf(remoteAddr) }

// hostOf is the host of a host:port, or of a bare host, without brackets.
func hostOf(hostport string) string {
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		return host
	}
	return strings.Trim(hostport, "[]")
}

func isUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// Close codes of a socket whose connection_init is refused. gqlgen's
// default, a normal closure (1000), has graphql-ws clients (GraphiQL's
// among them) reconnect at once with the same token, without backoff and
// without end, since their subscriptions are still wanted. A refused token
// closes with 4403, graphql-transport-ws's Forbidden; a token that could
// not be reviewed now (the review budget, the identity cluster not
// answering) with 1013, Try Again Later. graphql-ws retries either only
// within its retry limit, with backoff.
const (
	closeForbidden = 4403
	closeTryLater  = 1013
)

// refusedInit is the context that has gqlgen close a socket whose
// connection_init err refused with the code that says why.
func refusedInit(ctx context.Context, err error) context.Context {
	if errors.Is(err, errkind.Unauthenticated) {
		return transport.WithWebsocketCloseCode(transport.AppendCloseReason(ctx, "Forbidden"), closeForbidden)
	}
	return transport.WithWebsocketCloseCode(transport.AppendCloseReason(ctx, "try again later"), closeTryLater)
}

// wsInit authenticates a websocket from the Authorization value of its
// connection_init payload (GraphiQL sends its headers there). The socket
// lives only as long as its token is accepted: the token is checked again
// every recheck, and the socket is closed (every subscription and terminal
// on it ending) once the identity cluster refuses it, expired or revoked.
// The acknowledgement carries no payload: nothing the client sent (its
// token above all) is ever sent back. An authenticated socket counts
// against its user's socket cap; one over it is refused.
func wsInit(authn *auth.Authenticator, recheck time.Duration) transport.WebsocketInitFunc {
	return func(ctx context.Context, p transport.InitPayload) (context.Context, *transport.InitPayload, error) {
		ctx = terminal.WithConnection(ctx)
		if authn == nil {
			ctx, err := authenticated(ctx, devSubject.User)
			return ctx, nil, err
		}
		s, err := bearer(ctx, authn, p.Authorization())
		if err != nil {
			return refusedInit(ctx, err), nil, err
		}
		if ctx, err = authenticated(ctx, s.User); err != nil {
			return ctx, nil, err
		}
		// Once refused, the socket closes even while a client that stopped
		// reading holds its writes back: every write has a deadline (see
		// wsImplementation).
		ctx, cancel := context.WithCancel(caller.With(ctx, s))
		go func() {
			defer cancel()
			t := time.NewTicker(recheck)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				if _, err := bearer(ctx, authn, p.Authorization()); errors.Is(err, errkind.Unauthenticated) {
					return // closes the socket
				}
			}
		}()
		return ctx, nil, nil
	}
}

// writeError writes a GraphQL-shaped error response, counted among the
// errors sent (a request refused before GraphQL ran).
func writeError(w http.ResponseWriter, status int, code, msg string) {
	metrics.GraphQLError(codeLabel(code))
	w.Header().Set("Content-Type", "application/json")
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="clustergraph"`)
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []any{map[string]any{
		"message": msg, "extensions": map[string]any{"code": code},
	}}})
}
