// Package graphiql serves the GraphiQL IDE from assets bundled into the
// binary, so it works in air-gapped clusters with no CDN access.
//
// # Mounting contract
//
// Mount the handler at the root of a mux (or behind http.StripPrefix):
//
//	mux.Handle("/query", gqlServer)
//	mux.Handle("/", graphiql.Handler("clustergraph", "/query", "/query"))
//
// It answers:
//
//   - "/": the IDE page (index.html), Cache-Control: no-cache plus an ETag;
//   - "/graphiql/assets/{version}/{file}": the JavaScript and CSS bundles
//     (and THIRD_PARTY_LICENSES.txt), gzipped for clients that accept it and
//     cached for a year as immutable; {version} is a hash of all the bundled
//     files, so a new build gets new URLs;
//   - any other path: 404.
//
// The page refers to its assets by relative URLs ("graphiql/assets/..."), so
// it also works behind a reverse proxy that serves it under a path prefix, as
// long as the page itself is reached with a trailing slash ("/prefix/").
//
// # Endpoints
//
// The endpoint arguments of Handler are resolved by the browser against the
// page URL: "/query" means the same scheme, host and port as the page. For
// the subscription endpoint an http: result becomes ws: and https: becomes
// wss:, so TLS termination in front of the server just works. Subscriptions
// use graphql-ws (the graphql-transport-ws protocol, which gqlgen's websocket
// transport speaks).
//
// # Headers
//
// The GraphiQL headers editor is enabled: headers typed there as JSON, such
// as {"Authorization": "Bearer TOKEN"}, are sent with every HTTP request
// (including schema introspection) and are also sent as the payload of the
// websocket connection_init message, where a gqlgen InitFunc can read them
// (transport.InitPayload.Authorization). The payload is read each time the
// socket connects; the socket closes when the last subscription ends, so a
// header change applies from the next subscription on. Headers are not
// persisted in the browser's localStorage, so tokens do not outlive the tab.
//
// # The assets
//
// The assets are pinned in package.json / package-lock.json, and build.sh
// (`make graphiql`) copies them from npm into dist/ with the license texts
// of every package they draw on (THIRD_PARTY_LICENSES.txt, served beside
// them). dist/ is committed, plain, and embedded file by file: a `go build`
// or `go install` of the module needs no npm and always serves the IDE.
// They are committed rather than generated at build time so that the Go
// build stays a Go build; plain rather than pre-compressed because git and
// the module zip compress them anyway (a pre-gzipped copy saves 0.1% of the
// repository and 1 MB of the binary), and the handler gzips them once at
// start. `build.sh --check` (in `make test`) fails when dist/ is not
// exactly what build.sh makes of the lockfile.
package graphiql
