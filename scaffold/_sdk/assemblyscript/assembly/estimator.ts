// Re-export from an estimator's entry file: export * from "<sdk>/assembly/estimator".
import { call } from "./exports";
export { purser_abi_version, purser_alloc, purser_manifest, purser_init } from "./exports";

export function purser_estimate(ptr: usize, len: u32): i64 { return call(ptr, len, false); }
