;; fuel-bulkonce: see testplugins/README.md. Built to fuel-bulkonce.wasm by scripts/wasm-build.sh.
(module
  (memory (export "memory") 1)
  ;; manifest at 0 (NUL-terminated), result record at 2048, request buffer at 4096
  (data (i32.const 0) "{\"name\":\"fuel-bulkonce\",\"version\":\"1.0.0\",\"kind\":\"estimator\",\"tools\":[\"*\"]}\00")
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
  (data $blob "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
;; each bulk operation once, straight-line: 41 instructions, plus (default costs)
;; 2 pages x 16,384 + (4096 + 1000 + 256)/16 bytes (rounded down each) + 100 elements
;; grown x 16 + 100 + 50 + 8 elements written = 34,901 units per call
;; (TestFuelBulkOperationsChargeTheirSize)
  (func (export "purser_estimate") (param i32 i32) (result i64)
    (drop (memory.grow (i32.const 2)))
    (memory.fill (i32.const 8192) (i32.const 1) (i32.const 4096))
    (memory.copy (i32.const 16384) (i32.const 8192) (i32.const 1000))
    (memory.init $blob (i32.const 32768) (i32.const 0) (i32.const 256))
    (drop (table.grow $t (ref.null func) (i32.const 100)))
    (table.fill $t (i32.const 0) (ref.null func) (i32.const 100))
    (table.copy $t $t (i32.const 0) (i32.const 50) (i32.const 50))
    (table.init $t $e (i32.const 0) (i32.const 0) (i32.const 8))
    (i64.store (i32.const 2048) (i64.const 0))
    (i64.store (i32.const 2056) (i64.const 1000))
    (i32.store (i32.const 2064) (i32.const 0))
    (i64.const 0x80000000014)) ;; 2048<<32 | 20
)
