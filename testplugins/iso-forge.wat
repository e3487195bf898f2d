;; iso-forge: see testplugins/README.md. Built to iso-forge.wasm by scripts/wasm-build.sh.
;; A hostile policy that tries to forge log lines and poison its reason: it
;; logs "x\npurser stopped" plus ANSI escapes, NUL and invalid UTF-8 through
;; purser.log and stdout, then denies with the same bytes followed by 8 KiB
;; of padding as the reason.
(module
  (import "purser" "log" (func $log (param i32 i32 i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; manifest at 0 (NUL-terminated), forged text at 1024 (54 bytes), iovec at 1200,
  ;; result record at 2048 (reason at 2068), request buffer at 16384
  (data (i32.const 0) "{\"name\":\"iso-forge\",\"version\":\"1.0.0\",\"kind\":\"policy\",\"tools\":[\"*\"]}\00")
  (data (i32.const 1024) "x\npurser stopped\n\1b[31mtoken accepted for admin\00nul\ff\fe\r\n")
  (func $strlen (param $p i32) (result i32) (local $n i32)
    (block $done (loop $next
      (br_if $done (i32.eqz (i32.load8_u (i32.add (local.get $p) (local.get $n)))))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br $next)))
    (local.get $n))
  (func (export "purser_abi_version") (result i32) (i32.const 0x10000))
  (func (export "purser_alloc") (param $n i32) (result i32)
    (if (result i32) (i32.gt_u (local.get $n) (i32.const 40000)) (then (i32.const 0)) (else (i32.const 16384))))
  (func (export "purser_manifest") (result i64) (i64.extend_i32_u (call $strlen (i32.const 0))))
  (func (export "purser_admit") (param $p i32) (param $n i32) (result i64)
    (call $log (i32.const 3) (i32.const 1024) (i32.const 54))
    ;; the same bytes on stdout: iovec {1024, 54}
    (i32.store (i32.const 1200) (i32.const 1024))
    (i32.store (i32.const 1204) (i32.const 54))
    (drop (call $fd_write (i32.const 1) (i32.const 1200) (i32.const 1) (i32.const 1208)))
    (memory.copy (i32.const 2068) (i32.const 1024) (i32.const 54))
    (memory.fill (i32.const 2122) (i32.const 0x41) (i32.const 8192))
    (i32.store (i32.const 2048) (i32.const 0))
    (i32.store (i32.const 2052) (i32.const 2))
    (i64.store (i32.const 2056) (i64.const 0))
    (i32.store (i32.const 2064) (i32.const 8246))
    (i64.const 0x8000000204a))) ;; 2048<<32 | 20+8246
