// Package loaders holds the per-request dataloaders. Every relationship field
// of the schema goes through one: keys asked for while a query resolves are
// collected for a moment, answered by one pass over a cache index (or one
// metrics call) per batch, and memoized for the rest of the request.
//
// The stored loaders (metering, alerts, archived events, usage history) are
// also where stored records are authorized: a key the caller may not read
// (by the same access sets as cache reads, see access.go) gets nothing and
// never reaches the database. Records serves the rest of the database the
// same way (the queries over many records, a cluster's own metering, the
// alert stream, createAlert): it holds the database handle, so resolvers
// never do, and checks the caller before each query.
//
// A Loaders value lives for one GraphQL operation; it is put in the context
// by the API edge and read back with For.
package loaders
