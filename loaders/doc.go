// Package loaders holds the per-request dataloaders. Every relationship field
// of the schema goes through one: keys asked for while a query resolves are
// collected for a moment, answered by one pass over a cache index (or one
// metrics call) per batch, and memoized for the rest of the request.
//
// A Loaders value lives for one GraphQL operation; it is put in the context
// by the API edge and read back with For.
package loaders
