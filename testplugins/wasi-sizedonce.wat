;; wasi-sizedonce: see testplugins/README.md. Built to wasi-sizedonce.wasm by scripts/wasm-build.sh.
(module
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; manifest at 0 (NUL-terminated), result record at 2048, request buffer at 4096
  (data (i32.const 0) "{\"name\":\"wasi-sizedonce\",\"version\":\"1.0.0\",\"kind\":\"estimator\",\"tools\":[\"*\"]}\00")
  (func $strlen (param $p i32) (result i32) (local $n i32)
    (block $done (loop $next
      (br_if $done (i32.eqz (i32.load8_u (i32.add (local.get $p) (local.get $n)))))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br $next)))
    (local.get $n))
  (func (export "purser_abi_version") (result i32) (i32.const 0x10000))
  (func (export "purser_alloc") (param $n i32) (result i32)
    (if (result i32) (i32.gt_u (local.get $n) (i32.const 60000)) (then (i32.const 0)) (else (i32.const 4096))))
  (func (export "purser_manifest") (result i64) (i64.extend_i32_u (call $strlen (i32.const 0))))
  ;; three iovecs of 10, 20 and 30 bytes at 12288, all over the 30 bytes at 20480
  (data (i32.const 12288) "\00\50\00\00\0a\00\00\00\00\50\00\00\14\00\00\00\00\50\00\00\1e\00\00\00")
  (data (i32.const 20480) "sized-write-sized-write-sized-")
;; one random_get of 4096 bytes and one fd_write of 3 iovecs (60 bytes) to stdout,
;; straight-line: 20 instructions, plus (default costs) 4096/16 bytes + 3 x 16 per
;; iovec + 60/16 bytes (rounded down) = 327 units per call (TestWASISizedCallsChargeTheirSize)
  (func (export "purser_estimate") (param i32 i32) (result i64)
    (drop (call $random_get (i32.const 8192) (i32.const 4096)))
    (drop (call $fd_write (i32.const 1) (i32.const 12288) (i32.const 3) (i32.const 12352)))
    (i64.store (i32.const 2048) (i64.const 0))
    (i64.store (i32.const 2056) (i64.const 1000))
    (i32.store (i32.const 2064) (i32.const 0))
    (i64.const 0x80000000014)) ;; 2048<<32 | 20
)
