#!/usr/bin/env bash
# bench.sh is `make bench`: it starts the two seeded test clusters and runs
# the Go benchmarks, clustergraph next to the apiserver in the same run.
# Environment: BENCHFLAGS adds flags to `go test` (e.g. -count 5).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
start=$SECONDS
tools/testbed/build.sh >/dev/null
# shellcheck source=testbed/pair.sh
source tools/testbed/pair.sh
# shellcheck disable=SC2086
go test -run '^$' -bench . -benchmem ${BENCHFLAGS:-} ./api
