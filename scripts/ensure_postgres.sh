#!/usr/bin/env bash
# Print the URL of a PostgreSQL the tests may use, starting one if needed.
#
# On this project's machines PostgreSQL runs at 127.0.0.1:5432 (trust auth, database `test`): use it.
# Elsewhere, start a private cluster (initdb + pg_ctl as the `postgres` user, data under /tmp, a free
# port, never the shared :5432), installing Debian's server package first if it is missing.
set -euo pipefail

SHARED_URL="postgresql://postgres@127.0.0.1:5432/test"
if command -v psql >/dev/null && psql "$SHARED_URL" -Atqc 'SELECT 1' >/dev/null 2>&1; then
    echo "$SHARED_URL"
    exit 0
fi

PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$PGBIN" ] && ! command -v initdb >/dev/null; then
    SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)
    $SUDO apt-get update -qq >&2 && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
    PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
fi
PATH="${PGBIN:+$PGBIN:}$PATH"

AS_PG=()
if [ "$(id -u)" = 0 ]; then AS_PG=(runuser -u postgres --); fi
DATA=/tmp/dreamreel-test-pg
PORT_FILE=$DATA.port
if [ -f "$PORT_FILE" ] && psql "postgresql://postgres@127.0.0.1:$(cat "$PORT_FILE")/test" -Atqc 'SELECT 1' >/dev/null 2>&1; then
    echo "postgresql://postgres@127.0.0.1:$(cat "$PORT_FILE")/test"
    exit 0
fi
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
rm -rf "$DATA"
mkdir -p "$DATA"
[ "$(id -u)" = 0 ] && chown postgres "$DATA"
"${AS_PG[@]}" initdb -D "$DATA" -U postgres -A trust >&2
"${AS_PG[@]}" pg_ctl -D "$DATA" -l "$DATA/server.log" -w \
    -o "-p $PORT -c listen_addresses=127.0.0.1 -k $DATA" start >&2
psql "postgresql://postgres@127.0.0.1:$PORT/postgres" -qc 'CREATE DATABASE test' >&2
echo "$PORT" > "$PORT_FILE"
echo "postgresql://postgres@127.0.0.1:$PORT/test"
