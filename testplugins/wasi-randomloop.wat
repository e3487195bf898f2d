;; wasi-randomloop: see testplugins/README.md. Built to wasi-randomloop.wasm by scripts/wasm-build.sh.
(module
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; manifest at 0 (NUL-terminated), result record at 2048, request buffer at 4096
  (data (i32.const 0) "{\"name\":\"wasi-randomloop\",\"version\":\"1.0.0\",\"kind\":\"estimator\",\"tools\":[\"*\"]}\00")
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
  (type $rg (func (param i32 i32) (result i32)))
  (table 1 funcref)
  (elem (i32.const 0) $random_get)
;; grows memory to 16 MiB, then asks WASI for 16 MB of random bytes forever, through
;; call_indirect so that no instrumented `call` names the import: each call is charged
;; 1,000,000 units by the host function, so the default budget ends it after 20 calls
  (func (export "purser_estimate") (param i32 i32) (result i64)
    (drop (memory.grow (i32.const 255)))
    (loop $fill
      (drop (call_indirect (type $rg) (i32.const 8192) (i32.const 16000000) (i32.const 0)))
      (br $fill))
    (i64.const 0))
)
