#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster on 127.0.0.1:<port> and keeps it alive only as long
# as the process that started this script (its parent) lives: then it stops the cluster
# and deletes its data. Prints "READY <url>" once the server accepts connections.
#
# Usage: scripts/throwaway-postgres.sh <port>
# Needs Debian's postgresql package (scripts/test.sh installs it when missing).
set -euo pipefail
port="$1"
watched="${WATCH_PID:-$PPID}"

bindir=""
for candidate in /usr/lib/postgresql/*/bin; do
  [ -x "$candidate/initdb" ] && bindir="$candidate"
done
if [ -z "$bindir" ]; then
  initdb_path=$(command -v initdb || true)
  [ -n "$initdb_path" ] || { echo "no initdb: install the postgresql package" >&2; exit 1; }
  bindir=$(dirname "$(readlink -f "$initdb_path")")
fi

data=$(mktemp -d /tmp/resident-auth-pg.XXXXXX)
# initdb and postgres refuse to run as root: use the postgres user when we are root.
run() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/sh postgres
  chown postgres "$data"
fi
run "$bindir/initdb" -D "$data/db" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$data/initdb.log" 2>&1 \
  || run "$bindir/initdb" -D "$data/db" -U postgres --auth=trust --encoding=UTF8 >"$data/initdb.log" 2>&1 \
  || { cat "$data/initdb.log" >&2; exit 1; }
run "$bindir/pg_ctl" -D "$data/db" -l "$data/server.log" -w -t 60 \
  -o "-p $port -c listen_addresses=127.0.0.1 -k $data -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off ${PG_EXTRA_OPTS:-}" \
  start >/dev/null || { cat "$data/server.log" >&2; exit 1; }

cleanup() {
  run "$bindir/pg_ctl" -D "$data/db" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$data"
}
trap cleanup EXIT INT TERM
echo "READY postgres://postgres@127.0.0.1:$port/postgres"
while kill -0 "$watched" 2>/dev/null; do sleep 1; done
