;; iso-pastlen: see testplugins/README.md. Built to iso-pastlen.wasm by scripts/wasm-build.sh.
;; An estimator that reads past the end of its request (as a guest with a
;; NUL-terminator bug would): it prices a call at the number of non-zero
;; bytes in the 8 KiB after `len`, so any stale tail the host leaves in the
;; request buffer shows as a non-zero estimate.
(module
  (memory (export "memory") 2)
  ;; manifest at 0 (NUL-terminated), result record at 2048, request buffer at 4096
  (data (i32.const 0) "{\"name\":\"iso-pastlen\",\"version\":\"1.0.0\",\"kind\":\"estimator\",\"tools\":[\"*\"]}\00")
  (func $strlen (param $p i32) (result i32) (local $n i32)
    (block $done (loop $next
      (br_if $done (i32.eqz (i32.load8_u (i32.add (local.get $p) (local.get $n)))))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br $next)))
    (local.get $n))
  (func (export "purser_abi_version") (result i32) (i32.const 0x10000))
  (func (export "purser_alloc") (param $n i32) (result i32)
    (if (result i32) (i32.gt_u (local.get $n) (i32.const 100000)) (then (i32.const 0)) (else (i32.const 4096))))
  (func (export "purser_manifest") (result i64) (i64.extend_i32_u (call $strlen (i32.const 0))))
  (func (export "purser_estimate") (param $p i32) (param $n i32) (result i64) (local $i i32) (local $end i32) (local $c i64)
    (local.set $i (i32.add (local.get $p) (local.get $n)))
    (local.set $end (i32.add (local.get $i) (i32.const 8192)))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
      (if (i32.load8_u (local.get $i)) (then (local.set $c (i64.add (local.get $c) (i64.const 1)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (i32.store (i32.const 2048) (i32.const 0))
    (i32.store (i32.const 2052) (i32.const 0))
    (i64.store (i32.const 2056) (local.get $c))
    (i32.store (i32.const 2064) (i32.const 0))
    (i64.const 0x80000000014)))
