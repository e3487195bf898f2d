// A small JSON reader for the params (abi/ABI.md section 3a) and the config:
// it finds one top-level field by scanning, without building a tree.

const MAX_DEPTH = 64;

/** One top-level field of a JSON object. `error` is set when the JSON is
 *  malformed or the field's value has the wrong form for the accessor used. */
export class Value {
  constructor(public key: string, public exists: bool, public raw: string, public error: string) {}

  get isNull(): bool { return this.raw == "null"; }
  get isString(): bool { return this.raw.startsWith("\""); }
  get isObject(): bool { return this.raw.startsWith("{"); }
  get isArray(): bool { return this.raw.startsWith("["); }
  get isBool(): bool { return this.raw == "true" || this.raw == "false"; }
  get isInt(): bool { return isIntText(this.raw); }

  /** The string's text with escapes undone ("" when not a string). */
  str(): string { return this.isString ? unescape(this.raw) : ""; }
  /** The value of plain integer text (no fraction or exponent); 0 otherwise. */
  int(): i64 { return this.isInt ? parseIntText(this.raw) : 0; }
  bool(): bool { return this.raw == "true"; }
}

/** Finds key among the top-level fields of the JSON object text (the last one
 *  when repeated). An empty text is an object without fields. */
export function field(json: string, key: string): Value {
  const f = new Fields(json);
  let found = new Value(key, false, "", "");
  while (f.next()) {
    if (f.name == key) found = new Value(key, true, json.substring(f.v0, f.v1), "");
  }
  return f.err.length > 0 ? new Value(key, false, "", f.err) : found;
}

/** The top-level field names of a JSON object, in order (null when the text
 *  is not one). */
export function fieldNames(json: string): string[] | null {
  const f = new Fields(json);
  const names = new Array<string>();
  while (f.next()) names.push(f.name);
  return f.err.length > 0 ? null : names;
}

// Fields reads a JSON object's top-level fields one at a time.
class Fields {
  s: Scanner;
  name: string = "";
  v0: i32 = 0;
  v1: i32 = 0;
  err: string = "";
  state: i32 = 0; // 0 before '{', 1 inside, 2 done

  constructor(json: string) { this.s = new Scanner(json); }

  fail(why: string): bool {
    this.err = "malformed JSON: " + why;
    this.state = 2;
    return false;
  }

  /** Reads the next field; false at the end of the object or on an error (err). */
  next(): bool {
    const s = this.s;
    if (this.state == 2) return false;
    s.ws();
    if (this.state == 0) {
      if (s.i == s.t.length) { this.state = 2; return false; }
      if (!s.eat(123)) return this.fail("not an object");
      s.ws();
      this.state = 1;
      if (s.eat(125)) return this.finish();
    } else if (!s.eat(44)) {
      if (s.eat(125)) return this.finish();
      return this.fail("expected ',' or '}'");
    }
    s.ws();
    const k0 = s.i;
    if (!s.str()) return this.fail("expected a field name");
    this.name = unescape(s.t.substring(k0, s.i));
    s.ws();
    if (!s.eat(58)) return this.fail("expected ':' after " + quote(this.name));
    s.ws();
    this.v0 = s.i;
    if (!s.value(0)) return this.fail("bad value of " + quote(this.name));
    this.v1 = s.i;
    s.ws();
    return true;
  }

  finish(): bool {
    this.state = 2;
    if (!this.s.end()) this.fail("trailing data after the object");
    return false;
  }
}

class Scanner {
  i: i32 = 0;
  constructor(public t: string) {}
  c(): i32 { return this.i < this.t.length ? this.t.charCodeAt(this.i) : -1; }
  eat(ch: i32): bool {
    if (this.c() != ch) return false;
    this.i++;
    return true;
  }
  ws(): void {
    for (let ch = this.c(); ch == 32 || ch == 9 || ch == 10 || ch == 13; ch = this.c()) this.i++;
  }
  end(): bool { this.ws(); return this.i == this.t.length; }
  str(): bool {
    if (!this.eat(34)) return false;
    for (;;) {
      const ch = this.c();
      if (ch < 0 || ch < 32) return false;
      this.i++;
      if (ch == 34) return true;
      if (ch == 92) {
        if (this.c() < 0) return false;
        this.i++;
      }
    }
    return false; // unreachable: the loop only returns
  }
  value(depth: i32): bool {
    if (depth > MAX_DEPTH) return false;
    const ch = this.c();
    if (ch == 34) return this.str();
    if (ch == 123 || ch == 91) return this.container(ch == 123 ? 125 : 93, depth);
    if (this.word("true") || this.word("false") || this.word("null")) return true;
    return this.number();
  }
  container(close: i32, depth: i32): bool {
    this.i++;
    this.ws();
    if (this.eat(close)) return true;
    for (;;) {
      this.ws();
      if (close == 125) {
        if (!this.str()) return false;
        this.ws();
        if (!this.eat(58)) return false;
        this.ws();
      }
      if (!this.value(depth + 1)) return false;
      this.ws();
      if (this.eat(44)) continue;
      return this.eat(close);
    }
  }
  word(w: string): bool {
    if (this.t.substr(this.i, w.length) != w) return false;
    this.i += w.length;
    return true;
  }
  number(): bool {
    const start = this.i;
    for (let ch = this.c(); (ch >= 48 && ch <= 57) || ch == 45 || ch == 43 || ch == 46 || ch == 101 || ch == 69; ch = this.c()) this.i++;
    return this.i > start;
  }
}

function isIntText(s: string): bool {
  let i = s.startsWith("-") ? 1 : 0;
  if (i >= s.length || s.length - i > 19) return false;
  for (; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  // 19 digits may still overflow i64.
  return s.length - (s.startsWith("-") ? 1 : 0) < 19 || parseIntText(s) != 0 || s == "0";
}

function parseIntText(s: string): i64 {
  const neg = s.startsWith("-");
  let v: u64 = 0;
  for (let i = neg ? 1 : 0; i < s.length; i++) {
    const c = <u64>(s.charCodeAt(i) - 48);
    if (v > (<u64>i64.MAX_VALUE - c) / 10) return 0;
    v = v * 10 + c;
  }
  return neg ? -<i64>v : <i64>v;
}

/** Undoes JSON string escapes in a quoted JSON string ("\"a\\u003cb\"" -> "a<b"). */
export function unescape(q: string): string {
  const s = q.substring(1, q.length - 1);
  if (!s.includes("\\")) return s;
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const ch = s.charCodeAt(i);
    if (ch != 92 || i + 1 >= s.length) { out += String.fromCharCode(ch); continue; }
    const e = s.charCodeAt(++i);
    if (e == 110) out += "\n";
    else if (e == 116) out += "\t";
    else if (e == 114) out += "\r";
    else if (e == 98) out += "\b";
    else if (e == 102) out += "\f";
    else if (e == 117 && i + 4 < s.length) {
      out += String.fromCharCode(<i32>parseInt(s.substr(i + 1, 4), 16));
      i += 4;
    } else out += String.fromCharCode(e);
  }
  return out;
}

/** s as a JSON string literal (for manifests and reasons built by hand). */
export function quote(s: string): string {
  let out = "\"";
  for (let i = 0; i < s.length; i++) {
    const ch = s.charCodeAt(i);
    if (ch == 34) out += "\\\"";
    else if (ch == 92) out += "\\\\";
    else if (ch < 32) out += "\\u00" + (ch < 16 ? "0" : "") + ch.toString(16);
    else out += String.fromCharCode(ch);
  }
  return out + "\"";
}
