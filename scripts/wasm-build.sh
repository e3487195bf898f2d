#!/usr/bin/env bash
# wasm-build.sh: build every WebAssembly artifact in the repo, reproducibly,
# and record their checksums in wasm.sum.
#
# Convention (under testplugins/, plugins/ and sdk/):
#   1. Every foo.wat becomes the sibling foo.wasm (wat2wasm; apt: wabt).
#   2. Every directory containing a file named `wasm.build` becomes
#      <dir>/<basename of dir>.wasm. The language is detected:
#        Go             *.go files (package main, //go:build wasip1,
#                       //go:wasmexport). Built in the dir with
#                       GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared
#                       -trimpath -buildvcs=false -ldflags=-s (standard Go;
#                       works from the main module or a nested go.mod).
#        Rust           lib.rs or src/lib.rs. Built with Debian's
#                       /usr/bin/rustc --target wasm32-unknown-unknown
#                       --crate-type cdylib -C opt-level=s (apt: rustc
#                       libstd-rust-dev-wasm32 lld-14), no cargo, no crates;
#                       a plugin may include the Rust SDK with #[path]
#                       (every .rs file the build reads is recorded).
#        AssemblyScript assembly/index.ts. Built with `npx --no-install asc`
#                       (npm: assemblyscript); skipped with a message when
#                       asc is not installed. The sources recorded include
#                       the AssemblyScript SDK and its package-lock.json
#                       (the compiler's pin).
#      Non-comment lines of wasm.build are appended to the compiler's
#      command line (e.g. `--runtime stub` for asc, `-C panic=abort` for
#      rustc, `-tags foo` for go build).
#   3. wasm.sum (repo root) lists, per artifact, the sha256 of each source
#      file and of the .wasm, one line each:
#        src <artifact.wasm> <sha256> <source path>
#        out <artifact.wasm> <sha256> <artifact.wasm>
#      Go sources are the non-standard-library .go files the build uses
#      (so editing abi/ or an SDK requires a rebuild). A Go test
#      (host/wasmsum_test.go) re-hashes them without any toolchain, so a
#      source edited without rebuilding fails `go test ./...`;
#      scripts/wasm-check.sh rebuilds everything and compares bytes.
#
# Reproducibility: paths are trimmed/remapped, no build ids or VCS stamps;
# Go output depends on the Go toolchain version (go.mod's go line).
#
# Usage: scripts/wasm-build.sh [--out DIR [--only rust]]
#   --out DIR    write artifacts under DIR (mirroring repo paths) and do not
#                touch the repo or wasm.sum (used by wasm-check.sh).
#   --only rust  with --out: build only the Rust artifacts (sdk/rust/check.sh
#                compares them with the committed ones; needs no wat2wasm or Go).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="" ONLY=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --out) OUT="$(cd "$2" && pwd)"; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    *) echo "usage: scripts/wasm-build.sh [--out DIR [--only rust]]" >&2; exit 2 ;;
  esac
done
if [[ -n $ONLY && ( $ONLY != rust || -z $OUT ) ]]; then echo "wasm-build: --only takes rust, and needs --out" >&2; exit 2; fi
cd "$ROOT"
export LC_ALL=C GOFLAGS=-buildvcs=false CGO_ENABLED=0

TREES=()
for t in testplugins plugins sdk; do [[ -d $t ]] && TREES+=("$t"); done
SUM="$(mktemp)"
trap 'rm -f "$SUM"' EXIT

dest() { # artifact path -> where to write it
  if [[ -n $OUT ]]; then mkdir -p "$OUT/$(dirname "$1")"; echo "$OUT/$1"; else echo "$ROOT/$1"; fi
}
hash() { sha256sum "$1" | cut -d' ' -f1; }
record_src() { echo "src $1 $(hash "$2") $2" >>"$SUM"; }
record_out() { echo "out $1 $(hash "$(dest "$1")") $1" >>"$SUM"; }
extra_flags() { grep -v '^[[:space:]]*#' "$1/wasm.build" | tr '\n' ' ' || true; }
keep_previous() { # toolchain missing: keep the committed artifact and its sums
  echo "wasm-build: SKIP $1: $2; keeping the committed artifact" >&2
  [[ -f wasm.sum ]] && grep " $1 " wasm.sum >>"$SUM" || true
}

need() { command -v "$1" >/dev/null || { echo "wasm-build: $1 not found ($2)" >&2; exit 1; }; }
if [[ -z $ONLY ]]; then
  need wat2wasm "apt-get install -y wabt"
  need go "the Go toolchain"
fi

