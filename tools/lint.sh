#!/usr/bin/env bash
# lint.sh is `make lint`: gofmt, then golangci-lint with the checked-in
# .golangci.yml (which runs go vet among its linters). Arguments go to
# `golangci-lint run` instead of ./... (e.g. tools/lint.sh ./k8s/...).
#
# golangci-lint is built from the Go module proxy and cached by version (see
# tools/gotool.sh). On 2 shared cores the cold build took about 6 minutes,
# and the first run over the tree 4 more (its analysis cache); a warm run
# takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

GOLANGCI_LINT_VERSION=v2.15.0

log() { printf '[lint %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

. tools/gotool.sh
lint=$(gotool golangci-lint "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$GOLANGCI_LINT_VERSION")

log "gofmt"
# graph/generated.go is gqlgen's output, formatted as gqlgen writes it.
unformatted=$(gofmt -l $(git ls-files '*.go'; git ls-files --others --exclude-standard '*.go') | grep -v '^graph/generated.go$' || true)
if [ -n "$unformatted" ]; then
  echo "not gofmt-formatted:" >&2; echo "$unformatted" >&2; exit 1
fi

log "golangci-lint $GOLANGCI_LINT_VERSION"
if [ $# -gt 0 ]; then
  "$lint" run "$@"
  exit
fi
"$lint" run ./...
# tools/image is a module of its own, which ./... does not reach.
(cd tools/image && "$lint" run --config ../../.golangci.yml ./...)
