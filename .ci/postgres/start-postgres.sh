#!/usr/bin/env bash
# Start (or restart) a throwaway PostgreSQL cluster on 127.0.0.1 for the `bench run --storage
# postgresql://...` tests (tests/test_postgres.py, tests/test_faults.py), then print the lines
#   export HPBENCH_PG_URL=postgresql://bench:<password>@127.0.0.1:<port>/hpbench
#   export HPBENCH_PG_DIR=<dir>
# for `eval "$(bash .ci/postgres/start-postgres.sh [DIR])"`. Installs nothing: needs Debian's
# postgresql-15 (or any /usr/lib/postgresql/*/bin). DIR (default /tmp/hpbench-pg) holds the data,
# the socket, the log and the URL; an existing DIR is started again with its data and port.
# As root, the server runs as the `postgres` user. Stop it with .ci/postgres/stop-postgres.sh DIR.
set -euo pipefail

DIR=${1:-/tmp/hpbench-pg}
BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$BIN/initdb" ] || { echo "start-postgres: no PostgreSQL server binaries under /usr/lib/postgresql" >&2; exit 1; }
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

mkdir -p "$DIR"
[ "$(id -u)" = 0 ] && chown postgres "$DIR"
if [ ! -s "$DIR/url" ]; then
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    password=$(python3 -c 'import secrets; print(secrets.token_hex(8))')
    as_pg sh -c "umask 077; echo '$password' > '$DIR/pwfile'"
    as_pg "$BIN/initdb" -D "$DIR/data" -U bench --pwfile="$DIR/pwfile" --auth-host=scram-sha-256 \
        --auth-local=trust >"$DIR/initdb.log" 2>&1 || { cat "$DIR/initdb.log" >&2; exit 1; }
    echo "postgresql://bench:$password@127.0.0.1:$port/hpbench" > "$DIR/url.tmp"
    echo "$port" > "$DIR/port"
fi
port=$(cat "$DIR/port")
if ! as_pg "$BIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; then
    as_pg "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $DIR" start >/dev/null \
        || { tail -20 "$DIR/server.log" >&2; exit 1; }
fi
if [ -s "$DIR/url.tmp" ]; then
    as_pg "$BIN/createdb" -h "$DIR" -p "$port" -U bench hpbench
    mv "$DIR/url.tmp" "$DIR/url"
fi
echo "export HPBENCH_PG_URL=$(cat "$DIR/url")"
echo "export HPBENCH_PG_DIR=$DIR"
