//! purser guest SDK for Rust: the whole plugin ABI (abi/ABI.md) in one file,
//! `no_std`, no allocator, no crates. A plugin implements [`Plugin`] plus
//! [`Policy`] or [`Estimator`], declares its manifest with [`manifest!`] and
//! exports itself with [`export_policy!`] or [`export_estimator!`]. The same
//! logic runs on the host target through [`testing`] (plain `rustc --test`
//! or `cargo test`), via the same request and result encodings the host uses.
//!
//! Built with bare rustc (scripts/wasm-build.sh), a plugin includes this file
//! as its crate-root module `purser` (the macros refer to `crate::purser`):
//! `#[macro_use] #[path = ".../sdk/rust/src/purser.rs"] mod purser;`.
#![allow(dead_code)]

/// `purser_abi_version` values (`major << 16 | minor`).
pub const ABI_1_0: i32 = 0x0001_0000;
pub const ABI_1_1: i32 = 0x0001_0001;

/// The longest reason or message a result carries; the host cuts at 1 KiB.
pub const TEXT_MAX: usize = 1024;

/// An ABI status code (section 4).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Code(pub u32);

impl Code {
    pub const OK: Code = Code(0);
    pub const INTERNAL: Code = Code(1);
    pub const BAD_REQUEST: Code = Code(2);
    pub const BAD_CONFIG: Code = Code(3);
    pub const UNSUPPORTED: Code = Code(4);
    pub const BAD_PARAMS: Code = Code(5);
    pub const NOT_INITIALIZED: Code = Code(6);

    /// The ABI name (`bad_config`), or `plugin-defined`.
    pub fn name(self) -> &'static str {
        match self.0 {
            0 => "ok",
            1 => "internal",
            2 => "bad_request",
            3 => "bad_config",
            4 => "unsupported",
            5 => "bad_params",
            6 => "not_initialized",
            _ => "plugin-defined",
        }
    }
}

// ---------------------------------------------------------------- text

/// A fixed-capacity UTF-8 text (reasons, messages, log lines). Pushing past
/// [`TEXT_MAX`] truncates at a character boundary, as the host would cut.
#[derive(Clone)]
pub struct Text {
    buf: [u8; TEXT_MAX],
    len: usize,
}

impl Text {
    pub const fn new() -> Text {
        Text { buf: [0; TEXT_MAX], len: 0 }
    }
    pub fn from(s: &str) -> Text {
        let mut t = Text::new();
        t.push(s);
        t
    }
    pub fn clear(&mut self) {
        self.len = 0;
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Appends s, cut at the last character boundary that fits.
    pub fn push(&mut self, s: &str) -> &mut Text {
        let room = TEXT_MAX - self.len;
        let mut n = s.len().min(room);
        while n > 0 && !s.is_char_boundary(n) {
            n -= 1;
        }
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        self
    }
    /// "$0.10", "$0.00875": [`usd::format`].
    pub fn push_usd(&mut self, nanos: i64) -> &mut Text {
        let mut tmp = [0u8; 32];
        let n = usd::format_into(nanos, &mut tmp);
        self.push(core::str::from_utf8(&tmp[..n]).unwrap_or(""))
    }
    pub fn push_i64(&mut self, v: i64) -> &mut Text {
        let mut tmp = [0u8; 20];
        let mut i = tmp.len();
        let mut u = (v as i128).unsigned_abs();
        loop {
            i -= 1;
            tmp[i] = b'0' + (u % 10) as u8;
            u /= 10;
            if u == 0 {
                break;
            }
        }
        if v < 0 {
            self.push("-");
        }
        self.push(core::str::from_utf8(&tmp[i..]).unwrap_or(""))
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
    pub fn as_str(&self) -> &str {
        // Only whole characters are ever pushed.
        core::str::from_utf8(self.as_bytes()).unwrap_or("")
    }
}

impl Default for Text {
    fn default() -> Text {
        Text::new()
    }
}

impl core::fmt::Write for Text {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.push(s);
        Ok(())
    }
}

impl core::fmt::Debug for Text {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Text) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Text {}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

// ---------------------------------------------------------------- results

/// A plugin's error: an ABI code and a message. A `bad_params` message
/// should start with the param's path (`params.command: want a string`).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Error {
    pub code: Code,
    pub message: Text,
}

impl Error {
    pub fn new(code: Code, message: &str) -> Error {
        Error { code, message: Text::from(message) }
    }
    pub fn internal(m: &str) -> Error {
        Error::new(Code::INTERNAL, m)
    }
    pub fn bad_config(m: &str) -> Error {
        Error::new(Code::BAD_CONFIG, m)
    }
    pub fn bad_params(m: &str) -> Error {
        Error::new(Code::BAD_PARAMS, m)
    }
    /// "Not mine": an estimator falls back to the cost table, a policy is skipped.
    pub fn unsupported(m: &str) -> Error {
        Error::new(Code::UNSUPPORTED, m)
    }
    /// Appends to the message (builder style).
    pub fn push(mut self, s: &str) -> Error {
        self.message.push(s);
        self
    }
    pub fn push_usd(mut self, nanos: i64) -> Error {
        self.message.push_usd(nanos);
        self
    }
}

/// A policy's verdict.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Verdict {
    Allow = 0,
    Ask = 1,
    Deny = 2,
}

/// A policy's answer: a verdict and its reason (may be empty for allow).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Decision {
    pub verdict: Verdict,
    pub reason: Text,
}

impl Decision {
    pub fn allow() -> Decision {
        Decision { verdict: Verdict::Allow, reason: Text::new() }
    }
    pub fn ask(reason: &str) -> Decision {
        Decision { verdict: Verdict::Ask, reason: Text::from(reason) }
    }
    pub fn deny(reason: &str) -> Decision {
        Decision { verdict: Verdict::Deny, reason: Text::from(reason) }
    }
}

// ---------------------------------------------------------------- plugin

