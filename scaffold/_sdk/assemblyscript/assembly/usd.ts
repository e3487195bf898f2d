// Money as i64 nano-USD, parsed from decimal text and never through f64: the
// same rules as the host and sdk/go/usd (one USD parser per language).

/** Nano-USD per dollar. */
export const NANOS_PER_USD: i64 = 1_000_000_000;

/** The answer of parseUSD: nanos when error is empty, else why not. */
export class Money {
  constructor(public nanos: i64, public error: string) {}
  get ok(): bool { return this.error.length == 0; }
}

/** Reads a non-negative decimal USD amount ("0.10", "$0.10", "1.5e-3") into
 *  nano-USD; a fractional nano rounds up. */
export function parseUSD(s: string): Money {
  let t = s.trim();
  if (t.startsWith("$")) t = t.substring(1);
  return scaled(s, t, 9);
}

/** Reads a per-token USD price ("2.5e-06") as nano-USD per million tokens. */
export function parsePerToken(s: string): Money {
  return scaled(s, s.trim(), 15);
}

function fail(input: string, reason: string): Money {
  return new Money(0, "invalid amount " + quote(input) + ": " + reason);
}

function quote(s: string): string {
  return "\"" + s.replaceAll("\\", "\\\\").replaceAll("\"", "\\\"") + "\"";
}

function scaled(input: string, s: string, scale: i32): Money {
  if (s.length == 0) return fail(input, "empty");
  const lower = s.toLowerCase();
  if (lower.startsWith("-")) return fail(input, "negative amounts are not allowed");
  if (lower.includes("nan") || lower.includes("inf")) return fail(input, "not a finite number");
  let mant = lower;
  let exp: i32 = 0;
  const e = lower.indexOf("e");
  if (e >= 0) {
    const es = lower.substring(e + 1);
    if (!isInt(es)) return fail(input, "malformed exponent");
    const ev = parseDigits(es);
    if (ev > 400 || ev < -400) return fail(input, "malformed exponent");
    exp = <i32>ev;
    mant = lower.substring(0, e);
  }
  if (mant.startsWith("+")) mant = mant.substring(1);
  const dot = mant.indexOf(".");
  const intPart = dot < 0 ? mant : mant.substring(0, dot);
  const fracPart = dot < 0 ? "" : mant.substring(dot + 1);
  if (intPart.length == 0 && fracPart.length == 0) return fail(input, "no digits");
  let digits = intPart + fracPart;
  for (let i = 0; i < digits.length; i++) {
    const c = digits.charCodeAt(i);
    if (c < 48 || c > 57) return fail(input, "unexpected character '" + digits.charAt(i) + "'");
  }
  const shift = exp - fracPart.length + scale;
  let z = 0;
  while (z < digits.length && digits.charCodeAt(z) == 48) z++;
  digits = digits.substring(z);
  if (shift < 0) {
    const cut = digits.length + shift;
    if (cut <= 0) return new Money(digits.length == 0 ? 0 : 1, "");
    const v = toInt(digits.substring(0, cut));
    if (v < 0) return fail(input, "overflows int64 nano-USD");
    const rest = digits.substring(cut);
    for (let i = 0; i < rest.length; i++) {
      if (rest.charCodeAt(i) != 48) {
        if (v == i64.MAX_VALUE) return fail(input, "overflows int64 nano-USD");
        return new Money(v + 1, "");
      }
    }
    return new Money(v, "");
  }
  if (digits.length == 0) return new Money(0, "");
  if (digits.length + shift > 19) return fail(input, "overflows int64 nano-USD");
  const v = toInt(digits + "0".repeat(shift));
  if (v < 0) return fail(input, "overflows int64 nano-USD");
  return new Money(v, "");
}

function isInt(s: string): bool {
  let i = 0;
  if (s.startsWith("+") || s.startsWith("-")) i = 1;
  if (i >= s.length || s.length - i > 6) return false;
  for (; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

function parseDigits(s: string): i64 {
  let neg = s.startsWith("-");
  let i = s.startsWith("+") || neg ? 1 : 0;
  let v: i64 = 0;
  for (; i < s.length; i++) v = v * 10 + <i64>(s.charCodeAt(i) - 48);
  return neg ? -v : v;
}

// toInt reads at most 19 digits; -1 past i64.
function toInt(d: string): i64 {
  let v: u64 = 0;
  for (let i = 0; i < d.length; i++) {
    const c = <u64>(d.charCodeAt(i) - 48);
    if (v > (<u64>i64.MAX_VALUE - c) / 10) return -1;
    v = v * 10 + c;
  }
  return <i64>v;
}

/** Renders n as "$0.10": at least two decimals, more when needed to be exact
 *  ("$0.00875"); negative amounts get a leading '-' ("-$0.05"). */
export function formatUSD(n: i64): string {
  return (n < 0 ? "-$" : "$") + decimal(n);
}

/** formatUSD without the dollar sign ("0.00875"). */
export function formatDecimal(n: i64): string {
  return (n < 0 ? "-" : "") + decimal(n);
}

function decimal(n: i64): string {
  const u: u64 = n < 0 ? <u64>(-(n + 1)) + 1 : <u64>n;
  const whole = u / <u64>NANOS_PER_USD;
  let frac = (u % <u64>NANOS_PER_USD).toString();
  frac = "0".repeat(9 - frac.length) + frac;
  let end = 9;
  while (end > 2 && frac.charCodeAt(end - 1) == 48) end--;
  return whole.toString() + "." + frac.substring(0, end);
}

/** a+b, or -1 when the sum of two non-negative amounts overflows. */
export function addNanos(a: i64, b: i64): i64 {
  if (a < 0 || b < 0 || a > i64.MAX_VALUE - b) return -1;
  return a + b;
}

/** ceil(a*b/den) exactly (128-bit intermediate) for non-negative a, b and
 *  positive den; -1 on bad operands or a result past i64 (never wrapped). */
export function mulDivCeil(a: i64, b: i64, den: i64): i64 {
  if (a < 0 || b < 0 || den <= 0) return -1;
  // 64x64 -> 128 from 32-bit limbs.
  const a0 = <u64>a & 0xffffffff, a1 = <u64>a >> 32;
  const b0 = <u64>b & 0xffffffff, b1 = <u64>b >> 32;
  const p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
  const mid = (p00 >> 32) + (p01 & 0xffffffff) + (p10 & 0xffffffff);
  const lo = (p00 & 0xffffffff) | (mid << 32);
  const hi = p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
  const d = <u64>den;
  if (hi >= d) return -1;
  // 128 / 64 long division, one bit at a time (hi < d, so q fits 64 bits).
  let r = hi, q: u64 = 0;
  for (let i = 63; i >= 0; i--) {
    const top = r >> 63;
    r = (r << 1) | ((lo >> <u64>i) & 1);
    q <<= 1;
    if (top != 0 || r >= d) { r -= d; q |= 1; }
  }
  if (q > <u64>i64.MAX_VALUE || (r != 0 && q == <u64>i64.MAX_VALUE)) return -1;
  return <i64>(r != 0 ? q + 1 : q);
}

/** The price of tokens at perMTok nano-USD per million tokens, a fractional
 *  nano rounded up; -1 on negative input or overflow. */
export function tokenCost(tokens: i64, perMTok: i64): i64 {
  return mulDivCeil(tokens, perMTok, 1_000_000);
}
