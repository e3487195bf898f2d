// The ABI's exports (abi/ABI.md section 1). An entry file re-exports
// "estimator" or "policy", which re-export these plus the call export.
import { Request } from "./request";
import { Result, encodeResult, pack, notInitializedResult, BAD_CONFIG, OK } from "./result";
import { ABI_VERSION, Config, registered } from "./plugin";

let requestBuffer = new ArrayBuffer(0);
let manifestBuffer = new ArrayBuffer(0);

export function purser_abi_version(): i32 { return ABI_VERSION; }

/** The host's request buffer: it stays referenced (so the GC keeps it) until the next alloc. */
export function purser_alloc(size: u32): usize {
  if (size > 64 << 20) return 0;
  requestBuffer = new ArrayBuffer(<i32>size);
  return changetype<usize>(requestBuffer);
}

export function purser_manifest(): i64 {
  const r = registered();
  let tools = r.manifest.tools;
  if (r.initialized) {
    const t = r.plugin.tools();
    if (t != null && t.length > 0) tools = t;
  }
  manifestBuffer = String.UTF8.encode(r.manifest.json(r.kind, tools));
  return pack(manifestBuffer);
}

export function purser_init(ptr: usize, len: u32): i64 {
  const r = registered();
  const res = r.plugin.init(new Config(String.UTF8.decodeUnsafe(ptr, len)));
  if (res.status == OK) {
    r.initialized = true;
    return 0;
  }
  if (res.status == BAD_CONFIG || res.text.length > 0) res.text = r.manifest.name + ": " + res.text;
  return encodeResult(res);
}

/** Runs one call of the registered plugin (kind 1 estimate, 2 admit). */
export function call(ptr: usize, len: u32, admit: bool): i64 {
  const r = registered();
  if (!r.initialized) return encodeResult(notInitializedResult());
  const req = new Request(ptr, len);
  const res: Result = admit ? r.plugin.admit(req) : r.plugin.estimate(req);
  return encodeResult(res);
}
