// Results (abi/ABI.md section 4): an estimate, a verdict, or an error code.

export const OK: u32 = 0;
export const INTERNAL: u32 = 1;
export const BAD_REQUEST: u32 = 2;
export const BAD_CONFIG: u32 = 3;
export const UNSUPPORTED: u32 = 4;
export const BAD_PARAMS: u32 = 5;
export const NOT_INITIALIZED: u32 = 6;

export const ALLOW: u32 = 0;
export const ASK: u32 = 1;
export const DENY: u32 = 2;

/** What a call (or init) answers. Build it with the functions below. */
export class Result {
  constructor(public status: u32, public verdict: u32, public nanos: i64, public text: string) {}
  get isError(): bool { return this.status != OK; }
}

/** init succeeded. */
export function ok(): Result { return new Result(OK, ALLOW, 0, ""); }
/** An estimator's answer, in nano-USD (never negative: a negative one is reported as internal). */
export function estimate(nanos: i64): Result {
  return nanos < 0 ? internal("negative estimate " + nanos.toString()) : new Result(OK, ALLOW, nanos, "");
}
export function allow(): Result { return new Result(OK, ALLOW, 0, ""); }
export function ask(reason: string): Result { return new Result(OK, ASK, 0, reason); }
export function deny(reason: string): Result { return new Result(OK, DENY, 0, reason); }

/** "Not mine": an estimator's call falls back to the cost table, a policy is skipped. */
export function unsupported(msg: string): Result { return new Result(UNSUPPORTED, ALLOW, 0, msg); }
/** The caller's params are wrong ("params.<key>: reason"). */
export function badParams(msg: string): Result { return new Result(BAD_PARAMS, ALLOW, 0, msg); }
export function invalidParam(key: string, reason: string): Result { return badParams("params." + key + ": " + reason); }
/** init rejects the config: the plugin does not load. */
export function badConfig(msg: string): Result { return new Result(BAD_CONFIG, ALLOW, 0, msg); }
/** The plugin's own failure. */
export function internal(msg: string): Result { return new Result(INTERNAL, ALLOW, 0, msg); }
/** Any error code; plugin-defined codes are >= 1000. */
export function error(code: u32, msg: string): Result { return new Result(code, ALLOW, 0, msg); }

// The last result record: the host copies it before the next call.
let lastRecord = new ArrayBuffer(0);

/** Writes r as a result record and returns the packed pointer (ptr << 32 | len). */
export function encodeResult(r: Result): i64 {
  const text = String.UTF8.encode(r.text);
  const n = 20 + text.byteLength;
  lastRecord = new ArrayBuffer(n);
  const p = changetype<usize>(lastRecord);
  store<u32>(p, r.status);
  store<u32>(p, r.verdict, 4);
  store<i64>(p, r.nanos, 8);
  store<u32>(p, text.byteLength, 16);
  memory.copy(p + 20, changetype<usize>(text), text.byteLength);
  return (<i64>p << 32) | <i64>n;
}

/** Packs a buffer's address and length the ABI's way. */
export function pack(buf: ArrayBuffer): i64 {
  return (<i64>changetype<usize>(buf) << 32) | <i64>buf.byteLength;
}

export function notInitializedResult(): Result { return new Result(NOT_INITIALIZED, ALLOW, 0, "purser_init has not succeeded"); }
