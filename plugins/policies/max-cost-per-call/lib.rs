//! max-cost-per-call: a purser admission policy written in Rust on the Rust
//! SDK (sdk/rust). It denies a call whose estimate exceeds a configured limit:
//!
//!     config  {"limit_usd": "0.10"}
//!     deny    "Operation cost $0.15 exceeds limit $0.10"
//!
//! An estimate equal to the limit is allowed. `no_std`, no allocator, no
//! crates; built with /usr/bin/rustc --target wasm32-unknown-unknown by
//! scripts/wasm-build.sh (extra flags in wasm.build). Host tests:
//! `/usr/bin/rustc --edition 2021 --test lib.rs && ./lib`.
#![cfg_attr(not(test), no_std)]

#[macro_use]
#[path = "../../../sdk/rust/src/purser.rs"]
mod purser;

use purser::{json, log, usd, Decision, Error, Manifest, Plugin, Policy, Request, Text};

pub struct MaxCost {
    limit_nanos: i64,
}

const NAME: &str = "max-cost-per-call";

impl Plugin for MaxCost {
    const MANIFEST: Manifest = manifest! {
        abi: "1.0", name: "max-cost-per-call", version: "1.0.0", kind: "policy", tools: ["*"],
        description: "Denies a call whose estimate exceeds limit_usd: Operation cost $X exceeds limit $Y (an estimate equal to the limit is allowed).",
        config_schema: r#"{"type":"object","additionalProperties":false,"required":["limit_usd"],"properties":{"limit_usd":{"type":"string","description":"largest allowed estimate per call, decimal USD such as \"0.10\""}}}"#,
    };

    fn init(config: &[u8]) -> Result<MaxCost, Error> {
        let limit_nanos = parse_config(config).map_err(|e| Error::bad_config(NAME).push(": ").push(e.message.as_str()))?;
        let mut line = Text::from("max-cost-per-call: limit ");
        log::info(line.push_usd(limit_nanos).as_str());
        Ok(MaxCost { limit_nanos })
    }
}

impl Policy for MaxCost {
    fn admit(&self, req: &Request) -> Result<Decision, Error> {
        let estimate = req.estimate_nanos();
        if estimate <= self.limit_nanos {
            return Ok(Decision::allow());
        }
        let mut d = Decision::deny("Operation cost ");
        d.reason.push_usd(estimate).push(" exceeds limit ").push_usd(self.limit_nanos);
        Ok(d)
    }
}

export_policy!(MaxCost);

/// Reads {"limit_usd": "<decimal>"}; any other member is refused, like the
/// Go plugins' strict config decoding. The error's message is what follows
/// "max-cost-per-call: ".
fn parse_config(b: &[u8]) -> Result<i64, Error> {
    let mut limit = None;
    for m in json::members(b) {
        let (key, value) = m.map_err(|e| match e {
            json::JsonError::NotObject => Error::bad_config("config must be a JSON object"),
            e => Error::bad_config("config: ").push(e.message()),
        })?;
        if key != b"limit_usd" {
            return Err(Error::bad_config("config: unknown field (only limit_usd is accepted)"));
        }
        let s = value.as_plain_str().ok_or_else(|| Error::bad_config("limit_usd: want a decimal USD string such as \"0.10\""))?;
        limit = Some(usd::parse(s).map_err(|reason| Error::bad_config("limit_usd: ").push(reason))?);
    }
    limit.ok_or_else(|| Error::bad_config("limit_usd: required (a decimal USD string such as \"0.10\")"))
}

#[cfg(test)]
mod tests {
    use super::purser::testing::{Call, Harness};
    use super::purser::Verdict;
    use super::*;

    fn deny_reason(config: &str, estimate: i64) -> String {
        let h = Harness::<MaxCost>::new(config).unwrap();
        let d = h.admit(&Call::new("Bash", r#"{"command":"ls"}"#).estimate(estimate)).unwrap();
        assert_eq!(d.verdict, Verdict::Deny);
        d.reason.as_str().to_string()
    }

    #[test]
    fn denies_above_and_allows_at_the_limit() {
        assert_eq!(deny_reason(r#"{"limit_usd":"0.10"}"#, 150_000_000), "Operation cost $0.15 exceeds limit $0.10");
        assert_eq!(deny_reason(r#"{"limit_usd":"0.005"}"#, 8_750_000), "Operation cost $0.00875 exceeds limit $0.005");
        let h = Harness::<MaxCost>::new(r#"{"limit_usd":"0.10"}"#).unwrap();
        let d = h.admit(&Call::new("Read", "").estimate(100_000_000)).unwrap();
        assert_eq!((d.verdict, d.reason.as_str()), (Verdict::Allow, ""));
    }

    #[test]
    fn config_errors_name_the_problem() {
        for (config, want) in [
            ("{}", "max-cost-per-call: limit_usd: required (a decimal USD string such as \"0.10\")"),
            (r#"{"limit_usd":"\u0030"}"#, "max-cost-per-call: limit_usd: want a decimal USD string such as \"0.10\""),
            (r#"{"limit":"1","limit_usd":"x"}"#, "max-cost-per-call: config: unknown field (only limit_usd is accepted)"),
            (r#"{"limit_usd":"1",}"#, "max-cost-per-call: config: malformed JSON"),
            ("", "max-cost-per-call: config must be a JSON object"),
            (r#"{"limit_usd":"1"}}"#, "max-cost-per-call: config: unexpected data after the JSON object"),
        ] {
            let e = Harness::<MaxCost>::new(config).err().expect(config);
            assert_eq!((e.code, e.message.as_str()), (purser::Code::BAD_CONFIG, want), "config {}", config);
        }
    }

    #[test]
    fn refuses_before_init() {
        let e = Harness::<MaxCost>::uninitialized().admit(&Call::new("Read", "").estimate(1)).err().unwrap();
        assert_eq!((e.code, e.message.as_str()), (purser::Code::NOT_INITIALIZED, "max-cost-per-call: called before a successful purser_init"));
    }
}
