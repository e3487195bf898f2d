#!/usr/bin/env bash
# wasm-check.sh: rebuild every wasm artifact into a temporary directory and
# fail if any committed .wasm (or wasm.sum) differs from what its sources
# produce. See wasm-build.sh for the convention.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
cd "$ROOT"
"$ROOT/scripts/wasm-build.sh" --out "$TMP" 2>"$TMP/build.log" || { cat "$TMP/build.log" >&2; exit 1; }
grep SKIP "$TMP/build.log" >&2 || true
fail=0
while read -r kind art sum path; do
  [[ $kind == out ]] || continue
  if [[ ! -f $TMP/$art ]]; then continue; fi # skipped: toolchain missing
  if ! cmp -s "$TMP/$art" "$art"; then
    echo "wasm-check: $art differs from a rebuild of its sources; run scripts/wasm-build.sh and commit" >&2
    fail=1
  fi
done <"$TMP/wasm.sum"
if ! diff <(grep -v '^#' wasm.sum) "$TMP/wasm.sum" >"$TMP/sum.diff"; then
  echo "wasm-check: wasm.sum is stale; run scripts/wasm-build.sh and commit:" >&2
  cat "$TMP/sum.diff" >&2
  fail=1
fi
[[ $fail == 0 ]] && echo "wasm-check: all artifacts match their sources" >&2
exit $fail
