#!/usr/bin/env bash
# demo.sh is `make demo`: it builds clustergraph, starts two local kwok
# clusters (real kube-apiservers, simulated nodes) seeded with namespaces,
# node pools, deployments, statefulsets, daemonsets, jobs, services and
# ingresses, writes one kubeconfig holding both contexts, and serves
# clustergraph on it with GraphiQL at http://127.0.0.1:8080/.
#
# Environment: CLUSTERGRAPH_LISTEN (default 127.0.0.1:8080); DEMO_KEEP=1
# leaves the clusters running on exit (the next demo then starts in seconds).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
log() { printf '[demo %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

cache=${CLUSTERGRAPH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/clustergraph}
export CLUSTERGRAPH_TESTBED_DIR=$cache/testbed/demo
listen=${CLUSTERGRAPH_LISTEN:-127.0.0.1:8080}

log "testbed binaries (cached; about 15 minutes the first time on a new machine)"
tools/testbed/build.sh >/dev/null
log "building clustergraph"
go build -o bin/clustergraph .

if [ "${DEMO_KEEP:-}" != 1 ]; then
  trap 'log "stopping demo clusters"; tools/testbed/cluster.sh down demo-east >/dev/null 2>&1; tools/testbed/cluster.sh down demo-west >/dev/null 2>&1' EXIT
fi
log "starting clusters demo-east (4 nodes) and demo-west (3 nodes)"
east=$(tools/testbed/cluster.sh up demo-east 4 | tail -n1)
west=$(tools/testbed/cluster.sh up demo-west 3 | tail -n1)
log "seeding both"
tools/testbed/seed.sh "$east" & a=$!
tools/testbed/seed.sh "$west" & b=$!
wait $a
wait $b

kubeconfig=$CLUSTERGRAPH_TESTBED_DIR/kubeconfig
KUBECONFIG="$east:$west" "$cache/testbed/bin/kubectl" config view --flatten >"$kubeconfig"
log "kubeconfig with both contexts: $kubeconfig"
log "GraphiQL: http://$listen/   (Ctrl-C stops the server and the clusters)"
cat >&2 <<'Q'
  Try:  { clusters { name status { state serverVersion } overview { kind total healthy } }
          workloads(kinds: [DEPLOYMENT]) { nodes { name namespace cluster { name } readyReplicas
            pods { nodes { name status node { name pool { name } } } } } } }
Q
cat >&2 <<Q
  Metering is sampled every 15s into SQLite ($CLUSTERGRAPH_TESTBED_DIR/data):
        { metering(timeUnit: HOUR) { nodes { cluster namespace cpu memory storage publicIp privateIp trafficIn trafficOut } } }
  Post an alert (Alertmanager's format or hypercloud's list) and query alerts:
        curl -d '[{"name":"frontend-0","alert":"CPU_noti","namespace":"shop","message":"cpu 90%","cluster":"kwok-demo-east"}]' http://$listen/alert
Q
# The demo runs without authentication so GraphiQL works at once; the
# server says so loudly. Real deployments authenticate every caller.
bin/clustergraph --kubeconfig "$kubeconfig" --listen "$listen" --insecure-disable-auth \
  --data-dir "$CLUSTERGRAPH_TESTBED_DIR/data" --metering-interval 15s \
  --traffic-source kubelet --traffic-path '/metrics/nodes/{node}/metrics/cadvisor'
