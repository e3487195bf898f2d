;; wasi-iovecs: see testplugins/README.md. Built to wasi-iovecs.wasm by scripts/wasm-build.sh.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; manifest at 0 (NUL-terminated), result record at 2048, request buffer at 4096
  (data (i32.const 0) "{\"name\":\"wasi-iovecs\",\"version\":\"1.0.0\",\"kind\":\"estimator\",\"tools\":[\"*\"]}\00")
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
;; grows memory to 16 MiB (zeroed: 2 M empty iovecs at 65536), then writes them to stdout
;; 100 times: each fd_write is charged 2,000,000 x 16 units for its iovecs, more than the
;; default budget, so the first one fails
  (func (export "purser_estimate") (param i32 i32) (result i64)
    (local $i i32)
    (drop (memory.grow (i32.const 255)))
    (loop $write
      (drop (call $fd_write (i32.const 1) (i32.const 65536) (i32.const 2000000) (i32.const 2048)))
      (br_if $write (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const 100))))
    (i64.store (i32.const 2048) (i64.const 0))
    (i64.store (i32.const 2056) (i64.const 1000))
    (i32.store (i32.const 2064) (i32.const 0))
    (i64.const 0x80000000014)) ;; 2048<<32 | 20
)
