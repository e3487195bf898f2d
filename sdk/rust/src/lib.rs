//! purser guest SDK for Rust (see README.md). The whole SDK is the single
//! file `purser.rs`, so a plugin built with bare rustc (no cargo, as
//! scripts/wasm-build.sh does) can include it as a module:
//!
//! ```ignore
//! #[macro_use]
//! #[path = "../../../sdk/rust/src/purser.rs"]
//! mod purser;
//! ```
//!
//! With cargo, depend on this crate by path and use `purser::purser::...`
//! (re-exported at the root as `purser::...`).
#![cfg_attr(not(any(test, feature = "std")), no_std)]

#[macro_use]
pub mod purser;
pub use crate::purser::*;

#[cfg(test)]
mod tests;
