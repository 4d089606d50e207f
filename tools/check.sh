#!/usr/bin/env bash
# check.sh is `make check`: the fast checks to run before every commit
# (formatting, vet, the import floors, the tests that need no cluster). It
# does not regenerate gqlgen's code: `make test` checks that. The full suite
# against real clusters is `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
unformatted=$(gofmt -l $(git ls-files '*.go'; git ls-files --others --exclude-standard '*.go') | grep -v '^graph/generated.go$' || true)
if [ -n "$unformatted" ]; then
  echo "not gofmt-formatted:" >&2; echo "$unformatted" >&2; exit 1
fi
go vet ./...
# The import floors first, so a package importing upward is named before
# the other tests run (go test ./... below reuses this result).
go test -short ./internal/layers
go test -short ./...
