// pursertest: run a compiled purser plugin (.wasm) in node the way the host
// does (abi/ABI.md sections 1-4), for `node --test`. No fuel metering, no
// WASI: use `purser plugin test` for the real host.
import { readFile } from "node:fs/promises";

export const CODES = ["ok", "internal", "bad_request", "bad_config", "unsupported", "bad_params", "not_initialized"];
export const VERDICTS = ["allow", "ask", "deny"];
const SOURCES = { none: 0, plugin: 1, table: 2, llm: 3, unknown: 4 };
const HEADER_LEN = 168;
const UNLIMITED = 0x7fffffffffffffffn;

/** A plugin's error result. */
export class PluginError extends Error {
  constructor(status, message) {
    super(`${CODES[status] ?? `code ${status}`}: ${message}`);
    this.status = status;
    this.code = CODES[status] ?? `code ${status}`;
    this.detail = message;
  }
}

// Go's encoding/json: keys sorted, no whitespace, <>& and U+2028/9 escaped.
function canonical(v) {
  if (v === null || typeof v !== "object") {
    return JSON.stringify(v).replace(/[<>&\u2028\u2029]/g, (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"));
  }
  if (Array.isArray(v)) return "[" + v.map(canonical).join(",") + "]";
  const keys = Object.keys(v).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  return "{" + keys.map((k) => canonical(k) + ":" + canonical(v[k])).join(",") + "}";
}

function promptChars(p) {
  const count = (s) => [...s].length;
  if (typeof p.prompt === "string") return count(p.prompt);
  if (!Array.isArray(p.messages)) return -1;
  const parts = p.messages.map((m) => {
    const c = m?.content;
    if (typeof c === "string") return c;
    if (Array.isArray(c)) return c.filter((b) => typeof b?.text === "string").map((b) => b.text).join(" ");
    return "";
  });
  return count(parts.join(" "));
}

/**
 * A call as the host describes it. Like sdk/go's pursertest.NewCall, model,
 * prompt_chars and max_tokens come from params. Options: account, budget
 * ({limit, committed, pending} in nano-USD; limit -1 or absent = unlimited),
 * overdrawn, labels ({key: value}), llm ({input, output, cacheRead, cacheWrite,
 * cacheWrite1h, tierAboveTokens, inputAbove, outputAbove, cacheReadAbove,
 * cacheWriteAbove, expectedOutputTokens, cacheReadTokens, priceFallback,
 * priceSource}), estimate (nano-USD) and source ("table", "plugin", ...) for
 * admission requests.
 */
export function call(tool, params = {}, opts = {}) {
  return { tool, params, ...opts };
}

const LLM_FIELDS = ["input", "output", "cacheRead", "cacheWrite", "cacheWrite1h", "tierAboveTokens", "inputAbove",
  "outputAbove", "cacheReadAbove", "cacheWriteAbove", "expectedOutputTokens", "cacheReadTokens"];

/** Encodes a call as a v1.1 request record (kind 1 estimate, 2 admit). */
export function encodeRequest(c, kind) {
  const p = c.params ?? {};
  const paramsJSON = Object.keys(p).length === 0 ? "" : canonical(p);
  const chars = promptChars(p);
  const b = c.budget ?? {};
  const limit = BigInt(b.limit ?? -1), committed = BigInt(b.committed ?? 0), pending = BigInt(b.pending ?? 0);
  const remaining = limit < 0n ? UNLIMITED : limit - committed - pending;
  const labels = Object.keys(c.labels ?? {}).sort();
  const enc = (s) => Buffer.from(s, "utf8");
  const labelBytes = Buffer.concat(labels.flatMap((k) => [k, c.labels[k]].flatMap((s) => [u32(enc(s).length), enc(s)])));
  const source = kind === 2 ? (c.source ?? "table") : "";
  const strings = [c.tool, c.account ?? "", typeof p.model === "string" ? p.model : "", kind === 2 ? source : "",
    paramsJSON, null, c.llm ? (c.llm.priceSource ?? "") : ""].map((s) => (s === null ? labelBytes : enc(s)));
  const h = Buffer.alloc(HEADER_LEN);
  h.writeUInt16LE(HEADER_LEN, 0);
  h.writeUInt8(kind, 2);
  h.writeUInt8(kind === 2 ? SOURCES[source.split(":")[0]] ?? 4 : 0, 3);
  let flags = 0;
  if (c.overdrawn || remaining < 0n) flags |= 1;
  if (chars >= 0) flags |= 2;
  if (c.llm) flags |= 4 | (c.llm.priceFallback ? 8 : 0);
  h.writeUInt32LE(flags, 4);
  h.writeBigInt64LE(BigInt(kind === 2 ? c.estimate ?? 0 : 0), 8);
  [limit, committed, pending, remaining, BigInt(Math.max(chars, 0)),
    BigInt(Number.isInteger(p.max_tokens) ? p.max_tokens : -1)].forEach((v, i) => h.writeBigInt64LE(v, 16 + 8 * i));
  h.writeUInt32LE(strings.length, 64);
  if (c.llm) LLM_FIELDS.forEach((f, i) => h.writeBigInt64LE(BigInt(c.llm[f] ?? 0), 72 + 8 * i));
  return Buffer.concat([h, ...strings.flatMap((s) => [u32(s.length), s])]);
}

function u32(n) {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

/** A loaded plugin instance. */
export class Plugin {
  constructor(instance, logs) {
    this.exports = instance.exports;
    this.logs = logs;
    this.version = this.exports.purser_abi_version();
    this.manifest = JSON.parse(this.#text(this.exports.purser_manifest()));
  }

  #bytes(packed) {
    const ptr = Number(BigInt.asUintN(64, packed) >> 32n), len = Number(BigInt.asUintN(32, packed));
    return Buffer.from(this.exports.memory.buffer, ptr, len);
  }
  #text(packed) { return this.#bytes(packed).toString("utf8"); }

  #write(bytes) {
    const ptr = this.exports.purser_alloc(bytes.length);
    if (ptr === 0) throw new Error("purser_alloc failed");
    Buffer.from(this.exports.memory.buffer, ptr, bytes.length).set(bytes);
    return ptr;
  }

  #result(packed) {
    const r = this.#bytes(packed);
    const status = r.readUInt32LE(0), n = r.readUInt32LE(16);
    const text = r.subarray(20, 20 + n).toString("utf8");
    if (status !== 0) throw new PluginError(status, text);
    return { verdict: VERDICTS[r.readUInt32LE(4)], nanos: r.readBigInt64LE(8), reason: text };
  }

  init(config) {
    if (!this.exports.purser_init) return;
    const b = Buffer.from(config, "utf8");
    const packed = this.exports.purser_init(this.#write(b), b.length);
    if (packed !== 0n) this.#result(packed);
    this.manifest = JSON.parse(this.#text(this.exports.purser_manifest()));
  }

  /** The estimate in nano-USD (a BigInt); throws PluginError on an error result. */
  estimate(c) {
    const req = encodeRequest(c, 1);
    return this.#result(this.exports.purser_estimate(this.#write(req), req.length)).nanos;
  }

  /** {verdict: "allow"|"ask"|"deny", reason}; throws PluginError on an error result. */
  admit(c) {
    const req = encodeRequest(c, 2);
    const { verdict, reason } = this.#result(this.exports.purser_admit(this.#write(req), req.length));
    return { verdict, reason };
  }
}

/** Instantiates the module (a path or bytes) and runs init with config
 *  (JSON text, "{}" by default), as the host's load does. */
export async function load(wasm, config = "{}") {
  const bytes = typeof wasm === "string" ? await readFile(wasm) : wasm;
  const logs = [];
  let memory;
  const imports = {
    purser: {
      log: (level, ptr, len) => logs.push({ level, msg: Buffer.from(memory.buffer, ptr, len).toString("utf8") }),
    },
  };
  const { instance } = await WebAssembly.instantiate(bytes, imports);
  memory = instance.exports.memory;
  const p = new Plugin(instance, logs);
  p.init(config);
  return p;
}
