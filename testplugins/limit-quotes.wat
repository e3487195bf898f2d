;; limit-quotes: see testplugins/README.md. Built to limit-quotes.wasm by scripts/wasm-build.sh.
;; A "*" estimator that also names "Free": a 4-byte tool starting with H ("Huge") costs 2^63-1
;; nano-USD, every other tool $0 (right only for "Free", the one it names).
(module
  (memory (export "memory") 1)
  ;; manifest at 0 (NUL-terminated), result record at 2048, request buffer at 4096
  (data (i32.const 0) "{\"name\":\"limit-quotes\",\"version\":\"1.0.0\",\"kind\":\"estimator\",\"tools\":[\"*\",\"Free\"]}\00")
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
;; tool string: u32 length at ptr + header_len (u16 at ptr), bytes after it
  (func (export "purser_estimate") (param $p i32) (param $n i32) (result i64) (local $tool i32)
    (local.set $tool (i32.add (local.get $p) (i32.load16_u (local.get $p))))
    (i64.store (i32.const 2048) (i64.const 0))
    (i64.store (i32.const 2056)
      (if (result i64) (i32.and (i32.eq (i32.load (local.get $tool)) (i32.const 4))
                                (i32.eq (i32.load8_u (i32.add (local.get $tool) (i32.const 4))) (i32.const 72)))
        (then (i64.const 0x7fffffffffffffff)) (else (i64.const 0))))
    (i32.store (i32.const 2064) (i32.const 0))
    (i64.const 0x80000000014)) ;; 2048<<32 | 20
)
