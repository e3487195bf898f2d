#!/usr/bin/env bash
# pg-down.sh [--keep] [DIR]: stop the cluster scripts/pg-up.sh started in DIR
# (default $PURSER_PG_DIR or ${TMPDIR:-/tmp}/purser-pg) and delete DIR.
# Idempotent: nothing there is not an error. Only a folder holding a pg-up
# cluster (DIR/data/PG_VERSION) is deleted. With --keep the cluster is only
# stopped (an outage; scripts/pg-up.sh DIR starts it again on the same port).
set -euo pipefail

keep=""
if [ "${1:-}" = "--keep" ]; then keep=1; shift; fi

dir="${1:-${PURSER_PG_DIR:-${TMPDIR:-/tmp}/purser-pg}}"
if [ ! -d "$dir" ]; then
  echo "pg-down: $dir does not exist; nothing to stop" >&2
  exit 0
fi
data="$dir/data"
if [ ! -f "$data/PG_VERSION" ]; then
  if [ -z "$(ls -A "$dir")" ]; then rmdir "$dir"; exit 0; fi
  echo "pg-down: $dir holds no pg-up cluster ($data/PG_VERSION missing); not deleting it" >&2
  exit 1
fi
bindir="${PURSER_PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)}"
if [ "$(id -u)" = 0 ]; then
  as_owner() { runuser -u postgres -- "$@"; }
else
  as_owner() { "$@"; }
fi
if [ -n "$bindir" ] && as_owner "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
  echo "pg-down: stopping PostgreSQL in $data" >&2
  as_owner "$bindir/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null
fi
if [ -n "$keep" ]; then echo "pg-down: stopped; kept $dir" >&2; exit 0; fi
rm -rf "$dir"
echo "pg-down: removed $dir" >&2
