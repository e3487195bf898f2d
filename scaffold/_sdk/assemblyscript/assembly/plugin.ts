// Declaring a plugin: its manifest, its code, and the one registration.
import { quote, field, fieldNames, Value } from "./json";
import { Request } from "./request";
import { Result, unsupported, ok } from "./result";
import { purserAbort } from "./log";

export const ABI_VERSION: i32 = 0x00010001; // 1.1: the request's LLM context
export const ABI_TEXT = "1.1";
export const TOOL_ANY = "*";

/** The manifest (abi/ABI.md section 5). The SDK fills kind and abi. */
export class Manifest {
  description: string = "";
  /** A JSON Schema object, as JSON text ("" for none). */
  configSchema: string = "";
  constructor(public name: string, public version: string, public tools: string[]) {}

  /** What the host would refuse at load, or "" when the manifest is valid. */
  problem(): string {
    const n = this.name;
    if (n.length < 1 || n.length > 64) return "name: 1..64 characters";
    for (let i = 0; i < n.length; i++) {
      const c = n.charCodeAt(i);
      const alnum = (c >= 97 && c <= 122) || (c >= 48 && c <= 57);
      if (!alnum && (i == 0 || (c != 45 && c != 95 && c != 46))) return "name " + quote(n) + ": a-z 0-9 - _ . starting with a letter or digit";
    }
    const v = String.UTF8.byteLength(this.version);
    if (v < 1 || v > 64) return "version: 1..64 bytes";
    if (this.tools.length < 1 || this.tools.length > 256) return "tools: 1..256 names";
    for (let i = 0; i < this.tools.length; i++) if (this.tools[i].length == 0) return "tools: an empty name";
    const cs = this.configSchema.trim();
    if (cs.length > 0 && (!cs.startsWith("{") || fieldNames(cs) == null)) return "config_schema: not a JSON object";
    return "";
  }

  json(kind: string, tools: string[]): string {
    let t = "";
    for (let i = 0; i < tools.length; i++) t += (i > 0 ? "," : "") + quote(tools[i]);
    let s = "{\"abi\":" + quote(ABI_TEXT) + ",\"name\":" + quote(this.name) + ",\"version\":" + quote(this.version) +
      ",\"kind\":" + quote(kind) + ",\"tools\":[" + t + "]";
    if (this.description.length > 0) s += ",\"description\":" + quote(this.description);
    if (this.configSchema.length > 0) s += ",\"config_schema\":" + this.configSchema;
    return s + "}";
  }
}

/** The config JSON the host delivers at purser_init ("{}" when none). */
export class Config {
  constructor(public json: string) {}
  /** One top-level field (see json.Value). */
  get(key: string): Value { return field(this.json, key); }
  /** The first field not in allowed, "" when none: reject unknown keys. A
   *  config that is not a JSON object answers "(not a JSON object)". */
  unknownKey(allowed: string[]): string {
    const names = fieldNames(this.json);
    if (names == null) return "(not a JSON object)";
    for (let i = 0; i < names.length; i++) if (!allowed.includes(names[i])) return names[i];
    return "";
  }
}

/** A plugin's code. Override init (once per instance, with the config) and
 *  estimate (estimators) or admit (policies). Override tools to narrow the
 *  manifest's tools after init (abi/ABI.md section 5, "Tools that depend on
 *  the config"). */
export abstract class Plugin {
  init(config: Config): Result { return ok(); }
  estimate(req: Request): Result { return unsupported("not an estimator"); }
  admit(req: Request): Result { return unsupported("not a policy"); }
  tools(): string[] | null { return null; }
}

/** The registered plugin: the one piece of state the exports need. */
export class Registration {
  initialized: bool = false;
  constructor(public kind: string, public manifest: Manifest, public plugin: Plugin) {}
}

let registration: Registration | null = null;

function register(kind: string, m: Manifest, p: Plugin): void {
  const why = m.problem();
  // A broken manifest must never load: trap at start (the host reports it).
  if (why.length > 0) purserAbort("purser: invalid manifest: " + why);
  if (registration != null) purserAbort("purser: a plugin is already registered");
  registration = new Registration(kind, m, p);
}

/** Registers an estimator; call once, from the module's top level. */
export function registerEstimator(m: Manifest, p: Plugin): void { register("estimator", m, p); }
/** Registers a policy; call once, from the module's top level. */
export function registerPolicy(m: Manifest, p: Plugin): void { register("policy", m, p); }

/** The registered plugin (the exports' dispatch; traps when none). */
export function registered(): Registration {
  const r = registration;
  if (r == null) purserAbort("purser: no plugin registered (call registerEstimator or registerPolicy at top level)");
  return r!;
}
