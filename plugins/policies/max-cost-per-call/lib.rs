//! max-cost-per-call: a purser admission policy written in Rust to show the
//! plugin ABI (abi/ABI.md) is not Go-only. It denies a call whose estimate
//! exceeds a configured limit:
//!
//!     config  {"limit_usd": "0.10"}
//!     deny    "Operation cost $0.15 exceeds limit $0.10"
//!
//! An estimate equal to the limit is allowed. `#![no_std]`, no allocator,
//! no crates: hand-written ABI glue over static buffers, built with
//! /usr/bin/rustc --target wasm32-unknown-unknown by scripts/wasm-build.sh
//! (extra flags in wasm.build).
//! Its only import is purser.log.
#![no_std]

use core::arch::wasm32;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    wasm32::unreachable()
}

#[link(wasm_import_module = "purser")]
extern "C" {
    #[link_name = "log"]
    fn host_log(level: i32, ptr: *const u8, len: i32);
}

const ABI_VERSION: i32 = 0x0001_0000; // 1.0

const MANIFEST: &[u8] = br#"{"abi":"1.0","name":"max-cost-per-call","version":"1.0.0","kind":"policy","tools":["*"],"description":"Denies a call whose estimate exceeds limit_usd: Operation cost $X exceeds limit $Y (an estimate equal to the limit is allowed).","config_schema":{"type":"object","additionalProperties":false,"required":["limit_usd"],"properties":{"limit_usd":{"type":"string","description":"largest allowed estimate per call, decimal USD such as \"0.10\""}}}}"#;

// Result status codes (ABI.md section 4).
const OK: u32 = 0;
const BAD_REQUEST: u32 = 2;
const BAD_CONFIG: u32 = 3;
const NOT_INITIALIZED: u32 = 6;
const ALLOW: u32 = 0;
const DENY: u32 = 2;
const LOG_INFO: i32 = 2;

// The instance's state. Wasm instances are single-threaded and the host
// never calls one concurrently, so plain statics are sound here.
static mut LIMIT_NANOS: i64 = -1; // -1 until purser_init succeeds
static mut BUF_PTR: usize = 0; // the buffer purser_alloc handed out
static mut BUF_CAP: usize = 0;
static mut OUT: [u8; 512] = [0; 512]; // the result record, reused
static mut TEXT: Text = Text { buf: [0; 480], len: 0 };

/// A fixed-capacity text builder (messages are short; overflow truncates).
struct Text {
    buf: [u8; 480],
    len: usize,
}

impl Text {
    fn clear(&mut self) {
        self.len = 0;
    }
    fn push(&mut self, s: &[u8]) {
        for &b in s {
            if self.len < self.buf.len() {
                self.buf[self.len] = b;
                self.len += 1;
            }
        }
    }
    fn push_usd(&mut self, nanos: i64) {
        let mut tmp = [0u8; 32];
        let n = format_usd(nanos, &mut tmp);
        self.push(&tmp[..n]);
    }
    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

fn pack(ptr: usize, len: usize) -> i64 {
    (((ptr as u64) << 32) | (len as u64)) as i64
}

/// Writes a result record into OUT and returns its packed pointer.
fn result(status: u32, verdict: u32, text: &[u8]) -> i64 {
    unsafe {
        let n = if text.len() > OUT.len() - 20 { OUT.len() - 20 } else { text.len() };
        OUT[0..4].copy_from_slice(&status.to_le_bytes());
        OUT[4..8].copy_from_slice(&verdict.to_le_bytes());
        OUT[8..16].copy_from_slice(&0i64.to_le_bytes());
        OUT[16..20].copy_from_slice(&(n as u32).to_le_bytes());
        OUT[20..20 + n].copy_from_slice(&text[..n]);
        pack(OUT.as_ptr() as usize, 20 + n)
    }
}

fn error(status: u32, msg: &[u8]) -> i64 {
    unsafe {
        TEXT.clear();
        TEXT.push(b"max-cost-per-call: ");
        TEXT.push(msg);
        result(status, ALLOW, TEXT.as_bytes())
    }
}

#[no_mangle]
pub extern "C" fn purser_abi_version() -> i32 {
    ABI_VERSION
}

#[no_mangle]
pub extern "C" fn purser_manifest() -> i64 {
    pack(MANIFEST.as_ptr() as usize, MANIFEST.len())
}

/// One growing buffer: new pages are taken with memory.grow only when a
/// request does not fit; they lie above everything Rust placed in memory.
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

/// The bytes the host wrote, if (ptr, len) lies inside our buffer.
fn input(ptr: i32, len: i32) -> Option<&'static [u8]> {
    unsafe {
        if len < 0 || (len > 0 && (BUF_PTR == 0 || ptr as usize != BUF_PTR || len as usize > BUF_CAP)) {
            return None;
        }
        if len == 0 {
            return Some(&[]);
        }
        Some(core::slice::from_raw_parts(BUF_PTR as *const u8, len as usize))
    }
}

