//! Runnable programs for the worker family: the demo agent (`agent`) and
//! the benchmark scenarios (`bench`). See the README for the commands.

#![forbid(unsafe_code)]

pub mod agent;
pub mod bench;

/// The README's examples, compiled and run as doctests so that they stay
/// true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
