#!/usr/bin/env bash
# Starts a throwaway Redis on 127.0.0.1:<port> (no persistence) and keeps it alive only as
# long as the process that started this script (its parent, or WATCH_PID) lives. Prints
# "READY <url>" once the server answers.
#
# Usage: scripts/throwaway-redis.sh <port>
# Needs Debian's redis-server package (scripts/test.sh installs it when missing).
set -euo pipefail
port="$1"
watched="${WATCH_PID:-$PPID}"
command -v redis-server >/dev/null || { echo "no redis-server: install the redis-server package" >&2; exit 1; }
data=$(mktemp -d /tmp/resident-auth-redis.XXXXXX)
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$data" \
  --daemonize no --logfile "$data/server.log" &
server=$!
cleanup() { kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT INT TERM
for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  sleep 0.1
done
echo "READY redis://127.0.0.1:$port"
while kill -0 "$watched" 2>/dev/null && kill -0 "$server" 2>/dev/null; do sleep 1; done