#[no_mangle]
pub extern "C" fn purser_init(ptr: i32, len: i32) -> i64 {
    let cfg = match input(ptr, len) {
        Some(c) => c,
        None => return error(BAD_REQUEST, b"config is not inside the buffer purser_alloc returned"),
    };
    unsafe {
        LIMIT_NANOS = -1;
    }
    match parse_config(cfg) {
        Ok(limit) => unsafe {
            LIMIT_NANOS = limit;
            TEXT.clear();
            TEXT.push(b"max-cost-per-call: limit ");
            TEXT.push_usd(limit);
            host_log(LOG_INFO, TEXT.buf.as_ptr(), TEXT.len as i32);
            0
        },
        Err(msg) => {
            unsafe {
                TEXT.clear();
                TEXT.push(b"max-cost-per-call: ");
                TEXT.push(msg.0);
                TEXT.push(msg.1);
                TEXT.push(msg.2);
                result(BAD_CONFIG, ALLOW, TEXT.as_bytes())
            }
        }
    }
}

#[no_mangle]
pub extern "C" fn purser_admit(ptr: i32, len: i32) -> i64 {
    let req = match input(ptr, len) {
        Some(r) => r,
        None => return error(BAD_REQUEST, b"request is not inside the buffer purser_alloc returned"),
    };
    let limit = unsafe { LIMIT_NANOS };
    if limit < 0 {
        return error(NOT_INITIALIZED, b"called before a successful purser_init");
    }
    // Header: u16 header_len at 0 (>= 72), u8 kind at 2 (2 = admit),
    // i64 estimate_nanos at 8.
    if req.len() < 72 {
        return error(BAD_REQUEST, b"request shorter than the 72-byte header");
    }
    let header_len = u16::from_le_bytes([req[0], req[1]]) as usize;
    if header_len < 72 || header_len > req.len() {
        return error(BAD_REQUEST, b"request header_len out of range");
    }
    if req[2] != 2 {
        return error(BAD_REQUEST, b"not an admission request");
    }
    let mut est = [0u8; 8];
    est.copy_from_slice(&req[8..16]);
    let estimate = i64::from_le_bytes(est);
    if estimate <= limit {
        return result(OK, ALLOW, &[]);
    }
    unsafe {
        TEXT.clear();
        TEXT.push(b"Operation cost ");
        TEXT.push_usd(estimate);
        TEXT.push(b" exceeds limit ");
        TEXT.push_usd(limit);
        result(OK, DENY, TEXT.as_bytes())
    }
}

/// "$0.10", "$0.00875": at least two decimals, more when needed to be exact.
fn format_usd(nanos: i64, out: &mut [u8; 32]) -> usize {
    let mut n = 0;
    let neg = nanos < 0;
    let u = if neg { (nanos as i128).unsigned_abs() as u64 } else { nanos as u64 };
    if neg {
        out[n] = b'-';
        n += 1;
    }
    out[n] = b'$';
    n += 1;
    let (whole, mut frac) = (u / 1_000_000_000, u % 1_000_000_000);
    let mut digits = [0u8; 20];
    let mut d = 0;
    let mut w = whole;
    loop {
        digits[d] = b'0' + (w % 10) as u8;
        d += 1;
        w /= 10;
        if w == 0 {
            break;
        }
    }
    while d > 0 {
        d -= 1;
        out[n] = digits[d];
        n += 1;
    }
    out[n] = b'.';
    n += 1;
    let mut f = [b'0'; 9];
    let mut i = 9;
    while i > 0 {
        i -= 1;
        f[i] = b'0' + (frac % 10) as u8;
        frac /= 10;
    }
    let mut end = 9;
    while end > 2 && f[end - 1] == b'0' {
        end -= 1;
    }
    out[n..n + end].copy_from_slice(&f[..end]);
    n + end
}

/// An error message in up to three parts (static text around a field).
type Msg = (&'static [u8], &'static [u8], &'static [u8]);

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && (b[i] == b' ' || b[i] == b'\t' || b[i] == b'\n' || b[i] == b'\r') {
        i += 1;
    }
    i
}

/// Index just past the string starting at b[i] == '"'.
fn skip_string(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            b'"' => return Some(j + 1),
            _ => j += 1,
        }
    }
    None
}

