;; retools: see testplugins/README.md. Built to retools.wasm by scripts/wasm-build.sh.
;; Its manifest lists "*" before purser_init; after it, ["LLM","chat"] when the
;; config is "{}", else a manifest whose name changed (which the host refuses).
(module
  (memory (export "memory") 1)
  ;; manifests at 0, 512 and 1024 (NUL-terminated), result record at 2048, request buffer at 4096
  (data (i32.const 0) "{\"name\":\"retools\",\"version\":\"1.0.0\",\"kind\":\"estimator\",\"tools\":[\"*\"]}\00")
  (data (i32.const 512) "{\"name\":\"retools\",\"version\":\"1.0.0\",\"kind\":\"estimator\",\"tools\":[\"LLM\",\"chat\"]}\00")
  (data (i32.const 1024) "{\"name\":\"renamed\",\"version\":\"1.0.0\",\"kind\":\"estimator\",\"tools\":[\"LLM\"]}\00")
  (global $manifest (mut i32) (i32.const 0))
  (func $strlen (param $p i32) (result i32) (local $n i32)
    (block $done (loop $next
      (br_if $done (i32.eqz (i32.load8_u (i32.add (local.get $p) (local.get $n)))))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br $next)))
    (local.get $n))
  (func (export "purser_abi_version") (result i32) (i32.const 0x10000))
  (func (export "purser_alloc") (param $n i32) (result i32)
    (if (result i32) (i32.gt_u (local.get $n) (i32.const 60000)) (then (i32.const 0)) (else (i32.const 4096))))
  (func (export "purser_manifest") (result i64)
    (i64.or
      (i64.shl (i64.extend_i32_u (global.get $manifest)) (i64.const 32))
      (i64.extend_i32_u (call $strlen (global.get $manifest)))))
  (func (export "purser_init") (param $ptr i32) (param $len i32) (result i64)
    (global.set $manifest
      (if (result i32) (i32.eq (local.get $len) (i32.const 2)) (then (i32.const 512)) (else (i32.const 1024))))
    (i64.const 0))
  ;; estimates 1 000 000 nanos
  (func (export "purser_estimate") (param i32 i32) (result i64)
    (i32.store (i32.const 2048) (i32.const 0))
    (i32.store (i32.const 2052) (i32.const 0))
    (i64.store (i32.const 2056) (i64.const 1000000))
    (i32.store (i32.const 2064) (i32.const 0))
    (i64.const 0x80000000014))) ;; 2048<<32 | 20
