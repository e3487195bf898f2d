#!/usr/bin/env bash
# Loopback load test of `purser serve` (see BENCHMARKS.md): an HTTP
# hello-world baseline, the in-memory store with the decision log on, the
# durable SQLite store; plus start-up time to /readyz and RSS after start.
# Usage: scripts/bench-server.sh [DURATION] [WORKERS]
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${1:-10s}
workers=${2:-16}
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
go build -o "$tmp/purser" ./cmd/purser

serve() { # store port
  "$tmp/purser" serve --store "$1" --addr "127.0.0.1:$2" --data-dir "$tmp/data-$1" >"$tmp/$1.log" 2>&1 &
  local pid=$! t0=$(date +%s%N)
  until curl -sf "http://127.0.0.1:$2/readyz" >/dev/null; do sleep 0.01; done
  local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  echo "$1: ready in ${ms} ms, RSS $(awk '/VmRSS/ {print $2/1024 " MiB"}' /proc/$pid/status)"
}

echo "== hello-world baseline"
"$tmp/purser" bench --hello --duration "$dur" --workers "$workers"
echo; echo "== warm the compilation cache, then time a warm start"
serve memory 18181; kill %1; wait %1 2>/dev/null || true
serve memory 18181
echo; echo "== in-memory store, decision log on, reserve+commit over 100 accounts"
"$tmp/purser" bench --addr 127.0.0.1:18181 --duration "$dur" --workers "$workers" --accounts 100
kill %2 2>/dev/null || true
echo; serve sqlite 18182
echo; echo "== SQLite store (synchronous=FULL), reserve+commit over 100 accounts"
"$tmp/purser" bench --addr 127.0.0.1:18182 --duration "$dur" --workers "$workers" --accounts 100
