;; fuel-tablecopy: see testplugins/README.md. Built to fuel-tablecopy.wasm by scripts/wasm-build.sh.
(module
  (memory (export "memory") 1)
  ;; manifest at 0 (NUL-terminated), result record at 2048, request buffer at 4096
  (data (i32.const 0) "{\"name\":\"fuel-tablecopy\",\"version\":\"1.0.0\",\"kind\":\"estimator\",\"tools\":[\"*\"]}\00")
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
  (elem $e func $strlen $strlen $strlen $strlen $strlen $strlen $strlen $strlen)
;; grows a table to 32 Ki entries (under the default table_elements_max), then copies its halves onto each other and initialises
;; it from a passive element segment, forever
  (func (export "purser_estimate") (param i32 i32) (result i64)
    (drop (table.grow $t (ref.null func) (i32.const 32768)))
    (loop $copy
      (table.copy $t $t (i32.const 0) (i32.const 16384) (i32.const 16384))
      (table.init $t $e (i32.const 0) (i32.const 0) (i32.const 8))
      (br $copy))
    (i64.const 0)))
