// Unit tests of the SDK's logic: test/probe is compiled with the pinned asc
// and its exports called through asc's generated bindings.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import asc from "assemblyscript/asc";

let probe, probeImports;
const logs = [];
before(async () => {
  const dir = await mkdtemp(join(tmpdir(), "purser-as-"));
  const out = join(dir, "probe.wasm");
  const root = fileURLToPath(new URL("..", import.meta.url));
  const { error, stderr } = await asc.main(["test/probe/index.ts", "-O3", "--bindings", "raw", "--outFile", out,
    "--use", "abort=assembly/log/purserAbort"], { stdout: process.stdout, stderr: process.stderr, baseDir: root });
  if (error) throw new Error(`asc: ${error.message}\n${stderr}`);
  const { instantiate } = await import(join(dir, "probe.js"));
  const mod = await WebAssembly.compile(await readFile(out));
  probeImports = WebAssembly.Module.imports(mod);
  let memory;
  probe = await instantiate(mod, { purser: { log: (level, ptr, len) => logs.push([level, Buffer.from(memory.buffer, ptr, len).toString()]) } });
  memory = probe.memory;
});

test("parseUSD: the same answers as sdk/go/usd", () => {
  for (const [in_, want] of [
    ["0.10", "100000000"], ["$0.10", "100000000"], [" 12 ", "12000000000"], ["1.5e-3", "1500000"],
    ["0.0000000001", "1"], ["0", "0"], ["1e-400", "1"],
    ["9223372036.854775807", "9223372036854775807"], ["9223372036.854775808", "error: invalid amount \"9223372036.854775808\": overflows int64 nano-USD"],
    ["-1", "error: invalid amount \"-1\": negative amounts are not allowed"], ["NaN", "error: invalid amount \"NaN\": not a finite number"],
    ["", "error: invalid amount \"\": empty"], ["1x", "error: invalid amount \"1x\": unexpected character 'x'"],
    [".", "error: invalid amount \".\": no digits"], ["1e", "error: invalid amount \"1e\": malformed exponent"],
  ]) assert.equal(probe.usd(in_), want, in_);
  assert.equal(probe.perToken("2.5e-06"), "2500000000");
  assert.equal(probe.perToken("3e-07"), "300000000");
});

test("formatUSD: at least two decimals, exact", () => {
  for (const [n, want] of [[0n, "$0.00"], [100000000n, "$0.10"], [8750000n, "$0.00875"], [-50000000n, "-$0.05"],
    [1n, "$0.000000001"], [-9223372036854775808n, "-$9223372036.854775808"]]) assert.equal(probe.format(n), want);
});

test("mulDivCeil: exact 128-bit, rounds up, -1 past i64", () => {
  const max = 9223372036854775807n;
  assert.equal(probe.muldiv(3n, 7n, 2n), 11n);
  assert.equal(probe.muldiv(max, 1_000_000n, 1_000_000n), max);
  assert.equal(probe.muldiv(max, max, max), max);
  assert.equal(probe.muldiv(max, 2n, 1n), -1n);
  assert.equal(probe.muldiv(-1n, 2n, 1n), -1n);
  assert.equal(probe.muldiv(4_000_000_000n, 3_000_000_001n, 1_000_000n), 12_000_000_004_000n);
  for (let i = 0; i < 200; i++) {
    const a = BigInt(Math.floor(Math.random() * 2 ** 53)) * 977n, b = BigInt(Math.floor(Math.random() * 2 ** 40));
    const d = BigInt(1 + Math.floor(Math.random() * 2 ** 30));
    const q = (a * b + d - 1n) / d;
    assert.equal(probe.muldiv(a, b, d), q > max ? -1n : q, `${a} ${b} ${d}`);
  }
});

test("field: top-level lookup in canonical and hand-written JSON", () => {
  for (const [json, key, want] of [
    [`{"a":{"b":1},"b":"x\\u003cy\\n\\ud83d\\ude00"}`, "b", `string "x<y\\u000a😀"`],
    [`{"a":{"b":1},"b":2}`, "b", "int 2"],
    [`{ "n" : -12 , "m": [1, {"n": 3}] }`, "n", "int -12"],
    [`{"n":1.0}`, "n", "raw 1.0"],
    [`{"n":1,"n":2}`, "n", "int 2"],
    [``, "n", "absent"],
    [`{}`, "n", "absent"],
    [`{"n":1`, "n", "error: malformed JSON: expected ',' or '}'"],
    [`{"n":1} x`, "n", "error: malformed JSON: trailing data after the object"],
    [`[1]`, "n", "error: malformed JSON: not an object"],
    ["{\"a\":" + "[".repeat(100) + "]".repeat(100) + "}", "a", "error: malformed JSON: bad value of \"a\""],
  ]) assert.equal(probe.jsonField(json, key), want, json);
});

test("manifest checks: what the host refuses at load", () => {
  assert.equal(probe.manifestProblem("ok-name.1", "*"), "");
  assert.match(probe.manifestProblem("Bad", "*"), /^name "Bad"/);
  assert.match(probe.manifestProblem("-x", "*"), /^name/);
  assert.equal(probe.manifestProblem("x", ""), "tools: 1..256 names");
});

test("abort: no env import; the message is logged at error level, then the call traps", () => {
  assert.deepEqual(probeImports.map((i) => `${i.module}.${i.name}`), ["purser.log"]);
  assert.equal(probe.boom(1), 1);
  assert.throws(() => probe.boom(0), (e) => e instanceof WebAssembly.RuntimeError && /unreachable/.test(e.message));
  assert.deepEqual(logs.at(-1), [4, "abort: n must be positive at test/probe/index.ts:24:3"]);
});
