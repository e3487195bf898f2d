//! rust-budget-guard: the Rust SDK's example policy (sdk/rust/README.md).
//! On an account with a limit it denies a call that does not fit in what
//! remains, asks for approval when one call would take more than
//! `ask_above_percent` of what remains, and asks before any `sudo` in Bash.
//! An account labelled `guard: off` is always allowed.
//!
//!     config  {"ask_above_percent": 50}
//!
//! Host tests: `/usr/bin/rustc --edition 2021 --test lib.rs && ./lib`.
#![cfg_attr(not(test), no_std)]

#[macro_use]
#[path = "../../../sdk/rust/src/purser.rs"]
mod purser;

use purser::{json, Decision, Error, Manifest, Plugin, Policy, Request};

pub struct BudgetGuard {
    ask_above_percent: i64,
}

impl Plugin for BudgetGuard {
    const MANIFEST: Manifest = manifest! {
        abi: "1.1", name: "rust-budget-guard", version: "0.1.0", kind: "policy", tools: ["*"],
        description: "Denies what does not fit the budget, asks above a share of it or before sudo (example of the Rust SDK)",
        config_schema: r#"{"type":"object","additionalProperties":false,"properties":{"ask_above_percent":{"type":"integer","minimum":1,"maximum":100}}}"#,
    };

    fn init(config: &[u8]) -> Result<BudgetGuard, Error> {
        let mut g = BudgetGuard { ask_above_percent: 50 };
        for m in json::members(config) {
            let (key, v) = m.map_err(|e| Error::bad_config("rust-budget-guard: config: ").push(e.message()))?;
            if key != b"ask_above_percent" {
                return Err(Error::bad_config("rust-budget-guard: config: unknown field (only ask_above_percent is accepted)"));
            }
            g.ask_above_percent = v
                .as_i64()
                .filter(|p| (1..=100).contains(p))
                .ok_or_else(|| Error::bad_config("rust-budget-guard: ask_above_percent: want an integer from 1 to 100"))?;
        }
        Ok(g)
    }
}

impl Policy for BudgetGuard {
    fn admit(&self, req: &Request) -> Result<Decision, Error> {
        if req.label("guard") == Some("off") {
            return Ok(Decision::allow());
        }
        if req.tool() == "Bash" {
            if let Some(cmd) = req.param("command")? {
                let text = cmd.as_plain_str().ok_or_else(|| Error::bad_params("params.command: want a string"))?;
                if text == "sudo" || text.starts_with("sudo ") {
                    return Ok(Decision::ask("Bash runs sudo"));
                }
            }
        }
        if req.limit_nanos().is_none() {
            return Ok(Decision::allow());
        }
        let (estimate, remaining) = (req.estimate_nanos(), req.remaining_nanos());
        if estimate > remaining {
            let mut d = Decision::deny("This call (");
            d.reason.push_usd(estimate).push(") does not fit in the remaining ").push_usd(remaining.max(0));
            return Ok(d);
        }
        // estimate / remaining > percent / 100, without overflow.
        if estimate as i128 * 100 > remaining as i128 * self.ask_above_percent as i128 {
            let mut d = Decision::ask("This call (");
            d.reason.push_usd(estimate).push(") would use more than ").push_i64(self.ask_above_percent).push("% of the remaining ").push_usd(remaining);
            return Ok(d);
        }
        Ok(Decision::allow())
    }
}

export_policy!(BudgetGuard);

#[cfg(test)]
mod tests {
    use super::purser::testing::{Call, Harness};
    use super::purser::{Code, Verdict};
    use super::*;

    fn admit(config: &str, call: Call) -> (Verdict, String) {
        let d = Harness::<BudgetGuard>::new(config).unwrap().admit(&call).unwrap();
        (d.verdict, d.reason.as_str().to_string())
    }

    #[test]
    fn judges_against_what_remains() {
        let call = |est| Call::new("Read", "").budget(10_000_000_000, 5_000_000_000, 1_000_000_000).estimate(est); // $4 remain
        assert_eq!(admit("{}", call(2_000_000_000)), (Verdict::Allow, String::new()));
        assert_eq!(admit("{}", call(2_000_000_001)), (Verdict::Ask, "This call ($2.000000001) would use more than 50% of the remaining $4.00".into()));
        assert_eq!(admit(r#"{"ask_above_percent":100}"#, call(4_000_000_000)).0, Verdict::Allow);
        assert_eq!(admit("{}", call(4_000_000_001)), (Verdict::Deny, "This call ($4.000000001) does not fit in the remaining $4.00".into()));
        assert_eq!(admit("{}", Call::new("Read", "").estimate(i64::MAX)).0, Verdict::Allow); // unlimited
    }

    #[test]
    fn asks_before_sudo_unless_the_account_is_labelled_off() {
        assert_eq!(admit("{}", Call::new("Bash", r#"{"command":"sudo rm x"}"#)), (Verdict::Ask, "Bash runs sudo".into()));
        assert_eq!(admit("{}", Call::new("Bash", r#"{"command":"sudoku"}"#)).0, Verdict::Allow);
        let mut off = Call::new("Bash", r#"{"command":"sudo rm x"}"#);
        off.labels = &[("guard", "off")];
        assert_eq!(admit("{}", off).0, Verdict::Allow);
        let e = Harness::<BudgetGuard>::new("{}").unwrap().admit(&Call::new("Bash", r#"{"command":1}"#)).err().unwrap();
        assert_eq!((e.code, e.message.as_str()), (Code::BAD_PARAMS, "params.command: want a string"));
    }

    #[test]
    fn config_is_checked() {
        for (config, want) in [
            (r#"{"ask_above_percent":0}"#, "rust-budget-guard: ask_above_percent: want an integer from 1 to 100"),
            (r#"{"ask_above_percent":"50"}"#, "rust-budget-guard: ask_above_percent: want an integer from 1 to 100"),
            (r#"{"pct":5}"#, "rust-budget-guard: config: unknown field (only ask_above_percent is accepted)"),
            ("[]", "rust-budget-guard: config: must be a JSON object"),
        ] {
            let e = Harness::<BudgetGuard>::new(config).err().unwrap();
            assert_eq!((e.code, e.message.as_str()), (Code::BAD_CONFIG, want));
        }
    }
}
