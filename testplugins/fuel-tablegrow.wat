;; fuel-tablegrow: see testplugins/README.md. Built to fuel-tablegrow.wasm by scripts/wasm-build.sh.
(module
  (memory (export "memory") 1)
  ;; manifest at 0 (NUL-terminated), result record at 2048, request buffer at 4096
  (data (i32.const 0) "{\"name\":\"fuel-tablegrow\",\"version\":\"1.0.0\",\"kind\":\"estimator\",\"tools\":[\"*\"]}\00")
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
  (table $t 0 funcref)
;; issue 12 hole 1: grows a table by 10 M entries at a time, forever (wazero allows 2^32-1)
  (func (export "purser_estimate") (param i32 i32) (result i64)
    (loop $grow
      (drop (table.grow $t (ref.null func) (i32.const 10000000)))
      (br $grow))
    (i64.const 0)))
