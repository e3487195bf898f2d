#!/usr/bin/env bash
# sdk/rust/check.sh: the Rust step of CI. Runs the SDK's tests and every
# Rust plugin's host tests, then rebuilds every Rust .wasm and compares it
# (and the sources wasm.sum recorded for it) with what is committed.
# With Go on PATH it also runs the examples' cases.yaml through
# `purser plugin test` (max-cost-per-call's run in cmd/purser's Go tests).
# Needs Debian's rustc 1.63 with the wasm32 std (apt: rustc
# libstd-rust-dev-wasm32 lld-14); cargo is optional. Always /usr/bin/rustc:
# another rustc on PATH may lack the wasm32 target or differ in output.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
RUSTC=/usr/bin/rustc
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

run_tests() { # name, source: build with --test and run
  "$RUSTC" --edition 2021 --test -o "$tmp/$1" "$2"
  "$tmp/$1" -q
}

echo "rust: SDK tests (rustc --test sdk/rust/src/lib.rs)" >&2
run_tests sdk sdk/rust/src/lib.rs
if [[ -x /usr/bin/cargo ]]; then
  echo "rust: SDK with Debian's cargo, offline (tests; wasm32 build, no std)" >&2
  (cd sdk/rust && RUSTC=$RUSTC CARGO_TARGET_DIR="$tmp/target" /usr/bin/cargo test --offline -q &&
    RUSTC=$RUSTC CARGO_TARGET_DIR="$tmp/target" /usr/bin/cargo build --offline -q --release --target wasm32-unknown-unknown)
fi

# Every Rust plugin directory (wasm.build beside lib.rs) with tests of its own.
while IFS= read -r marker; do
  dir=$(dirname "$marker")
  src=$dir/lib.rs
  [[ -f $src ]] || src=$dir/src/lib.rs
  [[ -f $src ]] && grep -q '#\[cfg(test)\]' "$src" || continue
  echo "rust: host tests of $dir" >&2
  run_tests "$(basename "$dir")" "$src"
done < <(find plugins testplugins -name wasm.build -type f | sort)

# The examples' expected results, through the real host (purser plugin test).
if command -v go >/dev/null; then
  go build -o "$tmp/purser" ./cmd/purser
  for cases in plugins/examples/rust-*/cases.yaml; do
    dir=$(dirname "$cases")
    echo "rust: purser plugin test $dir" >&2
    "$tmp/purser" plugin test "$dir/$(basename "$dir").wasm" --cases "$cases" >"$tmp/cases.out" || { cat "$tmp/cases.out"; exit 1; }
    tail -1 "$tmp/cases.out" >&2
  done
fi

echo "rust: rebuild every Rust .wasm and compare with wasm.sum" >&2
mkdir "$tmp/out"
bash scripts/wasm-build.sh --out "$tmp/out" --only rust
arts=$(cut -d' ' -f2 "$tmp/out/wasm.sum" | sort -u)
want=$(for a in $arts; do grep -E "^(src|out) $a " wasm.sum; done | sort -u)
if [[ "$want" != "$(sort -u "$tmp/out/wasm.sum")" ]]; then
  echo "rust: the committed Rust artifacts or their recorded sources differ from a rebuild (run scripts/wasm-build.sh):" >&2
  diff <(echo "$want") <(sort -u "$tmp/out/wasm.sum") >&2 || true
  exit 1
fi
for a in $arts; do cmp "$a" "$tmp/out/$a"; done
echo "rust: $(echo "$arts" | wc -w) artifacts rebuilt byte-identical" >&2
