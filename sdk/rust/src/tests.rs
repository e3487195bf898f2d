//! The SDK's own tests (host target): `cargo test --offline` or
//! `/usr/bin/rustc --edition 2021 --test src/lib.rs`.
use crate::purser::testing::{Call, Harness};
use crate::purser::*;

#[test]
fn usd_parse_matches_the_hosts_rules() {
    for (s, want) in [
        ("0.10", 100_000_000),
        ("$0.10", 100_000_000),
        (" 12 ", 12_000_000_000),
        ("1e-1", 100_000_000),
        ("1.5e-3", 1_500_000),
        ("+2", 2_000_000_000),
        ("0.0000000001", 1), // a fractional nano rounds up
        ("0.0000000010", 1),
        ("9223372036.854775807", i64::MAX),
        (".5", 500_000_000),
    ] {
        assert_eq!(usd::parse(s), Ok(want), "{}", s);
    }
    for (s, why) in [
        ("-1", "negative amounts are not allowed"),
        ("", "empty amount"),
        ("ten", "unexpected character (want a decimal such as 0.10)"),
        ("1e", "malformed exponent"),
        ("1e1000", "malformed exponent"),
        ("9223372036.854775808", "overflows int64 nano-USD"),
        ("1.2.3", "unexpected character (want a decimal such as 0.10)"),
        (".", "no digits"),
    ] {
        assert_eq!(usd::parse(s), Err(why), "{}", s);
    }
    assert_eq!(usd::parse_per_token("2.5e-06"), Ok(2_500_000_000));
}

#[test]
fn usd_format_keeps_two_decimals_and_every_nano() {
    for (n, want) in [(0, "$0.00"), (100_000_000, "$0.10"), (8_750_000, "$0.00875"), (12_500_000_000, "$12.50"), (1, "$0.000000001"), (-1_500_000_000, "-$1.50"), (i64::MIN, "-$9223372036.854775808")] {
        let mut t = Text::new();
        t.push_usd(n);
        assert_eq!(t.as_str(), want);
        // Formatting then parsing gives the amount back.
        if n >= 0 {
            assert_eq!(usd::parse(want), Ok(n));
        }
    }
}

#[test]
fn mul_div_ceil_is_exact_and_checked() {
    assert_eq!(usd::token_cost(1, 2_500_000_000), Some(2_500));
    assert_eq!(usd::token_cost(3, 1), Some(1)); // rounds up
    assert_eq!(usd::mul_div_ceil(i64::MAX, 2, 2), Some(i64::MAX));
    assert_eq!(usd::mul_div_ceil(i64::MAX, 2, 1), None);
    assert_eq!(usd::mul_div_ceil(-1, 2, 1), None);
    assert_eq!(usd::mul_div_ceil(1, 2, 0), None);
}

#[test]
fn text_truncates_at_a_character_boundary() {
    let mut t = Text::new();
    for _ in 0..TEXT_MAX - 1 {
        t.push("a");
    }
    t.push("é"); // two bytes, one left: dropped whole
    assert_eq!(t.len(), TEXT_MAX - 1);
    t.push("b");
    t.push("c");
    assert_eq!(t.len(), TEXT_MAX);
    assert!(t.as_str().ends_with("ab"));
    let mut n = Text::new();
    n.push_i64(-42).push(" ").push_i64(i64::MIN);
    assert_eq!(n.as_str(), "-42 -9223372036854775808");
}

