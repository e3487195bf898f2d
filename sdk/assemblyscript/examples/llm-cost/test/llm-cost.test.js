import { test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { load, call, PluginError } from "../../../pursertest.js";

const wasm = fileURLToPath(new URL("../llm-cost.wasm", import.meta.url));
// claude-sonnet-like prices, nano-USD per million tokens: $3 in, $15 out, $0.30 cache read, $3.75 cache write.
const llm = { input: 3_000_000_000, output: 15_000_000_000, cacheRead: 300_000_000, cacheWrite: 3_750_000_000, priceSource: "litellm:x" };

test("manifest", async () => {
  const p = await load(wasm);
  assert.equal(p.version, 0x00010001);
  assert.deepEqual(
    { name: p.manifest.name, kind: p.manifest.kind, abi: p.manifest.abi, tools: p.manifest.tools },
    { name: "llm-cost", kind: "estimator", abi: "1.1", tools: ["LLM"] });
  assert.equal(p.manifest.config_schema.properties.chars_per_token.type, "integer");
});

test("prices with the host's LLM context: fresh prompt at cache-write, output at max_tokens", async () => {
  const p = await load(wasm, `{"chars_per_token":4}`);
  // 400 chars = 100 tokens x $3.75/M = 375,000; 1000 output x $15/M = 15,000,000.
  const got = p.estimate(call("LLM", { prompt: "x".repeat(400), max_tokens: 1000, model: "m" }, { llm }));
  assert.equal(got, 375_000n + 15_000_000n);
  assert.match(p.logs[0].msg, /4 chars per token, minimum \$0.00/);
});

test("the host's expected output and cached tokens win", async () => {
  const p = await load(wasm);
  const got = p.estimate(call("LLM", { prompt: "y".repeat(4000), max_tokens: 1000 },
    { llm: { ...llm, expectedOutputTokens: 10, cacheReadTokens: 600 } }));
  // 1000 prompt tokens: 400 fresh x $3.75/M = 1,500,000; 600 cached x $0.30/M = 180,000; 10 out = 150,000.
  assert.equal(got, 1_500_000n + 180_000n + 150_000n);
});

test("minimum_usd floors the estimate", async () => {
  const p = await load(wasm, `{"minimum_usd":"$0.01"}`);
  assert.equal(p.estimate(call("LLM", { prompt: "hi" }, { llm })), 10_000_000n);
});

test("no LLM context: unsupported (the host falls back to its table)", async () => {
  const p = await load(wasm);
  assert.throws(() => p.estimate(call("Bash", { command: "ls" })), (e) => e instanceof PluginError && e.code === "unsupported");
});

test("bad params are the caller's error", async () => {
  const p = await load(wasm);
  assert.throws(() => p.estimate(call("LLM", { prompt: "x", cache_read_tokens: "many" }, { llm })),
    (e) => e.code === "bad_params" && e.detail === "params.cache_read_tokens: want an integer");
});

test("bad config fails init naming the field", async () => {
  for (const [config, want] of [
    [`{"chars_per_token":0}`, "llm-cost: chars_per_token: want an integer 1..100"],
    [`{"minimum_usd":"-1"}`, `llm-cost: minimum_usd: invalid amount "-1": negative amounts are not allowed`],
    [`{"minimum":"1"}`, "llm-cost: unknown config key minimum"],
  ]) {
    await assert.rejects(load(wasm, config), (e) => e.code === "bad_config" && e.detail === want, config);
  }
});
