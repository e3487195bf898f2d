//! llmchars: a Rust estimator for the fuel benchmarks (host/fuel_bench_test.go):
//! the LLM rule of llm-tokens' defaults, computed by scanning the request's
//! params JSON for "prompt" and counting its Unicode characters, so that a
//! non-Go guest does the same kind of work as the Go plugin: ceil(chars / 4)
//! tokens at $0.50 per million (500 nano-USD per token), at least $0.0001.
//! Only a string "prompt" is read (no messages); other tools are
//! "unsupported". `#![no_std]`, no allocator, no imports.
#![no_std]

use core::arch::wasm32;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    wasm32::unreachable()
}

const MANIFEST: &[u8] = br#"{"abi":"1.0","name":"llmchars","version":"1.0.0","kind":"estimator","tools":["LLM"],"description":"Counts the prompt's characters in the params JSON: ceil(chars/4) tokens at $0.50/M, at least $0.0001."}"#;

static mut BUF_PTR: usize = 0;
static mut BUF_CAP: usize = 0;
static mut OUT: [u8; 64] = [0; 64];

fn pack(ptr: usize, len: usize) -> i64 {
    ((ptr as i64) << 32) | len as i64
}

fn result(status: u32, nanos: i64, text: &[u8]) -> i64 {
    unsafe {
        let n = if text.len() > 44 { 44 } else { text.len() };
        OUT[0..4].copy_from_slice(&status.to_le_bytes());
        OUT[4..8].copy_from_slice(&0u32.to_le_bytes());
        OUT[8..16].copy_from_slice(&nanos.to_le_bytes());
        OUT[16..20].copy_from_slice(&(n as u32).to_le_bytes());
        OUT[20..20 + n].copy_from_slice(&text[..n]);
        pack(OUT.as_ptr() as usize, 20 + n)
    }
}

#[no_mangle]
pub extern "C" fn purser_abi_version() -> i32 {
    0x0001_0000
}

#[no_mangle]
pub extern "C" fn purser_manifest() -> i64 {
    pack(MANIFEST.as_ptr() as usize, MANIFEST.len())
}

#[no_mangle]
pub extern "C" fn purser_alloc(size: i32) -> i32 {
    if size < 0 {
        return 0;
    }
    let size = size as usize;
    unsafe {
        if BUF_PTR != 0 && size <= BUF_CAP {
            return BUF_PTR as i32;
        }
        let pages = if size == 0 { 1 } else { (size + 65535) / 65536 };
        let old = wasm32::memory_grow(0, pages);
        if old == usize::MAX {
            return 0;
        }
        BUF_PTR = old * 65536;
        BUF_CAP = pages * 65536;
        BUF_PTR as i32
    }
}

fn u32_at(b: &[u8], i: usize) -> Option<usize> {
    if i + 4 > b.len() {
        return None;
    }
    Some(u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]) as usize)
}

/// The i-th string of the request (ABI.md section 3).
fn string(req: &[u8], want: usize) -> Option<&[u8]> {
    let mut at = u16::from_le_bytes([req[0], req[1]]) as usize;
    for i in 0..=want {
        let n = u32_at(req, at)?;
        at += 4;
        if at + n > req.len() {
            return None;
        }
        if i == want {
            return Some(&req[at..at + n]);
        }
        at += n;
    }
    None
}

/// Characters of the "prompt" string value in canonical JSON, or None.
fn prompt_chars(params: &[u8]) -> Option<i64> {
    const KEY: &[u8] = b"\"prompt\":\"";
    let start = params.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let mut chars = 0i64;
    let mut i = start;
    while i < params.len() {
        match params[i] {
            b'"' => return Some(chars),
            b'\\' => {
                // \uXXXX is one character; any other escape is two bytes.
                i += if params.get(i + 1) == Some(&b'u') { 6 } else { 2 };
                chars += 1;
                continue;
            }
            c if c & 0xC0 != 0x80 => chars += 1, // not a UTF-8 continuation byte
            _ => {}
        }
        i += 1;
    }
    None
}

#[no_mangle]
pub extern "C" fn purser_estimate(ptr: i32, len: i32) -> i64 {
    let req = unsafe {
        if len < 72 || BUF_PTR == 0 || ptr as usize != BUF_PTR || len as usize > BUF_CAP {
            return result(2, 0, b"request is not inside the buffer");
        }
        core::slice::from_raw_parts(BUF_PTR as *const u8, len as usize)
    };
    match (string(req, 0), string(req, 4)) {
        (Some(b"LLM"), Some(params)) => match prompt_chars(params) {
            Some(chars) => {
                let nanos = (chars + 3) / 4 * 500;
                result(0, if nanos < 100_000 { 100_000 } else { nanos }, b"")
            }
            None => result(5, 0, b"no string prompt in params"),
        },
        (Some(_), Some(_)) => result(4, 0, b"llmchars prices only LLM"),
        _ => result(2, 0, b"malformed request strings"),
    }
}
