#!/usr/bin/env bash
# Start a throw-away PostgreSQL cluster on loopback for the test suite and print its URL.
# Usage: scripts/test-postgres.sh [DIR] [PORT]   (defaults: /tmp/missionwatch-pg, 54329)
#        scripts/test-postgres.sh --stop [DIR]    stop it
# Needs Debian's postgresql package (initdb and pg_ctl under /usr/lib/postgresql/*/bin).
set -euo pipefail
stop=0
if [ "${1:-}" = "--stop" ]; then stop=1; shift; fi
dir=${1:-/tmp/missionwatch-pg}
port=${2:-54329}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$bin" ]; then
  echo "PostgreSQL is not installed (apt-get install postgresql)" >&2
  exit 1
fi
as_pg() { if [ "$(id -u)" = 0 ]; then su postgres -s /bin/sh -c "$*"; else sh -c "$*"; fi; }
if [ $stop = 1 ]; then
  as_pg "'$bin/pg_ctl' -D '$dir' -m fast stop" >/dev/null
  exit 0
fi
if [ ! -f "$dir/PG_VERSION" ]; then
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres "$dir"
  as_pg "'$bin/initdb' -D '$dir' -A trust -U postgres --no-sync" >/dev/null
fi
if ! as_pg "'$bin/pg_ctl' -D '$dir' status" >/dev/null 2>&1; then
  as_pg "'$bin/pg_ctl' -D '$dir' -l '$dir/server.log' -w -o \"-p $port -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off\" start" >/dev/null
fi
echo "postgresql+psycopg://postgres@127.0.0.1:$port/postgres"
