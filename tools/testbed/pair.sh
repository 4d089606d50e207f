# pair.sh is sourced by tools/test.sh and tools/bench.sh: it starts the two
# seeded test clusters cg-a (4 nodes) and cg-b (3 nodes) in a fresh work
# dir, exports CLUSTERGRAPH_TEST_KUBECONFIGS, sets kc_a and kc_b, and
# deletes everything when the calling script exits.
# Needs: log (a function), start (the script's start in $SECONDS).

# Each run gets its own kwok work dir, so a stale cluster from an earlier run
# (or the demo) never interferes.
export CLUSTERGRAPH_TESTBED_DIR
CLUSTERGRAPH_TESTBED_DIR=$(mktemp -d /tmp/clustergraph-test.XXXXXX)
cleanup() {
  log "stopping test clusters"
  tools/testbed/cluster.sh down-all >/dev/null 2>&1 || true
  rm -rf "$CLUSTERGRAPH_TESTBED_DIR"
}
trap cleanup EXIT

log "starting clusters cg-a and cg-b"
kc_a=$(tools/testbed/cluster.sh up cg-a 4 | tail -n1)
kc_b=$(tools/testbed/cluster.sh up cg-b 3 | tail -n1)
log "seeding"
tools/testbed/seed.sh "$kc_a" 2>"$CLUSTERGRAPH_TESTBED_DIR/seed-a.log" & seed_a=$!
tools/testbed/seed.sh "$kc_b" 2>"$CLUSTERGRAPH_TESTBED_DIR/seed-b.log" & seed_b=$!
wait $seed_a || { cat "$CLUSTERGRAPH_TESTBED_DIR/seed-a.log" >&2; exit 1; }
wait $seed_b || { cat "$CLUSTERGRAPH_TESTBED_DIR/seed-b.log" >&2; exit 1; }
log "testbed ready after $((SECONDS - start))s"
export CLUSTERGRAPH_TEST_KUBECONFIGS="$kc_a:$kc_b"
