// Logging through the host's purser.log import (abi/ABI.md section 2).

// @ts-ignore: decorator
@external("purser", "log")
declare function hostLog(level: i32, ptr: usize, len: usize): void;

export const TRACE: i32 = 0;
export const DEBUG: i32 = 1;
export const INFO: i32 = 2;
export const WARN: i32 = 3;
export const ERROR: i32 = 4;

/** Logs msg at level (0 trace .. 4 error) to the plugin's logger on the host. */
export function log(level: i32, msg: string): void {
  const b = String.UTF8.encode(msg);
  hostLog(level, changetype<usize>(b), b.byteLength);
}
export function logTrace(msg: string): void { log(TRACE, msg); }
export function logDebug(msg: string): void { log(DEBUG, msg); }
export function logInfo(msg: string): void { log(INFO, msg); }
export function logWarn(msg: string): void { log(WARN, msg); }
export function logError(msg: string): void { log(ERROR, msg); }

let aborting = false;

/** Replaces asc's env.abort (the SDK's asconfig.json says `use abort=`): logs
 *  the message at error level, then traps, which fails the call (abi/ABI.md
 *  section 7). A second abort while logging (out of memory) just traps. */
export function purserAbort(message: string | null = null, fileName: string | null = null, line: u32 = 0, column: u32 = 0): void {
  if (!aborting) {
    aborting = true;
    log(ERROR, "abort: " + (message ? message : "") + " at " + (fileName ? fileName : "?") +
      ":" + line.toString() + ":" + column.toString());
  }
  unreachable();
}
