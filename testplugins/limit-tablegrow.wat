;; limit-tablegrow: see testplugins/README.md. Built to limit-tablegrow.wasm by scripts/wasm-build.sh.
;; A table declared without a maximum, grown by 100,000 entries at a time (20 times, 2M entries = 16 MB
;; if nothing stops it); the estimate is the table size reached.
(module
  (memory (export "memory") 1)
  (data (i32.const 0) "{\"name\":\"limit-tablegrow\",\"version\":\"1.0.0\",\"kind\":\"estimator\",\"tools\":[\"*\"]}\00")
  (table $t 1 funcref)
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
  (func (export "purser_estimate") (param i32 i32) (result i64)
    (local $i i32)
    (block $done (loop $grow
      (br_if $done (i32.ge_u (local.get $i) (i32.const 20)))
      (drop (table.grow $t (ref.null func) (i32.const 100000)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $grow)))
    (i64.store (i32.const 2056) (i64.extend_i32_u (table.size $t)))
    (i32.store (i32.const 2048) (i32.const 0))
    (i32.store (i32.const 2052) (i32.const 0))
    (i32.store (i32.const 2064) (i32.const 0))
    (i64.const 0x80000000014)) ;; 2048<<32 | 20
)
