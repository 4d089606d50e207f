#!/usr/bin/env bash
# test.sh is `make test`: it installs what is missing, checks generated code
# and formatting, starts two real clusters (kube-apiserver + kwok) seeded with
# the demo dataset, runs every Go test against them, and cleans up.
#
# Environment: GOTESTFLAGS adds flags to `go test` (e.g. -run TestPods -v).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
log() { printf '[test %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
start=$SECONDS

log "testbed binaries (cached by version; about 15 minutes on a cold machine)"
tools/testbed/build.sh >/dev/null
log "committed GraphiQL bundle is what graphiql/build.sh makes of the lockfile"
graphiql/build.sh --check >/dev/null
log "Helm, for the chart's tests (tools/charttest; cached by version, minutes on a cold machine)"
CLUSTERGRAPH_HELM=$(tools/helm.sh --path)
export CLUSTERGRAPH_HELM

log "generated code is up to date"
# Compare with the working tree (not HEAD), so this also holds mid-change.
snapshot() { find graph resolvers -type f -name '*.go' -print0 | sort -z | xargs -0 sha256sum; }
before=$(snapshot)
go generate ./...
if [ "$before" != "$(snapshot)" ]; then
  diff <(echo "$before") <(snapshot) >&2 || true
  log "go generate changed the files above: run 'make generate' and commit the result"
  exit 1
fi
log "relay-compiler over a Relay console's fragments (examples/relay)"
(cd examples/relay && npm ci --prefer-offline --no-audit --no-fund --loglevel=error && npm run compile --silent) >/dev/null
log "gofmt and go vet"
unformatted=$(gofmt -l $(git ls-files '*.go' | grep -v '^graph/generated.go$') || true)
if [ -n "$unformatted" ]; then
  log "not gofmt-formatted:"; echo "$unformatted" >&2; exit 1
fi
go vet ./...

# The browser tests (CORS from another origin, GraphiQL) drive Debian's
# headless Chromium.
if [ ! -x /usr/bin/chromium ]; then
  log "installing chromium from Debian"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null
fi

# Its own module (go-containerregistry stays out of the server's go.mod).
# -count=1: a cached pass must not stand in for building the image. Warm,
# about 15s (two builds); the first static -trimpath build of the server
# on a machine takes a few minutes more.
log "container image: make image twice, inspected (tools/image)"
(cd tools/image && go vet ./... && go test -count=1 ./...)

# shellcheck source=testbed/pair.sh
source tools/testbed/pair.sh
log "MariaDB for the storage tests (installed from Debian when missing)"
# A private server per run, in the run's work dir, so parallel runs never
# share (or stop) each other's.
export CLUSTERGRAPH_MARIADB_DIR="$CLUSTERGRAPH_TESTBED_DIR/mariadb" CLUSTERGRAPH_TEST_MYSQL_DSN
stop_all() { tools/testbed/mariadb.sh down >/dev/null 2>&1 || true; cleanup; }
trap stop_all EXIT
CLUSTERGRAPH_TEST_MYSQL_DSN=$(tools/testbed/mariadb.sh up | tail -n1)
# shellcheck disable=SC2086
go test -race -count=1 -timeout 30m ${GOTESTFLAGS:-} ./...
# A short fuzz run per target (each target's seeds already ran above, as
# tests). Minimizing an input of kilobytes takes longer than the run: 1s each.
# FUZZTIME lengthens them (e.g. FUZZTIME=5m make test).
log "short fuzz runs"
fuzz() { go test -run='^$' -fuzz="^$1\$" -fuzztime="${FUZZTIME:-$2}" -fuzzminimizetime=1s "$3"; }
fuzz FuzzQueryCost 10s ./api
fuzz FuzzWebsocketGuard 5s ./api
fuzz FuzzParseSelectors 10s ./k8s
fuzz FuzzFilter 10s ./k8s
fuzz FuzzParseID 5s ./k8s
fuzz FuzzIDRoundTrip 5s ./k8s
fuzz FuzzCursor 5s ./k8s
fuzz FuzzParseNodeID 5s ./graph/model
fuzz FuzzStoredIDRoundTrip 5s ./graph/model
fuzz FuzzParse 5s ./alerting
fuzz FuzzClusterSecretErrors 10s ./k8s

log "GraphiQL in a real browser (Debian's Chromium) against clustergraph on both clusters"
(cd graphiql && npm ci --prefer-offline --no-audit --no-fund >/dev/null)
go build -o bin/clustergraph .
# GraphiQL sends a real token, as a console user would: a service account
# of cg-a that is cluster-admin in both clusters.
k() { "$(tools/testbed/build.sh 2>/dev/null | tail -n1)/kubectl" "$@"; }
k --kubeconfig "$kc_a" -n default create serviceaccount graphiql-e2e >/dev/null
for kc in "$kc_a" "$kc_b"; do
  k --kubeconfig "$kc" create clusterrolebinding graphiql-e2e --clusterrole cluster-admin \
    --user system:serviceaccount:default:graphiql-e2e >/dev/null
done
token=$(k --kubeconfig "$kc_a" -n default create token graphiql-e2e)
port=18931
bin/clustergraph --kubeconfig "$kc_a:$kc_b" --listen "127.0.0.1:$port" --log-level warn &
server=$!
trap 'kill $server 2>/dev/null || true; stop_all' EXIT
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break
  sleep 0.2
done
node graphiql/e2e/check.mjs "http://127.0.0.1:$port/" --auth "Bearer $token" --screenshot "$CLUSTERGRAPH_TESTBED_DIR/graphiql.png" \
  --query '{ clusters { name status { state } } pods(filter: {namespace: "shop"}) { totalCount } }' \
  --result '"kwok-cg-a"' --result '"kwok-cg-b"' --result '"READY"' --result '"totalCount"' \
  --subscription 'subscription { watch(kind: "Pod", namespace: "ops") { type object { metadata { name } } } }' \
  --trigger "$(tools/testbed/build.sh 2>/dev/null | tail -n1)/kubectl --kubeconfig $kc_a -n ops run browser-sees-me --image=example/app:1" \
  --expect '"browser-sees-me"'
# The same server and token, from Node: the typed example client is
# generated from schema.graphqls and compiled (so a schema change that
# breaks it fails here), then pages a list, watches a pod it creates and
# types into a terminal in it. The codegen toolchain's packages declare
# Node >= 22 and npm warns about each; --loglevel=error keeps those out.
log "typed TypeScript client (examples/typescript-client): paging, a watch, a terminal"
(cd examples/typescript-client &&
  npm ci --prefer-offline --no-audit --no-fund --loglevel=error >/dev/null &&
  npm run build --silent &&
  CLUSTERGRAPH_TOKEN="$token" node dist/main.js --url "http://127.0.0.1:$port/")
log "all tests passed in $((SECONDS - start))s"
