// Package api is clustergraph's HTTP edge: the GraphQL handler with its
// transports, the error presenter that turns internal errors into
// extensions.code, per-operation loaders, health and readiness endpoints and
// the GraphiQL page. It only wires; behaviour lives in resolvers and below.
package api
