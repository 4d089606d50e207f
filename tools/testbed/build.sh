#!/usr/bin/env bash
# build.sh builds the testbed binaries (kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl, etcd, kwok, kwokctl, metrics-server) from the Go module proxy
# and caches them by version, so a second run on the same machine is instant.
#
# Prints the directory holding the binaries on its last line of stdout.
# Progress goes to stderr. A cold build takes about 15 minutes on 2 cores.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

cache=${CLUSTERGRAPH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/clustergraph}
bin="$cache/testbed/bin"
mkdir -p "$bin" "$cache/testbed/stamps"
export GOFLAGS=-mod=mod

log() { printf '[testbed %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# have NAME VERSION: true when the cached binary was built from VERSION.
have() { [ -x "$bin/$1" ] && [ "$(cat "$cache/testbed/stamps/$1" 2>/dev/null)" = "$2" ]; }
stamp() { echo "$2" >"$cache/testbed/stamps/$1"; }

build_kubernetes() {
  local need=()
  for n in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    have "$n" "$KUBERNETES_VERSION+ldflags" || need+=("$n")
  done
  [ ${#need[@]} -eq 0 ] && return 0
  log "building ${need[*]} $KUBERNETES_VERSION (about 12 minutes cold)"
  local mod="$cache/testbed/mod-kubernetes-$KUBERNETES_VERSION"
  mkdir -p "$mod"
  # The staging modules are the "=> ./staging/..." lines of k8s.io/kubernetes'
  # own go.mod; each is replaced with its published version.
  local staging=(api apiextensions-apiserver apimachinery apiserver cli-runtime client-go
    cloud-provider cluster-bootstrap code-generator component-base component-helpers
    controller-manager cri-api cri-client cri-streaming csi-translation-lib
    dynamic-resource-allocation endpointslice externaljwt kms kube-aggregator
    kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics mount-utils
    pod-security-admission sample-apiserver sample-cli-plugin sample-controller streaming)
  {
    echo "module clustergraph.local/testbed/kubernetes"
    echo
    echo "go 1.26"
    echo
    echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
    echo
    for s in "${staging[@]}"; do
      echo "replace k8s.io/$s => k8s.io/$s $KUBERNETES_STAGING_VERSION"
    done
  } >"$mod/go.mod"
  for n in "${need[@]}"; do
    log "go build $n"
    # A build from the module proxy has no git metadata; stamp the version
    # so /version and kubectl version report it (clusters show it in the API).
    local minor=${KUBERNETES_VERSION#v1.}
    minor=${minor%%.*}
    local vpkg=k8s.io/component-base/version
    (cd "$mod" && go build -trimpath -ldflags "-X $vpkg.gitVersion=$KUBERNETES_VERSION -X $vpkg.gitMajor=1 -X $vpkg.gitMinor=$minor -X $vpkg.gitTreeState=clean" \
      -o "$bin/$n.tmp" "k8s.io/kubernetes/cmd/$n")
    mv "$bin/$n.tmp" "$bin/$n"
    stamp "$n" "$KUBERNETES_VERSION+ldflags"
  done
}

build_etcd() {
  have etcd "$ETCD_VERSION" && return 0
  log "building etcd $ETCD_VERSION (about 1 minute cold)"
  local mod="$cache/testbed/mod-etcd-$ETCD_VERSION"
  mkdir -p "$mod"
  printf 'module clustergraph.local/testbed/etcd\n\ngo 1.26\n\nrequire go.etcd.io/etcd/server/v3 %s\n' \
    "$ETCD_VERSION" >"$mod/go.mod"
  (cd "$mod" && go build -trimpath -o "$bin/etcd.tmp" go.etcd.io/etcd/server/v3)
  mv "$bin/etcd.tmp" "$bin/etcd"
  stamp etcd "$ETCD_VERSION"
}

# install NAME PACKAGE VERSION: a plain go install of a published command.
install() {
  have "$1" "$3" && return 0
  log "installing $1 $3"
  GOFLAGS= GOBIN="$bin" go install "$2@$3"
  stamp "$1" "$3"
}

build_sources() {
  # kwokctl needs the metrics-server manifests and kwok's metric configs from
  # the module sources; download them so the cluster script can find them.
  GOFLAGS= go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" "sigs.k8s.io/metrics-server@$METRICS_SERVER_VERSION" >/dev/null
}

case "${1:-all}" in
  all)
    build_etcd
    install kwok sigs.k8s.io/kwok/cmd/kwok "$KWOK_VERSION"
    install kwokctl sigs.k8s.io/kwok/cmd/kwokctl "$KWOK_VERSION"
    install metrics-server sigs.k8s.io/metrics-server/cmd/metrics-server "$METRICS_SERVER_VERSION"
    build_kubernetes
    build_sources
    ;;
  *) echo "usage: $0 [all]" >&2; exit 2 ;;
esac
log "binaries ready in $bin"
echo "$bin"
