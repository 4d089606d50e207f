#!/usr/bin/env bash
# dev.sh keeps the seeded test clusters and a MariaDB running while you work,
# so single tests run in seconds instead of a whole `make test`:
#
#   tools/testbed/dev.sh ENVFILE &      # starts them; writes the exports to ENVFILE
#   source ENVFILE && go test -race -count=1 -run TestX ./api
#
# It runs until killed (then everything it started stops). Several dev
# testbeds (and a `make test`) may run at once: each has its own work dir.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
envfile=${1:?usage: dev.sh ENVFILE}
log() { printf '[dev %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
start=$SECONDS
tools/testbed/build.sh >/dev/null
# shellcheck source=pair.sh
source tools/testbed/pair.sh
export CLUSTERGRAPH_MARIADB_DIR="$CLUSTERGRAPH_TESTBED_DIR/mariadb"
stop_all() { tools/testbed/mariadb.sh down >/dev/null 2>&1 || true; cleanup; rm -f "$envfile"; }
trap stop_all EXIT
trap 'exit 0' INT TERM
dsn=$(tools/testbed/mariadb.sh up | tail -n1)
cat >"$envfile" <<EOF
export CLUSTERGRAPH_TESTBED_DIR='$CLUSTERGRAPH_TESTBED_DIR'
export CLUSTERGRAPH_TEST_KUBECONFIGS='$CLUSTERGRAPH_TEST_KUBECONFIGS'
export CLUSTERGRAPH_MARIADB_DIR='$CLUSTERGRAPH_MARIADB_DIR'
export CLUSTERGRAPH_TEST_MYSQL_DSN='$dsn'
EOF
log "ready: source $envfile"
while :; do sleep 3600 & wait $!; done
