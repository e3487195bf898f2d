// Typed access to the request record (abi/ABI.md section 3, v1.1).
import { field, Value } from "./json";

export const KIND_ESTIMATE: u8 = 1;
export const KIND_ADMIT: u8 = 2;

export const SOURCE_NONE: u8 = 0;
export const SOURCE_PLUGIN: u8 = 1;
export const SOURCE_TABLE: u8 = 2;
export const SOURCE_LLM: u8 = 3;
export const SOURCE_UNKNOWN: u8 = 4;

const FLAG_OVERDRAWN: u32 = 1;
const FLAG_PROMPT: u32 = 2;
const FLAG_LLM: u32 = 4;
const FLAG_PRICE_FALLBACK: u32 = 8;
const HEADER_V11: u32 = 168;

/** The host's LLM context (ABI 1.1): prices in nano-USD per million tokens. */
export class LLM {
  input: i64 = 0;
  output: i64 = 0;
  cacheRead: i64 = 0;
  cacheWrite: i64 = 0;
  cacheWrite1h: i64 = 0;
  tierAboveTokens: i64 = 0;
  inputAbove: i64 = 0;
  outputAbove: i64 = 0;
  cacheReadAbove: i64 = 0;
  cacheWriteAbove: i64 = 0;
  expectedOutputTokens: i64 = 0;
  cacheReadTokens: i64 = 0;
  /** The model is not in the host's price table (a fallback price). */
  priceFallback: bool = false;
}

/** One request, valid during the call only. Strings are decoded on use. */
export class Request {
  constructor(public ptr: usize, public len: u32) {}

  get headerLen(): u32 { return <u32>load<u16>(this.ptr); }
  get kind(): u8 { return load<u8>(this.ptr, 2); }
  get estimateSource(): u8 { return load<u8>(this.ptr, 3); }
  get flags(): u32 { return load<u32>(this.ptr, 4); }
  /** Admission requests: the call's estimate. */
  get estimateNanos(): i64 { return load<i64>(this.ptr, 8); }
  /** The account's limit, -1 = unlimited. */
  get limitNanos(): i64 { return load<i64>(this.ptr, 16); }
  get committedNanos(): i64 { return load<i64>(this.ptr, 24); }
  get pendingNanos(): i64 { return load<i64>(this.ptr, 32); }
  get remainingNanos(): i64 { return load<i64>(this.ptr, 40); }
  get unlimited(): bool { return this.limitNanos < 0; }
  get overdrawn(): bool { return (this.flags & FLAG_OVERDRAWN) != 0; }
  /** Host-counted characters of params.prompt (or the messages), -1 when none. */
  get promptChars(): i64 { return (this.flags & FLAG_PROMPT) != 0 ? load<i64>(this.ptr, 48) : -1; }
  /** params.max_tokens when an integer, -1 when absent. */
  get maxTokens(): i64 { return load<i64>(this.ptr, 56); }
  get stringCount(): u32 { return load<u32>(this.ptr, 64); }

  /** The host's LLM context, or null for calls without one. */
  llm(): LLM | null {
    if ((this.flags & FLAG_LLM) == 0 || this.headerLen < HEADER_V11) return null;
    const p = this.ptr;
    const c = new LLM();
    c.input = load<i64>(p, 72);
    c.output = load<i64>(p, 80);
    c.cacheRead = load<i64>(p, 88);
    c.cacheWrite = load<i64>(p, 96);
    c.cacheWrite1h = load<i64>(p, 104);
    c.tierAboveTokens = load<i64>(p, 112);
    c.inputAbove = load<i64>(p, 120);
    c.outputAbove = load<i64>(p, 128);
    c.cacheReadAbove = load<i64>(p, 136);
    c.cacheWriteAbove = load<i64>(p, 144);
    c.expectedOutputTokens = load<i64>(p, 152);
    c.cacheReadTokens = load<i64>(p, 160);
    c.priceFallback = (this.flags & FLAG_PRICE_FALLBACK) != 0;
    return c;
  }

  /** The byte offset and length of string i; length -1 when absent or out of range. */
  span(i: u32): u64 {
    if (i >= this.stringCount) return <u64>0xffffffff;
    let off = this.headerLen;
    for (let k: u32 = 0; ; k++) {
      if (off + 4 > this.len) return <u64>0xffffffff;
      const n = load<u32>(this.ptr + off);
      if (n > this.len - off - 4) return <u64>0xffffffff;
      if (k == i) return (<u64>(off + 4) << 32) | <u64>n;
      off += 4 + n;
    }
    return <u64>0xffffffff; // unreachable: the loop only returns
  }

  /** String i of the record, decoded from UTF-8 ("" when absent). */
  str(i: u32): string {
    const s = this.span(i);
    const n = <u32>s;
    if (n == 0xffffffff) return "";
    return String.UTF8.decodeUnsafe(this.ptr + <usize>(s >> 32), n);
  }

  get tool(): string { return this.str(0); }
  get account(): string { return this.str(1); }
  get model(): string { return this.str(2); }
  get sourceLabel(): string { return this.str(3); }
  /** The canonical params JSON (abi/ABI.md section 3a), "" when none. */
  get params(): string { return this.str(4); }
  get llmPriceSource(): string { return this.str(6); }

  /** Compares the tool name with name without decoding it. */
  toolIs(name: string): bool {
    const s = this.span(0);
    const n = <u32>s;
    if (n == 0xffffffff || n != <u32>String.UTF8.byteLength(name)) return false;
    const b = String.UTF8.encode(name);
    return memory.compare(this.ptr + <usize>(s >> 32), changetype<usize>(b), n) == 0;
  }

  /** One top-level params field (see json.Value); a malformed params JSON
   *  gives a Value whose error is set. */
  param(key: string): Value { return field(this.params, key); }

  /** The account's label key, or null when it has none. */
  label(key: string): string | null {
    const s = this.span(5);
    const n = <u32>s;
    if (n == 0xffffffff) return null;
    let p = this.ptr + <usize>(s >> 32);
    const end = p + n;
    while (p + 4 <= end) {
      const kl = load<u32>(p);
      if (<usize>kl > end - p - 4) return null;
      const k = String.UTF8.decodeUnsafe(p + 4, kl);
      p += 4 + kl;
      if (p + 4 > end) return null;
      const vl = load<u32>(p);
      if (<usize>vl > end - p - 4) return null;
      if (k == key) return String.UTF8.decodeUnsafe(p + 4, vl);
      p += 4 + vl;
    }
    return null;
  }
}
