// llm-cost: an example estimator built with the AssemblyScript SDK. It prices
// LLM calls with the host's own prices (the request's LLM context), counting
// prompt tokens as prompt characters / chars_per_token.
import {
  Config, LLM, Manifest, Plugin, Request, Result,
  badConfig, estimate, internal, invalidParam, llmBaseCost, logInfo, ok, parseUSD, registerEstimator, unsupported, formatUSD,
} from "../../../assembly/index";
export * from "../../../assembly/estimator";

class LLMCost extends Plugin {
  charsPerToken: i64 = 4;
  minimumNanos: i64 = 0;

  init(config: Config): Result {
    const unknown = config.unknownKey(["chars_per_token", "minimum_usd"]);
    if (unknown.length > 0) return badConfig("unknown config key " + unknown);
    const cpt = config.get("chars_per_token");
    if (cpt.error.length > 0) return badConfig(cpt.error);
    if (cpt.exists) {
      if (!cpt.isInt || cpt.int() < 1 || cpt.int() > 100) return badConfig("chars_per_token: want an integer 1..100");
      this.charsPerToken = cpt.int();
    }
    const min = config.get("minimum_usd");
    if (min.exists) {
      if (!min.isString) return badConfig("minimum_usd: want a decimal USD string");
      const m = parseUSD(min.str());
      if (!m.ok) return badConfig("minimum_usd: " + m.error);
      this.minimumNanos = m.nanos;
    }
    logInfo("llm-cost: " + this.charsPerToken.toString() + " chars per token, minimum " + formatUSD(this.minimumNanos));
    return ok();
  }

  estimate(req: Request): Result {
    const c = req.llm();
    if (c == null) return unsupported("llm-cost prices calls with the host's LLM context only");
    const llm = changetype<LLM>(c);
    const chars = req.promptChars;
    const tokens = chars < 0 ? 0 : (chars + this.charsPerToken - 1) / this.charsPerToken;
    // Honour the caller's cap when the host expects no particular output.
    if (llm.expectedOutputTokens == 0 && req.maxTokens > 0) llm.expectedOutputTokens = req.maxTokens;
    const cached = req.param("cache_read_tokens");
    if (cached.error.length > 0) return invalidParam("cache_read_tokens", cached.error);
    if (cached.exists && !cached.isInt) return invalidParam("cache_read_tokens", "want an integer");
    const cost = llmBaseCost(llm, tokens);
    if (cost < 0) return internal("cost overflows");
    return estimate(cost > this.minimumNanos ? cost : this.minimumNanos);
  }
}

const manifest = new Manifest("llm-cost", "0.1.0", ["LLM"]);
manifest.description = "LLM calls priced with the host's prices; prompt tokens = prompt characters / chars_per_token";
manifest.configSchema = "{\"type\":\"object\",\"properties\":{\"chars_per_token\":{\"type\":\"integer\"},\"minimum_usd\":{\"type\":\"string\"}}}";
registerEstimator(manifest, new LLMCost());