/// The manifest (section 5), built at compile time by [`manifest!`].
#[derive(Clone, Copy, Debug)]
pub struct Manifest {
    pub name: &'static str,
    pub abi: i32,
    pub json: &'static str,
}

/// `"1.0"` -> [`ABI_1_0`], `"1.1"` -> [`ABI_1_1`], anything else 0 (the host refuses it).
pub const fn abi_code(v: &str) -> i32 {
    let b = v.as_bytes();
    if b.len() == 3 && b[0] == b'1' && b[1] == b'.' && (b[2] == b'0' || b[2] == b'1') {
        return 0x0001_0000 | (b[2] - b'0') as i32;
    }
    0
}

/// True when s can sit between JSON quotes unescaped (no `"`, `\`, controls).
pub const fn json_safe(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'"' || b[i] == b'\\' || b[i] < 0x20 {
            return false;
        }
        i += 1;
    }
    true
}

/// Builds a [`Manifest`] at compile time; `description` and
/// `config_schema` (raw JSON text) are optional:
///
/// ```ignore
/// const M: Manifest = manifest! { abi: "1.1", name: "x", version: "0.1.0",
///     kind: "policy", tools: ["Bash"], description: "...", config_schema: r#"{"type":"object"}"# };
/// ```
#[macro_export]
macro_rules! manifest {
    (abi: $abi:literal, name: $name:literal, version: $version:literal, kind: $kind:literal,
     tools: [$tool0:literal $(, $tool:literal)* $(,)?]
     $(, description: $desc:literal)? $(, config_schema: $schema:literal)? $(,)?) => {{
        const _: () = assert!(
            $crate::purser::json_safe($name) && $crate::purser::json_safe($version) && $crate::purser::json_safe($kind)
                $(&& $crate::purser::json_safe($tool))* $(&& $crate::purser::json_safe($desc))?,
            "manifest strings must not contain quotes, backslashes or control characters"
        );
        const _: () = assert!($crate::purser::abi_code($abi) != 0, "abi must be \"1.0\" or \"1.1\"");
        $crate::purser::Manifest {
            name: $name,
            abi: $crate::purser::abi_code($abi),
            json: concat!(
                "{\"abi\":\"", $abi, "\",\"name\":\"", $name, "\",\"version\":\"", $version,
                "\",\"kind\":\"", $kind, "\",\"tools\":[\"", $tool0, "\"" $(, ",\"", $tool, "\"")* , "]"
                $(, ",\"description\":\"", $desc, "\"")? $(, ",\"config_schema\":", $schema)?, "}"
            ),
        }
    }};
}

/// What every plugin has: a manifest and a constructor from the config
/// bytes the host delivers at `purser_init` (`{}` when the operator gave none).
pub trait Plugin: Sized {
    const MANIFEST: Manifest;
    fn init(config: &[u8]) -> Result<Self, Error>;
}

/// An admission policy.
pub trait Policy: Plugin {
    fn admit(&self, req: &Request) -> Result<Decision, Error>;
}

/// An estimator: the call's cost in nano-USD (>= 0).
pub trait Estimator: Plugin {
    fn estimate(&self, req: &Request) -> Result<i64, Error>;
}

// ---------------------------------------------------------------- request

/// Request kinds (header byte 2).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Estimate,
    Admit,
}

/// The host's LLM context (header bytes 72-167, ABI 1.1). Prices are
/// nano-USD per million tokens; 0 in a cache or tier price means "as the
/// base price" (section 3).
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct Llm {
    pub input_nanos_per_mtok: i64,
    pub output_nanos_per_mtok: i64,
    pub cache_read_nanos_per_mtok: i64,
    pub cache_write_nanos_per_mtok: i64,
    pub cache_write_1h_nanos_per_mtok: i64,
    pub tier_above_tokens: i64,
    pub input_above_nanos_per_mtok: i64,
    pub output_above_nanos_per_mtok: i64,
    pub cache_read_above_nanos_per_mtok: i64,
    pub cache_write_above_nanos_per_mtok: i64,
    pub expected_output_tokens: i64,
    pub cache_read_tokens: i64,
    /// Flag bit 3: the model is not in the host's price table.
    pub fallback: bool,
}

impl Llm {
    /// The host's base formula (enforcer.LLMContext.BaseCost, Go SDK
    /// LLMBaseCost) for a prompt of `prompt_tokens`; None on overflow.
    pub fn base_cost(&self, prompt_tokens: i64) -> Option<i64> {
        let p = prompt_tokens.max(0);
        let cached = self.cache_read_tokens.max(0).min(p);
        let tier = self.tier_above_tokens > 0 && p > self.tier_above_tokens;
        let pick = |base: i64, above: i64| if tier && above > 0 { above } else { base };
        let input = pick(self.input_nanos_per_mtok, self.input_above_nanos_per_mtok);
        let output = pick(self.output_nanos_per_mtok, self.output_above_nanos_per_mtok);
        let mut read = pick(self.cache_read_nanos_per_mtok, self.cache_read_above_nanos_per_mtok);
        let mut write = pick(self.cache_write_nanos_per_mtok, self.cache_write_above_nanos_per_mtok);
        if read == 0 {
            read = input;
        }
        if write == 0 {
            write = input;
        }
        let fresh = if self.cache_write_nanos_per_mtok > 0 && write > input { write } else { input };
        let a = usd::token_cost(p - cached, fresh)?;
        let b = usd::token_cost(cached, read)?;
        let c = usd::token_cost(self.expected_output_tokens.max(0), output)?;
        a.checked_add(b)?.checked_add(c)
    }
}

const STRINGS_MAX: usize = 7;

/// A decoded request record (section 3): fields are read in place.
#[derive(Clone, Copy)]
pub struct Request<'a> {
    raw: &'a [u8],
    header_len: usize,
    strings: [(usize, usize); STRINGS_MAX],
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut x = [0u8; 4];
    x.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(x)
}

