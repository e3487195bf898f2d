#!/usr/bin/env bash
# Rebuilds the shipped plugins' .wasm from source, reproducibly.
#
# Convention (the one testplugins/go uses, assumed until scripts/wasm-build.sh
# lands; `task wasm:build` is the canonical entry point): every plugin folder
# holding a `wasm.build` marker is built to <folder>/<folder name>.wasm.
#   Go   (a main package):  GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared
#                           -trimpath -buildvcs=false -ldflags='-s -w'
#   Rust (a lib.rs):        /usr/bin/rustc --target wasm32-unknown-unknown
#                           --crate-type cdylib -C opt-level=s -C panic=abort
#                           -C strip=symbols -C target-cpu=mvp
#                           --remap-path-prefix=<folder>=.
# Usage: plugins/build.sh [--check]   (--check rebuilds into a temp dir and
# fails if a committed .wasm differs from what its source builds to)
set -euo pipefail
cd "$(dirname "$0")"
RUSTC="${RUSTC:-/usr/bin/rustc}"
check=0
[ "${1:-}" = "--check" ] && check=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
for marker in $(find . -name wasm.build -not -path './internal/*' | sort); do
  dir=${marker%/wasm.build}
  name=$(basename "$dir")
  out="$dir/$name.wasm"
  [ $check = 1 ] && out="$tmp/$name.wasm"
  if [ -f "$dir/lib.rs" ]; then
    abs=$(cd "$dir" && pwd)
    "$RUSTC" --edition 2021 --target wasm32-unknown-unknown --crate-type cdylib \
      -C opt-level=s -C panic=abort -C strip=symbols -C target-cpu=mvp \
      --remap-path-prefix="$abs=." -o "$out" "$dir/lib.rs"
  else
    GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -buildvcs=false \
      -ldflags='-s -w' -o "$out" "$dir"
  fi
  if [ $check = 1 ]; then
    if cmp -s "$out" "$dir/$name.wasm"; then
      echo "ok       $dir/$name.wasm"
    else
      echo "MISMATCH $dir/$name.wasm differs from a fresh build of its source"; status=1
    fi
  else
    echo "built    $out ($(wc -c <"$out") bytes, sha256 $(sha256sum "$out" | cut -c1-12))"
  fi
done
exit $status
