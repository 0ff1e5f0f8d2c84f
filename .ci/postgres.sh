#!/usr/bin/env bash
# Start a throw-away PostgreSQL (Debian's packages) on 127.0.0.1:${PGPORT:-55432} with a `renkei_test`
# database, trust auth, data under ${PGDATA_DIR:-/tmp/renkei-pg}. Prints the SQLAlchemy URL.
set -euo pipefail
PGPORT=${PGPORT:-55432}
PGDATA_DIR=${PGDATA_DIR:-/tmp/renkei-pg}
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
if [ -z "$PGBIN" ]; then
  echo "PostgreSQL is not installed (apt-get install postgresql)" >&2
  exit 1
fi
as_pg() { if [ "$(id -u)" = 0 ]; then su postgres -s /bin/bash -c "$*"; else bash -c "$*"; fi; }
if ! as_pg "$PGBIN/pg_isready -q -h 127.0.0.1 -p $PGPORT"; then
  rm -rf "$PGDATA_DIR"; mkdir -p "$PGDATA_DIR"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$PGDATA_DIR"
  as_pg "$PGBIN/initdb -D $PGDATA_DIR -U postgres -A trust -E UTF8 --locale=C.UTF-8" >/dev/null
  as_pg "$PGBIN/pg_ctl -D $PGDATA_DIR -l $PGDATA_DIR/server.log -w -o '-h 127.0.0.1 -p $PGPORT -k /tmp' start" >/dev/null
fi
as_pg "$PGBIN/psql -h 127.0.0.1 -p $PGPORT -U postgres -tc \"select 1 from pg_database where datname='renkei_test'\"" | grep -q 1 \
  || as_pg "$PGBIN/psql -h 127.0.0.1 -p $PGPORT -U postgres -c 'create database renkei_test'" >/dev/null
echo "postgresql+psycopg2://postgres@127.0.0.1:$PGPORT/renkei_test"