fn le_i64(b: &[u8], at: usize) -> i64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    i64::from_le_bytes(x)
}

impl<'a> Request<'a> {
    /// Checks the header and locates the strings; errors are `bad_request`.
    pub fn parse(raw: &'a [u8]) -> Result<Request<'a>, Error> {
        if raw.len() < 72 {
            return Err(Error::new(Code::BAD_REQUEST, "request shorter than the 72-byte header"));
        }
        let header_len = u16::from_le_bytes([raw[0], raw[1]]) as usize;
        if header_len < 72 || header_len > raw.len() {
            return Err(Error::new(Code::BAD_REQUEST, "request header_len out of range"));
        }
        let mut r = Request { raw, header_len, strings: [(0, 0); STRINGS_MAX] };
        let count = (le_u32(raw, 64) as usize).min(STRINGS_MAX);
        let mut at = header_len;
        for s in r.strings.iter_mut().take(count) {
            if raw.len() - at < 4 {
                return Err(Error::new(Code::BAD_REQUEST, "request strings run past its end"));
            }
            let n = le_u32(raw, at) as usize;
            at += 4;
            if raw.len() - at < n {
                return Err(Error::new(Code::BAD_REQUEST, "request strings run past its end"));
            }
            *s = (at, n);
            at += n;
        }
        Ok(r)
    }
    /// The whole record.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }
    pub fn kind(&self) -> Option<Kind> {
        match self.raw[2] {
            1 => Some(Kind::Estimate),
            2 => Some(Kind::Admit),
            _ => None,
        }
    }
    /// Admit only: 0 none, 1 plugin, 2 table, 3 llm, 4 unknown.
    pub fn estimate_source(&self) -> u8 {
        self.raw[3]
    }
    pub fn flags(&self) -> u32 {
        le_u32(self.raw, 4)
    }
    /// The account (or an ancestor) is overdrawn.
    pub fn overdrawn(&self) -> bool {
        self.flags() & 1 != 0
    }
    /// Admit only: the call's estimate.
    pub fn estimate_nanos(&self) -> i64 {
        le_i64(self.raw, 8)
    }
    /// The account's limit; None when unlimited.
    pub fn limit_nanos(&self) -> Option<i64> {
        let v = le_i64(self.raw, 16);
        if v < 0 {
            None
        } else {
            Some(v)
        }
    }
    pub fn committed_nanos(&self) -> i64 {
        le_i64(self.raw, 24)
    }
    pub fn pending_nanos(&self) -> i64 {
        le_i64(self.raw, 32)
    }
    /// i64::MAX when unlimited; negative when overdrawn.
    pub fn remaining_nanos(&self) -> i64 {
        le_i64(self.raw, 40)
    }
    /// Characters of the prompt or messages; None when the params carry neither.
    pub fn prompt_chars(&self) -> Option<i64> {
        if self.flags() & 2 != 0 {
            Some(le_i64(self.raw, 48))
        } else {
            None
        }
    }
    /// `params.max_tokens` when it is an integer.
    pub fn max_tokens(&self) -> Option<i64> {
        let v = le_i64(self.raw, 56);
        if v < 0 {
            None
        } else {
            Some(v)
        }
    }
    /// The host's LLM context (ABI 1.1), when the call has one.
    pub fn llm(&self) -> Option<Llm> {
        if self.header_len < 168 || self.flags() & 4 == 0 {
            return None;
        }
        let f = |i: usize| le_i64(self.raw, 72 + 8 * i);
        Some(Llm {
            input_nanos_per_mtok: f(0),
            output_nanos_per_mtok: f(1),
            cache_read_nanos_per_mtok: f(2),
            cache_write_nanos_per_mtok: f(3),
            cache_write_1h_nanos_per_mtok: f(4),
            tier_above_tokens: f(5),
            input_above_nanos_per_mtok: f(6),
            output_above_nanos_per_mtok: f(7),
            cache_read_above_nanos_per_mtok: f(8),
            cache_write_above_nanos_per_mtok: f(9),
            expected_output_tokens: f(10),
            cache_read_tokens: f(11),
            fallback: self.flags() & 8 != 0,
        })
    }
    fn bytes(&self, i: usize) -> &'a [u8] {
        let (at, n) = self.strings[i];
        &self.raw[at..at + n]
    }
    fn text(&self, i: usize) -> &'a str {
        core::str::from_utf8(self.bytes(i)).unwrap_or("")
    }
    pub fn tool(&self) -> &'a str {
        self.text(0)
    }
    pub fn account(&self) -> &'a str {
        self.text(1)
    }
    /// `params.model` when it is a string.
    pub fn model(&self) -> &'a str {
        self.text(2)
    }
    /// Admit only: `plugin:<name>@<12 hex>`, `table`, `llm` or `unknown`.
    pub fn source_label(&self) -> &'a str {
        self.text(3)
    }
    /// The params as canonical JSON (section 3a); empty when there are none.
    pub fn params(&self) -> &'a [u8] {
        self.bytes(4)
    }
    /// A top-level param; Ok(None) when absent, `bad_params` when the
    /// params are not a JSON object.
    pub fn param(&self, key: &str) -> Result<Option<json::Value<'a>>, Error> {
        if self.params().is_empty() {
            return Ok(None);
        }
        json::Value(self.params())
            .get(key)
            .map_err(|e| Error::bad_params("params: ").push(e.message()))
    }
    /// The account's label `key`.
    pub fn label(&self, key: &str) -> Option<&'a str> {
        self.labels().find(|(k, _)| *k == key).map(|(_, v)| v)
    }
    /// The account's labels, sorted by key.
    pub fn labels(&self) -> Labels<'a> {
        Labels { b: self.bytes(5) }
    }
    /// ABI 1.1: where the LLM prices came from (`litellm:<model>`, `fallback:...`).
    pub fn llm_price_source(&self) -> &'a str {
        self.text(6)
    }
}

/// Iterator over (key, value) labels.
pub struct Labels<'a> {
    b: &'a [u8],
}

