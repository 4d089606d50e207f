#!/usr/bin/env bash
# bench.sh is `make bench`: it starts the two seeded test clusters and runs
# the Go benchmarks, clustergraph next to the apiserver in the same run, the
# live benchmarks (watch, terminal) next to raw client-go, the storage
# benchmarks on SQLite and a private MariaDB, then the scale scenarios of
# issue 7 on bare kwok clusters of 1,000, 10,000 and 50,000 pods
# (BENCH_SIZES="S M" picks sizes): cold start, first page, whole list,
# deep query and subscription fan-out (1,000 subscribers next to 1,000
# raw watches; about 8 minutes a size, most of it waiting for memory to
# settle). SCALEFLAGS adds flags to tools/scale/bench (e.g.
# "-scenarios fanout -subs 500").
# Environment: BENCHFLAGS adds flags to `go test` (e.g. -count 5).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
start=$SECONDS
tools/testbed/build.sh >/dev/null
# shellcheck source=testbed/pair.sh
source tools/testbed/pair.sh
export CLUSTERGRAPH_MARIADB_DIR="$CLUSTERGRAPH_TESTBED_DIR/mariadb" CLUSTERGRAPH_TEST_MYSQL_DSN
stop_all() { tools/testbed/mariadb.sh down >/dev/null 2>&1 || true; cleanup; }
trap stop_all EXIT
CLUSTERGRAPH_TEST_MYSQL_DSN=$(tools/testbed/mariadb.sh up | tail -n1)
# shellcheck disable=SC2086
go test -run '^$' -bench . -skip '^BenchmarkLive' -benchmem ${BENCHFLAGS:-} ./api
log "live: watch delivery latency, idle subscription memory, terminal keystrokes, next to raw client-go (about 2.5 minutes)"
# Apart from the keystrokes, each is one measurement whose figures are
# reported metrics (p50, p99, bytes): ns/op is suppressed and -benchmem
# would count a whole run as one op. See api/live_bench_test.go.
# shellcheck disable=SC2086
go test -run '^$' -bench '^BenchmarkLive' -timeout 30m ${BENCHFLAGS:-} ./api
log "storage: samples written (rows/s) next to a raw batched INSERT, metering queries over 30 days x 1,000 namespaces"
# shellcheck disable=SC2086
go test -run '^$' -bench . -benchtime 20x ${BENCHFLAGS:-} ./db

log "scale benchmarks (issue 7) at sizes ${BENCH_SIZES:-S M L}: clustergraph next to bare informers, the apiserver and raw watches"
go build -o bin/clustergraph .
go build -o bin/peer ./tools/scale/peer
mkdir -p bench-results
: >bench-results/scale.md
for size in ${BENCH_SIZES:-S M L}; do
  kc=$(tools/testbed/scale.sh up "$size" | tail -n1)
  # shellcheck disable=SC2086
  go run ./tools/scale/bench -kubeconfig "$kc" -size "$size" -clustergraph bin/clustergraph -peer bin/peer -out bench-results ${SCALEFLAGS:-} | tee -a bench-results/scale.md
  tools/testbed/scale.sh down "$size" >/dev/null
done
log "scale results: bench-results/scale.md and bench-results/scale-*.json ($((SECONDS - start))s in all)"