# 1. WAT
while [[ -z $ONLY ]] && IFS= read -r wat; do
  art="${wat%.wat}.wasm"
  wat2wasm "$wat" -o "$(dest "$art")"
  record_src "$art" "$wat"
  record_out "$art"
  echo "wasm-build: $art" >&2
done < <(find "${TREES[@]}" -name node_modules -prune -o -name '*.wat' -type f -print | sort)

# 2. directories with wasm.build
build_go() {
  local dir=$1 art=$2 flags
  flags=$(extra_flags "$dir")
  # shellcheck disable=SC2086
  (cd "$dir" && GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -ldflags=-s $flags -o "$(dest "$art")" .)
  record_src "$art" "$dir/wasm.build"
  local pkgdir files f
  while read -r pkgdir files; do
    for f in $files; do
      f="$pkgdir/$f"
      [[ $f == "$ROOT"/* ]] && record_src "$art" "${f#"$ROOT"/}"
    done
  done < <(cd "$dir" && GOOS=wasip1 GOARCH=wasm go list -deps -f '{{if not .Standard}}{{.Dir}} {{join .GoFiles " "}}{{end}}' . | grep -v '^$')
  record_out "$art"
}

build_rust() {
  local dir=$1 art=$2 src=lib.rs flags
  [[ -f $dir/lib.rs ]] || src=src/lib.rs
  if [[ ! -x /usr/bin/rustc ]] || [[ -z $(ls /usr/lib/rustlib/wasm32-unknown-unknown/lib 2>/dev/null) ]]; then
    keep_previous "$art" "Debian rustc with wasm32 std not installed (apt-get install -y rustc libstd-rust-dev-wasm32 lld-14)"
    return
  fi
  flags=$(extra_flags "$dir")
  # dep-info lists every source the build read, including files outside
  # $dir that the plugin includes (the Rust SDK, sdk/rust/src/purser.rs).
  local deps
  deps=$(mktemp)
  # shellcheck disable=SC2086
  (cd "$dir" && /usr/bin/rustc --target wasm32-unknown-unknown --crate-type cdylib --edition 2021 \
    -C opt-level=s -C debuginfo=0 -C strip=symbols --remap-path-prefix="$ROOT=." \
    $flags --emit=link="$(dest "$art")",dep-info="$deps" "$src")
  record_src "$art" "$dir/wasm.build"
  while IFS= read -r f; do record_src "$art" "$f"; done < <(
    cd "$dir" && sed -n 's/^\(.*\.rs\):$/\1/p' "$deps" | while IFS= read -r f; do realpath --relative-to="$ROOT" "$f"; done | sort -u)
  rm -f "$deps"
  record_out "$art"
}

build_as() {
  local dir=$1 art=$2 flags
  if ! (cd "$dir" && npx --no-install asc --version >/dev/null 2>&1); then
    keep_previous "$art" "AssemblyScript compiler (npx asc) not installed (npm install assemblyscript)"
    return
  fi
  flags=$(extra_flags "$dir")
  # shellcheck disable=SC2086
  (cd "$dir" && npx --no-install asc assembly/index.ts -O3 $flags -o "$(dest "$art")")
  record_src "$art" "$dir/wasm.build"
  while IFS= read -r f; do record_src "$art" "$f"; done < <(find "$dir/assembly" -name '*.ts' -type f | sort; for f in package.json asconfig.json; do [[ -f $dir/$f ]] && echo "$dir/$f"; done
    find sdk/assemblyscript/assembly -name '*.ts' -type f | sort; echo sdk/assemblyscript/package-lock.json)
  record_out "$art"
}

while IFS= read -r marker; do
  dir=$(dirname "$marker")
  art="$dir/$(basename "$dir").wasm"
  if compgen -G "$dir/*.go" >/dev/null; then [[ -n $ONLY ]] && continue; build_go "$dir" "$art"
  elif [[ -f $dir/lib.rs || -f $dir/src/lib.rs ]]; then build_rust "$dir" "$art"
  elif [[ -n $ONLY ]]; then continue
  elif [[ -f $dir/assembly/index.ts ]]; then build_as "$dir" "$art"
  else echo "wasm-build: $dir has wasm.build but no Go, Rust (lib.rs) or AssemblyScript (assembly/index.ts) sources" >&2; exit 1
  fi
  echo "wasm-build: $art" >&2
done < <(find "${TREES[@]}" -name node_modules -prune -o -name wasm.build -type f -print | sort)

if [[ -z $OUT ]]; then
  { echo "# wasm.sum: written by scripts/wasm-build.sh; checked by scripts/wasm-check.sh and host/wasmsum_test.go"
    sort -u "$SUM"; } >wasm.sum
  echo "wasm-build: wrote wasm.sum" >&2
else
  sort -u "$SUM" >"$OUT/wasm.sum"
fi
