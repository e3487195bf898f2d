import { test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { load, call } from "../../../pursertest.js";

const wasm = fileURLToPath(new URL("../budget-guard.wasm", import.meta.url));
const usd = (n) => BigInt(Math.round(n * 1e9));
const admit = (p, estimate, opts = {}) => p.admit(call("Bash", { command: "ls" }, { account: "team", estimate, ...opts }));

test("manifest", async () => {
  const p = await load(wasm, `{"max_usd":"1"}`);
  assert.deepEqual([p.manifest.name, p.manifest.kind, p.manifest.tools], ["budget-guard", "policy", ["*"]]);
  assert.deepEqual(p.manifest.config_schema.required, ["max_usd"]);
});

test("deny above max_usd, inclusive limit", async () => {
  const p = await load(wasm, `{"max_usd":"0.10"}`);
  assert.deepEqual(admit(p, usd(0.15)), { verdict: "deny", reason: "Operation cost $0.15 exceeds limit $0.10" });
  assert.deepEqual(admit(p, usd(0.10)), { verdict: "allow", reason: "" });
});

test("ask above the share of what remains; allow below; unlimited never asks", async () => {
  const p = await load(wasm, `{"max_usd":"10","ask_share_percent":25}`);
  const budget = { limit: usd(1), committed: usd(0.5), pending: usd(0.1) }; // $0.40 left
  assert.deepEqual(admit(p, usd(0.11), { budget }),
    { verdict: "ask", reason: "Operation cost $0.11 is more than 25% of the $0.40 team has left" });
  assert.equal(admit(p, usd(0.10), { budget }).verdict, "allow");
  assert.equal(admit(p, usd(5)).verdict, "allow");
  assert.equal(admit(p, usd(0.11), { budget, labels: { "budget-guard": "off" } }).verdict, "allow");
});

test("overdrawn accounts are denied", async () => {
  const p = await load(wasm, `{"max_usd":"10"}`);
  const got = admit(p, 1n, { budget: { limit: usd(1), committed: usd(1.5) } });
  assert.deepEqual(got, { verdict: "deny", reason: "account team is overdrawn" });
});

test("max_usd is required and checked", async () => {
  for (const [config, want] of [
    [`{}`, "budget-guard: max_usd: required, a decimal USD string"],
    [`{"max_usd":0.1}`, "budget-guard: max_usd: required, a decimal USD string"],
    [`{"max_usd":"1e401"}`, `budget-guard: max_usd: invalid amount "1e401": malformed exponent`],
    [`{"max_usd":"1","ask_share_percent":101}`, "budget-guard: ask_share_percent: want an integer 1..100"],
    [`{"max_usd":"1",}`, "budget-guard: unknown config key (not a JSON object)"],
  ]) {
    await assert.rejects(load(wasm, config), (e) => e.code === "bad_config" && e.detail === want, config);
  }
});
