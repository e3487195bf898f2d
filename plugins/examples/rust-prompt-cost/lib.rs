//! rust-prompt-cost: the Rust SDK's example estimator (sdk/rust/README.md).
//! It prices LLM calls from the prompt's length: ceil(prompt_chars /
//! chars_per_token) input tokens plus max_tokens output tokens. With the
//! host's LLM context (ABI 1.1) it uses the host's prices and formula
//! (`Llm::base_cost`), else the prices in its config.
//!
//!     config  {"input_usd_per_mtok": "3", "output_usd_per_mtok": "15", "chars_per_token": 4}
//!
//! Host tests: `/usr/bin/rustc --edition 2021 --test lib.rs && ./lib`.
#![cfg_attr(not(test), no_std)]

#[macro_use]
#[path = "../../../sdk/rust/src/purser.rs"]
mod purser;

use purser::{json, usd, Error, Estimator, Manifest, Plugin, Request};

pub struct PromptCost {
    input_nanos_per_mtok: i64,
    output_nanos_per_mtok: i64,
    chars_per_token: i64,
}

impl Plugin for PromptCost {
    const MANIFEST: Manifest = manifest! {
        abi: "1.1", name: "rust-prompt-cost", version: "0.1.0", kind: "estimator", tools: ["LLM"],
        description: "LLM calls priced by prompt length (example of the Rust SDK)",
        config_schema: r#"{"type":"object","additionalProperties":false,"properties":{"input_usd_per_mtok":{"type":"string"},"output_usd_per_mtok":{"type":"string"},"chars_per_token":{"type":"integer","minimum":1}}}"#,
    };

    fn init(config: &[u8]) -> Result<PromptCost, Error> {
        let mut p = PromptCost { input_nanos_per_mtok: 3 * usd::NANOS_PER_USD, output_nanos_per_mtok: 15 * usd::NANOS_PER_USD, chars_per_token: 4 };
        for m in json::members(config) {
            let (key, v) = m.map_err(|e| Error::bad_config("rust-prompt-cost: config: ").push(e.message()))?;
            match key {
                b"input_usd_per_mtok" => p.input_nanos_per_mtok = price(v, "input_usd_per_mtok")?,
                b"output_usd_per_mtok" => p.output_nanos_per_mtok = price(v, "output_usd_per_mtok")?,
                b"chars_per_token" => {
                    p.chars_per_token = v.as_i64().filter(|n| *n >= 1).ok_or_else(|| Error::bad_config("rust-prompt-cost: chars_per_token: want an integer >= 1"))?
                }
                _ => return Err(Error::bad_config("rust-prompt-cost: config: unknown field (input_usd_per_mtok, output_usd_per_mtok, chars_per_token)")),
            }
        }
        Ok(p)
    }
}

fn price(v: json::Value, field: &str) -> Result<i64, Error> {
    let bad = || Error::bad_config("rust-prompt-cost: ").push(field).push(": ");
    let s = v.as_plain_str().ok_or_else(|| bad().push("want a decimal USD string such as \"3\""))?;
    usd::parse(s).map_err(|why| bad().push(why))
}

impl Estimator for PromptCost {
    fn estimate(&self, req: &Request) -> Result<i64, Error> {
        if req.tool() != "LLM" {
            return Err(Error::unsupported("rust-prompt-cost prices LLM calls only"));
        }
        let max_tokens = match req.max_tokens() {
            Some(n) => n,
            None if req.param("max_tokens")?.is_some() => return Err(Error::bad_params("params.max_tokens: want a non-negative integer")),
            None => 0,
        };
        let chars = req.prompt_chars().unwrap_or(0);
        let prompt_tokens = (chars + self.chars_per_token - 1) / self.chars_per_token;
        let overflow = || Error::bad_params("params: the call's cost overflows int64 nano-USD");
        if let Some(mut llm) = req.llm() {
            if llm.expected_output_tokens == 0 {
                llm.expected_output_tokens = max_tokens;
            }
            return llm.base_cost(prompt_tokens).ok_or_else(overflow);
        }
        let input = usd::token_cost(prompt_tokens, self.input_nanos_per_mtok).ok_or_else(overflow)?;
        let output = usd::token_cost(max_tokens, self.output_nanos_per_mtok).ok_or_else(overflow)?;
        input.checked_add(output).ok_or_else(overflow)
    }
}

export_estimator!(PromptCost);

#[cfg(test)]
mod tests {
    use super::purser::testing::{Call, Harness};
    use super::purser::{Code, Llm};
    use super::*;

    #[test]
    fn prices_prompt_and_max_tokens_from_the_config() {
        let h = Harness::<PromptCost>::new(r#"{"input_usd_per_mtok":"3","output_usd_per_mtok":"15"}"#).unwrap();
        // "hello world" = 11 chars = 3 tokens at $3/M, 100 output tokens at $15/M.
        let got = h.estimate(&Call::new("LLM", r#"{"max_tokens":100,"prompt":"hello world"}"#)).unwrap();
        assert_eq!(got, 3 * 3_000 + 100 * 15_000);
        assert_eq!(h.estimate(&Call::new("LLM", "")).unwrap(), 0);
    }

    #[test]
    fn uses_the_hosts_llm_context_when_present() {
        let h = Harness::<PromptCost>::new("{}").unwrap();
        let llm = Llm { input_nanos_per_mtok: 1_000_000_000, output_nanos_per_mtok: 2_000_000_000, ..Llm::default() };
        let call = Call::new("LLM", r#"{"max_tokens":10,"prompt":"abcdefgh"}"#).llm(llm, "litellm:m");
        assert_eq!(h.estimate(&call).unwrap(), 2 * 1_000 + 10 * 2_000);
        let expected = Llm { expected_output_tokens: 1, ..llm };
        assert_eq!(h.estimate(&call.llm(expected, "litellm:m")).unwrap(), 2 * 1_000 + 2_000);
    }

    #[test]
    fn refuses_what_is_not_its_own() {
        let h = Harness::<PromptCost>::new("{}").unwrap();
        assert_eq!(h.estimate(&Call::new("Bash", "")).err().unwrap().code, Code::UNSUPPORTED);
        let e = h.estimate(&Call::new("LLM", r#"{"max_tokens":"many"}"#)).err().unwrap();
        assert_eq!((e.code, e.message.as_str()), (Code::BAD_PARAMS, "params.max_tokens: want a non-negative integer"));
        let e = Harness::<PromptCost>::new(r#"{"chars_per_token":0}"#).err().unwrap();
        assert_eq!((e.code, e.message.as_str()), (Code::BAD_CONFIG, "rust-prompt-cost: chars_per_token: want an integer >= 1"));
        let e = Harness::<PromptCost>::new(r#"{"input_usd_per_mtok":"-1"}"#).err().unwrap();
        assert_eq!(e.message.as_str(), "rust-prompt-cost: input_usd_per_mtok: negative amounts are not allowed");
    }
}
