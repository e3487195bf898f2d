// The host's base formula for an LLM call (abi/ABI.md section 3;
// enforcer.LLMContext.BaseCost; sdk/go's purser.LLMBaseCost).
import { LLM } from "./request";
import { tokenCost, addNanos } from "./usd";

function pick(base: i64, above: i64): i64 { return above > 0 ? above : base; }

/** What the host estimates for an LLM call of promptTokens prompt tokens with
 *  these prices; -1 on overflow. Change c.cacheReadTokens or
 *  c.expectedOutputTokens first to honour the caller's own numbers. */
export function llmBaseCost(c: LLM, promptTokens: i64): i64 {
  const p = max<i64>(promptTokens, 0);
  const cached = min<i64>(max<i64>(c.cacheReadTokens, 0), p);
  const tier = c.tierAboveTokens > 0 && p > c.tierAboveTokens;
  const input = tier ? pick(c.input, c.inputAbove) : c.input;
  const output = tier ? pick(c.output, c.outputAbove) : c.output;
  let cacheRead = tier ? pick(c.cacheRead, c.cacheReadAbove) : c.cacheRead;
  let cacheWrite = tier ? pick(c.cacheWrite, c.cacheWriteAbove) : c.cacheWrite;
  if (cacheRead == 0) cacheRead = input;
  if (cacheWrite == 0) cacheWrite = input;
  const fresh = c.cacheWrite > 0 && cacheWrite > input ? cacheWrite : input;
  const a = tokenCost(p - cached, fresh);
  const b = tokenCost(cached, cacheRead);
  const o = tokenCost(max<i64>(c.expectedOutputTokens, 0), output);
  if (a < 0 || b < 0 || o < 0) return -1;
  const ab = addNanos(a, b);
  return ab < 0 ? -1 : addNanos(ab, o);
}