impl<'a> Iterator for Labels<'a> {
    type Item = (&'a str, &'a str);
    fn next(&mut self) -> Option<(&'a str, &'a str)> {
        let k = take_str(&mut self.b)?;
        let v = take_str(&mut self.b)?;
        Some((k, v))
    }
}

fn take_str<'a>(b: &mut &'a [u8]) -> Option<&'a str> {
    if b.len() < 4 {
        return None;
    }
    let n = le_u32(b, 0) as usize;
    if b.len() - 4 < n {
        *b = &[];
        return None;
    }
    let s = core::str::from_utf8(&b[4..4 + n]).ok();
    *b = &b[4 + n..];
    s
}

// ---------------------------------------------------------------- json

/// A tiny JSON reader for configs and params: structure only, in place,
/// no allocation. Enough to find members and read strings and integers.
pub mod json {
    /// What went wrong reading JSON.
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    pub enum JsonError {
        NotObject,
        Malformed,
        Trailing,
    }

    impl JsonError {
        pub fn message(self) -> &'static str {
            match self {
                JsonError::NotObject => "must be a JSON object",
                JsonError::Malformed => "malformed JSON",
                JsonError::Trailing => "unexpected data after the JSON object",
            }
        }
    }

    /// One JSON value's raw text.
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    pub struct Value<'a>(pub &'a [u8]);

    impl<'a> Value<'a> {
        pub fn raw(&self) -> &'a [u8] {
            self.0
        }
        pub fn is_string(&self) -> bool {
            self.0.len() >= 2 && self.0[0] == b'"'
        }
        pub fn is_null(&self) -> bool {
            self.0 == b"null"
        }
        pub fn as_bool(&self) -> Option<bool> {
            match self.0 {
                b"true" => Some(true),
                b"false" => Some(false),
                _ => None,
            }
        }
        /// The string's text when it holds no escapes (None otherwise, or
        /// for a non-string).
        pub fn as_plain_str(&self) -> Option<&'a str> {
            if !self.is_string() {
                return None;
            }
            let inner = &self.0[1..self.0.len() - 1];
            if inner.contains(&b'\\') {
                return None;
            }
            core::str::from_utf8(inner).ok()
        }
        /// An integer written without fraction or exponent.
        pub fn as_i64(&self) -> Option<i64> {
            let (neg, digits) = match self.0 {
                [b'-', rest @ ..] => (true, rest),
                d => (false, d),
            };
            if digits.is_empty() {
                return None;
            }
            let mut v: i64 = 0;
            for &c in digits {
                if !c.is_ascii_digit() {
                    return None;
                }
                let d = (c - b'0') as i64;
                v = if neg { v.checked_mul(10)?.checked_sub(d)? } else { v.checked_mul(10)?.checked_add(d)? };
            }
            Some(v)
        }
        /// The member `key` of this object (keys compared as raw text).
        pub fn get(&self, key: &str) -> Result<Option<Value<'a>>, JsonError> {
            for m in members(self.0) {
                let (k, v) = m?;
                if k == key.as_bytes() {
                    return Ok(Some(v));
                }
            }
            Ok(None)
        }
    }

    /// The members of the object in b, in order, as (raw key, value);
    /// after the last one, trailing data is an error. A structural error
    /// is yielded after the member before it, so a caller refusing that
    /// member reports its own error first.
    pub fn members(b: &[u8]) -> Members<'_> {
        Members { b, i: 0, state: State::Start }
    }

    #[derive(Clone, Copy, PartialEq, Eq)]
    enum State {
        Start,
        Member,
        End,
        Failed(JsonError),
        Done,
    }

    pub struct Members<'a> {
        b: &'a [u8],
        i: usize,
        state: State,
    }

    impl<'a> Iterator for Members<'a> {
        type Item = Result<(&'a [u8], Value<'a>), JsonError>;
        fn next(&mut self) -> Option<Self::Item> {
            let b = self.b;
            loop {
                match self.state {
                    State::Done => return None,
                    State::Failed(e) => {
                        self.state = State::Done;
                        return Some(Err(e));
                    }
                    State::End => {
                        self.state = State::Done;
                        if skip_ws(b, self.i) != b.len() {
                            return Some(Err(JsonError::Trailing));
                        }
                        return None;
                    }
                    State::Start => {
                        let i = skip_ws(b, 0);
                        if i >= b.len() || b[i] != b'{' {
                            self.state = State::Failed(JsonError::NotObject);
                            continue;
                        }
                        self.i = skip_ws(b, i + 1);
                        if self.i < b.len() && b[self.i] == b'}' {
                            self.i += 1;
                            self.state = State::End;
                        } else {
                            self.state = State::Member;
                        }
                    }
                    State::Member => return Some(self.member()),
                }
            }
        }
    }

    impl<'a> Members<'a> {
        fn member(&mut self) -> Result<(&'a [u8], Value<'a>), JsonError> {
            let b = self.b;
            self.state = State::Done;
            let i = self.i;
            if i >= b.len() || b[i] != b'"' {
                return Err(JsonError::Malformed);
            }
            let kend = skip_string(b, i).ok_or(JsonError::Malformed)?;
            let key = &b[i + 1..kend - 1];
            let i = skip_ws(b, kend);
            if i >= b.len() || b[i] != b':' {
                return Err(JsonError::Malformed);
            }
            let i = skip_ws(b, i + 1);
            let vend = skip_value(b, i).ok_or(JsonError::Malformed)?;
            let value = Value(&b[i..vend]);
            let j = skip_ws(b, vend);
            self.state = if j < b.len() && b[j] == b',' {
                self.i = skip_ws(b, j + 1);
                State::Member
            } else if j < b.len() && b[j] == b'}' {
                self.i = j + 1;
                State::End
            } else {
                State::Failed(JsonError::Malformed)
            };
            Ok((key, value))
        }
    }

    fn skip_ws(b: &[u8], mut i: usize) -> usize {
        while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
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

    /// Index just past the value starting at b[i] (structure only; nesting
    /// is counted, not recursed, so deep input cannot exhaust the stack).
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
}