#[test]
fn json_members_in_order_with_errors_after_the_member() {
    let b = br#" { "a" : "x" , "b":{"c":[1,"}"]}, "n":-12 } "#;
    let got: Vec<_> = json::members(b).map(|m| m.map(|(k, v)| (k, v.raw()))).collect();
    assert_eq!(got, vec![Ok((&b"a"[..], &br#""x""#[..])), Ok((&b"b"[..], &br#"{"c":[1,"}"]}"#[..])), Ok((&b"n"[..], &b"-12"[..]))]);
    let v = json::Value(b);
    assert_eq!(v.get("n").unwrap().unwrap().as_i64(), Some(-12));
    assert_eq!(v.get("a").unwrap().unwrap().as_plain_str(), Some("x"));
    assert_eq!(v.get("zz"), Ok(None));
    let errs = |b: &[u8]| json::members(b).filter_map(|m| m.err()).collect::<Vec<_>>();
    assert_eq!(errs(b"[1]"), vec![json::JsonError::NotObject]);
    assert_eq!(errs(br#"{"a":1,}"#), vec![json::JsonError::Malformed]);
    assert_eq!(errs(br#"{"a":1} x"#), vec![json::JsonError::Trailing]);
    assert_eq!(errs(br#"{"a":"#), vec![json::JsonError::Malformed]);
    assert_eq!(errs(b"{}"), vec![]);
    // The member before a structural error is still yielded first.
    assert_eq!(json::members(br#"{"a":1 "b":2}"#).next().unwrap().unwrap().0, b"a");
    assert_eq!(json::Value(br#""a\"b""#).as_plain_str(), None);
    assert_eq!(json::Value(b"99999999999999999999").as_i64(), None);
}

#[test]
fn request_fields_round_trip_through_the_encoding() {
    let llm = Llm { input_nanos_per_mtok: 3_000_000_000, output_nanos_per_mtok: 15_000_000_000, expected_output_tokens: 100, fallback: true, ..Llm::default() };
    let labels = [("env", "prod"), ("team", "a")];
    let mut call = Call::new("LLM", r#"{"max_tokens":500,"model":"m1","prompt":"héllo"}"#).budget(1_000, 300, 200).estimate(77).llm(llm, "litellm:m1");
    call.labels = &labels;
    call.account = "team/bot";
    let mut buf = [0u8; 4096];
    let raw = call.encode(Kind::Admit, &mut buf);
    let r = Request::parse(raw).unwrap();
    assert_eq!(r.kind(), Some(Kind::Admit));
    assert_eq!((r.tool(), r.account(), r.model(), r.source_label()), ("LLM", "team/bot", "m1", "table"));
    assert_eq!((r.estimate_nanos(), r.estimate_source()), (77, 2));
    assert_eq!((r.limit_nanos(), r.committed_nanos(), r.pending_nanos(), r.remaining_nanos()), (Some(1_000), 300, 200, 500));
    assert_eq!((r.prompt_chars(), r.max_tokens()), (Some(5), Some(500)));
    assert_eq!(r.llm(), Some(llm));
    assert_eq!(r.llm_price_source(), "litellm:m1");
    assert_eq!(r.labels().collect::<Vec<_>>(), labels.to_vec());
    assert_eq!((r.label("team"), r.label("nope")), (Some("a"), None));
    assert_eq!(r.param("max_tokens").unwrap().unwrap().as_i64(), Some(500));
    let bare = Call::new("Read", "");
    let raw = bare.encode(Kind::Estimate, &mut buf);
    let r = Request::parse(raw).unwrap();
    assert_eq!((r.limit_nanos(), r.remaining_nanos(), r.max_tokens(), r.prompt_chars(), r.llm()), (None, i64::MAX, None, None, None));
    assert_eq!(r.param("x"), Ok(None));
}

#[test]
fn request_parse_refuses_short_or_overrunning_records() {
    let mut buf = [0u8; 4096];
    let raw = Call::new("Read", "").encode(Kind::Estimate, &mut buf).to_vec();
    assert_eq!(Request::parse(&raw[..71]).err().unwrap().message.as_str(), "request shorter than the 72-byte header");
    assert_eq!(Request::parse(&raw[..raw.len() - 1]).err().unwrap().message.as_str(), "request strings run past its end");
    let mut bad = raw.clone();
    bad[0] = 71;
    assert_eq!(Request::parse(&bad).err().unwrap().code, Code::BAD_REQUEST);
    // A v1.0 record (header_len 72, six strings) has no LLM context.
    let mut v10 = raw[..72].to_vec();
    v10[0] = 72;
    v10[64] = 6;
    v10[4] |= 4; // even with the flag set
    v10.extend_from_slice(&raw[168..raw.len() - 4]);
    let r = Request::parse(&v10).unwrap();
    assert_eq!((r.tool(), r.llm(), r.llm_price_source()), ("Read", None, ""));
}

#[test]
fn llm_base_cost_follows_the_hosts_formula() {
    let l = Llm { input_nanos_per_mtok: 3_000_000_000, output_nanos_per_mtok: 15_000_000_000, cache_read_nanos_per_mtok: 300_000_000, cache_write_nanos_per_mtok: 3_750_000_000, expected_output_tokens: 1_000, cache_read_tokens: 400, ..Llm::default() };
    // 600 fresh tokens at the cache-write price, 400 cached, 1000 output.
    assert_eq!(l.base_cost(1_000), Some(600 * 3_750 + 400 * 300 + 1_000 * 15_000));
    let tier = Llm { input_nanos_per_mtok: 1_000_000, output_nanos_per_mtok: 2_000_000, tier_above_tokens: 10, input_above_nanos_per_mtok: 5_000_001, ..Llm::default() };
    assert_eq!(tier.base_cost(10), Some(10)); // at the threshold: base prices
    assert_eq!(tier.base_cost(11), Some(56)); // above: every token at the tier price, rounded up
    assert_eq!(Llm { input_nanos_per_mtok: i64::MAX, ..Llm::default() }.base_cost(i64::MAX), None);
}

#[test]
fn manifest_macro_builds_the_json() {
    const M: Manifest = manifest! { abi: "1.1", name: "x", version: "0.1.0", kind: "estimator", tools: ["LLM", "Bash"], config_schema: r#"{"type":"object"}"# };
    assert_eq!(M.json, r#"{"abi":"1.1","name":"x","version":"0.1.0","kind":"estimator","tools":["LLM","Bash"],"config_schema":{"type":"object"}}"#);
    assert_eq!((M.name, M.abi), ("x", ABI_1_1));
    assert_eq!((abi_code("1.0"), abi_code("2.0")), (ABI_1_0, 0));
    assert!(!json_safe("a\"b"));
}

struct Flat(i64);

impl Plugin for Flat {
    const MANIFEST: Manifest = manifest! { abi: "1.1", name: "flat", version: "1", kind: "estimator", tools: ["*"] };
    fn init(config: &[u8]) -> Result<Flat, Error> {
        match json::Value(config).get("usd") {
            Ok(Some(v)) => usd::parse(v.as_plain_str().unwrap_or("x")).map(Flat).map_err(|e| Error::bad_config("usd: ").push(e)),
            Ok(None) => Ok(Flat(1)),
            Err(e) => Err(Error::bad_config(e.message())),
        }
    }
}

impl Estimator for Flat {
    fn estimate(&self, req: &Request) -> Result<i64, Error> {
        match req.tool() {
            "Neg" => Ok(-1),
            "Bad" => Err(Error::bad_params("params.x: want a number")),
            _ => Ok(self.0),
        }
    }
}

#[test]
fn harness_runs_the_guest_dispatch() {
    let h = Harness::<Flat>::new(r#"{"usd":"0.5"}"#).unwrap();
    assert_eq!(h.estimate(&Call::new("Read", "")).unwrap(), 500_000_000);
    let e = h.estimate(&Call::new("Bad", "")).err().unwrap();
    assert_eq!((e.code, e.message.as_str()), (Code::BAD_PARAMS, "params.x: want a number"));
    let e = h.estimate(&Call::new("Neg", "")).err().unwrap();
    assert_eq!((e.code, e.message.as_str()), (Code::INTERNAL, "flat: negative estimate"));
    let e = Harness::<Flat>::new(r#"{"usd":"-1"}"#).err().unwrap();
    assert_eq!((e.code, e.message.as_str()), (Code::BAD_CONFIG, "usd: negative amounts are not allowed"));
    let e = Harness::<Flat>::uninitialized().estimate(&Call::new("Read", "")).err().unwrap();
    assert_eq!(e.code, Code::NOT_INITIALIZED);
}
