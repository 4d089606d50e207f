#!/usr/bin/env bash
# helm.sh runs Helm (the chart in charts/clustergraph is linted, rendered and
# tested with it): `tools/helm.sh lint charts/clustergraph`, say. Arguments go
# to helm as they are. `tools/helm.sh --path` prints the binary's path (after
# building it when missing) and runs nothing, for tests that exec it.
#
# Helm is built from the Go module proxy and cached by version (see
# tools/gotool.sh). On 2 shared cores the cold build takes a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

HELM_VERSION=v4.3.2

. tools/gotool.sh
# Helm's own version stamp (helm version) comes from its ldflags, which go
# install does not set: pass the version as the release build does, so
# `helm version` names what was built.
helm=$(gotool helm "helm.sh/helm/v4/cmd/helm@$HELM_VERSION" \
  -ldflags "-X helm.sh/helm/v4/internal/version.version=$HELM_VERSION")

if [ "${1:-}" = --path ]; then
  echo "$helm"
  exit 0
fi
# Helm keeps its caches and config under $HOME by default; the chart's
# tests need neither repositories nor plugins, so keep helm's state out of
# the user's helm directories unless they point it somewhere themselves.
export HELM_CACHE_HOME=${HELM_CACHE_HOME:-$tools_cache/helm/cache}
export HELM_CONFIG_HOME=${HELM_CONFIG_HOME:-$tools_cache/helm/config}
export HELM_DATA_HOME=${HELM_DATA_HOME:-$tools_cache/helm/data}
exec "$helm" "$@"
