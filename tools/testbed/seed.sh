#!/usr/bin/env bash
# seed.sh KUBECONFIG [CONTEXT] loads the demo/test dataset (tools/testbed/seed/*.yaml)
# into a cluster made by cluster.sh and waits until it has settled:
#   - labels the nodes (needs at least 3): the first one becomes a tainted
#     control-plane node, the others workers; all get a nodepool label
#     (apps.openyurt.io/nodepool=pool-a|pool-b);
#   - applies namespaces shop, data, ops with Deployments, a StatefulSet with
#     bound PVCs, a DaemonSet, a completed Job, a CronJob (and one Job started
#     from it), Services, Ingresses, ConfigMaps and Secrets;
#   - waits for Deployments Available, StatefulSet/DaemonSet rolled out, Jobs Complete.
# Safe to run again (kubectl apply; the manual Job is created only once).
# Progress goes to stderr.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ $# -lt 1 ] || [ $# -gt 2 ]; then echo "usage: $0 KUBECONFIG [CONTEXT]" >&2; exit 2; fi
kubeconfig=$1
context=${2:-}

cache=${CLUSTERGRAPH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/clustergraph}
kubectl_bin="$cache/testbed/bin/kubectl"
[ -x "$kubectl_bin" ] || kubectl_bin=$(command -v kubectl) || { echo "no kubectl; run build.sh" >&2; exit 1; }
timeout=${SEED_TIMEOUT:-120s}

log() { printf '[seed %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
k() { "$kubectl_bin" --kubeconfig "$kubeconfig" ${context:+--context "$context"} "$@"; }
start=$SECONDS

log "waiting for nodes to be Ready"
k wait --for=condition=Ready node --all --timeout="$timeout" >/dev/null
mapfile -t nodes < <(k get nodes -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}' | sort)
[ ${#nodes[@]} -ge 3 ] || { log "need at least 3 nodes, found ${#nodes[@]}"; exit 1; }

# Node roles and pools. The control-plane taint keeps ordinary pods off the
# first node, as on a real cluster; the DaemonSet tolerates it.
log "labelling ${#nodes[@]} nodes"
for i in "${!nodes[@]}"; do
  n=${nodes[$i]}
  if [ "$i" -eq 0 ]; then
    k label node "$n" --overwrite node-role.kubernetes.io/control-plane= apps.openyurt.io/nodepool=pool-a >/dev/null
    k taint node "$n" --overwrite node-role.kubernetes.io/control-plane:NoSchedule >/dev/null
  else
    if [ $((i % 2)) -eq 1 ]; then pool="pool-a"; else pool="pool-b"; fi
    k label node "$n" --overwrite node-role.kubernetes.io/worker= apps.openyurt.io/nodepool=$pool >/dev/null
  fi
done

log "applying $here/seed"
k apply -f "$here/seed" >&2

log "waiting for workloads (timeout $timeout each)"
for ns in shop data ops; do
  k -n "$ns" wait --for=condition=Available deployment --all --timeout="$timeout" >&2
done
k -n data rollout status statefulset/postgres --timeout="$timeout" >&2
k -n ops rollout status daemonset/node-exporter --timeout="$timeout" >&2
k -n data wait --for=condition=Complete job/db-migrate --timeout="$timeout" >&2

# A Job started by hand from the CronJob (it is owned by the CronJob), so the
# CronJob -> Job -> Pod chain exists without waiting for the schedule.
if ! k -n ops get job/log-cleanup-manual >/dev/null 2>&1; then
  k -n ops create job log-cleanup-manual --from=cronjob/log-cleanup >&2
fi
k -n ops wait --for=condition=Complete job/log-cleanup-manual --timeout="$timeout" >&2

count=0
for ns in shop data ops; do
  count=$((count + $(k -n "$ns" get pods --no-headers | wc -l)))
done
log "seeded in $((SECONDS - start))s: $count pods in shop, data and ops"
