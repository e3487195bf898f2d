// budget-guard: an example policy built with the AssemblyScript SDK. It denies
// a call dearer than max_usd or on an overdrawn account, and asks before a
// call that would take more than ask_share_percent of what the account has left.
import {
  Config, Manifest, Plugin, Request, Result,
  allow, ask, badConfig, deny, formatUSD, logInfo, ok, parseUSD, registerPolicy, TOOL_ANY,
} from "../../../assembly/index";
export * from "../../../assembly/policy";

class BudgetGuard extends Plugin {
  maxNanos: i64 = -1;
  askSharePercent: i64 = 50;

  init(config: Config): Result {
    const unknown = config.unknownKey(["max_usd", "ask_share_percent"]);
    if (unknown.length > 0) return badConfig("unknown config key " + unknown);
    const max = config.get("max_usd");
    if (max.error.length > 0) return badConfig(max.error);
    if (!max.exists || !max.isString) return badConfig("max_usd: required, a decimal USD string");
    const m = parseUSD(max.str());
    if (!m.ok) return badConfig("max_usd: " + m.error);
    this.maxNanos = m.nanos;
    const share = config.get("ask_share_percent");
    if (share.exists) {
      if (!share.isInt || share.int() < 1 || share.int() > 100) return badConfig("ask_share_percent: want an integer 1..100");
      this.askSharePercent = share.int();
    }
    logInfo("budget-guard: max " + formatUSD(this.maxNanos) + ", ask above " + this.askSharePercent.toString() + "% of what remains");
    return ok();
  }

  admit(req: Request): Result {
    const cost = req.estimateNanos;
    if (cost > this.maxNanos) return deny("Operation cost " + formatUSD(cost) + " exceeds limit " + formatUSD(this.maxNanos));
    if (req.overdrawn) return deny("account " + req.account + " is overdrawn");
    if (req.unlimited || req.label("budget-guard") == "off") return allow();
    const remaining = req.remainingNanos;
    // cost > remaining x share / 100, without overflowing: compare in two steps.
    if (remaining <= 0 || cost / this.askSharePercent > remaining / 100 ||
        cost * 100 > remaining * this.askSharePercent) {
      return ask("Operation cost " + formatUSD(cost) + " is more than " + this.askSharePercent.toString() +
        "% of the " + formatUSD(remaining) + " " + req.account + " has left");
    }
    return allow();
  }
}

const manifest = new Manifest("budget-guard", "0.1.0", [TOOL_ANY]);
manifest.description = "Denies calls over max_usd or on overdrawn accounts; asks before one that takes more than ask_share_percent of what remains";
manifest.configSchema = "{\"type\":\"object\",\"required\":[\"max_usd\"],\"properties\":{\"max_usd\":{\"type\":\"string\"},\"ask_share_percent\":{\"type\":\"integer\"}}}";
registerPolicy(manifest, new BudgetGuard());
