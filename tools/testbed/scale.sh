#!/usr/bin/env bash
# scale.sh starts a large kwok cluster for the scale benchmarks (issue 7):
#
#   scale.sh up SIZE     S: 1,000 pods on 50 nodes; M: 10,000 on 500; L: 50,000 on 1,000
#   scale.sh down SIZE
#
# The cluster is bare (no controller manager, scheduler or metrics-server;
# see cluster.sh) and filled by tools/scale/populate with Deployments,
# ReplicaSets, pods, Services and Events. `up` prints the kubeconfig path
# last. (kwokctl's snapshot save/restore would let later runs skip the
# populating, but with the binary runtime it downloads etcdctl from GitHub,
# which this machine cannot reach; populating M takes about a minute.)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
cache=${CLUSTERGRAPH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/clustergraph}
export KWOK_WORKDIR=${CLUSTERGRAPH_TESTBED_DIR:-$cache/testbed/work}
bin="$cache/testbed/bin"
log() { printf '[scale %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

size=${2:-}
case "$size" in
  S) pods=1000 nodes=50 ;;
  M) pods=10000 nodes=500 ;;
  L) pods=50000 nodes=1000 ;;
  *) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
name="cg-scale-$(echo "$size" | tr 'A-Z' 'a-z')"

case "${1:-}" in
  up)
    kc=$(CLUSTERGRAPH_TESTBED_BARE=1 "$here/cluster.sh" up "$name" "$nodes" | tail -n1)
    log "populating $size: $pods pods on $nodes nodes"
    (cd "$root" && go run ./tools/scale/populate -kubeconfig "$kc" -pods "$pods") >&2
    running=0
    for _ in $(seq 600); do
      running=$("$bin/kubectl" --kubeconfig "$kc" get pods -A --field-selector status.phase=Running --no-headers 2>/dev/null | wc -l)
      [ "$running" -ge "$pods" ] && break
      sleep 2
    done
    [ "$running" -ge "$pods" ] || die "only $running of $pods pods Running"
    log "cluster $name ready: $running pods Running"
    echo "$kc"
    ;;
  down) "$here/cluster.sh" down "$name" ;;
  *) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
