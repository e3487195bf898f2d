;; fuel-membulk: see testplugins/README.md. Built to fuel-membulk.wasm by scripts/wasm-build.sh.
(module
  (memory (export "memory") 1)
  ;; manifest at 0 (NUL-terminated), result record at 2048, request buffer at 4096
  (data (i32.const 0) "{\"name\":\"fuel-membulk\",\"version\":\"1.0.0\",\"kind\":\"estimator\",\"tools\":[\"*\"]}\00")
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
  (data $blob "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
;; memory bombs: grows memory as far as allowed, then fills and copies all of it and
;; re-initialises it from a passive data segment (256 bytes, repeated), forever
  (func (export "purser_estimate") (param i32 i32) (result i64)
    (local $bytes i32)
    (block $refused (loop $grow
      (br_if $refused (i32.eq (memory.grow (i32.const 16)) (i32.const -1)))
      (br $grow)))
    (local.set $bytes (i32.shl (memory.size) (i32.const 16)))
    (loop $bomb
      (memory.fill (i32.const 8192) (i32.const 7) (i32.sub (local.get $bytes) (i32.const 8192)))
      (memory.copy (i32.const 8192) (i32.const 8193) (i32.sub (local.get $bytes) (i32.const 8193)))
      (memory.init $blob (i32.const 8192) (i32.const 0) (i32.const 256))
      (br $bomb))
    (i64.const 0)))
