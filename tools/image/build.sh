#!/usr/bin/env bash
# build.sh is `make image` (the committed GraphiQL bundle is embedded in the
# binary, as in every build): it builds the static server binary and assembles the
# container image from it with tools/image (go-containerregistry), with no
# Docker engine and no base image pulled.
#
#   tools/image/build.sh [OUT]    OUT defaults to bin/clustergraph-image.tar
#
# Prints the image digest as the last line of stdout. The same commit, Go
# toolchain and CA bundle give the same digest: the binary is built with
# -trimpath and without the VCS stamp (version and commit are stamped with
# -ldflags, as `make build` stamps them), and every timestamp in the image is
# SOURCE_DATE_EPOCH, by default the commit's time.
#
# Environment: VERSION and COMMIT (the Makefile passes them; by default the
# same git commands it uses), SOURCE_DATE_EPOCH, GOARCH (the image's
# architecture; default the host's).
#
# The image tool is built from the Go module proxy at the version pinned in
# tools/image/go.mod and cached as tools/gotool.sh caches tools, keyed by
# that version and a hash of its source, in ~/.cache/clustergraph/tools/bin.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
out=${1:-bin/clustergraph-image.tar}
start=$SECONDS

log() { printf '[image %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# The CA bundle comes from Debian's ca-certificates package, installed when
# missing (as tools/testbed/mariadb.sh installs MariaDB).
ca=/etc/ssl/certs/ca-certificates.crt
ca_copyright=/usr/share/doc/ca-certificates/copyright
if [ ! -s "$ca" ]; then
  log "installing ca-certificates with apt"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq ca-certificates >&2 || { apt-get update -qq >&2 && apt-get install -y -qq ca-certificates >&2; }
  [ -s "$ca" ] || die "ca-certificates is installed but $ca is missing or empty"
fi
ca_version=$(dpkg-query -W -f='${Version}' ca-certificates 2>/dev/null || echo unknown)
[ -f "$ca_copyright" ] || ca_copyright=

ggcr_version=$(awk '{ for (i = 1; i < NF; i++) if ($i == "github.com/google/go-containerregistry") print $(i + 1) }' tools/image/go.mod)
[ -n "$ggcr_version" ] || die "tools/image/go.mod does not require github.com/google/go-containerregistry"
. tools/gotool.sh
bin="$tools_cache/tools/bin"
src_hash=$(cd tools/image && find . -maxdepth 1 \( -name '*.go' ! -name '*_test.go' -o -name go.mod -o -name go.sum \) -print0 |
  sort -z | xargs -0 cat | sha256sum | cut -c1-12)
tool="$bin/clustergraph-image-$ggcr_version-$src_hash"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ ! -x "$tool" ]; then
  log "building the image tool (go-containerregistry $ggcr_version from the module proxy; cached in $bin)"
  mkdir -p "$bin"
  # Its own module: the server's go.mod neither pins nor records it.
  (cd tools/image && CGO_ENABLED=0 GOFLAGS=-mod=readonly go build -trimpath -buildvcs=false -o "$work/image" .)
  mv "$work/image" "$tool"
fi

version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
commit=${COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || true)}
[ -n "$epoch" ] || die "no SOURCE_DATE_EPOCH and no git commit to take the time from"
module=$(go list -m)

log "building the server ($version, commit $commit): static, -trimpath, stripped"
# -buildvcs=false: the commit is stamped above; the toolchain's VCS stamp
# would add whether the tree is modified and its own view of the checkout.
# -s -w drop the symbol table and DWARF, which a debugger needs but stack
# traces and pprof do not (they use the runtime's own tables): the
# compressed layer is half the size (21 MB instead of 44 MB, measured).
# `make build` keeps them.
CGO_ENABLED=0 GOOS=linux go build -trimpath -buildvcs=false \
  -ldflags "-s -w -X main.version=$version -X main.commit=$commit" -o "$work/clustergraph" .

log "assembling the image"
"$tool" -binary "$work/clustergraph" -ca-certs "$ca" ${ca_copyright:+-ca-copyright "$ca_copyright"} \
  -license LICENSE -out "$out" -tag "clustergraph:$version" -created "$epoch" \
  -label "org.opencontainers.image.title=clustergraph" \
  -label "org.opencontainers.image.description=GraphQL server in front of Kubernetes clusters" \
  -label "org.opencontainers.image.source=https://$module" \
  -label "org.opencontainers.image.version=$version" \
  -label "org.opencontainers.image.revision=$commit" \
  -label "org.opencontainers.image.licenses=Apache-2.0" \
  -label "io.clustergraph.ca-certificates.version=$ca_version"
log "done in $((SECONDS - start))s"
