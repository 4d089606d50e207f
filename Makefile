# Run `make help` for the targets.
.DEFAULT_GOAL := help
SHELL := /usr/bin/env bash

.PHONY: help
help: ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

.PHONY: demo
demo: ## Build and run clustergraph on two local demo clusters, with GraphiQL.
	tools/demo.sh

.PHONY: test
test: ## Install what is missing, start real clusters, run every test, clean up.
	tools/test.sh

.PHONY: bench
bench: ## Benchmarks on the seeded test clusters, clustergraph next to the apiserver.
	tools/bench.sh

.PHONY: generate
generate: ## Regenerate gqlgen code from schema.graphqls and gqlgen.yml.
	go generate ./...

.PHONY: graphiql
graphiql: ## Regenerate the committed GraphiQL bundle (graphiql/dist) from npm; commit it.
	graphiql/build.sh

# What `make build` and `make image` stamp into the binary (version.go):
# the release as git describes it, and the commit. The commit is stamped
# rather than left to the Go toolchain's VCS stamp, which a git worktree, a
# source archive or GOFLAGS=-buildvcs=false leaves out.
VERSION = $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT = $(shell git rev-parse HEAD 2>/dev/null || echo unknown)

.PHONY: build
build: ## Build bin/clustergraph (GraphiQL's bundle is committed: no npm).
	go build -ldflags "-X main.version=$(VERSION) -X main.commit=$(COMMIT)" -o bin/clustergraph .

# Where `make image` writes the image (IMAGE_TAR=... to write elsewhere).
IMAGE_TAR = bin/clustergraph-image.tar

.PHONY: image
image: ## Build the container image bin/clustergraph-image.tar (no Docker engine; docker/podman load it).
	VERSION='$(VERSION)' COMMIT='$(COMMIT)' tools/image/build.sh '$(IMAGE_TAR)'

.PHONY: testbed
testbed: ## Build (or reuse cached) kube-apiserver, etcd, kwok, ... for the testbed.
	tools/testbed/build.sh

.PHONY: lint
lint: ## gofmt and golangci-lint (.golangci.yml; built from the module proxy, cached).
	tools/lint.sh

.PHONY: check
check: ## Fast checks before a commit: gofmt, vet, import floors, unit tests (no cluster).
	tools/check.sh

# Packages whose behaviour is tested without a cluster. `go test` passes
# a package that has no test files ("no test files"), so unit fails
# instead when one of these has lost its tests.
UNIT_REQUIRED := ./resolvers ./graph/model ./terminal

.PHONY: unit
unit: ## Run only the tests that need no cluster (go test -short).
	@none=$$(go list -f '{{if not (or .TestGoFiles .XTestGoFiles)}}{{.ImportPath}} {{end}}' $(UNIT_REQUIRED)); \
	if [ -n "$$none" ]; then echo "no unit tests in: $$none" >&2; exit 1; fi
	go test -short -race ./...
