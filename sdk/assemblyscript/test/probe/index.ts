// Exposes SDK functions to test/sdk.test.js (compiled there with the pinned asc).
import { parseUSD, parsePerToken, formatUSD, mulDivCeil, field, quote, Manifest } from "../../assembly/index";

export function usd(s: string): string {
  const m = parseUSD(s);
  return m.ok ? m.nanos.toString() : "error: " + m.error;
}
export function perToken(s: string): string {
  const m = parsePerToken(s);
  return m.ok ? m.nanos.toString() : "error: " + m.error;
}
export function format(n: i64): string { return formatUSD(n); }
export function muldiv(a: i64, b: i64, d: i64): i64 { return mulDivCeil(a, b, d); }
export function jsonField(json: string, key: string): string {
  const v = field(json, key);
  if (v.error.length > 0) return "error: " + v.error;
  if (!v.exists) return "absent";
  return v.isString ? "string " + quote(v.str()) : v.isInt ? "int " + v.int().toString() : "raw " + v.raw;
}
export function manifestProblem(name: string, tools: string): string {
  return new Manifest(name, "1", tools.length > 0 ? tools.split(",") : []).problem();
}
export function boom(n: i32): i32 {
  assert(n > 0, "n must be positive");
  return n;
}