// ---------------------------------------------------------------- usd

/// Money as int64 nano-USD, never through floats: the SDK's one USD parser.
pub mod usd {
    pub const NANOS_PER_USD: i64 = 1_000_000_000;
    const OVERFLOW: &str = "overflows int64 nano-USD";
    const BAD_CHAR: &str = "unexpected character (want a decimal such as 0.10)";

    /// Reads a non-negative decimal USD amount ("0.10", "$0.10", " 12 ",
    /// "1.5e-3") into nano-USD; a fractional nano rounds up, as the host does.
    /// The error is a reason ("negative amounts are not allowed").
    pub fn parse(s: &str) -> Result<i64, &'static str> {
        let mut b = s.as_bytes();
        while let [b' ', rest @ ..] = b {
            b = rest;
        }
        while let [rest @ .., b' '] = b {
            b = rest;
        }
        if let [b'$', rest @ ..] = b {
            b = rest;
        }
        parse_scaled(b, 9)
    }

    /// Reads a per-token USD price ("2.5e-06", LiteLLM's form) as nano-USD
    /// per million tokens (exact for such prices; a remainder rounds up).
    pub fn parse_per_token(s: &str) -> Result<i64, &'static str> {
        parse_scaled(s.trim().as_bytes(), 15)
    }

    /// value * 10^scale, rounding any remainder up.
    fn parse_scaled(s: &[u8], scale: i64) -> Result<i64, &'static str> {
        let mut s = s;
        if let [b'+', rest @ ..] = s {
            s = rest;
        }
        if s.is_empty() {
            return Err("empty amount");
        }
        if s[0] == b'-' {
            return Err("negative amounts are not allowed");
        }
        if s.iter().any(|&c| !(c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))) {
            return Err(BAD_CHAR);
        }
        let (mant, exp) = split_exponent(s)?;
        let (int_part, frac_part) = match mant.iter().position(|&c| c == b'.') {
            Some(p) => (&mant[..p], &mant[p + 1..]),
            None => (mant, &mant[mant.len()..]),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err("no digits");
        }
        if int_part.iter().chain(frac_part.iter()).any(|c| !c.is_ascii_digit()) {
            return Err(BAD_CHAR);
        }
        // value = digits * 10^(exp - frac_len); result = value * 10^scale.
        let shift = exp - frac_part.len() as i64 + scale;
        let total = (int_part.len() + frac_part.len()) as i64;
        // Keep the first total+shift digits when shift < 0; the rest only round.
        let keep = total + if shift < 0 { shift } else { 0 };
        let mut v: i64 = 0;
        let mut round_up = false;
        for (k, &c) in int_part.iter().chain(frac_part.iter()).enumerate() {
            let d = (c - b'0') as i64;
            if (k as i64) < keep {
                v = v.checked_mul(10).and_then(|x| x.checked_add(d)).ok_or(OVERFLOW)?;
            } else if d != 0 {
                round_up = true;
            }
        }
        for _ in 0..shift.max(0) {
            if v == 0 {
                break;
            }
            v = v.checked_mul(10).ok_or(OVERFLOW)?;
        }
        if round_up {
            v = v.checked_add(1).ok_or(OVERFLOW)?;
        }
        Ok(v)
    }

    fn split_exponent(s: &[u8]) -> Result<(&[u8], i64), &'static str> {
        let e = match s.iter().position(|&c| c == b'e' || c == b'E') {
            Some(e) => e,
            None => return Ok((s, 0)),
        };
        let mut es = &s[e + 1..];
        let mut neg = false;
        if let [c @ (b'+' | b'-'), rest @ ..] = es {
            neg = *c == b'-';
            es = rest;
        }
        if es.is_empty() || es.len() > 3 || es.iter().any(|c| !c.is_ascii_digit()) {
            return Err("malformed exponent");
        }
        let exp = es.iter().fold(0i64, |a, &c| a * 10 + (c - b'0') as i64);
        Ok((&s[..e], if neg { -exp } else { exp }))
    }

    /// Writes "$0.10" / "$0.00875" / "-$1.50" (at least two decimals, more
    /// when needed to be exact) into out; returns the length.
    pub fn format_into(nanos: i64, out: &mut [u8; 32]) -> usize {
        let mut n = 0;
        let u = (nanos as i128).unsigned_abs() as u64;
        if nanos < 0 {
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
        for i in (0..9).rev() {
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

    /// ceil(a * b / den) exactly (128-bit intermediate); None on a negative
    /// operand, den <= 0 or a result past i64.
    pub fn mul_div_ceil(a: i64, b: i64, den: i64) -> Option<i64> {
        if a < 0 || b < 0 || den <= 0 {
            return None;
        }
        let p = a as u128 * b as u128;
        let q = (p + den as u128 - 1) / den as u128;
        if q > i64::MAX as u128 {
            None
        } else {
            Some(q as i64)
        }
    }

    /// tokens x a price per million tokens, rounded up to the nano.
    pub fn token_cost(tokens: i64, nanos_per_mtok: i64) -> Option<i64> {
        mul_div_ceil(tokens, nanos_per_mtok, 1_000_000)
    }
}

// ---------------------------------------------------------------- log

/// Logging through the host's `purser.log` import (section 2). On other
/// targets lines go to stderr when std is available, else nowhere.
pub mod log {
    pub const TRACE: i32 = 0;
    pub const DEBUG: i32 = 1;
    pub const INFO: i32 = 2;
    pub const WARN: i32 = 3;
    pub const ERROR: i32 = 4;

    #[cfg(target_arch = "wasm32")]
    #[link(wasm_import_module = "purser")]
    extern "C" {
        #[link_name = "log"]
        fn host_log(level: i32, ptr: *const u8, len: i32);
    }

    pub fn write(level: i32, msg: &[u8]) {
        #[cfg(target_arch = "wasm32")]
        unsafe {
            host_log(level, msg.as_ptr(), msg.len() as i32)
        }
        #[cfg(all(not(target_arch = "wasm32"), any(test, feature = "std")))]
        std::eprintln!("purser.log {} {}", level, std::string::String::from_utf8_lossy(msg));
        #[cfg(all(not(target_arch = "wasm32"), not(any(test, feature = "std"))))]
        let _ = (level, msg);
    }
    pub fn trace(msg: &str) {
        write(TRACE, msg.as_bytes())
    }
    pub fn debug(msg: &str) {
        write(DEBUG, msg.as_bytes())
    }
    pub fn info(msg: &str) {
        write(INFO, msg.as_bytes())
    }
    pub fn warn(msg: &str) {
        write(WARN, msg.as_bytes())
    }
    pub fn error(msg: &str) {
        write(ERROR, msg.as_bytes())
    }
}

// ---------------------------------------------------------------- dispatch

/// The calls the exports make, on bytes: shared by the wasm glue and
/// [`testing`], so host tests run the same path as the guest.
pub mod rt {
    use super::*;

    /// A result record (section 4): 20-byte head plus text.
    pub struct Record {
        pub buf: [u8; 20 + TEXT_MAX],
        pub len: usize,
    }

    impl Record {
        pub const fn new() -> Record {
            Record { buf: [0; 20 + TEXT_MAX], len: 0 }
        }
        pub fn set(&mut self, status: Code, verdict: u32, nanos: i64, text: &[u8]) -> &[u8] {
            let n = text.len().min(TEXT_MAX);
            self.buf[0..4].copy_from_slice(&status.0.to_le_bytes());
            self.buf[4..8].copy_from_slice(&verdict.to_le_bytes());
            self.buf[8..16].copy_from_slice(&nanos.to_le_bytes());
            self.buf[16..20].copy_from_slice(&(n as u32).to_le_bytes());
            self.buf[20..20 + n].copy_from_slice(&text[..n]);
            self.len = 20 + n;
            &self.buf[..self.len]
        }
        pub fn error(&mut self, e: &Error) -> &[u8] {
            self.set(e.code, 0, 0, e.message.as_bytes())
        }
        pub fn decision(&mut self, d: &Decision) -> &[u8] {
            self.set(Code::OK, d.verdict as u32, 0, d.reason.as_bytes())
        }
        pub fn estimate(&mut self, nanos: i64) -> &[u8] {
            self.set(Code::OK, 0, nanos, &[])
        }
    }

    /// An error of the SDK's own, prefixed with the plugin's name.
    fn own_error<P: Plugin>(code: Code, msg: &str) -> Error {
        Error::new(code, P::MANIFEST.name).push(": ").push(msg)
    }

    pub fn init<P: Plugin>(state: &mut Option<P>, config: &[u8]) -> Result<(), Error> {
        *state = None;
        *state = Some(P::init(config)?);
        Ok(())
    }

    fn request<'a, P: Plugin>(state: &'a Option<P>, raw: &'a [u8], want: Kind) -> Result<(&'a P, Request<'a>), Error> {
        let p = state.as_ref().ok_or_else(|| own_error::<P>(Code::NOT_INITIALIZED, "called before a successful purser_init"))?;
        let r = Request::parse(raw).map_err(|e| own_error::<P>(e.code, e.message.as_str()))?;
        if r.kind() != Some(want) {
            let what = if want == Kind::Admit { "not an admission request" } else { "not an estimate request" };
            return Err(own_error::<P>(Code::BAD_REQUEST, what));
        }
        Ok((p, r))
    }

    pub fn admit<P: Policy>(state: &Option<P>, raw: &[u8]) -> Result<Decision, Error> {
        let (p, r) = request(state, raw, Kind::Admit)?;
        p.admit(&r)
    }

    pub fn estimate<P: Estimator>(state: &Option<P>, raw: &[u8]) -> Result<i64, Error> {
        let (p, r) = request(state, raw, Kind::Estimate)?;
        let n = p.estimate(&r)?;
        if n < 0 {
            return Err(own_error::<P>(Code::INTERNAL, "negative estimate"));
        }
        Ok(n)
    }
}

/// The wasm32 exports' glue: one growing request buffer, one result record.
#[cfg(target_arch = "wasm32")]
pub mod wasm {
    use super::*;
    use core::arch::wasm32;

    // Wasm instances are single-threaded and the host never calls one
    // concurrently, so plain statics are sound here.
    static mut BUF_PTR: usize = 0;
    static mut BUF_CAP: usize = 0;
    static mut OUT: rt::Record = rt::Record::new();

    pub fn pack(b: &[u8]) -> i64 {
        (((b.as_ptr() as u64) << 32) | (b.len() as u64)) as i64
    }

    /// New pages are taken with memory.grow only when a request does not
    /// fit; they lie above everything Rust placed in memory.
    pub fn alloc(size: i32) -> i32 {
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
    unsafe fn input(ptr: i32, len: i32) -> Option<&'static [u8]> {
        if len < 0 || (len > 0 && (BUF_PTR == 0 || ptr as usize != BUF_PTR || len as usize > BUF_CAP)) {
            return None;
        }
        if len == 0 {
            return Some(&[]);
        }
        Some(core::slice::from_raw_parts(BUF_PTR as *const u8, len as usize))
    }

    unsafe fn outside<P: Plugin>(what: &str) -> i64 {
        let e = Error::new(Code::BAD_REQUEST, P::MANIFEST.name).push(": ").push(what).push(" is not inside the buffer purser_alloc returned");
        pack(OUT.error(&e))
    }

    pub unsafe fn init<P: Plugin>(state: &mut Option<P>, ptr: i32, len: i32) -> i64 {
        let cfg = match input(ptr, len) {
            Some(c) => c,
            None => return outside::<P>("config"),
        };
        match rt::init(state, cfg) {
            Ok(()) => 0,
            Err(e) => pack(OUT.error(&e)),
        }
    }

    pub unsafe fn admit<P: Policy>(state: &Option<P>, ptr: i32, len: i32) -> i64 {
        let req = match input(ptr, len) {
            Some(r) => r,
            None => return outside::<P>("request"),
        };
        match rt::admit(state, req) {
            Ok(d) => pack(OUT.decision(&d)),
            Err(e) => pack(OUT.error(&e)),
        }
    }

    pub unsafe fn estimate<P: Estimator>(state: &Option<P>, ptr: i32, len: i32) -> i64 {
        let req = match input(ptr, len) {
            Some(r) => r,
            None => return outside::<P>("request"),
        };
        match rt::estimate(state, req) {
            Ok(n) => pack(OUT.estimate(n)),
            Err(e) => pack(OUT.error(&e)),
        }
    }

    pub fn trap() -> ! {
        wasm32::unreachable()
    }
}

/// Exports the type (a [`Policy`]) as the module's plugin, with a panic
/// handler that traps. Expands to nothing off wasm32, so the same crate
/// builds its host tests.
#[macro_export]
macro_rules! export_policy {
    ($t:ty) => {
        $crate::__purser_common_exports!($t);
        #[cfg(target_arch = "wasm32")]
        #[no_mangle]
        pub extern "C" fn purser_admit(ptr: i32, len: i32) -> i64 {
            unsafe { $crate::purser::wasm::admit::<$t>(&__PURSER_STATE, ptr, len) }
        }
    };
}

/// Exports the type (an [`Estimator`]) as the module's plugin; see [`export_policy!`].
#[macro_export]
macro_rules! export_estimator {
    ($t:ty) => {
        $crate::__purser_common_exports!($t);
        #[cfg(target_arch = "wasm32")]
        #[no_mangle]
        pub extern "C" fn purser_estimate(ptr: i32, len: i32) -> i64 {
            unsafe { $crate::purser::wasm::estimate::<$t>(&__PURSER_STATE, ptr, len) }
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __purser_common_exports {
    ($t:ty) => {
        #[cfg(target_arch = "wasm32")]
        static mut __PURSER_STATE: Option<$t> = None;

        #[cfg(target_arch = "wasm32")]
        #[panic_handler]
        fn __purser_panic(_: &core::panic::PanicInfo) -> ! {
            $crate::purser::wasm::trap()
        }

        #[cfg(target_arch = "wasm32")]
        #[no_mangle]
        pub extern "C" fn purser_abi_version() -> i32 {
            <$t as $crate::purser::Plugin>::MANIFEST.abi
        }

        #[cfg(target_arch = "wasm32")]
        #[no_mangle]
        pub extern "C" fn purser_manifest() -> i64 {
            $crate::purser::wasm::pack(<$t as $crate::purser::Plugin>::MANIFEST.json.as_bytes())
        }

        #[cfg(target_arch = "wasm32")]
        #[no_mangle]
        pub extern "C" fn purser_alloc(size: i32) -> i32 {
            $crate::purser::wasm::alloc(size)
        }

        #[cfg(target_arch = "wasm32")]
        #[no_mangle]
        pub extern "C" fn purser_init(ptr: i32, len: i32) -> i64 {
            unsafe { $crate::purser::wasm::init::<$t>(&mut __PURSER_STATE, ptr, len) }
        }
    };
}

// ---------------------------------------------------------------- testing

/// Host-side tests of plugin logic: build a request as the host would,
/// run it through the same dispatch and result encoding as the guest.
#[cfg(not(target_arch = "wasm32"))]
pub mod testing {
    use super::*;

    /// A call to encode as a request record (ABI 1.1 layout).
    #[derive(Clone, Copy)]
    pub struct Call<'a> {
        pub tool: &'a str,
        pub account: &'a str,
        pub params: &'a str,
        pub model: &'a str,
        pub labels: &'a [(&'a str, &'a str)],
        pub limit_nanos: i64,
        pub committed_nanos: i64,
        pub pending_nanos: i64,
        pub estimate_nanos: i64,
        pub estimate_source: u8,
        pub source_label: &'a str,
        pub prompt_chars: Option<i64>,
        pub max_tokens: Option<i64>,
        pub overdrawn: bool,
        pub llm: Option<Llm>,
        pub llm_price_source: &'a str,
    }

    impl<'a> Call<'a> {
        /// A call for tool with params JSON (canonical form, as the host
        /// sends it; "" for none). Fills model, max_tokens and prompt_chars
        /// from top-level `model`, `max_tokens` and an unescaped string
        /// `prompt` as the host would (set prompt_chars yourself for messages).
        pub fn new(tool: &'a str, params: &'a str) -> Call<'a> {
            let p = json::Value(params.as_bytes());
            let get = |k: &str| if params.is_empty() { None } else { p.get(k).ok().flatten() };
            Call {
                tool,
                account: "test",
                params,
                model: get("model").and_then(|v| v.as_plain_str()).unwrap_or(""),
                labels: &[],
                limit_nanos: -1,
                committed_nanos: 0,
                pending_nanos: 0,
                estimate_nanos: 0,
                estimate_source: 0,
                source_label: "",
                prompt_chars: get("prompt").and_then(|v| v.as_plain_str()).map(|s| s.chars().count() as i64),
                max_tokens: get("max_tokens").and_then(|v| v.as_i64()).filter(|n| *n >= 0),
                overdrawn: false,
                llm: None,
                llm_price_source: "",
            }
        }
        /// A budget: limit (-1 unlimited), committed and pending.
        pub fn budget(mut self, limit: i64, committed: i64, pending: i64) -> Call<'a> {
            self.limit_nanos = limit;
            self.committed_nanos = committed;
            self.pending_nanos = pending;
            self
        }
        /// An admission request's estimate, from the cost table.
        pub fn estimate(mut self, nanos: i64) -> Call<'a> {
            self.estimate_nanos = nanos;
            self.estimate_source = 2;
            self.source_label = "table";
            self
        }
        pub fn llm(mut self, llm: Llm, price_source: &'a str) -> Call<'a> {
            self.llm = Some(llm);
            self.llm_price_source = price_source;
            self
        }

        /// Encodes the record into buf (panics if it does not fit).
        pub fn encode<'b>(&self, kind: Kind, buf: &'b mut [u8]) -> &'b [u8] {
            let mut w = Writer { buf, n: 0 };
            let remaining = if self.limit_nanos < 0 { i64::MAX } else { self.limit_nanos - self.committed_nanos - self.pending_nanos };
            let mut flags = 0u32;
            flags |= self.overdrawn as u32;
            flags |= (self.prompt_chars.is_some() as u32) << 1;
            flags |= (self.llm.is_some() as u32) << 2;
            flags |= (self.llm.map_or(false, |l| l.fallback) as u32) << 3;
            w.put(&168u16.to_le_bytes());
            w.put(&[if kind == Kind::Estimate { 1 } else { 2 }, if kind == Kind::Admit { self.estimate_source } else { 0 }]);
            w.put(&flags.to_le_bytes());
            let est = if kind == Kind::Admit { self.estimate_nanos } else { 0 };
            for v in [est, self.limit_nanos, self.committed_nanos, self.pending_nanos, remaining, self.prompt_chars.unwrap_or(0), self.max_tokens.unwrap_or(-1)] {
                w.put(&v.to_le_bytes());
            }
            w.put(&7u32.to_le_bytes());
            w.put(&0u32.to_le_bytes());
            let l = self.llm.unwrap_or_default();
            for v in [
                l.input_nanos_per_mtok,
                l.output_nanos_per_mtok,
                l.cache_read_nanos_per_mtok,
                l.cache_write_nanos_per_mtok,
                l.cache_write_1h_nanos_per_mtok,
                l.tier_above_tokens,
                l.input_above_nanos_per_mtok,
                l.output_above_nanos_per_mtok,
                l.cache_read_above_nanos_per_mtok,
                l.cache_write_above_nanos_per_mtok,
                l.expected_output_tokens,
                l.cache_read_tokens,
            ] {
                w.put(&v.to_le_bytes());
            }
            let label = if kind == Kind::Admit { self.source_label } else { "" };
            for s in [self.tool, self.account, self.model, label, self.params] {
                w.string(s.as_bytes());
            }
            let labels_len: usize = self.labels.iter().map(|(k, v)| 8 + k.len() + v.len()).sum();
            w.put(&(labels_len as u32).to_le_bytes());
            for (k, v) in self.labels {
                w.string(k.as_bytes());
                w.string(v.as_bytes());
            }
            w.string(self.llm_price_source.as_bytes());
            let n = w.n;
            &buf[..n]
        }
    }

    struct Writer<'b> {
        buf: &'b mut [u8],
        n: usize,
    }

    impl<'b> Writer<'b> {
        fn put(&mut self, b: &[u8]) {
            assert!(self.buf.len() - self.n >= b.len(), "testing::Call::encode: buffer too small");
            self.buf[self.n..self.n + b.len()].copy_from_slice(b);
            self.n += b.len();
        }
        fn string(&mut self, b: &[u8]) {
            self.put(&(b.len() as u32).to_le_bytes());
            self.put(b);
        }
    }

    /// What a result record says, decoded back.
    fn decode(rec: &[u8]) -> (Code, u32, i64, Text) {
        let mut text = Text::new();
        text.push(core::str::from_utf8(&rec[20..]).expect("result text is UTF-8"));
        (Code(le_u32(rec, 0)), le_u32(rec, 4), le_i64(rec, 8), text)
    }

    fn outcome(rec: &[u8]) -> Result<(u32, i64, Text), Error> {
        let (code, verdict, nanos, text) = decode(rec);
        if code != Code::OK {
            return Err(Error { code, message: text });
        }
        Ok((verdict, nanos, text))
    }

    const BUF: usize = 1 << 16;

    /// A plugin instance after purser_init, as the host holds it.
    pub struct Harness<P> {
        state: Option<P>,
    }

    impl<P: Plugin> Harness<P> {
        /// Runs init with config (the config error, as the host would see it).
        pub fn new(config: &str) -> Result<Harness<P>, Error> {
            let mut h = Harness { state: None };
            if let Err(e) = rt::init(&mut h.state, config.as_bytes()) {
                let mut rec = rt::Record::new();
                return Err(outcome(rec.error(&e)).err().expect("an init error encodes as an error"));
            }
            Ok(h)
        }
        /// An instance whose purser_init never succeeded.
        pub fn uninitialized() -> Harness<P> {
            Harness { state: None }
        }
    }

    impl<P: Policy> Harness<P> {
        pub fn admit(&self, call: &Call) -> Result<Decision, Error> {
            let mut buf = [0u8; BUF];
            let req = call.encode(Kind::Admit, &mut buf);
            let mut rec = rt::Record::new();
            let bytes = match rt::admit(&self.state, req) {
                Ok(d) => rec.decision(&d),
                Err(e) => rec.error(&e),
            };
            let (verdict, _, reason) = outcome(bytes)?;
            let verdict = match verdict {
                0 => Verdict::Allow,
                1 => Verdict::Ask,
                _ => Verdict::Deny,
            };
            Ok(Decision { verdict, reason })
        }
    }

    impl<P: Estimator> Harness<P> {
        pub fn estimate(&self, call: &Call) -> Result<i64, Error> {
            let mut buf = [0u8; BUF];
            let req = call.encode(Kind::Estimate, &mut buf);
            let mut rec = rt::Record::new();
            let bytes = match rt::estimate(&self.state, req) {
                Ok(n) => rec.estimate(n),
                Err(e) => rec.error(&e),
            };
            outcome(bytes).map(|(_, n, _)| n)
        }
    }
}
