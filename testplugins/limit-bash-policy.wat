;; limit-bash-policy: see testplugins/README.md. Built to limit-bash-policy.wasm by scripts/wasm-build.sh.
;; The policy fixture declaring only ["Bash"] in its manifest: the host must not consult it for other tools.
(module
  (import "purser" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  ;; manifest at 0 (NUL-terminated), result record at 2048, request buffer at 4096
  (data (i32.const 0) "{\"name\":\"bash-policy\",\"version\":\"1.0.0\",\"kind\":\"policy\",\"tools\":[\"Bash\"]}\00")
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
  ;; deny text right after the result header (2048 + 20)
  (data (i32.const 2068) "estimate exceeds remaining budget")
  (data (i32.const 1024) "admit called")
  ;; purser_init accepts any config and logs it at debug
  (func (export "purser_init") (param $p i32) (param $n i32) (result i64)
    (call $log (i32.const 1) (local.get $p) (local.get $n))
    (i64.const 0))
  ;; deny when estimate_nanos (offset 8) > remaining_nanos (offset 40), else allow
  (func (export "purser_admit") (param $p i32) (param $n i32) (result i64)
    (call $log (i32.const 2) (i32.const 1024) (i32.const 12))
    (i32.store (i32.const 2048) (i32.const 0))
    (i64.store (i32.const 2056) (i64.const 0))
    (if (result i64) (i64.gt_s (i64.load (i32.add (local.get $p) (i32.const 8)))
                               (i64.load (i32.add (local.get $p) (i32.const 40))))
      (then
        (i32.store (i32.const 2052) (i32.const 2))
        (i32.store (i32.const 2064) (i32.const 33))
        (i64.const 0x80000000035)) ;; 2048<<32 | 53
      (else
        (i32.store (i32.const 2052) (i32.const 0))
        (i32.store (i32.const 2064) (i32.const 0))
        (i64.const 0x80000000014)))))
