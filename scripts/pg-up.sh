#!/usr/bin/env bash
# pg-up.sh [DIR]: start a throwaway PostgreSQL cluster for purser's tests and
# benchmarks, using Debian's postgresql binaries (apt-get install postgresql).
#
#   eval "$(scripts/pg-up.sh)"        # exports PURSER_TEST_POSTGRES_DSN
#   go test ./store/postgres/ ./cmd/purser/
#   scripts/pg-down.sh                # stop it and delete the folder
#
# DIR defaults to $PURSER_PG_DIR or ${TMPDIR:-/tmp}/purser-pg. The cluster
# listens on 127.0.0.1 only, on a free port, with trust authentication for
# the local "postgres" user, and has a database named "purser". Idempotent:
# run it again and it prints the DSN of the running cluster (starting it
# again if it was stopped). stdout carries only the export line; progress
# goes to stderr. The DSN is also written to DIR/dsn.
#
# As root, the cluster is owned by the "postgres" system user (initdb refuses
# to run as root); otherwise by the current user.
set -euo pipefail

dir="${1:-${PURSER_PG_DIR:-${TMPDIR:-/tmp}/purser-pg}}"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
data="$dir/data"
log="$dir/postgres.log"

bindir="${PURSER_PG_BINDIR:-}"
if [ -z "$bindir" ]; then
  bindir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)"
fi
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
  echo "pg-up: no PostgreSQL server binaries found under /usr/lib/postgresql/*/bin;" >&2
  echo "pg-up: install them with: apt-get update && apt-get install -y postgresql (or set PURSER_PG_BINDIR)" >&2
  exit 1
fi

# run CMD... as the cluster owner.
if [ "$(id -u)" = 0 ]; then
  owner=postgres
  id "$owner" >/dev/null 2>&1 || { echo "pg-up: running as root needs a 'postgres' system user (the postgresql package creates it)" >&2; exit 1; }
  chown "$owner" "$dir"
  as_owner() { runuser -u "$owner" -- "$@"; }
else
  as_owner() { "$@"; }
fi

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pick_port() {
  local p tries=0
  while [ $tries -lt 200 ]; do
    p=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
    if ! port_in_use "$p"; then echo "$p"; return 0; fi
    tries=$((tries + 1))
  done
  echo "pg-up: no free port found" >&2
  return 1
}

running() { as_owner "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; }

if [ ! -f "$data/PG_VERSION" ]; then
  echo "pg-up: creating cluster in $data ($bindir)" >&2
  as_owner "$bindir/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
    { cat "$dir/initdb.log" >&2; exit 1; }
  cat >>"$data/postgresql.conf" <<CONF
# purser test cluster (scripts/pg-up.sh)
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
max_connections = 300
shared_buffers = 128MB
log_min_messages = warning
log_lock_waits = off
CONF
fi

if ! running; then
  for attempt in 1 2 3 4 5; do
    port=""
    # Restarting: keep the previous port (and so the DSN) when it is free.
    if [ "$attempt" = 1 ] && [ -f "$dir/port" ] && ! port_in_use "$(cat "$dir/port")"; then port=$(cat "$dir/port"); fi
    [ -n "$port" ] || port=$(pick_port)
    echo "pg-up: starting PostgreSQL on 127.0.0.1:$port" >&2
    if as_owner "$bindir/pg_ctl" -D "$data" -l "$log" -w -t 60 -o "-p $port" start >/dev/null 2>&1; then
      echo "$port" >"$dir/port"
      break
    fi
    echo "pg-up: start on port $port failed (attempt $attempt); last log lines:" >&2
    tail -n 5 "$log" >&2 || true
    [ "$attempt" = 5 ] && exit 1
  done
fi

port="$(cat "$dir/port")"
psql=("$bindir/psql" -h 127.0.0.1 -p "$port" -U postgres -X -q -v ON_ERROR_STOP=1)
for _ in $(seq 1 50); do
  "${psql[@]}" -d postgres -c 'SELECT 1' >/dev/null 2>&1 && break
  sleep 0.1
done
if [ "$("${psql[@]}" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'purser'")" != 1 ]; then
  "${psql[@]}" -d postgres -c 'CREATE DATABASE purser' >/dev/null
fi

dsn="postgres://postgres@127.0.0.1:$port/purser?sslmode=disable"
echo "$dsn" >"$dir/dsn"
echo "pg-up: ready: $dsn (stop with scripts/pg-down.sh${1:+ $1})" >&2
echo "export PURSER_TEST_POSTGRES_DSN='$dsn'"
