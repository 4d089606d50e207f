# gotool.sh is sourced by the scripts that run a tool built from the Go
# module proxy (tools/lint.sh, tools/helm.sh): never a downloaded release
# binary. `gotool NAME PACKAGE@VERSION [go install flags]` prints the path
# of the tool's binary, cached by version in ~/.cache/clustergraph/tools/bin
# (or $CLUSTERGRAPH_CACHE/tools/bin), after building it when missing: bumping
# the version builds the new one, and a later run starts at once. The
# build's log goes to stderr.

# tools_cache is clustergraph's cache directory.
tools_cache=${CLUSTERGRAPH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/clustergraph}

gotool() {
  local name=$1 pkg=$2
  shift 2
  local version=${pkg##*@} bin="$tools_cache/tools/bin"
  local out="$bin/$name-$version"
  if [ ! -x "$out" ]; then
    printf '[%s %s] building %s %s from the module proxy (cached in %s)\n' "$name" "$(date +%H:%M:%S)" "$name" "$version" "$bin" >&2
    mkdir -p "$bin"
    local tmp
    tmp=$(mktemp -d "$bin/.build.XXXXXX")
    # Outside any module, so the project's go.mod neither pins nor records
    # it; static, as release builds are.
    if ! (cd "$tmp" && GOBIN="$tmp" GOFLAGS= CGO_ENABLED=0 go install "$@" "$pkg"); then
      rm -rf "$tmp"
      return 1
    fi
    # The rename is atomic: a concurrent run sees no binary or a whole one.
    mv "$tmp/$name" "$out"
    rm -rf "$tmp"
  fi
  echo "$out"
}
