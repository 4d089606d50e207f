#!/usr/bin/env bash
# mariadb.sh runs a private MariaDB server for tests and the demo, on its own
# data dir, socket and TCP port, so nothing touches a system database.
#
#   mariadb.sh up     install mariadb-server via apt if missing, start the server
#                     (reused if already running), create database "clustergraph";
#                     prints the DSN as the last line of stdout
#   mariadb.sh dsn    print the DSN of the running server
#   mariadb.sh stop   stop the server, keeping its data and port (up starts it again)
#   mariadb.sh down   stop the server and delete its data dir
#
# The DSN is for gorm.io/driver/mysql (go-sql-driver/mysql):
#   clustergraph:clustergraph@tcp(127.0.0.1:PORT)/clustergraph?charset=utf8mb4&parseTime=True&loc=UTC
# The user may create other databases (tests can make one each).
set -euo pipefail

cache=${CLUSTERGRAPH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/clustergraph}
dir=${CLUSTERGRAPH_MARIADB_DIR:-$cache/testbed/mariadb}
sock="$dir/mysqld.sock"
user=clustergraph password=clustergraph db=clustergraph

log() { printf '[mariadb %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

running() { [ -S "$sock" ] && mariadb-admin --no-defaults --socket="$sock" -uroot ping >/dev/null 2>&1; }
dsn() { echo "$user:$password@tcp(127.0.0.1:$(cat "$dir/port"))/$db?charset=utf8mb4&parseTime=True&loc=UTC"; }
as_root() { mariadb --no-defaults --socket="$sock" -uroot; }

# free_port: the first free TCP port from 13306 up (or $CLUSTERGRAPH_MARIADB_PORT).
# Below 32768 on purpose: kwokctl takes ports counting down from 32767, and the
# kernel's ephemeral ports start at 32768.
free_port() {
  if [ -n "${CLUSTERGRAPH_MARIADB_PORT:-}" ]; then echo "$CLUSTERGRAPH_MARIADB_PORT"; return; fi
  local p
  for p in $(seq 13306 13400); do
    ss -Htln "sport = :$p" | grep -q . || { echo "$p"; return; }
  done
  die "no free port in 13306-13400"
}

up() {
  if ! command -v mariadbd >/dev/null; then
    log "installing mariadb-server with apt"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq mariadb-server >&2 || { apt-get update -qq >&2 && apt-get install -y -qq mariadb-server >&2; }
  fi
  # Debian's package may start a system server; it is left alone (other socket and port).
  if running; then
    log "already running in $dir"
    dsn
    return
  fi
  mkdir -p "$dir"
  if [ ! -d "$dir/data/mysql" ]; then
    log "initialising $dir/data"
    # normal root authentication: root@localhost with an empty password, usable
    # over the private socket by any OS user (not only OS root via unix_socket).
    mariadb-install-db --no-defaults --datadir="$dir/data" --user="$(id -un)" \
      --auth-root-authentication-method=normal --skip-test-db >"$dir/install.log" 2>&1 ||
      { cat "$dir/install.log" >&2; die "mariadb-install-db failed"; }
  fi
  # Keep the port of an earlier start (so a DSN stays valid across stop/up).
  if ! [ -s "$dir/port" ] || ss -Htln "sport = :$(cat "$dir/port")" | grep -q .; then
    free_port >"$dir/port"
  fi
  log "starting mariadbd on 127.0.0.1:$(cat "$dir/port")"
  # setsid: the server outlives this script and its terminal.
  setsid mariadbd --no-defaults --datadir="$dir/data" --socket="$sock" \
    --port="$(cat "$dir/port")" --bind-address=127.0.0.1 --user="$(id -un)" \
    --pid-file="$dir/mysqld.pid" --log-error="$dir/error.log" \
    --innodb-buffer-pool-size=64M --skip-log-bin \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
    </dev/null >/dev/null 2>&1 &
  local i
  for i in $(seq 60); do
    running && break
    [ "$i" = 60 ] && { tail -20 "$dir/error.log" >&2; die "mariadbd did not start in 30s"; }
    sleep 0.5
  done
  as_root <<EOF
CREATE DATABASE IF NOT EXISTS \`$db\`;
CREATE USER IF NOT EXISTS '$user'@'127.0.0.1' IDENTIFIED BY '$password';
CREATE USER IF NOT EXISTS '$user'@'localhost' IDENTIFIED BY '$password';
GRANT ALL PRIVILEGES ON *.* TO '$user'@'127.0.0.1';
GRANT ALL PRIVILEGES ON *.* TO '$user'@'localhost';
EOF
  log "ready"
  dsn
}

stop() {
  if running; then
    log "stopping mariadbd"
    mariadb-admin --no-defaults --socket="$sock" -uroot shutdown
  elif [ -f "$dir/mysqld.pid" ] && kill -0 "$(cat "$dir/mysqld.pid")" 2>/dev/null; then
    log "mariadbd does not answer; sending TERM to pid $(cat "$dir/mysqld.pid")"
    kill "$(cat "$dir/mysqld.pid")"
  fi
  local i
  for i in $(seq 60); do
    if ! { [ -f "$dir/mysqld.pid" ] && kill -0 "$(cat "$dir/mysqld.pid")" 2>/dev/null; }; then break; fi
    sleep 0.5
  done
}

down() {
  stop
  rm -rf "$dir"
  log "stopped and removed $dir"
}

case "${1:-}" in
  up) up ;;
  stop) stop ;;
  down) down ;;
  dsn) running || die "not running; use: $0 up"; dsn ;;
  *) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
