#!/usr/bin/env bash
# helm.sh runs Helm (the chart in charts/clustergraph is linted, rendered and
# tested with it): `tools/helm.sh lint charts/clustergraph`, say. Arguments go
# to helm as they are. `tools/helm.sh --path` prints the binary's path (after
# building it when missing) and runs nothing, for tests that exec it.
#
# Helm is built from the Go module proxy with `go install` (never a
# downloaded release binary) and cached by version, as tools/lint.sh caches
# golangci-lint and tools/testbed/build.sh the testbed: bumping
# HELM_VERSION builds the new one, and a later run starts at once. On 2
# shared cores the cold build takes a few minutes; its log goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."

HELM_VERSION=v4.3.2

log() { printf '[helm %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

cache=${CLUSTERGRAPH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/clustergraph}
bin="$cache/tools/bin"
helm="$bin/helm-$HELM_VERSION"
if [ ! -x "$helm" ]; then
  log "building helm $HELM_VERSION from the module proxy (cached in $bin)"
  mkdir -p "$bin"
  tmp=$(mktemp -d "$bin/.build.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  # Outside any module, so the project's go.mod neither pins nor records
  # it. Helm's own version stamp (helm version) comes from its ldflags,
  # which go install does not set: pass the version as the release build
  # does, so `helm version` names what was built.
  (cd "$tmp" && GOBIN="$tmp" GOFLAGS= CGO_ENABLED=0 go install \
    -ldflags "-X helm.sh/helm/v4/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v4/cmd/helm@$HELM_VERSION")
  # The rename is atomic: a concurrent run sees no binary or a whole one.
  mv "$tmp/helm" "$helm"
fi

if [ "${1:-}" = --path ]; then
  echo "$helm"
  exit 0
fi
# Helm keeps its caches and config under $HOME by default; the chart's
# tests need neither repositories nor plugins, so keep helm's state out of
# the user's helm directories unless they point it somewhere themselves.
export HELM_CACHE_HOME=${HELM_CACHE_HOME:-$cache/helm/cache}
export HELM_CONFIG_HOME=${HELM_CONFIG_HOME:-$cache/helm/config}
export HELM_DATA_HOME=${HELM_DATA_HOME:-$cache/helm/data}
exec "$helm" "$@"
