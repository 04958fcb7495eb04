#!/usr/bin/env bash
# Stop the PostgreSQL cluster of .ci/postgres/start-postgres.sh DIR (fast shutdown: open
# connections are cut, as when a database server goes away). PG_CLEAN=1 also deletes DIR.
set -uo pipefail

DIR=${1:-/tmp/hpbench-pg}
BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

if [ -d "$DIR/data" ]; then
    as_pg "$BIN/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null 2>&1 || true
fi
if [ "${PG_CLEAN:-0}" = 1 ]; then
    rm -rf "$DIR"
fi
