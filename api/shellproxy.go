package api

import (
	"encoding/json"
	"net/http"
	"net/http/httputil"
	"strings"

	"github.com/clustergraph/clustergraph/k8s"
	"github.com/clustergraph/clustergraph/k8s/stream"
	"github.com/clustergraph/clustergraph/terminal"
)

// shellProxy is what kubectl in a cluster shell talks to, at
// /shell-proxy/TOKEN/...: it forwards each request to the shell's cluster
// impersonating the shell's owner. The token is valid while the shell runs;
// whatever the request carries as identity (Authorization, Impersonate-*)
// is replaced.
func shellProxy(reg *k8s.Registry, tokens *terminal.ShellTokens) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The token is the first path segment: client-go sends no
		// credentials to a plain-http server, and a shell's kubeconfig
		// must work with the in-cluster http URL too.
		rest, _ := strings.CutPrefix(r.URL.Path, "/shell-proxy/")
		tok, path, _ := strings.Cut(rest, "/")
		sess, ok := tokens.Lookup(tok)
		if tok == "" || !ok {
			kubeStatus(w, http.StatusUnauthorized, "Unauthorized", "no running cluster shell has this token")
			return
		}
		c, err := reg.Cluster(sess.Cluster)
		if err != nil {
			kubeStatus(w, http.StatusServiceUnavailable, "ServiceUnavailable", "the shell's cluster is gone")
			return
		}
		rt, base, err := stream.ProxyTransport(c, sess.Subject)
		if err != nil {
			kubeStatus(w, http.StatusForbidden, "Forbidden", err.Error())
			return
		}
		proxy := &httputil.ReverseProxy{
			Transport:     rt,
			FlushInterval: -1, // watches stream
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.Out.URL.Path = "/" + path
				pr.Out.URL.RawPath = ""
				pr.SetURL(base)
				pr.Out.Header.Del("Authorization")
				for h := range pr.Out.Header {
					if strings.HasPrefix(strings.ToLower(h), "impersonate-") {
						pr.Out.Header.Del(h)
					}
				}
			},
		}
		proxy.ServeHTTP(w, r)
	})
}

// kubeStatus answers as the apiserver would, so kubectl prints the reason.
func kubeStatus(w http.ResponseWriter, code int, reason, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": msg, "reason": reason, "code": code})
}
