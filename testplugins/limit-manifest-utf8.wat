;; limit-manifest-utf8: see testplugins/README.md. Built to limit-manifest-utf8.wasm by scripts/wasm-build.sh.
;; Its manifest's description holds the byte 0xff, which is not UTF-8.
(module
  (memory (export "memory") 1)
  ;; manifest at 0 (NUL-terminated), result record at 2048, request buffer at 4096
  (data (i32.const 0) "{\"name\":\"limit-manifest-utf8\",\"version\":\"1.0.0\",\"kind\":\"estimator\",\"tools\":[\"*\"],\"description\":\"caf\ff\"}\00")
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
;; trivial estimator: every call costs 1_000_000 nanos ($0.001)
  (func (export "purser_estimate") (param i32 i32) (result i64)
    (i64.store (i32.const 2048) (i64.const 0))
    (i64.store (i32.const 2056) (i64.const 1000000))
    (i32.store (i32.const 2064) (i32.const 0))
    (i64.const 0x80000000014)) ;; 2048<<32 | 20
)