/// Index just past the JSON value starting at b[i] (structure only).
fn skip_value(b: &[u8], i: usize) -> Option<usize> {
    if i >= b.len() {
        return None;
    }
    match b[i] {
        b'"' => skip_string(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            while j < b.len() {
                match b[j] {
                    b'"' => {
                        j = skip_string(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            None
        }
        _ => {
            let mut j = i;
            while j < b.len() && !matches!(b[j], b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                j += 1;
            }
            if j == i {
                None
            } else {
                Some(j)
            }
        }
    }
}

/// Reads {"limit_usd": "<decimal>"}; any other member is refused, like the
/// Go plugins' strict config decoding.
fn parse_config(b: &[u8]) -> Result<i64, Msg> {
    const MALFORMED: Msg = (b"config: malformed JSON", b"", b"");
    let mut i = skip_ws(b, 0);
    if i >= b.len() || b[i] != b'{' {
        return Err((b"config must be a JSON object", b"", b""));
    }
    i = skip_ws(b, i + 1);
    let mut limit: i64 = -1;
    if i < b.len() && b[i] == b'}' {
        i += 1;
    } else {
        loop {
            if i >= b.len() || b[i] != b'"' {
                return Err(MALFORMED);
            }
            let kend = skip_string(b, i).ok_or(MALFORMED)?;
            let key = &b[i + 1..kend - 1];
            i = skip_ws(b, kend);
            if i >= b.len() || b[i] != b':' {
                return Err(MALFORMED);
            }
            i = skip_ws(b, i + 1);
            let vend = skip_value(b, i).ok_or(MALFORMED)?;
            if key == b"limit_usd" {
                let v = &b[i..vend];
                if v.len() < 2 || v[0] != b'"' || v[1..].contains(&b'\\') {
                    return Err((b"limit_usd: want a decimal USD string such as \"0.10\"", b"", b""));
                }
                limit = parse_usd(&v[1..v.len() - 1]).map_err(|e| (b"limit_usd: " as &'static [u8], e, b"" as &'static [u8]))?;
            } else {
                return Err((b"config: unknown field (only limit_usd is accepted)", b"", b""));
            }
            i = skip_ws(b, vend);
            if i < b.len() && b[i] == b',' {
                i = skip_ws(b, i + 1);
                continue;
            }
            if i < b.len() && b[i] == b'}' {
                i += 1;
                break;
            }
            return Err(MALFORMED);
        }
    }
    if skip_ws(b, i) != b.len() {
        return Err((b"config: unexpected data after the JSON object", b"", b""));
    }
    if limit < 0 {
        return Err((b"limit_usd: required (a decimal USD string such as \"0.10\")", b"", b""));
    }
    Ok(limit)
}

/// Parses a non-negative decimal USD amount ("0.10", "$0.10", "1.5e-3")
/// into nano-USD; a fractional nano rounds up (as the host does).
fn parse_usd(s: &[u8]) -> Result<i64, &'static [u8]> {
    let mut s = s;
    while let [b' ', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' '] = s {
        s = rest;
    }
    if let [b'$', rest @ ..] = s {
        s = rest;
    }
    if let [b'+', rest @ ..] = s {
        s = rest;
    }
    if s.is_empty() {
        return Err(b"empty amount");
    }
    if s[0] == b'-' {
        return Err(b"negative amounts are not allowed");
    }
    if s.iter().any(|&c| !(c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))) {
        return Err(b"unexpected character (want a decimal such as 0.10)");
    }
    // Split mantissa and exponent.
    let mut exp: i64 = 0;
    let mut mant = s;
    if let Some(e) = s.iter().position(|&c| c == b'e' || c == b'E') {
        mant = &s[..e];
        let mut es = &s[e + 1..];
        let mut neg = false;
        if let [c @ (b'+' | b'-'), rest @ ..] = es {
            neg = *c == b'-';
            es = rest;
        }
        if es.is_empty() || es.len() > 3 {
            return Err(b"malformed exponent");
        }
        for &c in es {
            if !c.is_ascii_digit() {
                return Err(b"malformed exponent");
            }
            exp = exp * 10 + (c - b'0') as i64;
        }
        if neg {
            exp = -exp;
        }
    }
    let (int_part, frac_part) = match mant.iter().position(|&c| c == b'.') {
        Some(p) => (&mant[..p], &mant[p + 1..]),
        None => (mant, &mant[mant.len()..]),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return Err(b"no digits");
    }
    for &c in int_part.iter().chain(frac_part.iter()) {
        if !c.is_ascii_digit() {
            return Err(b"unexpected character (want a decimal such as 0.10)");
        }
    }
    // value = digits * 10^(exp - frac_len); nanos = value * 10^9.
    let shift = exp - frac_part.len() as i64 + 9;
    let mut v: i64 = 0;
    let mut round_up = false;
    let total = int_part.len() + frac_part.len();
    // Keep the first total+shift digits (when shift < 0); the rest only
    // decide rounding.
    let keep: i64 = total as i64 + if shift < 0 { shift } else { 0 };
    for (k, &c) in int_part.iter().chain(frac_part.iter()).enumerate() {
        let d = (c - b'0') as i64;
        if (k as i64) < keep {
            v = v.checked_mul(10).and_then(|x| x.checked_add(d)).ok_or(b"overflows int64 nano-USD" as &'static [u8])?;
        } else if d != 0 {
            round_up = true;
        }
    }
    if shift > 0 {
        for _ in 0..shift {
            if v == 0 {
                break;
            }
            v = v.checked_mul(10).ok_or(b"overflows int64 nano-USD" as &'static [u8])?;
        }
    }
    if round_up {
        v = v.checked_add(1).ok_or(b"overflows int64 nano-USD" as &'static [u8])?;
    }
    Ok(v)
}
