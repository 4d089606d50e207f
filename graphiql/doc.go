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
// # Building the assets
//
// The assets are pinned in package.json / package-lock.json and copied into
// dist/ by build.sh (`make graphiql`). dist/ is not committed; a binary built
// without them serves a 503 page asking to run `make graphiql` instead of the
// IDE, so the Go build never depends on npm.
package graphiql
