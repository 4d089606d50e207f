// Package graph is gqlgen's executable schema for schema.graphqls
// (generated.go, from gqlgen.yml: `make generate`): the field executors,
// argument parsing and the resolver interfaces package resolvers
// implements. Nothing here is written by hand but this comment.
package graph
