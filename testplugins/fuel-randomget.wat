;; fuel-randomget: see testplugins/README.md. Built to fuel-randomget.wasm by scripts/wasm-build.sh.
(module
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; manifest at 0 (NUL-terminated), result record at 2048, request buffer at 4096
  (data (i32.const 0) "{\"name\":\"fuel-randomget\",\"version\":\"1.0.0\",\"kind\":\"estimator\",\"tools\":[\"*\"]}\00")
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
;; grows memory to 16 MiB, then asks WASI for 16 MB of random bytes 300 times (~10 ms each,
;; 2-3 s in all) and answers 1000 nanos: a host call costs one unit whatever its size, so on
;; the default costs it never reaches a refill; only the deadline can stop it
  (func (export "purser_estimate") (param i32 i32) (result i64)
    (local $i i32)
    (drop (memory.grow (i32.const 255)))
    (loop $fill
      (drop (call $random_get (i32.const 8192) (i32.const 16000000)))
      (br_if $fill (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const 300))))
    (i64.store (i32.const 2048) (i64.const 0))
    (i64.store (i32.const 2056) (i64.const 1000))
    (i32.store (i32.const 2064) (i32.const 0))
    (i64.const 0x80000000014)) ;; 2048<<32 | 20
)
